//! The error type of the storage crate.

use std::path::PathBuf;

/// Everything that can go wrong in the store. Variants carry the path,
/// object key or offset involved so an operator can find the bad bytes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A local file operation failed (WAL segments, data directory).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An object store operation failed.
    #[error("object store error on {key}: {source}")]
    ObjectStore {
        /// The object key involved.
        key: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// A WAL record could not be decoded.
    #[error("corrupt WAL record in {path} at offset {offset}: {reason}")]
    WalCorrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A block failed its checksum or could not be decoded.
    #[error("corrupt block {key}: {reason}")]
    BlockCorrupt {
        /// The object key of the block.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet error on {key}: {source}")]
    Parquet {
        /// The object key of the block.
        key: String,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow array construction failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A manifest could not be encoded or decoded.
    #[error("manifest error on {key}: {reason}")]
    Manifest {
        /// The object key of the manifest.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A persisted delete request could not be compiled.
    #[error("delete request {request_id} of tenant {tenant}: {reason}")]
    DeleteRequest {
        /// The tenant.
        tenant: String,
        /// The request.
        request_id: String,
        /// What was wrong.
        reason: String,
    },
    /// A request was rejected before touching storage.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn object(key: impl ToString, source: object_store::Error) -> Self {
        StorageError::ObjectStore {
            key: key.to_string(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for StorageError {
    fn from(e: tokio::task::JoinError) -> Self {
        StorageError::Task(e.to_string())
    }
}
