//! Deterministic generator of realistic LLM-serving logs for the demo, benchmarks and tests.
