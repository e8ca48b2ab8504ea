//! A1111's hires fix: the first pass's latents brought to the larger size — scaled as latents
//! (torch's `interpolate`, bilinear or nearest, as A1111's "Latent" upscalers), or decoded,
//! scaled with Lanczos and encoded again — then redrawn by an img2img pass with fresh noise
//! from the image's own seed (A1111 draws the second pass's noise from the same seeds).
//!
//! The second pass runs exactly "Hires steps" steps (as in A1111): it is an img2img run of
//! the smallest schedule `n` whose last ⌊n·strength⌋ steps are that many, in diffusers'
//! img2img semantics (`pipeline::img2img`).

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::recipe::{HiresFix, HiresUpscaler, Recipe};

/// The schedule length of the second pass: the smallest `n` with ⌊n·strength⌋ ≥ `run`.
pub fn schedule_steps(run: u32, strength: f64) -> u32 {
    let run = run.max(1);
    let mut n = ((f64::from(run) / strength).floor() as u32).max(run);
    while ((f64::from(n) * strength) as u32) < run {
        n += 1;
    }
    n
}

/// The recipe of the second pass: the hires size, its schedule, the first pass's strength.
pub fn second_pass_recipe(recipe: &Recipe, hires: &HiresFix) -> Result<Recipe> {
    let (width, height) = recipe
        .hires_size()
        .ok_or_else(|| Error::invalid("internal: no hires fix in this recipe"))?;
    let run = if hires.steps == 0 { recipe.steps } else { hires.steps };
    Ok(Recipe {
        width,
        height,
        steps: schedule_steps(run, recipe.strength),
        hires: None,
        ..recipe.clone()
    })
}

/// Latents scaled to `h`×`w` as torch's `interpolate(mode="bilinear", align_corners=False)`
/// (no antialiasing) or `mode="nearest"` computes it.
pub fn upscale_latents(latents: &Tensor, h: usize, w: usize, upscaler: HiresUpscaler) -> Result<Tensor> {
    let (b, c, ih, iw) = latents.dims4()?;
    let data: Vec<f32> = latents.flatten_all()?.to_vec1()?;
    let mut out = vec![0f32; b * c * h * w];
    let (sy, sx) = (ih as f32 / h as f32, iw as f32 / w as f32);
    for plane in 0..b * c {
        let src = &data[plane * ih * iw..(plane + 1) * ih * iw];
        let dst = &mut out[plane * h * w..(plane + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                dst[y * w + x] = match upscaler {
                    HiresUpscaler::LatentNearest => {
                        let yy = ((y as f32 * sy).floor() as usize).min(ih - 1);
                        let xx = ((x as f32 * sx).floor() as usize).min(iw - 1);
                        src[yy * iw + xx]
                    }
                    _ => bilinear(src, ih, iw, (y as f32 + 0.5) * sy - 0.5, (x as f32 + 0.5) * sx - 0.5),
                };
            }
        }
    }
    Ok(Tensor::from_vec(out, (b, c, h, w), latents.device())?)
}

/// One bilinear sample at source coordinates (`fy`, `fx`), negative ones clamped to 0 as torch does.
fn bilinear(src: &[f32], ih: usize, iw: usize, fy: f32, fx: f32) -> f32 {
    let (fy, fx) = (fy.max(0.0), fx.max(0.0));
    let (y0, x0) = ((fy as usize).min(ih - 1), (fx as usize).min(iw - 1));
    let (y1, x1) = ((y0 + 1).min(ih - 1), (x0 + 1).min(iw - 1));
    let (ly, lx) = (fy - y0 as f32, fx - x0 as f32);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    hy * (hx * src[y0 * iw + x0] + lx * src[y0 * iw + x1]) + ly * (hx * src[y1 * iw + x0] + lx * src[y1 * iw + x1])
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn the_second_pass_runs_exactly_the_hires_steps() {
        for (run, s) in [(10, 0.7), (20, 0.5), (1, 0.01), (7, 1.0), (15, 0.33), (30, 0.999)] {
            let n = schedule_steps(run, s);
            assert_eq!(((f64::from(n) * s) as u32).min(n), run, "{run} at {s}: n {n}");
            assert!(
                ((f64::from(n - 1) * s) as u32) < run || n == run,
                "{run} at {s}: n {n} is not the smallest"
            );
        }
        let r = Recipe {
            steps: 20,
            strength: 0.5,
            hires: Some(HiresFix {
                scale: 1.5,
                steps: 0,
                upscaler: HiresUpscaler::Latent,
            }),
            width: 512,
            height: 344,
            ..Recipe::default()
        };
        let second = second_pass_recipe(&r, r.hires.as_ref().unwrap()).unwrap();
        assert_eq!((second.width, second.height, second.steps), (768, 512, 40));
        assert!(second.hires.is_none());
    }

    #[test]
    fn latent_scaling_is_torchs_interpolate() {
        // 1×1×2×2 → 4×4: torch's bilinear (align_corners=False) gives these rows.
        let t = Tensor::from_vec(vec![0f32, 1.0, 2.0, 3.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let up = upscale_latents(&t, 4, 4, HiresUpscaler::Latent).unwrap();
        let v: Vec<f32> = up.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&v[..4], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(&v[12..], &[2.0, 2.25, 2.75, 3.0]);
        let near = upscale_latents(&t, 4, 4, HiresUpscaler::LatentNearest).unwrap();
        let v: Vec<f32> = near.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&v[..8], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    }
}
