//! 3×3 convolutions with any stride, as one matrix product for a group of images: their input
//! patches are unrolled (im2col) side by side into [Ci·9, images·Ho·Wo] and multiplied by the
//! kernel matrix [Co, Ci·9], which is so packed once per group instead of once per image. The
//! product is scattered back to NCHW with the bias, a per-image channel bias and a residual
//! added on the way. Used where Winograd does not pay (small images, strides).

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::{Scratch, View, check, parallelism, product, simd, uninit_vec, with_f32, with_opt_f32, with_scratch};

/// Bytes of unrolled patches one product may take.
const COLS_BYTES: usize = 128 << 20;

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
    convolve(x, weight, bias, stride, padding, image_bias, residual, COLS_BYTES)
}

/// [`conv3x3`] with at most `cols_bytes` of unrolled patches per product.
#[allow(clippy::too_many_arguments)]
fn convolve(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    image_bias: Option<&Tensor>,
    residual: Option<&Tensor>,
    cols_bytes: usize,
) -> candle_core::Result<Tensor> {
    const K: &str = "conv3x3";
    check::f32(K, "input", x)?;
    let (b, ci, h, w) = x.dims4()?;
    let co = check::rank(K, "weight", weight, 4)?[0];
    check::dims(K, "weight", weight, &[co, ci, 3, 3])?;
    check::dims(K, "bias", bias, &[co])?;
    check::that(K, stride > 0, || "stride 0".into())?;
    check::that(K, h + 2 * padding >= 3 && w + 2 * padding >= 3, || {
        format!("a {h}×{w} input with padding {padding} is smaller than the 3×3 kernel")
    })?;
    let ho = (h + 2 * padding - 3) / stride + 1;
    let wo = (w + 2 * padding - 3) / stride + 1;
    check::opt_dims(K, "image bias", image_bias, &[b, co])?;
    check::opt_dims(K, "residual", residual, &[b, co, ho, wo])?;
    let n = ho * wo;
    let k = ci * 9;
    let bias: Vec<f32> = bias.to_vec1()?;
    let image_bias: Option<Vec<f32>> = image_bias.map(|t| t.flatten_all()?.to_vec1()).transpose()?;
    let mut out = uninit_vec(b * co * n);
    // Images per product: all of them while their patches stay within `cols_bytes`, so the
    // kernel matrix is packed once for the batch rather than once per image.
    let group = (cols_bytes / (4 * k * n)).clamp(1, b);
    with_scratch(Scratch::Im2col, k * group * n, |cols| {
        with_scratch(Scratch::Im2colProduct, co * group * n, |product_buf| {
            with_f32(x, |input| {
                with_f32(weight, |wt| {
                    with_opt_f32(residual, |res| {
                        let mut img0 = 0;
                        while img0 < b {
                            let g = group.min(b - img0);
                            let width = g * n;
                            for i in 0..g {
                                let img = img0 + i;
                                let src = &input[img * ci * h * w..(img + 1) * ci * h * w];
                                im2col(
                                    src,
                                    ci,
                                    h,
                                    w,
                                    stride,
                                    padding,
                                    ho,
                                    wo,
                                    &mut cols[..k * width],
                                    width,
                                    i * n,
                                );
                            }
                            // SAFETY: product_buf is [co, width]; wt is [co, k]; cols is [k, width].
                            unsafe {
                                product(
                                    simd::cpu_level(),
                                    (co, width, k),
                                    View::rows(product_buf.as_mut_ptr(), width),
                                    false,
                                    View::rows(wt.as_ptr(), k),
                                    View::rows(cols.as_ptr(), width),
                                    parallelism(),
                                );
                            }
                            let span = img0 * co * n..(img0 + g) * co * n;
                            let terms = Terms {
                                bias: &bias,
                                image_bias: image_bias.as_deref(),
                                residual: res.map(|r| &r[span.clone()]),
                            };
                            scatter(&product_buf[..co * width], &mut out[span], img0, co, n, &terms);
                            img0 += g;
                        }
                    })
                })
            })
        })
    })???;
    Tensor::from_vec(out, (b, co, ho, wo), &Device::Cpu)
}

/// What is added to each output channel besides the product.
struct Terms<'a> {
    /// [Co].
    bias: &'a [f32],
    /// [B, Co] over the whole batch.
    image_bias: Option<&'a [f32]>,
    /// The group's residual, NCHW like `outputs`.
    residual: Option<&'a [f32]>,
}

/// Writes a group's products [Co][image][pixel] into `outputs` (NCHW, images `img0..`, `n`
/// pixels each), adding the bias terms and the residual.
fn scatter(products: &[f32], outputs: &mut [f32], img0: usize, co: usize, n: usize, terms: &Terms) {
    let width = products.len() / co;
    outputs.par_chunks_mut(n).enumerate().for_each(|(idx, o)| {
        let (i, ch) = (idx / co, idx % co);
        let add = terms.bias[ch] + terms.image_bias.map_or(0.0, |ib| ib[(img0 + i) * co + ch]);
        let p = &products[ch * width + i * n..ch * width + (i + 1) * n];
        match terms.residual {
            Some(r) => {
                let r = &r[idx * n..(idx + 1) * n];
                o.iter_mut().zip(p).zip(r).for_each(|((o, p), r)| *o = p + add + r);
            }
            None => o.iter_mut().zip(p).for_each(|(o, p)| *o = p + add),
        }
    });
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
    row_len: usize,
    col0: usize,
) {
    let n = ho * wo;
    cols.par_chunks_mut(row_len)
        .enumerate()
        .take(ci * 9)
        .for_each(|(row, dst)| {
            let dst = &mut dst[col0..col0 + n];
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
                // Output columns whose tap lands inside the row (ix = ox·stride + kx − pad in
                // 0..w): padding on either side, and a plain copy between at stride 1.
                let first = pad.saturating_sub(kx).div_ceil(stride).min(wo);
                let end = (w + pad).saturating_sub(kx).div_ceil(stride).clamp(first, wo);
                line[..first].fill(0.0);
                line[end..].fill(0.0);
                let ix0 = first * stride + kx - pad;
                if stride == 1 {
                    line[first..end].copy_from_slice(&src_line[ix0..ix0 + (end - first)]);
                } else {
                    for (v, ix) in line[first..end].iter_mut().zip((ix0..).step_by(stride)) {
                        *v = src_line[ix];
                    }
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
        // At every level this CPU can run, so the generic path and each vectorised one are
        // checked against the same reference.
        crate::model::cpu::simd::for_each_level(|_| {
            let dev = Device::Cpu;
            // Padding 1 and 0 (the VAE encoder pads its downsamplers itself), even and odd
            // sizes at stride 2, inputs narrower than the kernel's reach.
            for &(b, ci, co, h, w, stride, pad) in &[
                (2, 3, 5, 7, 9, 1, 1),
                (3, 3, 5, 7, 9, 1, 1),
                (1, 4, 6, 8, 8, 2, 1),
                (2, 8, 4, 5, 3, 2, 1),
                (1, 2, 3, 1, 1, 1, 1),
                (1, 3, 4, 9, 7, 2, 0),
                (2, 2, 3, 6, 10, 2, 0),
                (1, 3, 2, 5, 4, 1, 0),
                (1, 2, 2, 9, 11, 3, 1),
            ] {
                let x = Tensor::randn(0f32, 1.0, (b, ci, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 0.3, (co, ci, 3, 3), &dev).unwrap();
                let bias = Tensor::randn(0f32, 0.1, co, &dev).unwrap();
                let ib = Tensor::randn(0f32, 0.1, (b, co), &dev).unwrap();
                let plain = x.conv2d(&wt, pad, stride, 1, 1).unwrap();
                let res = Tensor::randn(0f32, 1.0, plain.dims(), &dev).unwrap();
                let want = plain
                    .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                    .unwrap()
                    .broadcast_add(&ib.reshape((b, co, 1, 1)).unwrap())
                    .unwrap()
                    .add(&res)
                    .unwrap();
                let ours = conv3x3(&x, &wt, &bias, stride, pad, Some(&ib), Some(&res)).unwrap();
                let d = max_abs_diff(&ours, &want);
                assert!(d < 1e-4, "{b}x{ci}x{h}x{w} s{stride} p{pad}: {d}");
                // One image per product (the path large inputs take), and no extra terms.
                let ours = convolve(&x, &wt, &bias, stride, pad, Some(&ib), Some(&res), 1).unwrap();
                let d = max_abs_diff(&ours, &want);
                assert!(d < 1e-4, "one image per product, {b}x{ci}x{h}x{w} s{stride}: {d}");
                let want_plain = plain.broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap()).unwrap();
                let ours = conv3x3(&x, &wt, &bias, stride, pad, None, None).unwrap();
                let d = max_abs_diff(&ours, &want_plain);
                assert!(d < 1e-4, "bias only, {b}x{ci}x{h}x{w} s{stride}: {d}");
            }
        });
    }
    use std::ops::Add;
}
