//! The start pictures brought to the job: resized to the picture's size (A1111's resize
//! modes), the mask blurred and thresholded as the pipeline uses it, and — after decoding —
//! the original pasted back outside the mask.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Rgb};
use serde::{Deserialize, Serialize};

use super::SourceImages;
use super::decode::GrayImage;
use crate::error::{Error, Result};
use crate::output::RgbImage;

/// How a start picture of another shape is brought to the picture's size (A1111's "Resize
/// mode"). The mask always follows the picture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Stretched to the size, whatever the shape (A1111's "Just resize", its default).
    #[default]
    Stretch,
    /// Scaled to cover the size, the overhang cut off evenly ("Crop and resize").
    Crop,
    /// Scaled to fit inside, the bands left over filled with the edge pixels ("Resize and fill").
    Fill,
}

impl ResizeMode {
    pub const ALL: [ResizeMode; 3] = [ResizeMode::Stretch, ResizeMode::Crop, ResizeMode::Fill];

    /// The `--resize-mode` name (also in settings, history and the PNG text).
    pub fn name(self) -> &'static str {
        match self {
            ResizeMode::Stretch => "stretch",
            ResizeMode::Crop => "crop",
            ResizeMode::Fill => "fill",
        }
    }

    /// A1111's label for the mode.
    pub fn a1111_label(self) -> &'static str {
        match self {
            ResizeMode::Stretch => "Just resize",
            ResizeMode::Crop => "Crop and resize",
            ResizeMode::Fill => "Resize and fill",
        }
    }

    /// Reads our name or A1111's label, forgiving case.
    pub fn parse(text: &str) -> Option<ResizeMode> {
        let t = text.trim().to_ascii_lowercase();
        ResizeMode::ALL
            .into_iter()
            .find(|m| m.name() == t || m.a1111_label().to_ascii_lowercase() == t)
    }
}

impl std::str::FromStr for ResizeMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        ResizeMode::parse(s).ok_or_else(|| format!("unknown resize mode `{s}`; choose one of: stretch, crop, fill"))
    }
}

impl std::fmt::Display for ResizeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The start pictures at the picture's size.
pub struct Prepared {
    pub image: RgbImage,
    /// The mask after the blur, 0 (keep) to 1 (repaint), one value per pixel; `None` for
    /// img2img. What the original is pasted back through.
    pub soft_mask: Option<Vec<f32>>,
}

impl Prepared {
    /// The mask the sampler works with: diffusers' binarization of the (blurred) mask, 1 where
    /// it is at least one half.
    pub fn hard_mask(&self) -> Option<Vec<f32>> {
        self.soft_mask
            .as_ref()
            .map(|m| m.iter().map(|&v| if v >= 0.5 { 1.0 } else { 0.0 }).collect())
    }
}

/// Resizes the picture and its mask to `width`×`height` (unchanged when already that size) and
/// blurs the mask by `mask_blur` pixels (A1111's "Mask blur": a Gaussian of that standard
/// deviation).
pub fn prepare(source: &SourceImages, width: u32, height: u32, mode: ResizeMode, mask_blur: u32) -> Result<Prepared> {
    source.image.validate()?;
    let image = resize_rgb(&source.image, width, height, mode)?;
    let soft_mask = match &source.mask {
        None => None,
        Some(mask) => {
            mask.validate()?;
            let mask = resize_gray(mask, width, height, mode)?;
            let values: Vec<f32> = mask.data.iter().map(|&v| f32::from(v) / 255.0).collect();
            Some(gaussian_blur(
                &values,
                width as usize,
                height as usize,
                mask_blur as f32,
            ))
        }
    };
    Ok(Prepared { image, soft_mask })
}

fn resize_rgb(image: &RgbImage, width: u32, height: u32, mode: ResizeMode) -> Result<RgbImage> {
    if (image.width, image.height) == (width, height) {
        return Ok(image.clone());
    }
    let buf = ImageBuffer::<Rgb<u8>, &[u8]>::from_raw(image.width, image.height, &image.data[..])
        .ok_or_else(|| Error::invalid("the init image's data does not match its size"))?;
    let out = resize_buffer(&buf, width, height, mode);
    RgbImage::from_raw(width, height, out.into_raw())
}

fn resize_gray(mask: &GrayImage, width: u32, height: u32, mode: ResizeMode) -> Result<GrayImage> {
    if (mask.width, mask.height) == (width, height) {
        return Ok(mask.clone());
    }
    let buf = ImageBuffer::<Luma<u8>, &[u8]>::from_raw(mask.width, mask.height, &mask.data[..])
        .ok_or_else(|| Error::invalid("the mask's data does not match its size"))?;
    let out = resize_buffer(&buf, width, height, mode);
    Ok(GrayImage {
        width,
        height,
        data: out.into_raw(),
    })
}

/// Lanczos-3 resampling in one of the three modes.
fn resize_buffer<P>(src: &ImageBuffer<P, &[u8]>, width: u32, height: u32, mode: ResizeMode) -> ImageBuffer<P, Vec<u8>>
where
    P: image::Pixel<Subpixel = u8> + 'static,
{
    let (sw, sh) = (f64::from(src.width()), f64::from(src.height()));
    let (tw, th) = (f64::from(width), f64::from(height));
    match mode {
        ResizeMode::Stretch => imageops::resize(src, width, height, FilterType::Lanczos3),
        ResizeMode::Crop => {
            let ratio = (tw / sw).max(th / sh);
            let (rw, rh) = scaled(sw, sh, ratio, width, height, true);
            let big = imageops::resize(src, rw, rh, FilterType::Lanczos3);
            imageops::crop_imm(&big, (rw - width) / 2, (rh - height) / 2, width, height).to_image()
        }
        ResizeMode::Fill => {
            let ratio = (tw / sw).min(th / sh);
            let (rw, rh) = scaled(sw, sh, ratio, width, height, false);
            let small = imageops::resize(src, rw, rh, FilterType::Lanczos3);
            let (ox, oy) = ((width - rw) / 2, (height - rh) / 2);
            // Each pixel of the bands repeats the nearest edge pixel of the scaled picture.
            ImageBuffer::from_fn(width, height, |x, y| {
                let sx = x.saturating_sub(ox).min(rw - 1);
                let sy = y.saturating_sub(oy).min(rh - 1);
                *small.get_pixel(sx, sy)
            })
        }
    }
}

/// The size to generate at when only a start picture is given: the picture's own, scaled
/// down (keeping its shape) to the model's native area when larger, each side rounded down to
/// a multiple of 8 (at least 8).
pub fn default_size(width: u32, height: u32, native: (u32, u32)) -> (u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let native_area = f64::from(native.0) * f64::from(native.1);
    let scale = if area > native_area {
        (native_area / area).sqrt()
    } else {
        1.0
    };
    let side = |v: u32| (((f64::from(v) * scale) as u32) / 8 * 8).max(8);
    (side(width), side(height))
}

/// The scaled size, at least 1 pixel and (for covering) at least the target, (for fitting) at
/// most the target.
fn scaled(sw: f64, sh: f64, ratio: f64, width: u32, height: u32, cover: bool) -> (u32, u32) {
    let w = ((sw * ratio).round() as u32).max(1);
    let h = ((sh * ratio).round() as u32).max(1);
    if cover {
        (w.max(width), h.max(height))
    } else {
        (w.min(width), h.min(height))
    }
}

/// A separable Gaussian of standard deviation `sigma` over a `width`×`height` plane, with
/// A1111's kernel size (2·⌊2.5σ + 0.5⌋ + 1) and OpenCV's default border (reflect-101).
pub fn gaussian_blur(values: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 || values.is_empty() {
        return values.to_vec();
    }
    let radius = (2.5 * sigma + 0.5) as usize;
    let kernel: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let d = i as f32 - radius as f32;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let reflect = |i: isize, n: usize| -> usize {
        if n == 1 {
            return 0;
        }
        let period = 2 * (n as isize - 1);
        let mut j = i.rem_euclid(period);
        if j >= n as isize {
            j = period - j;
        }
        j as usize
    };
    let mut rows = vec![0f32; values.len()];
    for y in 0..height {
        for x in 0..width {
            rows[y * width + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * values[y * width + reflect(x as isize + k as isize - radius as isize, width)])
                .sum();
        }
    }
    let mut out = vec![0f32; values.len()];
    for y in 0..height {
        for x in 0..width {
            out[y * width + x] = kernel
                .iter()
                .enumerate()
                .map(|(k, w)| w * rows[reflect(y as isize + k as isize - radius as isize, height) * width + x])
                .sum::<f32>()
                .clamp(0.0, 1.0);
        }
    }
    out
}

/// The mask at latent size: the pixel at the top-left of each `factor`×`factor` cell, as
/// torch's nearest interpolation picks it for an exact factor.
pub fn latent_mask(mask: &[f32], width: usize, height: usize, factor: usize) -> Vec<f32> {
    let (lw, lh) = (width / factor, height / factor);
    (0..lh)
        .flat_map(|y| (0..lw).map(move |x| mask[y * factor * width + x * factor]))
        .collect()
}

/// A1111's overlay: the generated picture where the mask is 1, the original where it is 0,
/// mixed in between (the blurred edge), rounded to 8 bits.
pub fn paste_back(original: &RgbImage, generated: &RgbImage, soft_mask: &[f32]) -> Result<RgbImage> {
    if (original.width, original.height) != (generated.width, generated.height)
        || soft_mask.len() * 3 != original.data.len()
    {
        return Err(Error::invalid(
            "internal: the picture, the original and the mask differ in size",
        ));
    }
    let data = original
        .data
        .iter()
        .zip(&generated.data)
        .enumerate()
        .map(|(i, (&o, &g))| {
            let m = soft_mask[i / 3];
            (f32::from(o) * (1.0 - m) + f32::from(g) * m).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    RgbImage::from_raw(original.width, original.height, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        let data = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x * 255 / w.max(2).saturating_sub(1).max(1)) as u8, (y % 256) as u8, 7])
            })
            .collect();
        RgbImage::from_raw(w, h, data).unwrap()
    }

    #[test]
    fn every_mode_gives_the_asked_size_and_keeps_a_right_sized_picture() {
        let src = SourceImages {
            image: gradient(30, 10),
            mask: Some(GrayImage {
                width: 3,
                height: 1,
                data: vec![0, 255, 0],
            }),
        };
        for mode in ResizeMode::ALL {
            let p = prepare(&src, 16, 24, mode, 0).unwrap();
            assert_eq!((p.image.width, p.image.height), (16, 24), "{mode}");
            assert_eq!(p.soft_mask.unwrap().len(), 16 * 24);
            assert_eq!(mode.name().parse::<ResizeMode>(), Ok(mode));
            assert_eq!(ResizeMode::parse(mode.a1111_label()), Some(mode));
        }
        let same = prepare(&src, 30, 10, ResizeMode::Crop, 0).unwrap();
        assert_eq!(same.image, src.image);
        // A 1×1 picture stretches to a flat colour.
        let dot = SourceImages {
            image: RgbImage::from_raw(1, 1, vec![10, 20, 30]).unwrap(),
            mask: None,
        };
        let p = prepare(&dot, 8, 8, ResizeMode::Fill, 4).unwrap();
        assert!(p.image.data.chunks(3).all(|px| px == [10, 20, 30]));
    }

    #[test]
    fn fill_repeats_the_edges_and_crop_cuts_the_middle() {
        // A wide picture into a square: fill leaves bands above and below made of the edge rows.
        let src = SourceImages {
            image: gradient(40, 20),
            mask: None,
        };
        let p = prepare(&src, 20, 20, ResizeMode::Fill, 0).unwrap();
        assert_eq!(p.image.pixel(3, 0), p.image.pixel(3, 5));
        let c = prepare(&src, 20, 20, ResizeMode::Crop, 0).unwrap();
        // The crop keeps the middle columns: the left edge is no longer the source's black.
        assert!(c.image.pixel(0, 10)[0] > 40, "{:?}", c.image.pixel(0, 10));
    }

    #[test]
    fn default_sizes_keep_the_shape_within_the_native_area() {
        assert_eq!(default_size(72, 48, (512, 512)), (72, 48));
        assert_eq!(default_size(75, 50, (512, 512)), (72, 48));
        assert_eq!(default_size(4000, 3000, (512, 512)), (584, 440));
        assert_eq!(default_size(1, 1, (512, 512)), (8, 8));
        // A panorama too long to generate keeps its size; the recipe check then says so.
        assert_eq!(default_size(40000, 10, (1024, 1024)), (40000, 8));
    }

    #[test]
    fn blur_spreads_and_keeps_the_total() {
        let (w, h) = (21, 21);
        let mut v = vec![0f32; w * h];
        v[10 * w + 10] = 1.0;
        let b = gaussian_blur(&v, w, h, 2.0);
        let sum: f32 = b.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(b[10 * w + 12] > 0.0 && b[10 * w + 10] < 1.0);
        assert_eq!(gaussian_blur(&v, w, h, 0.0), v);
    }

    #[test]
    fn latent_mask_picks_each_cells_corner_and_paste_back_mixes() {
        let mut m = vec![0f32; 16 * 8];
        m[8] = 1.0; // (8, 0): the corner of latent cell (1, 0)
        assert_eq!(latent_mask(&m, 16, 8, 8), [0.0, 1.0]);
        let a = RgbImage::from_raw(2, 1, vec![0, 0, 0, 100, 100, 100]).unwrap();
        let b = RgbImage::from_raw(2, 1, vec![200, 200, 200, 200, 200, 200]).unwrap();
        let out = paste_back(&a, &b, &[1.0, 0.25]).unwrap();
        assert_eq!(out.data, [200, 200, 200, 125, 125, 125]);
    }
}
