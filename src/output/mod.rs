//! Writing images: PNG with AUTOMATIC1111-compatible metadata, file naming, atomic writes.

pub mod metadata;

pub use metadata::GenerationParams;
