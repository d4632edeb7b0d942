//! The HTTP API.
pub mod params;
