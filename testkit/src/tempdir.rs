//! A scratch folder under the system temp dir, removed on drop.
//!
//! A thin wrapper over [`tempfile::TempDir`]: the folder is created atomically under a
//! random name (no collision, nothing planted there beforehand) and is private to its
//! owner (mode 0700); the label only makes leftovers readable (`qmpc-LABEL-XXXXXX`).

use std::path::Path;

#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new, empty folder named after `label`.
    pub fn new(label: &str) -> std::io::Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("qmpc-{label}-"))
            .tempdir()
            .map(TempDir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}
