//! 3×3 convolutions with any stride, as one matrix product per image: the input patches are
//! unrolled (im2col) into [Ci·9, Ho·Wo] and multiplied by the kernel matrix [Co, Ci·9]. The
//! product lands directly in NCHW layout, on top of the bias, a per-image channel bias and a
//! residual written there first. Used where Winograd does not pay (small images, strides).

use candle_core::{Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{Scratch, View, product, uninit_vec, with_f32, with_scratch};

/// `x` [B, Ci, H, W], `weight` [Co, Ci, 3, 3], `bias` [Co]; zero padding `padding`.
pub fn conv3x3(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    image_bias: Option<&Tensor>,
    residual: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, ci, h, w) = x.dims4()?;
    let co = weight.dim(0)?;
    let ho = (h + 2 * padding - 3) / stride + 1;
    let wo = (w + 2 * padding - 3) / stride + 1;
    let n = ho * wo;
    let k = ci * 9;
    let bias: Vec<f32> = bias.to_vec1()?;
    let image_bias: Option<Vec<f32>> = image_bias.map(|t| t.flatten_all()?.to_vec1()).transpose()?;
    let mut out = uninit_vec(b * co * n);
    // Bias (+ per-image bias) (+ residual) first; the product is accumulated onto it.
    let fill = |o: &mut [f32], idx: usize, r: Option<&[f32]>| {
        let (img, ch) = (idx / co, idx % co);
        let v = bias[ch] + image_bias.as_ref().map_or(0.0, |ib| ib[img * co + ch]);
        match r {
            Some(r) => o.iter_mut().zip(r).for_each(|(o, r)| *o = r + v),
            None => o.fill(v),
        }
    };
    match residual {
        Some(r) => with_f32(r, |r| {
            out.par_chunks_mut(n)
                .zip(r.par_chunks(n))
                .enumerate()
                .for_each(|(i, (o, r))| fill(o, i, Some(r)))
        })?,
        None => out.par_chunks_mut(n).enumerate().for_each(|(i, o)| fill(o, i, None)),
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    with_scratch(Scratch::Im2col, k * n, |cols| {
        with_f32(x, |input| {
            with_f32(weight, |wt| {
                for img in 0..b {
                    let src = &input[img * ci * h * w..(img + 1) * ci * h * w];
                    im2col(src, ci, h, w, stride, padding, ho, wo, cols);
                    // SAFETY: out[img] is [co, n]; wt is [co, k]; cols is [k, n].
                    unsafe {
                        product(
                            (co, n, k),
                            View::rows(out.as_mut_ptr().add(img * co * n), n),
                            true,
                            View::rows(wt.as_ptr(), k),
                            View::rows(cols.as_ptr(), n),
                            par,
                        );
                    }
                }
            })
        })
    })??;
    Tensor::from_vec(out, (b, co, ho, wo), &Device::Cpu)
}

/// Unrolls 3×3 patches: row (c·9 + ky·3 + kx) holds, for every output pixel, the input value
/// under that kernel tap (0 in the padding).
#[allow(clippy::too_many_arguments)]
fn im2col(
    src: &[f32],
    ci: usize,
    h: usize,
    w: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
    cols: &mut [f32],
) {
    let n = ho * wo;
    cols.par_chunks_mut(n).enumerate().take(ci * 9).for_each(|(row, dst)| {
        let (c, tap) = (row / 9, row % 9);
        let (ky, kx) = (tap / 3, tap % 3);
        let plane = &src[c * h * w..(c + 1) * h * w];
        for oy in 0..ho {
            let line = &mut dst[oy * wo..(oy + 1) * wo];
            let iy = (oy * stride + ky) as isize - pad as isize;
            if iy < 0 || iy >= h as isize {
                line.fill(0.0);
                continue;
            }
            let src_line = &plane[iy as usize * w..(iy as usize + 1) * w];
            for (ox, v) in line.iter_mut().enumerate() {
                let ix = (ox * stride + kx) as isize - pad as isize;
                *v = if ix >= 0 && ix < w as isize {
                    src_line[ix as usize]
                } else {
                    0.0
                };
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::max_abs_diff;

    #[test]
    fn matches_candle_convolution() {
        let dev = Device::Cpu;
        for &(b, ci, co, h, w, stride) in &[
            (2, 3, 5, 7, 9, 1),
            (1, 4, 6, 8, 8, 2),
            (2, 8, 4, 5, 3, 2),
            (1, 2, 3, 1, 1, 1),
        ] {
            let x = Tensor::randn(0f32, 1.0, (b, ci, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 0.3, (co, ci, 3, 3), &dev).unwrap();
            let bias = Tensor::randn(0f32, 0.1, co, &dev).unwrap();
            let ib = Tensor::randn(0f32, 0.1, (b, co), &dev).unwrap();
            let plain = x.conv2d(&wt, 1, stride, 1, 1).unwrap();
            let res = Tensor::randn(0f32, 1.0, plain.dims(), &dev).unwrap();
            let want = plain
                .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                .unwrap()
                .broadcast_add(&ib.reshape((b, co, 1, 1)).unwrap())
                .unwrap()
                .add(&res)
                .unwrap();
            let ours = conv3x3(&x, &wt, &bias, stride, 1, Some(&ib), Some(&res)).unwrap();
            let d = max_abs_diff(&ours, &want);
            assert!(d < 1e-4, "{b}x{ci}x{h}x{w} s{stride}: {d}");
        }
    }
    use std::ops::Add;
}
