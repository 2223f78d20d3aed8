//! Chat history storage. (Interface fixed; the implementation is being written.)

use std::path::PathBuf;

use serde::Deserialize;

/// Where history lives.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file.
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/iolite.sqlite3"),
        }
    }
}
