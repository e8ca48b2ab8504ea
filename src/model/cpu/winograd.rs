//! 3×3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4×4, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each 4×4 block of output comes from a 6×6 block of input: the input and the kernel are
//! moved into a transform domain where the convolution is an element-wise product, which —
//! summed over input channels — is 36 independent matrix products. That needs 36
//! multiplications per 4×4 output per channel pair instead of 144, so the bulk of a Stable
//! Diffusion UNet or VAE (its 3×3 convolutions) costs about a quarter of the arithmetic.
//! In f32 the transforms add rounding of ~1e-6 relative, far below what 8-bit pixels show.

use candle_core::{Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{Scratch, SendPtr, View, check, product, simd, uninit_vec, with_f32, with_opt_f32, with_scratch};

/// Transformed tiles kept per batch of work (bounds memory at high resolution).
const CHUNK_BYTES: usize = 24 << 20;

/// `x` [B, Ci, H, W], `weight` [Co, Ci, 3, 3], `bias` [Co]: contiguous f32 on the CPU.
/// `image_bias` [B, Co] (a resnet's time embedding) and `residual` [B, Co, H, W] (its
/// shortcut) are added while the output is written, saving two passes over it.
pub fn conv3x3(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    image_bias: Option<&Tensor>,
    residual: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    const K: &str = "conv3x3 (Winograd)";
    check::f32(K, "input", x)?;
    let (b, ci, h, w) = x.dims4()?;
    let co = check::rank(K, "weight", weight, 4)?[0];
    check::dims(K, "weight", weight, &[co, ci, 3, 3])?;
    check::dims(K, "bias", bias, &[co])?;
    check::that(K, ci > 0 && co > 0, || format!("{ci} input and {co} output channels"))?;
    check::opt_dims(K, "image bias", image_bias, &[b, co])?;
    check::opt_dims(K, "residual", residual, &[b, co, h, w])?;
    let bias: Vec<f32> = bias.to_vec1()?;
    // One bias per (image, output channel).
    let bias: Vec<f32> = match image_bias {
        Some(t) => {
            let per_image: Vec<f32> = t.flatten_all()?.to_vec1()?;
            per_image.iter().enumerate().map(|(i, v)| v + bias[i % co]).collect()
        }
        None => (0..b).flat_map(|_| bias.iter().copied()).collect(),
    };
    with_scratch(
        Scratch::WinogradWeights,
        36 * ci * co,
        |u| -> candle_core::Result<Tensor> {
            with_f32(weight, |wt| transform_weights(wt, co, ci, u))?;
            conv_with_weights(x, u, &bias, residual)
        },
    )
}

fn conv_with_weights(x: &Tensor, u: &[f32], bias: &[f32], residual: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let (b, ci, h, w) = x.dims4()?;
    let co = u.len() / (36 * ci);
    let (th, tw) = (h.div_ceil(4), w.div_ceil(4));
    let tiles_per_image = th * tw;
    let total_tiles = b * tiles_per_image;
    let chunk = (CHUNK_BYTES / (36 * 4 * ci.max(co))).clamp(16, total_tiles.max(16));
    let mut out = uninit_vec(b * co * h * w);
    with_f32(x, |input| {
        with_opt_f32(residual, |res_slice| {
            with_scratch(Scratch::WinogradTiles, 36 * ci * chunk, |v| {
                with_scratch(Scratch::WinogradProducts, 36 * co * chunk, |m| {
                    let mut start = 0;
                    while start < total_tiles {
                        let tc = chunk.min(total_tiles - start);
                        let geom = Geometry {
                            h,
                            w,
                            tw,
                            tiles_per_image,
                            start,
                            tc,
                        };
                        input_transform(input, ci, &geom, &mut v[..36 * ci * tc]);
                        multiply(&v[..36 * ci * tc], u, &mut m[..36 * co * tc], ci, co, tc);
                        output_transform(&m[..36 * co * tc], bias, res_slice, co, &geom, &mut out);
                        start += tc;
                    }
                })
            })
        })
    })??;
    Tensor::from_vec(out, (b, co, h, w), &Device::Cpu)
}

/// Which tiles a chunk covers and where they sit.
struct Geometry {
    h: usize,
    w: usize,
    tw: usize,
    tiles_per_image: usize,
    /// First global tile (image-major) of the chunk, and how many.
    start: usize,
    tc: usize,
}

impl Geometry {
    /// (image, tile row, tile column) of the chunk's `t`-th tile.
    fn tile(&self, t: usize) -> (usize, usize, usize) {
        let g = self.start + t;
        let (img, r) = (g / self.tiles_per_image, g % self.tiles_per_image);
        (img, r / self.tw, r % self.tw)
    }
}

/// U[p][ci][co] = (G g Gᵀ)[p] for every kernel g = weight[co][ci]. Recomputed on every
/// call rather than cached: caching would hold four times the 3×3 weights in memory, while
/// the transform costs about 1–2 % of the convolution it serves.
fn transform_weights(wt: &[f32], co: usize, ci: usize, u: &mut [f32]) {
    // Blocks of 16 output channels, one per SIMD lane: kernels are read in storage order
    // (co-major, ci inner) and each U row segment written is 16 contiguous values.
    let u_ptr = SendPtr(u.as_mut_ptr());
    // Read on this thread and handed to the workers, so a scoped level covers them too.
    let level = simd::cpu_level();
    (0..co.div_ceil(LANES)).into_par_iter().for_each(|blk| {
        let o0 = blk * LANES;
        let n = LANES.min(co - o0);
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: the level's features are present (`cpu_level` never exceeds the
            // detected level); this block writes only its own U columns.
            simd::Level::Avx512 => return unsafe { transform_block_avx512(wt, ci, co, o0, n, u_ptr) },
            simd::Level::Avx2 => return unsafe { transform_block_avx2(wt, ci, co, o0, n, u_ptr) },
            simd::Level::Baseline => {}
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = level;
        // SAFETY: as above.
        unsafe { transform_block(wt, ci, co, o0, n, u_ptr, store_block) };
    });
}

const LANES: usize = 16;

/// Writes the first `n` of 16 lane values to `dst` (a whole block as one vector store: a
/// variable-length copy compiles to a `memcpy` call per block). Callers guarantee that `dst`
/// holds `n` values only they write.
#[inline(always)]
fn store_block(dst: *mut f32, vals: &[f32; LANES], n: usize) {
    // SAFETY: per the callers' guarantee above.
    unsafe {
        if n == LANES {
            (dst as *mut [f32; LANES]).write_unaligned(*vals);
        } else {
            std::slice::from_raw_parts_mut(dst, n).copy_from_slice(&vals[..n]);
        }
    }
}

/// [`transform_block`] writing U with streaming stores: U (tens of MB, read back only after
/// the whole transform) would otherwise be read line by line before every write, which made
/// these writes most of the transform's time. `stream` stores one whole block to an address
/// `align`-byte aligned, which whole blocks of an aligned U are; the rest is stored plainly.
///
/// # Safety
/// As [`transform_block`]; `stream` must be safe to call on such an address.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transform_block_streamed(
    wt: &[f32],
    (ci, co, o0, n): (usize, usize, usize, usize),
    u: SendPtr,
    align: usize,
    stream: impl Fn(*mut f32, &[f32; LANES]),
) {
    let aligned = (u.get() as usize).is_multiple_of(align) && co.is_multiple_of(LANES);
    let store = |dst: *mut f32, vals: &[f32; LANES], n: usize| {
        if n == LANES && aligned {
            stream(dst, vals)
        } else {
            store_block(dst, vals, n)
        }
    };
    unsafe {
        transform_block(wt, ci, co, o0, n, u, store);
        // Streaming stores are weakly ordered: fence before the pool hands U to other threads.
        std::arch::x86_64::_mm_sfence();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_block_avx512(wt: &[f32], ci: usize, co: usize, o0: usize, n: usize, u: SendPtr) {
    use std::arch::x86_64::{_mm512_loadu_ps, _mm512_stream_ps};
    // SAFETY: AVX-512F is enabled here; the rest per this function's caller.
    unsafe {
        transform_block_streamed(wt, (ci, co, o0, n), u, 64, |dst, vals| {
            _mm512_stream_ps(dst, _mm512_loadu_ps(vals.as_ptr()))
        })
    }
}

/// [`transform_block_avx512`] at AVX2 width: two 8-lane streaming stores per block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_block_avx2(wt: &[f32], ci: usize, co: usize, o0: usize, n: usize, u: SendPtr) {
    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_stream_ps};
    // SAFETY: AVX is enabled here; the rest per this function's caller.
    unsafe {
        transform_block_streamed(wt, (ci, co, o0, n), u, 32, |dst, vals| {
            _mm256_stream_ps(dst, _mm256_loadu_ps(vals.as_ptr()));
            _mm256_stream_ps(dst.add(8), _mm256_loadu_ps(vals.as_ptr().add(8)));
        })
    }
}

/// G g Gᵀ for up to 16 kernels at once, lane k holding kernel (o0 + k, i): written over
/// lane arrays so the compiler turns each step into one vector instruction.
///
/// # Safety
/// `u` must point to U ([36][ci][co]) and no one else may write columns o0..o0+n.
#[inline(always)]
unsafe fn transform_block(
    wt: &[f32],
    ci: usize,
    co: usize,
    o0: usize,
    n: usize,
    u: SendPtr,
    store: impl Fn(*mut f32, &[f32; LANES], usize),
) {
    type V = [f32; LANES];
    #[inline(always)]
    fn lanes(f: impl Fn(usize) -> f32) -> V {
        std::array::from_fn(f)
    }
    #[inline(always)]
    fn g6(a: &V, b: &V, c: &V) -> [V; 6] {
        let s = lanes(|l| (a[l] + c[l]) * (-1.0 / 6.0));
        let t = lanes(|l| a[l] * (1.0 / 24.0) + c[l] * (1.0 / 6.0));
        [
            lanes(|l| a[l] * 0.25),
            lanes(|l| s[l] - b[l] * (1.0 / 6.0)),
            lanes(|l| s[l] + b[l] * (1.0 / 6.0)),
            lanes(|l| t[l] + b[l] * (1.0 / 12.0)),
            lanes(|l| t[l] - b[l] * (1.0 / 12.0)),
            *c,
        ]
    }
    for i in 0..ci {
        let mut g = [[0f32; LANES]; 9];
        for k in 0..n {
            let at = ((o0 + k) * ci + i) * 9;
            for (tap, gt) in g.iter_mut().enumerate() {
                gt[k] = wt[at + tap];
            }
        }
        let cols = [
            g6(&g[0], &g[3], &g[6]),
            g6(&g[1], &g[4], &g[7]),
            g6(&g[2], &g[5], &g[8]),
        ];
        for (r, ((c0, c1), c2)) in cols[0].iter().zip(&cols[1]).zip(&cols[2]).enumerate() {
            let row = g6(c0, c1, c2);
            for (c, vals) in row.iter().enumerate() {
                let p = r * 6 + c;
                // SAFETY: per this function's contract.
                store(unsafe { u.get().add((p * ci + i) * co + o0) }, vals, n);
            }
        }
    }
}

/// Bᵀ applied to six values (one column or row of a 6×6 tile).
#[inline(always)]
fn bt6(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * d[1] - 4.0 * d[2] + d[3] + d[4],
        4.0 * d[1] - 4.0 * d[2] - d[3] + d[4],
        -2.0 * d[1] - d[2] + 2.0 * d[3] + d[4],
        2.0 * d[1] - d[2] - 2.0 * d[3] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// Aᵀ applied to six values.
#[inline(always)]
fn at6(m: [f32; 6]) -> [f32; 4] {
    [
        m[0] + m[1] + m[2] + m[3] + m[4],
        m[1] - m[2] + 2.0 * (m[3] - m[4]),
        m[1] + m[2] + 4.0 * (m[3] + m[4]),
        m[1] - m[2] + 8.0 * (m[3] - m[4]) + m[5],
    ]
}

/// V[p][ci][t] = (Bᵀ d B)[p] for the 6×6 input patch d of tile t (zero outside the image).
fn input_transform(input: &[f32], ci: usize, g: &Geometry, v: &mut [f32]) {
    // Parallel over channels: channel c owns V[·][c][·].
    let v_ptr = SendPtr(v.as_mut_ptr());
    let level = simd::cpu_level();
    (0..ci)
        .into_par_iter()
        .for_each(|c| simd::vectorized!(level, input_channel(input, ci, c, g, v_ptr)));
}

/// Values of one position for [`LANES`] consecutive tiles, lane l holding tile t0 + l: the
/// transforms are written over these so each arithmetic step is one vector instruction.
type Lanes = [f32; LANES];

/// A 6-value transform ([`bt6`], [`at6`]) applied to each lane of six lane vectors.
#[inline(always)]
fn lanewise<const M: usize>(transform: impl Fn([f32; 6]) -> [f32; M], d: [&Lanes; 6]) -> [Lanes; M] {
    let mut out = [[0f32; LANES]; M];
    for l in 0..LANES {
        let r = transform([d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]]);
        for (o, v) in out.iter_mut().zip(r) {
            o[l] = v;
        }
    }
    out
}

#[inline(always)]
fn input_channel(input: &[f32], ci: usize, c: usize, g: &Geometry, v_ptr: SendPtr) {
    let plane = g.h * g.w;
    let mut t0 = 0;
    while t0 < g.tc {
        let n = LANES.min(g.tc - t0);
        // d[r][k][l]: the patch of tile t0 + l.
        let mut d = [[[0f32; LANES]; 6]; 6];
        for l in 0..n {
            let (img, ty, tx) = g.tile(t0 + l);
            let src = &input[(img * ci + c) * plane..(img * ci + c + 1) * plane];
            let (y0, x0) = (4 * ty as isize - 1, 4 * tx as isize - 1);
            for (r, row) in d.iter_mut().enumerate() {
                let y = y0 + r as isize;
                if y < 0 || y >= g.h as isize {
                    continue;
                }
                let line = &src[y as usize * g.w..(y as usize + 1) * g.w];
                for (k, val) in row.iter_mut().enumerate() {
                    let x = x0 + k as isize;
                    if x >= 0 && x < g.w as isize {
                        val[l] = line[x as usize];
                    }
                }
            }
        }
        // Bᵀ d: columns, then (Bᵀ d) B: rows.
        let mut cols = [[[0f32; LANES]; 6]; 6];
        for k in 0..6 {
            let col = lanewise(bt6, [&d[0][k], &d[1][k], &d[2][k], &d[3][k], &d[4][k], &d[5][k]]);
            for (r, v) in col.into_iter().enumerate() {
                cols[r][k] = v;
            }
        }
        for (r, row) in cols.iter().enumerate() {
            let out = lanewise(bt6, [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]);
            for (k, vals) in out.iter().enumerate() {
                let p = r * 6 + k;
                // SAFETY: p < 36, c < ci, t0 + n ≤ tc: inside v; channel c is written by one
                // task.
                store_block(unsafe { v_ptr.get().add((p * ci + c) * g.tc + t0) }, vals, n);
            }
        }
        t0 += n;
    }
}

/// M[p][co][t] = Σ_ci V[p][ci][t] · U[p][ci][co] for the 36 positions.
fn multiply(v: &[f32], u: &[f32], m: &mut [f32], ci: usize, co: usize, tc: usize) {
    let m_ptr = SendPtr(m.as_mut_ptr());
    // Read here: the products run on rayon's threads, which do not see a scoped level.
    let level = simd::cpu_level();
    (0..36).into_par_iter().for_each(|p| {
        // SAFETY: position p reads V[p], U[p] and writes M[p] only.
        unsafe {
            product(
                level,
                (tc, co, ci),
                View::cols(m_ptr.get().add(p * co * tc), tc),
                false,
                View::cols(v.as_ptr().add(p * ci * tc), tc),
                View::rows(u.as_ptr().add(p * ci * co), co),
                Parallelism::None,
            );
        }
    });
}

/// out[img][co][4ty+i][4tx+j] = (Aᵀ M A)[i][j] + bias[img][co] (+ residual), clipped at the
/// image border.
fn output_transform(m: &[f32], bias: &[f32], residual: Option<&[f32]>, co: usize, g: &Geometry, out: &mut [f32]) {
    let out_ptr = SendPtr(out.as_mut_ptr());
    let level = simd::cpu_level();
    (0..co)
        .into_par_iter()
        .for_each(|o| simd::vectorized!(level, output_channel(m, bias, residual, co, o, g, out_ptr)));
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn output_channel(
    m: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    co: usize,
    o: usize,
    g: &Geometry,
    out_ptr: SendPtr,
) {
    let plane = g.h * g.w;
    let mut t0 = 0;
    while t0 < g.tc {
        let n = LANES.min(g.tc - t0);
        // tile[p][l] = M[p][o][t0 + l].
        let mut tile = [[0f32; LANES]; 36];
        for (p, vals) in tile.iter_mut().enumerate() {
            let at = (p * co + o) * g.tc + t0;
            if n == LANES {
                // A fixed-size copy is one vector move; a variable-length one is a memcpy call.
                *vals = m[at..at + LANES].try_into().expect("LANES values");
            } else {
                vals[..n].copy_from_slice(&m[at..at + n]);
            }
        }
        // Aᵀ M: columns → 4×6, then (Aᵀ M) A: rows → 4×4.
        let mut rows = [[[0f32; LANES]; 6]; 4];
        for k in 0..6 {
            let col = lanewise(
                at6,
                [
                    &tile[k],
                    &tile[6 + k],
                    &tile[12 + k],
                    &tile[18 + k],
                    &tile[24 + k],
                    &tile[30 + k],
                ],
            );
            for (r, v) in col.into_iter().enumerate() {
                rows[r][k] = v;
            }
        }
        let block: [[Lanes; 4]; 4] = std::array::from_fn(|i| {
            lanewise(
                at6,
                [
                    &rows[i][0],
                    &rows[i][1],
                    &rows[i][2],
                    &rows[i][3],
                    &rows[i][4],
                    &rows[i][5],
                ],
            )
        });
        for l in 0..n {
            let (img, ty, tx) = g.tile(t0 + l);
            let base = (img * co + o) * plane;
            let add = bias[img * co + o];
            for (i, row) in block.iter().enumerate() {
                let y = 4 * ty + i;
                if y >= g.h {
                    break;
                }
                for (j, vals) in row.iter().enumerate() {
                    let x = 4 * tx + j;
                    if x >= g.w {
                        break;
                    }
                    let at = base + y * g.w + x;
                    let extra = residual.map_or(0.0, |r| r[at]);
                    // SAFETY: inside the image; output channel o is written by one task.
                    unsafe { *out_ptr.get().add(at) = vals[l] + add + extra };
                }
            }
        }
        t0 += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::{max_abs, max_abs_diff};
    use std::ops::Add;

    #[test]
    fn matches_direct_convolution() {
        // At every level this CPU can run, so the generic path and each vectorised one are
        // checked against the same reference.
        crate::model::cpu::simd::for_each_level(|_| {
            let dev = Device::Cpu;
            // Output channels in whole blocks of 16 (streamed weight transform), partial blocks, both.
            for &(b, ci, co, h, w) in &[
                (1, 3, 5, 7, 9),
                (2, 16, 8, 16, 16),
                (1, 4, 4, 1, 1),
                (1, 8, 12, 13, 4),
                (1, 8, 32, 12, 12),
                (2, 5, 48, 9, 10),
                (1, 6, 40, 8, 8),
            ] {
                let x = Tensor::randn(0f32, 1.0, (b, ci, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 0.3, (co, ci, 3, 3), &dev).unwrap();
                let bias = Tensor::randn(0f32, 0.1, co, &dev).unwrap();
                let image_bias = Tensor::randn(0f32, 0.1, (b, co), &dev).unwrap();
                let residual = Tensor::randn(0f32, 1.0, (b, co, h, w), &dev).unwrap();
                let ours = conv3x3(&x, &wt, &bias, Some(&image_bias), Some(&residual)).unwrap();
                let want = x
                    .conv2d(&wt, 1, 1, 1, 1)
                    .unwrap()
                    .broadcast_add(&bias.reshape((1, co, 1, 1)).unwrap())
                    .unwrap()
                    .broadcast_add(&image_bias.reshape((b, co, 1, 1)).unwrap())
                    .unwrap()
                    .add(&residual)
                    .unwrap();
                let diff = max_abs_diff(&ours, &want);
                let scale = max_abs(&want);
                assert!(
                    diff <= 1e-5 * scale.max(1.0),
                    "{b}x{ci}x{h}x{w}→{co}: diff {diff} scale {scale}"
                );
            }
        });
    }
}
