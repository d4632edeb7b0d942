//! Per-tenant manifests: the JSON list of a tenant's blocks.
//!
//! Manifests are versioned objects `tenants/<tenant>/manifest/<version>.json`
//! (version zero-padded to 20 digits). An update writes version N+1 as a new
//! object (a single PUT, atomic on every object store), then deletes
//! versions older than N-1. Loading tries the newest version first and falls
//! back to older ones when an object is unreadable or half written.

use std::sync::Arc;

use inferscope_model::Labels;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::versioned;

/// Current manifest format.
pub const MANIFEST_FORMAT: u32 = 1;

/// One stream inside a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    /// `Labels::fingerprint` of the stream.
    pub fingerprint: u64,
    /// The stream's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// First row of the stream in the block.
    pub row_start: u64,
    /// Number of rows of the stream.
    pub row_count: u64,
    /// Smallest timestamp of the stream in the block.
    pub min_ts: i64,
    /// Largest timestamp of the stream in the block.
    pub max_ts: i64,
    /// Sum of the stream's line lengths in the block (`None` in blocks
    /// written before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_bytes: Option<u64>,
}

/// One block of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Unique block id.
    pub id: String,
    /// Object key of the Parquet file.
    pub path: String,
    /// Smallest timestamp in the block.
    pub min_ts: i64,
    /// Largest timestamp in the block.
    pub max_ts: i64,
    /// File size in bytes.
    pub size: u64,
    /// CRC-32 (IEEE) of the whole file.
    pub crc32: u32,
    /// Number of rows.
    pub rows: u64,
    /// Sum of line lengths (uncompressed).
    pub line_bytes: u64,
    /// Structured metadata pairs in the block (`None`: unknown). When zero,
    /// scans do not decode the metadata column.
    #[serde(default)]
    pub meta_pairs: Option<u64>,
    /// 0 for flushed blocks, +1 per compaction.
    pub level: u32,
    /// The block's id sidecar (`None`: written before the id index
    /// existed, or no entry carries an id; lookups then scan the block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdsMeta>,
    /// Streams in row order.
    pub streams: Vec<StreamMeta>,
}

/// The manifest record of a block's id sidecar (see `crate::ids`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdsMeta {
    /// Object key of the sidecar.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Number of (hash, row) pairs.
    pub entries: u64,
}

/// A tenant's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The tenant (object keys are encoded, so it is stored here verbatim).
    pub tenant: String,
    /// Monotonic version of this manifest.
    pub version: u64,
    /// WAL segments with an id up to this one are fully in this tenant's
    /// blocks: replay skips this tenant's records from them.
    #[serde(default)]
    pub wal_through: u64,
    /// The blocks.
    pub blocks: Vec<BlockMeta>,
}

/// A block with its label sets parsed, as held in memory.
#[derive(Debug)]
pub struct BlockEntry {
    /// The manifest record.
    pub meta: BlockMeta,
    /// `Labels` for each of `meta.streams`.
    pub labels: Vec<Labels>,
    /// The id sidecar once loaded (lookups keep it in memory).
    pub ids_cache: crate::ids::SidecarCache,
}

impl BlockEntry {
    /// Parses the label sets of a block record.
    pub fn new(meta: BlockMeta) -> Arc<Self> {
        let labels = meta
            .streams
            .iter()
            .map(|s| Labels::from_pairs(s.labels.iter().cloned()))
            .collect();
        Arc::new(BlockEntry {
            meta,
            labels,
            ids_cache: Default::default(),
        })
    }
}

/// Object key prefix of a tenant.
pub fn tenant_prefix(tenant: &str) -> Path {
    Path::from_iter(["tenants", tenant])
}

/// Object key of a block.
pub fn block_path(tenant: &str, id: &str) -> Path {
    Path::from_iter(["tenants", tenant, "blocks", &format!("{id}.parquet")])
}

/// Lists the tenant directories present in the store, returning each
/// tenant's newest readable manifest.
pub async fn load_all(store: &dyn ObjectStore) -> Result<Vec<Manifest>, StorageError> {
    let loaded = versioned::load_newest(store, "manifest", |m: &Manifest, version| {
        m.version == version && m.format == MANIFEST_FORMAT
    })
    .await?;
    Ok(loaded.into_iter().map(|(_, m)| m).collect())
}

/// Writes `m` as a new version and prunes old versions.
pub async fn store_manifest(store: &dyn ObjectStore, m: &Manifest) -> Result<(), StorageError> {
    versioned::store_version(store, &m.tenant, "manifest", m.version, m).await
}
