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
//! - [`taesd`]: the tiny autoencoders installed for previews and Draft decodes, by latent space.

pub mod catalog;
pub mod discovery;
pub mod download;
pub mod hf_cache;
mod http;
pub mod inspect;
pub mod lora_family;
pub mod proxy;
pub mod safetensors_header;
pub mod taesd;

pub use catalog::{Catalog, CatalogEntry, RecommendedSettings};
pub use discovery::{
    DiscoveryRoots, EmbeddingInfo, LocalModel, LoraInfo, LoraKind, ModelSource, ModelStatus, describe_embedding,
    describe_file, describe_lora, discover, discover_embeddings, discover_loras, discover_vaes, family_donor,
};
pub use download::{
    CancelFlag, DownloadEvent, DownloadHandle, DownloadRequest, FileSelection, HubConfig, Progress, download,
    spawn_download,
};
pub use inspect::{BaseArch, Family, Precision};
pub use taesd::{TaesdInfo, TaesdSpace, discover_taesds, taesd_for};
