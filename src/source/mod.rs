//! The pictures a job starts from: the init image of img2img and the inpainting mask.
//!
//! - [`decode`] reads the files people have (PNG, JPEG, WebP, GIF, BMP; 16-bit, CMYK, with
//!   alpha), refusing a picture too large to hold before decoding it.
//! - [`store`] keeps each one under the data folder by its content hash; the recipe names
//!   them by that hash, so a history entry or a PNG gives the whole job back.
//! - [`prepare`] brings them to the picture's size (A1111's resize modes), makes the mask the
//!   pipeline works with (blurred, thresholded, at latent size) and pastes the original back
//!   outside the mask when asked.

pub mod decode;
pub mod outpaint;
pub mod prepare;
pub mod store;

pub use decode::{GrayImage, decode_init_image, decode_mask, read_init_image, read_mask};
pub use store::InputStore;

use crate::output::RgbImage;

/// The pictures one job starts from, as the user gave them (any size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceImages {
    pub image: RgbImage,
    /// White (255) = repaint, black = keep; `None` repaints everywhere (img2img).
    pub mask: Option<GrayImage>,
}
