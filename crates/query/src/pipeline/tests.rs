//! Pipeline tests: Loki documentation examples and edge cases.
