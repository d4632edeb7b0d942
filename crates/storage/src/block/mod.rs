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
/// Column holding each row's `detected_level` as a code
/// ([`inferscope_model::Level::code`]; 0 for none).
pub const COL_LEVEL: &str = "detected_level";
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

/// The columns a block has beyond the four every block has (`stream_id`,
/// `timestamp`, `line`, `structured_metadata`): each only when some row
/// needs it, so a block of the raw push path, or one written before they
/// existed, has none and reads the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionalColumns {
    /// The `line_metadata` column.
    pub line_metadata: bool,
    /// The `detected_level` column.
    pub levels: bool,
}

impl OptionalColumns {
    /// Both columns.
    pub const ALL: OptionalColumns = OptionalColumns {
        line_metadata: true,
        levels: true,
    };

    /// The columns either `self` or `other` has.
    pub fn union(self, other: OptionalColumns) -> OptionalColumns {
        OptionalColumns {
            line_metadata: self.line_metadata || other.line_metadata,
            levels: self.levels || other.levels,
        }
    }
}

/// The Arrow schema of a block: the four columns every block has, then the
/// optional ones it has (in the order `line_metadata`, `detected_level`).
pub fn schema(columns: OptionalColumns) -> SchemaRef {
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
    if columns.line_metadata {
        fields.push(Field::new(COL_LINE_METADATA, line_metadata_type(), false));
    }
    if columns.levels {
        fields.push(Field::new(COL_LEVEL, DataType::UInt8, false));
    }
    Arc::new(Schema::new(fields))
}
