//! GroupNorm over [batch, channels, …] f32 data, optionally followed by SiLU, in two passes
//! over each group (mean, then variance and the normalised output) instead of candle's
//! chain of whole-tensor ops.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::{exp, simd, with_f32};

/// `x` [B, C, …] contiguous f32 on the CPU; `weight`, `bias` [C].
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> candle_core::Result<Tensor> {
    const K: &str = "group_norm";
    super::check::f32(K, "input", x)?;
    let dims = x.dims().to_vec();
    super::check::that(K, dims.len() >= 2, || {
        format!("input has shape {dims:?}, expected [B, C, …]")
    })?;
    let (b, c) = (dims[0], dims[1]);
    super::check::that(K, groups > 0 && c % groups == 0, || {
        format!("{groups} groups do not divide {c} channels")
    })?;
    super::check::dims(K, "weight", weight, &[c])?;
    super::check::dims(K, "bias", bias, &[c])?;
    let spatial: usize = dims[2..].iter().product();
    let per_group = c / groups;
    let group_len = per_group * spatial;
    let mut out = super::uninit_vec(b * c * spatial);
    let weight: Vec<f32> = weight.to_vec1()?;
    let bias: Vec<f32> = bias.to_vec1()?;
    // Read on this thread and handed to the workers, so a scoped level covers them too.
    let level = simd::cpu_level();
    with_f32(x, |data| {
        out.par_chunks_mut(group_len).enumerate().for_each(|(bg, dst)| {
            let src = &data[bg * group_len..(bg + 1) * group_len];
            normalize_group(
                level,
                src,
                dst,
                bg % groups,
                per_group,
                spatial,
                &weight,
                &bias,
                eps,
                silu,
            );
        });
    })?;
    Tensor::from_vec(out, dims, &Device::Cpu)
}

#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn normalize_group(
    level: simd::Level,
    src: &[f32],
    dst: &mut [f32],
    g: usize,
    per_group: usize,
    spatial: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f64,
    silu: bool,
) {
    let group_len = src.len() as f64;
    // Accumulate in f64: groups hold up to ~10⁶ values at high resolution.
    let mean = simd::vectorized!(level, sum_f64(src, |v| v)) / group_len;
    let var = simd::vectorized!(level, sum_f64(src, |v| (v - mean) * (v - mean))) / group_len;
    let rstd = (1.0 / (var + eps).sqrt()) as f32;
    let mean = mean as f32;
    for k in 0..per_group {
        let ch = g * per_group + k;
        let scale = rstd * weight[ch];
        let shift = bias[ch] - mean * scale;
        let s = &src[k * spatial..(k + 1) * spatial];
        let d = &mut dst[k * spatial..(k + 1) * spatial];
        simd::vectorized!(level, {
            if silu {
                for (o, &v) in d.iter_mut().zip(s) {
                    *o = exp::silu(v * scale + shift);
                }
            } else {
                for (o, &v) in d.iter_mut().zip(s) {
                    *o = v * scale + shift;
                }
            }
        })
    }
}

/// Σ f(x) in f64 over eight independent partial sums, so the adds vectorise (one running
/// sum is a chain of dependent adds, one every few cycles).
#[inline(always)]
fn sum_f64(xs: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v as f64)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v as f64);
        }
    }
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::max_abs_diff;

    #[test]
    fn every_level_matches_the_generic_path() {
        let dev = Device::Cpu;
        let (b, c, h, w, groups) = (2, 8, 9, 7, 4);
        let n = b * c * h * w;
        let x = Tensor::from_vec(
            (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect(),
            (b, c, h, w),
            &dev,
        )
        .unwrap();
        let weight = Tensor::from_vec((0..c).map(|i| 0.5 + i as f32 / 8.0).collect(), c, &dev).unwrap();
        let bias = Tensor::from_vec((0..c).map(|i| i as f32 / 4.0 - 1.0).collect(), c, &dev).unwrap();
        for silu in [false, true] {
            let plain = simd::with_level(simd::Level::Baseline, || {
                group_norm(&x, groups, &weight, &bias, 1e-5, silu).unwrap()
            });
            simd::for_each_level(|level| {
                let got = group_norm(&x, groups, &weight, &bias, 1e-5, silu).unwrap();
                let diff = max_abs_diff(&got, &plain);
                assert!(diff < 1e-5, "{level:?} silu={silu}: {diff}");
            });
        }
    }
}
