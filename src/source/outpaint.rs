//! Outpainting: the canvas extended on any side, the new bands filled with the picture's edge
//! pixels and masked for repainting, along with a thin seam of the original so the new part
//! joins it. The result is an ordinary start picture and mask, inpainted as any other.

use super::SourceImages;
use super::decode::{GrayImage, MAX_INPUT_SIDE};
use crate::error::{Error, Result};
use crate::output::RgbImage;

/// How far the original is repainted along an extended edge, in pixels.
pub const SEAM: u32 = 8;

/// Pixels to add on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sides {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl Sides {
    pub fn is_empty(&self) -> bool {
        self.left + self.top + self.right + self.bottom == 0
    }

    /// `right=128,bottom=64` (any order, sides not named add nothing; `all=N` all four).
    pub fn parse(text: &str) -> std::result::Result<Sides, String> {
        let mut s = Sides::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (side, px) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not SIDE=PIXELS (e.g. right=128)"))?;
            let px: u32 = px
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the pixels must be a whole number"))?;
            match side.trim().to_ascii_lowercase().as_str() {
                "left" => s.left = px,
                "top" => s.top = px,
                "right" => s.right = px,
                "bottom" => s.bottom = px,
                "all" => {
                    s = Sides {
                        left: px,
                        top: px,
                        right: px,
                        bottom: px,
                    }
                }
                other => return Err(format!("`{other}` is not a side (left, top, right, bottom, all)")),
            }
        }
        if s.is_empty() {
            return Err("say how many pixels to add on which side, e.g. right=128".into());
        }
        Ok(s)
    }
}

/// The picture on a canvas larger by `sides`, with its mask: the new bands and a [`SEAM`]-wide
/// strip of the original along them repaint; an existing mask is kept where it was.
pub fn extend(source: &SourceImages, sides: Sides) -> Result<SourceImages> {
    source.image.validate()?;
    let (w, h) = (source.image.width, source.image.height);
    let nw = w as u64 + sides.left as u64 + sides.right as u64;
    let nh = h as u64 + sides.top as u64 + sides.bottom as u64;
    if nw > MAX_INPUT_SIDE as u64 || nh > MAX_INPUT_SIDE as u64 {
        return Err(Error::invalid(format!(
            "extended to {nw}×{nh} the picture would be larger than {MAX_INPUT_SIDE} pixels a side"
        )));
    }
    let (nw, nh) = (nw as u32, nh as u32);
    let mut data = Vec::with_capacity(nw as usize * nh as usize * 3);
    let mut mask = Vec::with_capacity(nw as usize * nh as usize);
    let old_mask = source
        .mask
        .as_ref()
        .filter(|m| (m.width, m.height) == (w, h))
        .map(|m| &m.data);
    for y in 0..nh {
        for x in 0..nw {
            let sx = x.saturating_sub(sides.left).min(w - 1);
            let sy = y.saturating_sub(sides.top).min(h - 1);
            data.extend_from_slice(&source.image.pixel(sx, sy));
            let inside = x >= sides.left && x < sides.left + w && y >= sides.top && y < sides.top + h;
            let near_new_edge = |d: u32, extended: u32| extended > 0 && d < SEAM;
            let (ox, oy) = (x.wrapping_sub(sides.left), y.wrapping_sub(sides.top));
            let value = if !inside
                || near_new_edge(ox, sides.left)
                || near_new_edge(oy, sides.top)
                || near_new_edge(w - 1 - ox, sides.right)
                || near_new_edge(h - 1 - oy, sides.bottom)
            {
                255
            } else {
                old_mask.map_or(0, |m| m[(oy * w + ox) as usize])
            };
            mask.push(value);
        }
    }
    Ok(SourceImages {
        image: RgbImage::from_raw(nw, nh, data)?,
        mask: Some(GrayImage {
            width: nw,
            height: nh,
            data: mask,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canvas_grows_the_bands_repeat_the_edge_and_are_masked() {
        let image = RgbImage::from_raw(20, 10, (0..600).map(|v| (v % 251) as u8).collect()).unwrap();
        let src = SourceImages {
            image: image.clone(),
            mask: None,
        };
        let sides = Sides::parse("right=16, top=4").unwrap();
        let out = extend(&src, sides).unwrap();
        let mask = out.mask.unwrap();
        assert_eq!((out.image.width, out.image.height), (36, 14));
        // The original sits 4 rows down, unchanged; the right band repeats its last column.
        assert_eq!(out.image.pixel(0, 4), image.pixel(0, 0));
        assert_eq!(out.image.pixel(30, 9), image.pixel(19, 5));
        assert_eq!(out.image.pixel(5, 0), image.pixel(5, 0));
        let m = |x: u32, y: u32| mask.data[(y * 36 + x) as usize];
        assert_eq!((m(30, 9), m(5, 1)), (255, 255), "the new bands repaint");
        assert_eq!(m(19 - SEAM + 1, 9), 255, "so does the seam along the new edge");
        assert_eq!(m(2, 9), 255, "the seam along the top edge");
        assert_eq!((m(2, 13), m(19 - SEAM, 13)), (0, 0), "the rest of the original is kept");
        assert!(Sides::parse("").is_err() && Sides::parse("up=3").is_err() && Sides::parse("left=x").is_err());
        assert_eq!(Sides::parse("all=8").unwrap().bottom, 8);
        let huge = Sides {
            left: 20000,
            ..Sides::default()
        };
        assert!(extend(&SourceImages { image, mask: None }, huge).is_err());
    }
}
