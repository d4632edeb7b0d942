//! Verifies and decodes blocks fetched into memory.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{Array, ArrayRef, MapArray, StringArray, UInt8Array, UInt64Array};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::metadata::PageIndexPolicy;

use inferscope_model::Level;

use super::{
    COL_LEVEL, COL_LINE, COL_LINE_METADATA, COL_METADATA, COL_STREAM_ID, COL_TIMESTAMP,
    OptionalColumns,
};
use crate::error::StorageError;
use crate::scan::{LineRefs, MetadataRef};

/// Rows decoded per Arrow batch when scanning.
const READ_BATCH_ROWS: usize = 8 * 1024;

/// A block whose checksum has been verified and whose footer is parsed.
#[derive(Debug, Clone)]
pub struct LoadedBlock {
    /// Object key, for errors.
    pub key: String,
    /// The whole file.
    pub data: Bytes,
    /// Parsed footer and offset index.
    pub meta: ArrowReaderMetadata,
    /// The optional columns the file has.
    columns: OptionalColumns,
}

fn corrupt(key: &str, reason: impl Into<String>) -> StorageError {
    StorageError::BlockCorrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The keys, values and per-row offsets of a `Map<Utf8, V>` column.
fn map_parts<'c, V: 'static>(
    key: &str,
    col: &'c ArrayRef,
    what: &str,
) -> Result<(&'c StringArray, &'c V, &'c [i32]), StorageError> {
    let map = col
        .as_any()
        .downcast_ref::<MapArray>()
        .ok_or_else(|| corrupt(key, format!("unexpected {what} type")))?;
    let (Some(keys), Some(values)) = (
        map.keys().as_any().downcast_ref::<StringArray>(),
        map.values().as_any().downcast_ref::<V>(),
    ) else {
        return Err(corrupt(key, format!("unexpected {what} types")));
    };
    Ok((keys, values, map.value_offsets()))
}

impl LoadedBlock {
    /// Checks `data` against the manifest's size and CRC-32 and parses the footer.
    pub fn load(
        key: &str,
        data: Bytes,
        expected_size: u64,
        expected_crc: u32,
    ) -> Result<Self, StorageError> {
        if data.len() as u64 != expected_size {
            return Err(corrupt(
                key,
                format!("size {} but manifest says {expected_size}", data.len()),
            ));
        }
        let crc = crc32fast::hash(&data);
        if crc != expected_crc {
            return Err(corrupt(
                key,
                format!("crc32 {crc:08x} but manifest says {expected_crc:08x}"),
            ));
        }
        let opts = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&data, opts)
            .map_err(|e| corrupt(key, format!("bad parquet footer: {e}")))?;
        let names: Vec<&str> = meta
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let columns = OptionalColumns {
            line_metadata: names.contains(&COL_LINE_METADATA),
            levels: names.contains(&COL_LEVEL),
        };
        // The columns' types are checked as they are read.
        let expected = [COL_STREAM_ID, COL_TIMESTAMP, COL_LINE, COL_METADATA]
            .into_iter()
            .chain(columns.line_metadata.then_some(COL_LINE_METADATA))
            .chain(columns.levels.then_some(COL_LEVEL));
        if !names.iter().copied().eq(expected) {
            return Err(corrupt(
                key,
                format!("unexpected schema: columns {names:?}"),
            ));
        }
        Ok(LoadedBlock {
            key: key.to_string(),
            data,
            meta,
            columns,
        })
    }

    /// The optional columns the block has (blocks written before they
    /// existed, or whose rows needed none, have the four required ones).
    pub fn columns(&self) -> OptionalColumns {
        self.columns
    }

    /// Number of rows in the file.
    pub fn rows(&self) -> usize {
        self.meta.metadata().file_metadata().num_rows().max(0) as usize
    }

    /// Decodes the rows in `ranges` (sorted, disjoint) and calls
    /// `f(range index, timestamp, line, metadata)` for each, in row order.
    pub fn read_ranges(
        &self,
        ranges: &[Range<usize>],
        with_metadata: bool,
        mut f: impl FnMut(usize, i64, &str, MetadataRef<'_>),
    ) -> Result<(), StorageError> {
        let total = self.rows();
        let mut prev_end = 0;
        for r in ranges {
            if r.start < prev_end || r.end > total || r.start > r.end {
                return Err(corrupt(
                    &self.key,
                    format!("row range {r:?} outside the file's {total} rows"),
                ));
            }
            prev_end = r.end;
        }
        let wanted: usize = ranges.iter().map(|r| r.len()).sum();
        if wanted == 0 {
            return Ok(());
        }
        let perr = |e: parquet::errors::ParquetError| StorageError::Parquet {
            key: self.key.clone(),
            source: e,
        };
        // Timestamps and lines, then the metadata columns the file has (in
        // schema order, as the batches hold them).
        let metadata_columns = match with_metadata {
            false => 0,
            true => 1 + usize::from(self.columns.line_metadata) + usize::from(self.columns.levels),
        };
        let columns = 1..3 + metadata_columns;
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.data.clone(),
            self.meta.clone(),
        )
        .with_batch_size(READ_BATCH_ROWS)
        .with_projection(ProjectionMask::roots(self.meta.parquet_schema(), columns));
        if wanted < total {
            builder = builder.with_row_selection(RowSelection::from_consecutive_ranges(
                ranges.iter().cloned(),
                total,
            ));
        }
        let reader = builder.build().map_err(perr)?;
        let mut range_idx = 0;
        let mut remaining = ranges.first().map_or(0, |r| r.len());
        for batch in reader {
            let batch = batch?;
            let (Some(ts), Some(lines)) = (
                batch
                    .column(0)
                    .as_primitive_opt::<TimestampNanosecondType>(),
                batch.column(1).as_any().downcast_ref::<StringArray>(),
            ) else {
                return Err(corrupt(&self.key, "unexpected column types"));
            };
            let meta = batch
                .column_by_name(COL_METADATA)
                .map(|col| map_parts::<StringArray>(&self.key, col, "metadata"))
                .transpose()?;
            let line_meta = batch
                .column_by_name(COL_LINE_METADATA)
                .map(|col| map_parts::<UInt64Array>(&self.key, col, "line metadata"))
                .transpose()?;
            let levels = match batch.column_by_name(COL_LEVEL) {
                Some(col) => {
                    let codes = col
                        .as_any()
                        .downcast_ref::<UInt8Array>()
                        .ok_or_else(|| corrupt(&self.key, "unexpected level type"))?
                        .values();
                    if let Some(code) = codes
                        .iter()
                        .find(|&&c| c != 0 && Level::from_code(c).is_none())
                    {
                        return Err(corrupt(&self.key, format!("unknown level code {code}")));
                    }
                    Some(codes)
                }
                None => None,
            };
            let ts_values = ts.values();
            for row in 0..batch.num_rows() {
                while remaining == 0 {
                    range_idx += 1;
                    match ranges.get(range_idx) {
                        Some(r) => remaining = r.len(),
                        None => return Err(corrupt(&self.key, "more rows than selected")),
                    }
                }
                remaining -= 1;
                let line = lines.value(row);
                let m = match meta {
                    Some((keys, values, offsets)) => MetadataRef::Arrow {
                        keys,
                        values,
                        range: offsets[row] as usize..offsets[row + 1] as usize,
                        line_refs: line_meta.map(|(keys, ranges, offsets)| LineRefs {
                            keys,
                            ranges,
                            range: offsets[row] as usize..offsets[row + 1] as usize,
                        }),
                        level: levels.and_then(|codes| Level::from_code(codes[row])),
                        line,
                    },
                    None => MetadataRef::Pairs(&[]),
                };
                f(range_idx, ts_values[row], line, m);
            }
        }
        Ok(())
    }
}
