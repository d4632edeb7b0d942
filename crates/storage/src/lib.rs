//! WAL, in-memory head, Parquet blocks, label index, compaction and retention over object_store.
