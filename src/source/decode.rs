//! Reading init images and masks from files in the formats people have, with the `image`
//! crate. The size is read from the header first and a picture over [`MAX_INPUT_PIXELS`] is
//! refused before any pixel is decoded (a 40000×40000 PNG is 4.8 GB of RGB).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

use crate::error::{Error, Result};
use crate::format::printable;
use crate::output::RgbImage;

/// The most pixels an init image or mask may have: 64 megapixels (8192×8192), far more than
/// any picture is generated at, and 192 MB as RGB.
pub const MAX_INPUT_PIXELS: u64 = 8192 * 8192;
/// The longest side accepted, whatever the other is.
pub const MAX_INPUT_SIDE: u32 = 16384;

/// One 8-bit plane, row-major: a mask (255 = repaint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl GrayImage {
    /// Checks that the size and the data agree (the fields are public).
    pub fn validate(&self) -> Result<()> {
        let n = self.width as usize * self.height as usize;
        if self.width == 0 || self.height == 0 || self.data.len() != n {
            return Err(Error::invalid(format!(
                "a {}×{} mask cannot hold {} values",
                self.width,
                self.height,
                self.data.len()
            )));
        }
        Ok(())
    }

    /// The mask as RGB (grey), how it is stored and shown.
    pub fn to_rgb(&self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: self.data.iter().flat_map(|&v| [v, v, v]).collect(),
        }
    }

    /// A grey RGB picture back to one plane (its red channel).
    pub fn from_rgb(rgb: &RgbImage) -> GrayImage {
        GrayImage {
            width: rgb.width,
            height: rgb.height,
            data: rgb.data.chunks_exact(3).map(|p| p[0]).collect(),
        }
    }
}

/// An init image from a file: RGB, alpha dropped (as diffusers' `convert("RGB")`).
pub fn read_init_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_init_image(&bytes).map_err(|e| named(path, e))
}

/// A mask from a file: see [`decode_mask`].
pub fn read_mask(path: &Path) -> Result<GrayImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_mask(&bytes).map_err(|e| named(path, e))
}

fn named(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidRequest(m) => Error::invalid(format!("{}: {m}", printable(&path.display().to_string()))),
        other => other,
    }
}

/// Any picture the `image` crate reads → 8-bit RGB. 16-bit channels are scaled down, CMYK
/// JPEGs converted, an animated GIF gives its first frame, alpha is dropped.
pub fn decode_init_image(bytes: &[u8]) -> Result<RgbImage> {
    let picture = decode(bytes)?;
    let rgb = picture.to_rgb8();
    RgbImage::from_raw(rgb.width(), rgb.height(), rgb.into_raw())
}

/// A mask: white = repaint, black = keep, greys in between. The value is the picture's
/// luminance (ITU-R 601, as PIL's `convert("L")` that diffusers uses) times its alpha, so a
/// brush stroke on a transparent layer is a mask too.
pub fn decode_mask(bytes: &[u8]) -> Result<GrayImage> {
    let picture = decode(bytes)?;
    let rgba = picture.to_rgba8();
    let (width, height) = rgba.dimensions();
    let data = rgba
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            let luma = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
            ((luma * u32::from(a) + 127) / 255) as u8
        })
        .collect();
    Ok(GrayImage { width, height, data })
}

/// The header's size checked first, then the pixels decoded under the same limits.
fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let not_a_picture = |detail: String| {
        Error::invalid(format!(
            "not a picture Lantern can read (PNG, JPEG, WebP, GIF or BMP): {detail}"
        ))
    };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_a_picture(e.to_string()))?;
    if reader.format().is_none() {
        return Err(not_a_picture("the file's first bytes are no known image format".into()));
    }
    let (w, h) = reader.into_dimensions().map_err(|e| not_a_picture(e.to_string()))?;
    check_size(w, h)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_a_picture(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    // RGBA at 16 bits per channel, the largest form a decoder may hold.
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8 + (1 << 20));
    reader.limits(limits);
    reader.decode().map_err(|e| not_a_picture(e.to_string()))
}

fn check_size(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::invalid(format!("the picture is {w}×{h}: it has no pixels")));
    }
    if w > MAX_INPUT_SIDE || h > MAX_INPUT_SIDE || u64::from(w) * u64::from(h) > MAX_INPUT_PIXELS {
        return Err(Error::invalid(format!(
            "the picture is {w}×{h}, larger than the {} megapixels Lantern reads; scale it down first",
            MAX_INPUT_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, color: image::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::write_buffer_with_format(&mut Cursor::new(&mut out), data, w, h, color, image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn masks_are_luminance_times_alpha() {
        // Opaque white, opaque black, half-transparent white, transparent white, opaque red.
        let rgba = [
            255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 128, 255, 255, 255, 0, 255, 0, 0, 255,
        ];
        let m = decode_mask(&png(5, 1, image::ColorType::Rgba8, &rgba)).unwrap();
        assert_eq!(m.data, [255, 0, 128, 0, 76]);
        let grey = decode_mask(&png(2, 1, image::ColorType::L8, &[0, 200])).unwrap();
        assert_eq!(grey.data, [0, 200]);
    }

    #[test]
    fn sixteen_bit_pictures_become_eight_bit() {
        let data: Vec<u8> = [65535u16, 0, 32896].iter().flat_map(|v| v.to_be_bytes()).collect();
        let img = decode_init_image(&png(1, 1, image::ColorType::Rgb16, &data)).unwrap();
        assert_eq!(img.data, [255, 0, 128]);
    }

    /// PNG's CRC-32 (so the doctored header is a valid chunk).
    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn huge_headers_are_refused_before_decoding() {
        // A valid PNG header claiming 40000×40000, with no pixel data behind it.
        let mut bytes = png(1, 1, image::ColorType::L8, &[0]);
        let ihdr = 16;
        bytes[ihdr..ihdr + 4].copy_from_slice(&40000u32.to_be_bytes());
        bytes[ihdr + 4..ihdr + 8].copy_from_slice(&40000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode_init_image(&bytes).unwrap_err().to_string();
        assert!(e.contains("40000×40000") && e.contains("scale it down"), "{e}");
    }

    #[test]
    fn text_is_not_a_picture() {
        let e = decode_init_image(b"hello, this is not an image")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a picture"), "{e}");
        let e = decode_mask(&[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a picture"), "{e}");
    }
}
