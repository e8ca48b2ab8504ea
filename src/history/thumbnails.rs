//! Small cached PNGs for the history grid.
//!
//! A thumbnail is made once per (image path, modification time, size, max side) and kept
//! under `DataDir::thumbnails()`; a changed image gets a new key, so the cache never shows
//! a stale picture. Everything here is a plain function of its inputs and the file system,
//! safe to call from any number of background threads (writes are atomic renames).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::output::atomic::{Existing, write_atomic};
use crate::output::image::RgbImage;
use crate::output::png::{decode_png_file, encode_png};

/// The cached thumbnail of `image_path`, at most `max_side` pixels wide and high, made on
/// first use in the default thumbnails folder.
pub fn thumbnail_for(image_path: &Path, max_side: u32) -> Result<PathBuf> {
    thumbnail_in(&crate::paths::DataDir::from_env().thumbnails(), image_path, max_side)
}

/// [`thumbnail_for`] with an explicit cache folder.
pub fn thumbnail_in(cache_dir: &Path, image_path: &Path, max_side: u32) -> Result<PathBuf> {
    if max_side == 0 {
        return Err(Error::invalid("thumbnail size must be at least 1 pixel"));
    }
    let meta = std::fs::metadata(image_path).map_err(|e| Error::io(image_path, e))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let canonical = std::fs::canonicalize(image_path).unwrap_or_else(|_| image_path.to_path_buf());

    let mut hasher = Sha256::new();
    hasher.update(canonical.to_string_lossy().as_bytes());
    hasher.update([0]);
    hasher.update(mtime_ns.to_le_bytes());
    hasher.update(meta.len().to_le_bytes());
    hasher.update(max_side.to_le_bytes());
    let key: String = hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect();
    let thumb_path = cache_dir.join(format!("{key}-{max_side}.png"));
    if thumb_path.is_file() {
        return Ok(thumb_path);
    }

    let image = decode_png_file(image_path)?;
    let small = downscale(&image, max_side)?;
    let bytes = encode_png(&small, None)?;
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    write_atomic(&thumb_path, &bytes, Existing::Replace)?;
    Ok(thumb_path)
}

/// The size `width × height` shrinks to so that its longer side is at most `max_side`
/// (never enlarged, never below 1 pixel).
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side || longest == 0 {
        return (width, height);
    }
    let scale = max_side as f64 / longest as f64;
    let w = ((width as f64 * scale).round() as u32).clamp(1, max_side);
    let h = ((height as f64 * scale).round() as u32).clamp(1, max_side);
    (w, h)
}

/// Shrinks by area averaging (`image`'s box-filter thumbnail sampler): each output pixel is
/// the mean of the source pixels it covers. No ringing, no aliasing, good enough for a grid.
pub fn downscale(image: &RgbImage, max_side: u32) -> Result<RgbImage> {
    let (ow, oh) = fit_within(image.width, image.height, max_side);
    if (ow, oh) == (image.width, image.height) {
        return Ok(image.clone());
    }
    let source = image::ImageBuffer::<image::Rgb<u8>, &[u8]>::from_raw(image.width, image.height, &image.data)
        .ok_or_else(|| Error::invalid(format!("image data does not fill {}x{} RGB", image.width, image.height)))?;
    let small = image::imageops::thumbnail(&source, ow, oh);
    Ok(RgbImage {
        width: ow,
        height: oh,
        data: small.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit() {
        assert_eq!(fit_within(512, 768, 256), (171, 256));
        assert_eq!(fit_within(768, 512, 256), (256, 171));
        assert_eq!(fit_within(100, 50, 256), (100, 50));
        assert_eq!(fit_within(10_000, 1, 100), (100, 1));
    }

    #[test]
    fn area_average_is_exact_on_integer_factors() {
        // 4x2 → 2x1: each output pixel averages a 2x2 block.
        let img = RgbImage::from_raw(
            4,
            2,
            vec![
                0, 0, 0, 100, 100, 100, 10, 20, 30, 10, 20, 30, //
                200, 200, 200, 100, 100, 100, 10, 20, 30, 50, 60, 70,
            ],
        )
        .unwrap();
        let small = downscale(&img, 2).unwrap();
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(small.data, vec![100, 100, 100, 20, 30, 40]);
    }

    #[test]
    fn flat_colour_stays_flat_on_odd_factors() {
        let img = RgbImage::from_raw(7, 5, [9u8, 128, 250].repeat(35)).unwrap();
        let small = downscale(&img, 3).unwrap();
        assert_eq!((small.width, small.height), (3, 2));
        assert!(small.data.chunks(3).all(|p| p == [9, 128, 250]), "{:?}", small.data);
    }
}
