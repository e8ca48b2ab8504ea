//! The start picture of img2img and inpainting as the window holds it: the pixels (kept in the
//! data folder's `inputs/` by hash, which the recipe names), what is on screen, and the pure
//! helpers the panel and the app share. A job starts from a picture exactly when one is
//! loaded here (the recipe's `init_image` is then its hash).

use std::sync::Arc;

use crate::output::RgbImage;
use crate::source::{GrayImage, SourceImages};

/// What the start-picture section asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum StartAction {
    /// Choose a picture file to start from.
    OpenPicture,
    /// Choose a mask file (white = repaint) for the loaded picture.
    OpenMask,
    /// Start from this picture (the shown result).
    UseImage(Arc<RgbImage>),
    /// Start from this picture file (a history entry's).
    UseFile(std::path::PathBuf),
    InvertMask,
    ClearMask,
    /// Open the mask painter over the picture.
    Paint,
    /// Keep this painted mask (after each stroke).
    SetMask(crate::source::GrayImage),
    /// Close the mask painter.
    PaintDone,
    /// Outpaint: extend the canvas on these sides (new bands masked for painting).
    Extend(crate::source::outpaint::Sides),
    /// Back to text-to-image.
    Clear,
}

/// What the start-picture section shows.
pub struct StartState {
    /// The loaded picture and mask, with their preview.
    pub picture: Option<StartPicture>,
    /// A file is being read, or a kept picture fetched (off the UI thread).
    pub loading: bool,
    /// The mask painter, while it is open (it takes the central panel).
    pub painter: Option<crate::gui::mask_painter::MaskPainter>,
    pub painter_texture: Option<egui::TextureHandle>,
    /// Where the painter's canvas was last drawn (screen points).
    pub painter_rect: Option<egui::Rect>,
    /// How many pixels an outpaint arrow adds.
    pub extend_px: u32,
}

impl Default for StartState {
    fn default() -> Self {
        StartState {
            picture: None,
            loading: false,
            painter: None,
            painter_texture: None,
            painter_rect: None,
            extend_px: 128,
        }
    }
}

pub struct StartPicture {
    pub images: Arc<SourceImages>,
    /// The picture with the mask tinted over it.
    pub texture: egui::TextureHandle,
}

impl StartState {
    /// The pictures the next job starts from, if any.
    pub fn source(&self) -> Option<SourceImages> {
        self.picture.as_ref().map(|p| (*p.images).clone())
    }

    pub fn has_mask(&self) -> bool {
        self.picture.as_ref().is_some_and(|p| p.images.mask.is_some())
    }
}

/// How the mask is shown: a translucent red over the picture where it repaints.
pub const MASK_TINT: [u8; 3] = [230, 40, 60];
const TINT_STRENGTH: f32 = 0.55;

/// The preview: the picture, with `mask` (resized to it, nearest) tinted over it.
pub fn preview(image: &RgbImage, mask: Option<&GrayImage>) -> egui::ColorImage {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            let m = mask.map_or(0.0, |m| {
                let mx = x * m.width as usize / w;
                let my = y * m.height as usize / h;
                f32::from(m.data[my * m.width as usize + mx]) / 255.0
            });
            let a = m * TINT_STRENGTH;
            for (&pixel, &tint) in image.data[i..i + 3].iter().zip(&MASK_TINT) {
                let v = f32::from(pixel) * (1.0 - a) + f32::from(tint) * a;
                rgba.push(v.round() as u8);
            }
            rgba.push(255);
        }
    }
    egui::ColorImage::from_rgba_unmultiplied([w, h], &rgba)
}

/// The mask turned inside out (what was kept is repainted).
pub fn inverted(mask: &GrayImage) -> GrayImage {
    GrayImage {
        data: mask.data.iter().map(|v| 255 - v).collect(),
        ..mask.clone()
    }
}

/// The preview's size on screen: at most `max` wide and `max` high, the picture's shape kept.
pub fn preview_size(width: u32, height: u32, max: f32) -> egui::Vec2 {
    let (w, h) = (width as f32, height as f32);
    let scale = (max / w).min(max / h).min(1.0);
    egui::vec2(w * scale, h * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_tinted_over_the_picture_at_its_own_scale() {
        let image = RgbImage::from_raw(4, 1, vec![100; 12]).unwrap();
        // A 2×1 mask: the left half repaints.
        let mask = GrayImage {
            width: 2,
            height: 1,
            data: vec![255, 0],
        };
        let p = preview(&image, Some(&mask));
        assert_eq!(p.size, [4, 1]);
        let px: Vec<_> = p.pixels.iter().map(|c| c.to_array()).collect();
        assert_eq!(px[0], px[1]);
        assert_eq!(px[2], [100, 100, 100, 255]);
        assert!(px[0][0] > 150 && px[0][1] < 80, "{:?}", px[0]);
        assert_eq!(inverted(&mask).data, [0, 255]);
        assert_eq!(preview_size(1000, 500, 200.0), egui::vec2(200.0, 100.0));
        assert_eq!(preview_size(50, 100, 200.0), egui::vec2(50.0, 100.0));
    }
}
