//! Encodes sorted streams into one Parquet block in memory.

use std::sync::Arc;

use arrow_array::builder::{
    MapBuilder, StringBuilder, TimestampNanosecondBuilder, UInt8Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use inferscope_model::{DETECTED_LEVEL, Labels};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{
    COL_LEVEL, COL_LINE, COL_LINE_METADATA, COL_METADATA, COL_STREAM_ID, COL_TIMESTAMP, KV_STREAMS,
    OptionalColumns, schema,
};
use crate::error::StorageError;
use crate::manifest::StreamMeta;
use crate::scan::MetaValue;

/// zstd level used for blocks.
pub const ZSTD_LEVEL: i32 = 3;
/// zstd level of the structured metadata columns: their values are mostly
/// random ids, which level 3 compresses no better than level 1, at half its
/// speed (about 90 MB/s against 190 MB/s for hex trace ids and UUIDs); the
/// names column is dictionary-encoded, so little of it reaches zstd.
pub const METADATA_ZSTD_LEVEL: i32 = 1;
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
    /// Structured metadata pairs over all rows.
    pub meta_pairs: u64,
    /// Smallest timestamp.
    pub min_ts: i64,
    /// Largest timestamp.
    pub max_ts: i64,
    /// The id index of the rows (`crate::ids`), written as the sidecar.
    pub ids: crate::ids::BlockIds,
}

/// Builds a block row by row. Call [`BlockBuilder::begin_stream`] for each
/// stream (in fingerprint order), then [`BlockBuilder::push`] its entries in
/// timestamp order.
pub struct BlockBuilder {
    writer: ArrowWriter<Vec<u8>>,
    /// The block's columns (with or without line metadata).
    schema: SchemaRef,
    key: String,
    stream_ids: UInt64Builder,
    ts: TimestampNanosecondBuilder,
    lines: StringBuilder,
    meta: MapBuilder<StringBuilder, StringBuilder>,
    /// The line metadata column; `None` for a block without it.
    line_meta: Option<MapBuilder<StringBuilder, UInt64Builder>>,
    /// The level column; `None` for a block without it.
    levels: Option<UInt8Builder>,
    buffered: usize,
    streams: Vec<StreamMeta>,
    current_fp: u64,
    rows: u64,
    line_bytes: u64,
    meta_pairs: u64,
    ids: Vec<(u64, u32)>,
}

/// Writer properties used for blocks.
pub fn writer_properties() -> WriterProperties {
    properties(ZSTD_LEVEL, PAGE_BYTES)
}

/// The Parquet leaf columns of the structured metadata map (names, values).
pub fn metadata_columns() -> [ColumnPath; 2] {
    map_columns(COL_METADATA)
}

/// The Parquet leaf columns (keys, values) of the map column `column`.
fn map_columns(column: &str) -> [ColumnPath; 2] {
    ["key", "value"].map(|leaf| {
        ColumnPath::new(vec![
            column.to_string(),
            "entries".to_string(),
            leaf.to_string(),
        ])
    })
}

fn properties(zstd_level: i32, page_bytes: usize) -> WriterProperties {
    let level = ZstdLevel::try_new(zstd_level).unwrap_or_default();
    let metadata_level = ZstdLevel::try_new(METADATA_ZSTD_LEVEL).unwrap_or_default();
    let [metadata_keys, metadata_values] = metadata_columns();
    let [line_metadata_keys, line_metadata_ranges] = map_columns(COL_LINE_METADATA);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        // No reader uses min/max statistics of metadata (the id sidecar serves
        // lookups); computing them compared every name and value written.
        .set_column_statistics_enabled(metadata_keys.clone(), EnabledStatistics::None)
        .set_column_statistics_enabled(metadata_values.clone(), EnabledStatistics::None)
        .set_column_compression(metadata_keys.clone(), Compression::ZSTD(metadata_level))
        .set_column_compression(metadata_values, Compression::ZSTD(metadata_level))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from(COL_STREAM_ID), true)
        .set_column_dictionary_enabled(metadata_keys, true)
        .set_column_statistics_enabled(line_metadata_keys.clone(), EnabledStatistics::None)
        .set_column_statistics_enabled(line_metadata_ranges.clone(), EnabledStatistics::None)
        .set_column_compression(
            line_metadata_keys.clone(),
            Compression::ZSTD(metadata_level),
        )
        .set_column_compression(line_metadata_ranges, Compression::ZSTD(metadata_level))
        .set_column_dictionary_enabled(line_metadata_keys, true)
        // One small code per row, mostly the same: plain, then zstd.
        .set_column_statistics_enabled(ColumnPath::from(COL_LEVEL), EnabledStatistics::None)
        .set_column_compression(
            ColumnPath::from(COL_LEVEL),
            Compression::ZSTD(metadata_level),
        )
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from(COL_TIMESTAMP), EnabledStatistics::Page)
        .set_column_encoding(
            ColumnPath::from(COL_TIMESTAMP),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_statistics_enabled(ColumnPath::from(COL_LINE), EnabledStatistics::None)
        .set_data_page_size_limit(page_bytes)
        .set_data_page_row_count_limit(64 * 1024)
        .set_write_batch_size(8 * 1024)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
        ]))
        .build()
}

impl BlockBuilder {
    /// A new builder of a block with the optional `columns`; `key` names
    /// the block in errors. Leaving out a column the rows do not need spares
    /// an empty value per row; a line value or level pushed to a block
    /// without its column is stored as text.
    pub fn new(key: &str, columns: OptionalColumns) -> Result<Self, StorageError> {
        Self::with_properties(key, writer_properties(), columns)
    }

    fn with_properties(
        key: &str,
        props: WriterProperties,
        columns: OptionalColumns,
    ) -> Result<Self, StorageError> {
        let schema = schema(columns);
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|source| {
                StorageError::Parquet {
                    key: key.to_string(),
                    source,
                }
            })?;
        Ok(BlockBuilder {
            writer,
            schema,
            key: key.to_string(),
            stream_ids: UInt64Builder::with_capacity(BATCH_ROWS),
            ts: TimestampNanosecondBuilder::with_capacity(BATCH_ROWS),
            lines: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 256),
            meta: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            line_meta: columns
                .line_metadata
                .then(|| MapBuilder::new(None, StringBuilder::new(), UInt64Builder::new())),
            levels: columns
                .levels
                .then(|| UInt8Builder::with_capacity(BATCH_ROWS)),
            buffered: 0,
            streams: Vec::new(),
            current_fp: 0,
            rows: 0,
            line_bytes: 0,
            meta_pairs: 0,
            ids: Vec::new(),
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
            line_bytes: Some(0),
        });
    }

    /// Appends one entry to the current stream. Metadata values given as
    /// ranges of the line ([`MetaValue::Line`]) are stored as ranges, and a
    /// level ([`MetaValue::Level`]) as a code, when the block has their
    /// column (as text otherwise, and for a second level). Ranges are
    /// trusted: they were checked against their line where they entered the
    /// store (ingest, WAL replay, a CRC-checked block); one that does not fit
    /// is written as an empty value.
    pub fn push<'a, V: Into<MetaValue<'a>>>(
        &mut self,
        ts: i64,
        line: &'a str,
        meta: impl Iterator<Item = (&'a str, V)>,
    ) -> Result<(), StorageError> {
        let Some(s) = self.streams.last_mut() else {
            return Err(StorageError::InvalidInput(
                "push before begin_stream".into(),
            ));
        };
        s.row_count += 1;
        s.line_bytes = s.line_bytes.map(|b| b + line.len() as u64);
        s.min_ts = s.min_ts.min(ts);
        s.max_ts = s.max_ts.max(ts);
        self.stream_ids.append_value(self.current_fp);
        self.ts.append_value(ts);
        self.lines.append_value(line);
        // As the head does: metadata ids, then the line's other ids (ingest
        // keeps a JSON line's ids as metadata; each is hashed once).
        let (ids, row) = (&mut self.ids, self.rows);
        let mut entry_ids = crate::ids::EntryIds::default();
        let mut add_id = |id: &str| crate::ids::push_id(ids, row, id);
        let mut level = 0;
        for (k, v) in meta {
            let v = v.into();
            self.meta_pairs += 1;
            match (v, self.line_meta.as_mut(), self.levels.is_some()) {
                (MetaValue::Level(l), _, true) if level == 0 => {
                    level = l.code();
                    continue;
                }
                (MetaValue::Level(l), _, _) => {
                    // No level column (or a second level): a text pair.
                    self.meta.keys().append_value(DETECTED_LEVEL);
                    self.meta.values().append_value(l.as_str());
                    continue;
                }
                (MetaValue::Line { start, end }, Some(line_meta), _) => {
                    line_meta.keys().append_value(k);
                    line_meta
                        .values()
                        .append_value(u64::from(start) << 32 | u64::from(end));
                }
                _ => {
                    self.meta.keys().append_value(k);
                    self.meta.values().append_value(v.text(line));
                }
            }
            entry_ids.metadata(k, v.text(line), &mut add_id);
        }
        entry_ids.line(line, &mut add_id);
        self.meta.append(true)?;
        if let Some(line_meta) = self.line_meta.as_mut() {
            line_meta.append(true)?;
        }
        if let Some(levels) = self.levels.as_mut() {
            levels.append_value(level);
        }
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
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.stream_ids.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.lines.finish()),
            Arc::new(self.meta.finish()),
        ];
        if let Some(line_meta) = self.line_meta.as_mut() {
            cols.push(Arc::new(line_meta.finish()));
        }
        if let Some(levels) = self.levels.as_mut() {
            cols.push(Arc::new(levels.finish()));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
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
            meta_pairs: self.meta_pairs,
            min_ts,
            max_ts,
            ids: crate::ids::BlockIds::from_pairs(self.ids),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferscope_model::Level;

    fn json_line(i: u64, seed: &mut u64) -> String {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let r = *seed;
        let models = ["llama-3-70b", "mistral-7b-instruct", "qwen2-72b"];
        format!(
            r#"{{"timestamp":"2026-11-21T10:{:02}:{:02}.{:06}Z","level":"INFO","message":"request completed","trace_id":"{:016x}{:016x}","model":"{}","latency_ms":{},"status":200,"prompt_tokens":{},"route":"/v1/chat/completions"}}"#,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            (i % 1000) * 1000 + r % 1000,
            r,
            r.rotate_left(17) ^ i,
            models[(r >> 8) as usize % 3],
            20 + (r >> 20) % 3000,
            (r >> 32) % 4096,
        )
    }

    #[test]
    #[ignore = "prints compression ratios for tuning"]
    fn compression_experiment() {
        let mut seed = 42;
        let lines: Vec<String> = (0..100_000).map(|i| json_line(i, &mut seed)).collect();
        let raw: usize = lines.iter().map(|l| l.len()).sum();
        for (level, page) in [
            (3, 1 << 20),
            (3, 8 << 20),
            (6, 1 << 20),
            (9, 1 << 20),
            (12, 1 << 20),
        ] {
            let t = std::time::Instant::now();
            let mut b =
                BlockBuilder::with_properties("x", properties(level, page), OptionalColumns::ALL)
                    .expect("builder");
            for s in 0..4 {
                b.begin_stream(&Labels::from_pairs([("s", s.to_string())]));
                for (i, l) in lines.iter().enumerate().skip(s).step_by(4) {
                    b.push(i as i64 * 1_000_000, l, std::iter::empty::<(&str, &str)>())
                        .expect("push");
                }
            }
            let built = b.finish().expect("finish");
            eprintln!(
                "zstd {level} page {page}: {:.2}% in {:?}",
                100.0 * built.data.len() as f64 / raw as f64,
                t.elapsed()
            );
        }
    }

    /// The metadata columns named in the writer settings exist, and are the
    /// ones written at the metadata level.
    #[test]
    fn metadata_columns_use_their_own_zstd_level() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let mut b = BlockBuilder::new("x", OptionalColumns::ALL).expect("builder");
        b.begin_stream(&Labels::from_pairs([("a", "1")]));
        let meta = [
            ("detected_level", MetaValue::Level(Level::Warn)),
            ("trace_id", MetaValue::Text("4bf92f3577b34da6")),
            ("span_id", MetaValue::Line { start: 0, end: 5 }),
        ];
        b.push(5, "hello", meta.into_iter()).expect("push");
        let built = b.finish().expect("finish");
        let reader =
            SerializedFileReader::new(bytes::Bytes::from(built.data)).expect("parquet file");
        let group = reader.metadata().row_group(0);
        let [names, values] = metadata_columns();
        let [line_names, line_ranges] = map_columns(COL_LINE_METADATA);
        let levels = ColumnPath::from(COL_LEVEL);
        let mut seen = 0;
        for column in group.columns() {
            let path = column.column_path();
            let metadata = [&names, &values, &line_names, &line_ranges, &levels].contains(&path);
            seen += usize::from(metadata);
            let want = ZstdLevel::try_new(if metadata {
                METADATA_ZSTD_LEVEL
            } else {
                ZSTD_LEVEL
            })
            .expect("level");
            // The level is not stored in the file; the codec is, and the
            // properties must name each path.
            assert!(
                matches!(column.compression(), Compression::ZSTD(_)),
                "{path}"
            );
            assert_eq!(
                writer_properties().compression(path),
                Compression::ZSTD(want),
                "{path}"
            );
            // Names (a handful of distinct ones) are dictionary-encoded;
            // values (mostly unique ids) and level codes are not.
            if metadata {
                assert_eq!(
                    column.dictionary_page_offset().is_some(),
                    *path == names || *path == line_names,
                    "{path}"
                );
            }
        }
        assert_eq!(seen, 5, "the metadata leaf columns are in the file");
    }

    #[test]
    fn block_round_trips() {
        let mut b = BlockBuilder::new("x", OptionalColumns::ALL).expect("builder");
        b.begin_stream(&Labels::from_pairs([("a", "1")]));
        b.push(5, "hello", [("k", "v")].into_iter()).expect("push");
        b.push(7, "world", std::iter::empty::<(&str, &str)>())
            .expect("push");
        b.begin_stream(&Labels::from_pairs([("a", "2")]));
        b.push(1, "other", std::iter::empty::<(&str, &str)>())
            .expect("push");
        let in_line = [
            ("detected_level", MetaValue::Level(Level::Info)),
            ("trace_id", MetaValue::Line { start: 6, end: 9 }),
        ];
        b.push(3, "trace abc", in_line.into_iter()).expect("push");
        let built = b.finish().expect("finish");
        assert_eq!((built.rows, built.min_ts, built.max_ts), (4, 1, 7));
        assert_eq!(built.meta_pairs, 3);
        assert!(
            built
                .data
                .windows(COL_LEVEL.len())
                .any(|w| w == COL_LEVEL.as_bytes()),
            "the level column is in the file"
        );
        let crc = crc32fast::hash(&built.data);
        let size = built.data.len() as u64;
        let loaded =
            crate::block::reader::LoadedBlock::load("x", bytes::Bytes::from(built.data), size, crc)
                .expect("load");
        let mut got = Vec::new();
        loaded
            .read_ranges(&[0..1, 2..4], true, |idx, ts, line, meta| {
                got.push((idx, ts, line.to_string(), meta.to_vec()))
            })
            .expect("read");
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            got,
            vec![
                (
                    0,
                    5,
                    "hello".to_string(),
                    vec![("k".to_string(), "v".to_string())]
                ),
                (1, 1, "other".to_string(), vec![]),
                (
                    1,
                    3,
                    "trace abc".to_string(),
                    pairs(&[("detected_level", "info"), ("trace_id", "abc")])
                ),
            ]
        );
        // The range stays a range, and the level a level, when read back.
        loaded
            .read_ranges(std::slice::from_ref(&(3..4)), true, |_, _, _, meta| {
                let stored: Vec<_> = meta.iter_stored().collect();
                assert_eq!(stored, in_line);
            })
            .expect("read");
        let bad =
            crate::block::reader::LoadedBlock::load("x", bytes::Bytes::from_static(b"nope"), 4, 0);
        assert!(bad.is_err());
    }

    /// Without their columns, line values and levels are stored as text; the
    /// pairs read back the same with every set of columns (no optional one
    /// is a block of the raw push path, line metadata alone one of the
    /// previous release).
    #[test]
    fn line_values_and_levels_become_text_without_their_columns() {
        let in_line = [
            ("detected_level", MetaValue::Level(Level::Error)),
            ("trace_id", MetaValue::Line { start: 6, end: 9 }),
        ];
        for (line_metadata, levels) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let columns = OptionalColumns {
                line_metadata,
                levels,
            };
            let mut b = BlockBuilder::new("x", columns).expect("builder");
            b.begin_stream(&Labels::from_pairs([("a", "1")]));
            b.push(3, "trace abc", in_line.into_iter()).expect("push");
            let built = b.finish().expect("finish");
            let (size, crc) = (built.data.len() as u64, crc32fast::hash(&built.data));
            let data = bytes::Bytes::from(built.data);
            let loaded =
                crate::block::reader::LoadedBlock::load("x", data, size, crc).expect("load");
            assert_eq!(loaded.columns(), columns);
            let expected = [
                (
                    "detected_level",
                    match levels {
                        true => MetaValue::Level(Level::Error),
                        false => MetaValue::Text("error"),
                    },
                ),
                (
                    "trace_id",
                    match line_metadata {
                        true => MetaValue::Line { start: 6, end: 9 },
                        false => MetaValue::Text("abc"),
                    },
                ),
            ];
            loaded
                .read_ranges(std::slice::from_ref(&(0..1)), true, |_, _, _, meta| {
                    let stored: Vec<_> = meta.iter_stored().collect();
                    assert_eq!(stored, expected, "{columns:?}");
                })
                .expect("read");
        }
    }

    /// Blocks written before the line metadata column existed still read.
    #[test]
    fn blocks_without_line_metadata_still_read() {
        let old_schema = schema(OptionalColumns::default());
        let mut meta = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        meta.keys().append_value("trace_id");
        meta.values().append_value("abc");
        meta.append(true).expect("map row");
        let cols: Vec<ArrayRef> = vec![
            Arc::new(arrow_array::UInt64Array::from(vec![1u64])),
            Arc::new(arrow_array::TimestampNanosecondArray::from(vec![5i64])),
            Arc::new(arrow_array::StringArray::from(vec!["hello"])),
            Arc::new(meta.finish()),
        ];
        let batch = RecordBatch::try_new(old_schema.clone(), cols).expect("batch");
        let mut w = ArrowWriter::try_new(Vec::new(), old_schema, None).expect("writer");
        w.write(&batch).expect("write");
        let data = w.into_inner().expect("file");
        let (size, crc) = (data.len() as u64, crc32fast::hash(&data));
        let loaded =
            crate::block::reader::LoadedBlock::load("old", bytes::Bytes::from(data), size, crc)
                .expect("load");
        let mut got = Vec::new();
        loaded
            .read_ranges(std::slice::from_ref(&(0..1)), true, |_, ts, line, meta| {
                got.push((ts, line.to_string(), meta.to_vec()))
            })
            .expect("read");
        assert_eq!(
            got,
            [(
                5,
                "hello".to_string(),
                vec![("trace_id".to_string(), "abc".to_string())]
            )]
        );
    }
}
