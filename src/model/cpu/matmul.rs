//! Matrix products with their neighbours fused in: a bias and a residual are written into
//! the destination first and the product is accumulated onto them (one pass over the output
//! instead of three), and the token⇄image layout changes around a transformer are folded
//! into the products' strides instead of being copied.

use candle_core::{Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{SendPtr, View, check, exp, parallelism, product, simd, streamed, uninit_vec, with_f32};

/// Below this many rows a product is split across threads by output columns.
const FEW_ROWS: usize = 256;

/// `x` [.., in] · `weight`ᵀ ([out, in]) + `bias` + `residual` ([.., out]).
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    const K: &str = "linear";
    check::f32(K, "input", x)?;
    check::that(K, x.rank() >= 1, || "input is a scalar".into())?;
    let dims = x.dims().to_vec();
    let in_dim = *dims.last().unwrap_or(&0);
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let out_dim = check::rank(K, "weight", weight, 2)?[0];
    check::dims(K, "weight", weight, &[out_dim, in_dim])?;
    check::opt_dims(K, "bias", bias, &[out_dim])?;
    let mut out_dims = dims;
    *out_dims.last_mut().expect("rank ≥ 1") = out_dim;
    check::opt_dims(K, "residual", residual, &out_dims)?;
    let mut out = uninit_vec(rows * out_dim);
    let read_dst = prefill(&mut out, out_dim, bias, residual)?;
    let level = simd::cpu_level();
    let threads = rayon::current_num_threads().max(1);
    with_f32(x, |x| {
        with_f32(weight, |w| {
            if rows < FEW_ROWS && streamed::available(level) {
                // Few rows (text encoders, the UNet's smallest levels): W is read in place
                // rather than repacked on every call.
                streamed::rows_times_weights(level, (rows, out_dim, in_dim), x, w, &mut out, read_dst);
            } else if rows < FEW_ROWS && threads > 1 {
                // Few rows (text encoders): give each thread its own band of output columns
                // (its own rows of W), rather than gemm's own split, which packs and
                // synchronises more than so small a product can pay for.
                let band = out_dim.div_ceil(threads).next_multiple_of(16);
                let dst = SendPtr(out.as_mut_ptr());
                (0..out_dim.div_ceil(band)).into_par_iter().for_each(|i| {
                    let n0 = i * band;
                    let n = band.min(out_dim - n0);
                    // SAFETY: each task writes only columns n0..n0+n of the output.
                    unsafe {
                        product(
                            level,
                            (rows, n, in_dim),
                            View::rows(dst.get().add(n0), out_dim),
                            read_dst,
                            View::rows(x.as_ptr(), in_dim),
                            View::cols(w[n0 * in_dim..].as_ptr(), in_dim),
                            Parallelism::None,
                        )
                    };
                });
            } else {
                // SAFETY: shapes as checked above; dst, lhs and rhs do not overlap.
                unsafe {
                    product(
                        level,
                        (rows, out_dim, in_dim),
                        View::rows(out.as_mut_ptr(), out_dim),
                        read_dst,
                        View::rows(x.as_ptr(), in_dim),
                        View::cols(w.as_ptr(), in_dim),
                        parallelism(),
                    )
                };
            }
        })
    })??;
    Tensor::from_vec(out, out_dims, &Device::Cpu)
}

/// Writes `residual + bias` (either may be absent) into `out`; returns whether anything was
/// written (then the product is accumulated onto it).
fn prefill(
    out: &mut [f32],
    width: usize,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
) -> candle_core::Result<bool> {
    let bias: Option<Vec<f32>> = bias.map(|b| b.to_vec1()).transpose()?;
    match (residual, &bias) {
        (Some(r), _) => with_f32(r, |r| {
            out.par_chunks_mut(width * 64)
                .zip(r.par_chunks(width * 64))
                .for_each(|(o, r)| {
                    o.copy_from_slice(r);
                    if let Some(b) = &bias {
                        for row in o.chunks_mut(width) {
                            row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                        }
                    }
                });
            true
        }),
        (None, Some(b)) => {
            out.par_chunks_mut(width * 64).for_each(|o| {
                for row in o.chunks_mut(width) {
                    row.copy_from_slice(b);
                }
            });
            Ok(true)
        }
        (None, None) => Ok(false),
    }
}

/// A 1×1 projection from image layout into tokens: `x` [B, Ci, H, W] → [B, H·W, Co] with
/// `weight` [Co, Ci] (a 1×1 conv's or a linear layer's) and `bias` [Co].
pub fn image_to_tokens(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    const K: &str = "image_to_tokens";
    check::f32(K, "input", x)?;
    let (b, ci, h, w) = x.dims4()?;
    let co = check::rank(K, "weight", weight, 2)?[0];
    check::dims(K, "weight", weight, &[co, ci])?;
    check::dims(K, "bias", bias, &[co])?;
    let hw = h * w;
    let mut out = uninit_vec(b * hw * co);
    prefill(&mut out, co, Some(bias), None)?;
    with_f32(x, |x| {
        with_f32(weight, |wt| {
            for img in 0..b {
                // tokens[img] (hw × co) = Xᵀ (hw × ci) · Wᵀ (ci × co); X is [ci, hw].
                unsafe {
                    product(
                        simd::cpu_level(),
                        (hw, co, ci),
                        View::rows(out.as_mut_ptr().add(img * hw * co), co),
                        true,
                        View::cols(x.as_ptr().add(img * ci * hw), hw),
                        View::cols(wt.as_ptr(), ci),
                        parallelism(),
                    );
                }
            }
        })
    })??;
    Tensor::from_vec(out, (b, hw, co), &Device::Cpu)
}

/// A 1×1 convolution: `x` [B, Ci, H, W], `weight` [Co, Ci], `bias` [Co] → [B, Co, H, W]
/// (the resnets' shortcut projections, the VAE's quant convs): one product per image in the
/// layout the activations have, at the kernels' CPU level.
pub fn conv1x1(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    const K: &str = "conv1x1";
    check::f32(K, "input", x)?;
    let (b, ci, h, w) = x.dims4()?;
    let co = check::rank(K, "weight", weight, 2)?[0];
    check::dims(K, "weight", weight, &[co, ci])?;
    check::dims(K, "bias", bias, &[co])?;
    let hw = h * w;
    let bias: Vec<f32> = bias.to_vec1()?;
    let mut out = uninit_vec(b * co * hw);
    out.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(i, o)| o.fill(bias[i % co]));
    with_f32(x, |x| {
        with_f32(weight, |wt| {
            // x[img] is ci × hw, row-major.
            // SAFETY: shapes as checked above; each image's view lies inside x.
            unsafe {
                add_weight_times_images(&mut out, wt, (b, co, hw, ci), |img| {
                    View::rows(x.as_ptr().add(img * ci * hw), hw)
                })
            }
        })
    })??;
    Tensor::from_vec(out, (b, co, h, w), &Device::Cpu)
}

/// `out[img]` (co × hw) += W (co × ci) · `image(img)` (ci × hw) for each of `b` images, at the
/// caller's CPU level.
///
/// # Safety
/// `out` holds `b · co · hw` floats, `wt` `co · ci`, and every `image(img)` is a valid
/// ci × hw view that does not overlap `out`.
unsafe fn add_weight_times_images(
    out: &mut [f32],
    wt: &[f32],
    (b, co, hw, ci): (usize, usize, usize, usize),
    image: impl Fn(usize) -> View<*const f32>,
) {
    let level = simd::cpu_level();
    for img in 0..b {
        // SAFETY: per this function's contract.
        unsafe {
            product(
                level,
                (co, hw, ci),
                View::rows(out.as_mut_ptr().add(img * co * hw), hw),
                true,
                View::rows(wt.as_ptr(), ci),
                image(img),
                parallelism(),
            );
        }
    }
}

/// The way back: `tokens` [B, H·W, Ci] → image [B, Co, H, W] = W·tokensᵀ + bias + `residual`.
pub fn tokens_to_image(
    tokens: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    residual: &Tensor,
) -> candle_core::Result<Tensor> {
    const K: &str = "tokens_to_image";
    check::f32(K, "residual", residual)?;
    let (b, co, h, w) = residual.dims4()?;
    let ci = check::rank(K, "tokens", tokens, 3)?[2];
    let hw = h * w;
    check::dims(K, "tokens", tokens, &[b, hw, ci])?;
    check::dims(K, "weight", weight, &[co, ci])?;
    check::dims(K, "bias", bias, &[co])?;
    let bias: Vec<f32> = bias.to_vec1()?;
    let mut out = uninit_vec(b * co * hw);
    with_f32(residual, |r| {
        out.par_chunks_mut(hw)
            .zip(r.par_chunks(hw))
            .enumerate()
            .for_each(|(i, (o, r))| {
                let bc = bias[i % co];
                o.iter_mut().zip(r).for_each(|(o, r)| *o = r + bc);
            })
    })?;
    with_f32(tokens, |t| {
        with_f32(weight, |wt| {
            // tokensᵀ[img] is ci × hw: tokens[img] [hw, ci] read by columns.
            // SAFETY: shapes as checked above; each image's view lies inside tokens.
            unsafe {
                add_weight_times_images(&mut out, wt, (b, co, hw, ci), |img| {
                    View::cols(t.as_ptr().add(img * hw * ci), ci)
                })
            }
        })
    })??;
    Tensor::from_vec(out, (b, co, h, w), &Device::Cpu)
}

/// CLIP's MLP activation in place of candle's op chain: quick GELU (`x·σ(1.702x)`) or the
/// exact GELU.
pub fn activation(h: &Tensor, quick: bool) -> candle_core::Result<Tensor> {
    let dims = h.dims().to_vec();
    let mut out = uninit_vec(h.elem_count());
    // Read on this thread and handed to the workers, so a scoped level covers them too.
    let level = simd::cpu_level();
    with_f32(h, |h| {
        out.par_chunks_mut(4096).zip(h.par_chunks(4096)).for_each(|(o, x)| {
            simd::vectorized!(level, {
                if quick {
                    o.iter_mut()
                        .zip(x)
                        .for_each(|(o, &x)| *o = x / (1.0 + exp::exp(-1.702 * x)));
                } else {
                    o.iter_mut().zip(x).for_each(|(o, &x)| *o = exp::gelu(x));
                }
            })
        })
    })?;
    Tensor::from_vec(out, dims, &Device::Cpu)
}

/// GEGLU's gate: `h` [.., 2·n] (plus `bias` [2·n], the projection's, when the product was
/// computed without it) → `(h + b)[.., :n] · gelu((h + b)[.., n:])` in one pass. Adding the bias
/// here saves the product a pass over its largest output.
pub fn geglu(h: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    const K: &str = "geglu";
    check::f32(K, "input", h)?;
    let dims = h.dims().to_vec();
    let two_n = *dims.last().unwrap_or(&0);
    check::that(K, !dims.is_empty() && two_n.is_multiple_of(2) && two_n > 0, || {
        format!("input has shape {dims:?}; its last dimension must be even and positive")
    })?;
    check::opt_dims(K, "bias", bias, &[two_n])?;
    let n = two_n / 2;
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let bias: Vec<f32> = match bias {
        Some(b) => b.to_vec1()?,
        None => vec![0.0; two_n],
    };
    let (value_bias, gate_bias) = bias.split_at(n);
    let mut out = uninit_vec(rows * n);
    let level = simd::cpu_level();
    with_f32(h, |h| {
        out.par_chunks_mut(n).zip(h.par_chunks(two_n)).for_each(|(o, row)| {
            let (value, gate) = row.split_at(n);
            simd::vectorized!(level, {
                let biased = value.iter().zip(value_bias).zip(gate.iter().zip(gate_bias));
                for (o, ((&v, &bv), (&g, &bg))) in o.iter_mut().zip(biased) {
                    *o = (v + bv) * exp::gelu(g + bg);
                }
            })
        })
    })?;
    let mut out_dims = dims;
    *out_dims.last_mut().expect("rank ≥ 1") = n;
    Tensor::from_vec(out, out_dims, &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::max_abs_diff;

    #[test]
    fn fused_products_match_plain_ops() {
        // At every level this CPU can run, so the generic path and each vectorised one are
        // checked against the same reference.
        crate::model::cpu::simd::for_each_level(|_| {
            let dev = Device::Cpu;
            let x = Tensor::randn(0f32, 1.0, (2, 5, 7), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (3, 7), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, 3, &dev).unwrap();
            let r = Tensor::randn(0f32, 1.0, (2, 5, 3), &dev).unwrap();
            let want = x.broadcast_matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            assert!(max_abs_diff(&linear(&x, &w, Some(&b), None).unwrap(), &want) < 1e-5);
            assert!(max_abs_diff(&linear(&x, &w, Some(&b), Some(&r)).unwrap(), &(&want + &r).unwrap()) < 1e-5);
            let want_nb = x.broadcast_matmul(&w.t().unwrap()).unwrap();
            assert!(max_abs_diff(&linear(&x, &w, None, None).unwrap(), &want_nb) < 1e-5);

            let img = Tensor::randn(0f32, 1.0, (2, 7, 3, 4), &dev).unwrap();
            let tokens = image_to_tokens(&img, &w, &b).unwrap();
            let want = img
                .reshape((2, 7, 12))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .broadcast_matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            assert!(max_abs_diff(&tokens, &want) < 1e-5);

            let w2 = Tensor::randn(0f32, 1.0, (7, 3), &dev).unwrap();
            let b2 = Tensor::randn(0f32, 1.0, 7, &dev).unwrap();
            let back = tokens_to_image(&tokens, &w2, &b2, &img).unwrap();
            let want = tokens
                .broadcast_matmul(&w2.t().unwrap())
                .unwrap()
                .broadcast_add(&b2)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .reshape((2, 7, 3, 4))
                .unwrap();
            assert!(max_abs_diff(&back, &(&want + &img).unwrap()) < 1e-5);

            let conv = conv1x1(&img, &w2.t().unwrap(), &b).unwrap();
            let want = img
                .conv2d(&w2.t().unwrap().reshape((3, 7, 1, 1)).unwrap(), 0, 1, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap())
                .unwrap();
            assert!(max_abs_diff(&conv, &want) < 1e-5);

            let h = Tensor::randn(0f32, 2.0, (2, 3, 8), &dev).unwrap();
            let want = (h.narrow(2, 0, 4).unwrap() * h.narrow(2, 4, 4).unwrap().gelu_erf().unwrap()).unwrap();
            assert!(max_abs_diff(&geglu(&h, None).unwrap(), &want) < 1e-5);
            let hb = Tensor::randn(0f32, 1.0, 8, &dev).unwrap();
            let biased = h.broadcast_add(&hb).unwrap();
            let want = (biased.narrow(2, 0, 4).unwrap() * biased.narrow(2, 4, 4).unwrap().gelu_erf().unwrap()).unwrap();
            assert!(max_abs_diff(&geglu(&h, Some(&hb)).unwrap(), &want) < 1e-5);
        });
    }
}
