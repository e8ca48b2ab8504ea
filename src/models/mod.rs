//! Getting a model: finding the ones already on disk, the catalog of known models, and
//! downloading into the shared Hugging Face cache.
//!
//! Everything here is cheap to call from a background thread and never loads weights:
//! discovery reads JSON configs and safetensors headers only, and downloads stream to disk.
//!
//! - [`discovery`]: list model folders (project `weights/`, the data dir, user folders, the HF cache).
//! - [`inspect`]: what one diffusers folder is (family, precision, completeness).
//! - [`catalog`]: the known models and their recommended settings, from `assets/models.toml`.
//! - [`hf_cache`]: the Hugging Face cache layout, shared with Python tools.
//! - [`download`]: fetching a repo revision into that cache, with progress, cancel and resume.

pub mod catalog;
pub mod discovery;
pub mod download;
pub mod hf_cache;
mod http;
pub mod inspect;
pub mod safetensors_header;

pub use catalog::{Catalog, CatalogEntry, RecommendedSettings};
pub use discovery::{DiscoveryRoots, LocalModel, ModelSource, ModelStatus, discover};
pub use download::{
    CancelFlag, DownloadEvent, DownloadHandle, DownloadRequest, FileSelection, HubConfig, Progress, download,
    spawn_download,
};
pub use inspect::{BaseArch, Family, Precision};

use std::fmt;

/// A number of bytes that prints the way people read sizes ("2.6 GB"), decimal units like the
/// Hub's own file listings so the numbers match what users see there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1000.0 && unit < UNITS.len() - 1 {
            value /= 1000.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else if value >= 100.0 {
            write!(f, "{value:.0} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn byte_sizes_print_like_the_hub() {
        assert_eq!(ByteSize(512).to_string(), "512 B");
        assert_eq!(ByteSize(2_580_000_000).to_string(), "2.6 GB");
        assert_eq!(ByteSize(167_335_342).to_string(), "167 MB");
        assert_eq!(ByteSize(1_500).to_string(), "1.5 kB");
    }
}
