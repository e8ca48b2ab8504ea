//! Writing images: PNG with AUTOMATIC1111-compatible metadata, file naming, atomic writes.

pub mod image;
pub mod metadata;

pub use image::RgbImage;
pub use metadata::GenerationParams;
