//! WAL, in-memory head, Parquet blocks, label index, compaction and retention
//! over `object_store`.
//!
//! [`Store`] is the entry point: [`Store::append`] writes a push to the WAL and
//! the head, [`Store::scan`] turns a query into independent [`ScanTask`]s,
//! [`Store::maintain`] flushes, compacts, applies delete requests and
//! retention; [`Store::add_delete`] hides entries from every scan at once. The bytes on
//! disk are described in `FORMAT.md`.

pub mod block;
pub mod compaction;
pub mod deletes;
pub mod error;
pub mod head;
pub mod ids;
pub mod manifest;
pub mod retention;
pub mod scan;
pub mod segments;
pub mod store;
mod versioned;
pub mod wal;

pub use deletes::{
    CancelOutcome, DeleteCompiler, DeleteConfig, DeleteMetrics, DeleteRequest, DeleteSelector,
    DeleteStatus,
};
pub use error::StorageError;
pub use ids::{IdLookupStats, IdQuery};
pub use scan::{
    EntryRef, LineFilter, MetaValue, MetadataIter, MetadataRef, ScanRequest, ScanStats, ScanTask,
};
pub use segments::Segment;
pub use store::{AppendStats, Store, StoreConfig, StoreMetrics};
pub use wal::WalSync;
