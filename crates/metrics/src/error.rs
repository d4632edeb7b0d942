//! The metric store's error type: I/O failures with the path and operation, and
//! corrupt snapshot or WAL contents with where they were found.

use std::io;
use std::path::PathBuf;

/// Why a metric store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A filesystem operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was being done (`open wal`, `fsync snapshot`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The snapshot exists but cannot be read back: it is never served.
    #[error("corrupt metric snapshot {path}: {reason}")]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A WAL record before the last one is damaged (a damaged *last* record is a
    /// torn write from a crash and is skipped instead).
    #[error("corrupt metric wal {path} at offset {offset}: {reason}")]
    CorruptWal {
        /// The WAL file.
        path: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

impl MetricsError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        MetricsError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
