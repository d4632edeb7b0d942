//! Verifies and decodes blocks fetched into memory.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{Array, MapArray, StringArray};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::metadata::PageIndexPolicy;

use crate::error::StorageError;
use crate::scan::MetadataRef;

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
}

fn corrupt(key: &str, reason: impl Into<String>) -> StorageError {
    StorageError::BlockCorrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
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
        if meta.schema().fields().len() != 4 {
            return Err(corrupt(key, "unexpected schema"));
        }
        Ok(LoadedBlock {
            key: key.to_string(),
            data,
            meta,
        })
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
        let columns: &[usize] = if with_metadata { &[1, 2, 3] } else { &[1, 2] };
        let columns = columns.iter().copied();
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
            let meta = match batch.columns().get(2) {
                None => None,
                Some(col) => {
                    let map = col
                        .as_any()
                        .downcast_ref::<MapArray>()
                        .ok_or_else(|| corrupt(&self.key, "unexpected metadata type"))?;
                    let (Some(keys), Some(values)) = (
                        map.keys().as_any().downcast_ref::<StringArray>(),
                        map.values().as_any().downcast_ref::<StringArray>(),
                    ) else {
                        return Err(corrupt(&self.key, "unexpected metadata types"));
                    };
                    Some((keys, values, map.value_offsets()))
                }
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
                let m = match meta {
                    Some((keys, values, offsets)) => MetadataRef::Arrow {
                        keys,
                        values,
                        range: offsets[row] as usize..offsets[row + 1] as usize,
                    },
                    None => MetadataRef::Pairs(&[]),
                };
                f(range_idx, ts_values[row], lines.value(row), m);
            }
        }
        Ok(())
    }
}
