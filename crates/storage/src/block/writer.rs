//! Encodes sorted streams into one Parquet block in memory.

use std::sync::Arc;

use arrow_array::builder::{MapBuilder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use inferscope_model::Labels;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{COL_LINE, COL_STREAM_ID, COL_TIMESTAMP, KV_STREAMS, schema};
use crate::error::StorageError;
use crate::manifest::StreamMeta;

/// zstd level used for blocks.
pub const ZSTD_LEVEL: i32 = 3;
/// Rows buffered before an Arrow batch is handed to the Parquet writer.
const BATCH_ROWS: usize = 32 * 1024;
/// Target uncompressed size of a data page.
const PAGE_BYTES: usize = 1 << 20;
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// A finished block image and its index.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The Parquet file bytes.
    pub data: Vec<u8>,
    /// Streams in row order with their row ranges.
    pub streams: Vec<StreamMeta>,
    /// Total rows.
    pub rows: u64,
    /// Sum of line lengths.
    pub line_bytes: u64,
    /// Smallest timestamp.
    pub min_ts: i64,
    /// Largest timestamp.
    pub max_ts: i64,
}

/// Builds a block row by row. Call [`BlockBuilder::begin_stream`] for each
/// stream (in fingerprint order), then [`BlockBuilder::push`] its entries in
/// timestamp order.
pub struct BlockBuilder {
    writer: ArrowWriter<Vec<u8>>,
    key: String,
    stream_ids: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    lines: StringBuilder,
    meta: MapBuilder<StringBuilder, StringBuilder>,
    buffered: usize,
    streams: Vec<StreamMeta>,
    current_fp: u64,
    rows: u64,
    line_bytes: u64,
}

/// Writer properties used for blocks.
pub fn writer_properties() -> WriterProperties {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from(COL_STREAM_ID), true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from(COL_TIMESTAMP), EnabledStatistics::Page)
        .set_column_statistics_enabled(ColumnPath::from(COL_LINE), EnabledStatistics::None)
        .set_data_page_size_limit(PAGE_BYTES)
        .set_data_page_row_count_limit(64 * 1024)
        .set_write_batch_size(8 * 1024)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

impl BlockBuilder {
    /// A new builder; `key` names the block in errors.
    pub fn new(key: &str) -> Result<Self, StorageError> {
        let writer = ArrowWriter::try_new(Vec::new(), schema(), Some(writer_properties()))
            .map_err(|source| StorageError::Parquet {
                key: key.to_string(),
                source,
            })?;
        Ok(BlockBuilder {
            writer,
            key: key.to_string(),
            stream_ids: UInt64Builder::with_capacity(BATCH_ROWS),
            ts: TimestampNanosecondBuilder::with_capacity(BATCH_ROWS),
            lines: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 256),
            meta: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            buffered: 0,
            streams: Vec::new(),
            current_fp: 0,
            rows: 0,
            line_bytes: 0,
        })
    }

    fn perr(&self, source: parquet::errors::ParquetError) -> StorageError {
        StorageError::Parquet {
            key: self.key.clone(),
            source,
        }
    }

    /// Starts a new stream.
    pub fn begin_stream(&mut self, labels: &Labels) {
        self.current_fp = labels.fingerprint();
        self.streams.push(StreamMeta {
            fingerprint: self.current_fp,
            labels: labels.as_pairs().to_vec(),
            row_start: self.rows,
            row_count: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        });
    }

    /// Appends one entry to the current stream.
    pub fn push<'a>(
        &mut self,
        ts: i64,
        line: &str,
        meta: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), StorageError> {
        let Some(s) = self.streams.last_mut() else {
            return Err(StorageError::InvalidInput(
                "push before begin_stream".into(),
            ));
        };
        s.row_count += 1;
        s.min_ts = s.min_ts.min(ts);
        s.max_ts = s.max_ts.max(ts);
        self.stream_ids.append_value(self.current_fp);
        self.ts.append_value(ts);
        self.lines.append_value(line);
        for (k, v) in meta {
            self.meta.keys().append_value(k);
            self.meta.values().append_value(v);
        }
        self.meta.append(true)?;
        self.rows += 1;
        self.line_bytes += line.len() as u64;
        self.buffered += 1;
        if self.buffered >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), StorageError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.stream_ids.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.lines.finish()),
            Arc::new(self.meta.finish()),
        ];
        let batch = RecordBatch::try_new(schema(), cols)?;
        self.buffered = 0;
        self.writer.write(&batch).map_err(|e| self.perr(e))
    }

    /// Finishes the file. Streams that received no entry are dropped.
    pub fn finish(mut self) -> Result<BuiltBlock, StorageError> {
        self.write_batch()?;
        self.streams.retain(|s| s.row_count > 0);
        let index = serde_json::to_string(&self.streams).map_err(|e| StorageError::Manifest {
            key: self.key.clone(),
            reason: e.to_string(),
        })?;
        self.writer
            .append_key_value_metadata(KeyValue::new(KV_STREAMS.to_string(), index));
        let key = self.key.clone();
        let data = self
            .writer
            .into_inner()
            .map_err(|source| StorageError::Parquet {
                key: key.clone(),
                source,
            })?;
        let min_ts = self.streams.iter().map(|s| s.min_ts).min().unwrap_or(0);
        let max_ts = self.streams.iter().map(|s| s.max_ts).max().unwrap_or(0);
        Ok(BuiltBlock {
            data,
            streams: self.streams,
            rows: self.rows,
            line_bytes: self.line_bytes,
            min_ts,
            max_ts,
        })
    }
}
