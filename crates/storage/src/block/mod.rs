//! Blocks: immutable Parquet files holding the entries of many streams of one
//! tenant, rows sorted by (stream, timestamp). See `FORMAT.md`.

pub mod reader;
pub mod writer;

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::builder::{MapBuilder, StringBuilder, UInt64Builder};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column holding the stream fingerprint.
pub const COL_STREAM_ID: &str = "stream_id";
/// Column holding the timestamp in nanoseconds.
pub const COL_TIMESTAMP: &str = "timestamp";
/// Column holding the log line.
pub const COL_LINE: &str = "line";
/// Column holding the structured metadata.
pub const COL_METADATA: &str = "structured_metadata";
/// Column holding the line metadata: structured metadata whose values are
/// byte ranges of the line (`start << 32 | end`), not copies.
pub const COL_LINE_METADATA: &str = "line_metadata";
/// Parquet key-value metadata key holding the block's stream index (JSON).
pub const KV_STREAMS: &str = "inferscope.streams";

/// Data type of the structured metadata column: `Map<Utf8, Utf8>`.
pub fn metadata_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

/// Data type of the line metadata column: `Map<Utf8, UInt64>`.
pub fn line_metadata_type() -> DataType {
    MapBuilder::new(None, StringBuilder::new(), UInt64Builder::new())
        .finish()
        .data_type()
        .clone()
}

/// Number of columns of a block without the line metadata column (one
/// written before it existed, or whose rows have no line metadata).
pub const COLUMNS_WITHOUT_LINE_METADATA: usize = 4;

/// The Arrow schema of a block, with or without the line metadata column
/// (its last).
pub fn schema(line_metadata: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(COL_STREAM_ID, DataType::UInt64, false),
        Field::new(
            COL_TIMESTAMP,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new(COL_LINE, DataType::Utf8, false),
        Field::new(COL_METADATA, metadata_type(), false),
    ];
    if line_metadata {
        fields.push(Field::new(COL_LINE_METADATA, line_metadata_type(), false));
    }
    Arc::new(Schema::new(fields))
}
