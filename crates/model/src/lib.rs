//! The shared vocabulary of Inferscope.
//!
//! Every other crate speaks in these types: a stream is identified by its
//! [`Labels`], selected by [`LabelMatcher`]s, and holds [`LogEntry`]s inside a
//! [`TimeRange`]. Nothing here does I/O or async work, so the crate compiles in
//! seconds and can be used from parsers, storage and the server alike.
#![warn(missing_docs)]

mod entry;
pub mod hash;
mod intern;
mod labels;
mod level;
mod matcher;
mod time;

pub use entry::{LineMetadata, LogEntry, PushStream};
pub use intern::intern;
pub use labels::{Labels, LabelsParseError, is_valid_label_name};
pub use level::{DETECTED_LEVEL, Level, level_code};
pub use matcher::{LabelMatcher, MatchOp, MatcherError, matches_all};
pub use time::{Direction, TimeRange};

/// The tenant used when `auth_enabled: false`, as in Loki.
pub const DEFAULT_TENANT: &str = "fake";
