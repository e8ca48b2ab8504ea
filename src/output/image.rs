//! The one in-memory picture type shared by the pipeline, the PNG writer and the thumbnails.

use crate::error::{Error, Result};

/// An 8-bit RGB picture, row-major, no padding: `data.len() == width * height * 3`.
///
/// The pipeline produces exactly this (diffusers' `[0, 1]` pixels rounded to 8 bits), so the
/// writer and the GUI never need an image crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black picture.
    pub fn new(width: u32, height: u32) -> Self {
        RgbImage {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    /// Wraps pixel data, checking that its length matches the size.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        let image = RgbImage { width, height, data };
        image.validate()?;
        Ok(image)
    }

    /// The number of bytes `width × height` RGB pixels take, or `None` on overflow.
    pub fn expected_len(width: u32, height: u32) -> Option<usize> {
        (width as usize).checked_mul(height as usize)?.checked_mul(3)
    }

    /// Errors when the fields disagree (the struct's fields are public, so anyone can build one).
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::invalid(format!(
                "image has an empty size {}x{}",
                self.width, self.height
            )));
        }
        match Self::expected_len(self.width, self.height) {
            Some(n) if n == self.data.len() => Ok(()),
            _ => Err(Error::invalid(format!(
                "image data holds {} bytes, but {}x{} RGB needs {}",
                self.data.len(),
                self.width,
                self.height,
                self.width as u64 * self.height as u64 * 3
            ))),
        }
    }

    /// The pixel at (x, y); panics when out of bounds (callers index their own images).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}
