//! Multi-head attention on the CPU without materialising the whole score matrix: queries are
//! taken in blocks, each block's scores (block × keys) stay in a cache-sized buffer, go
//! through the softmax and straight into the product with V. Q, K and V are read in the
//! [batch, tokens, heads·dim] layout the projections produce, and the result is written in
//! the same layout, so no transposes or copies happen around it.

use candle_core::{Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{SendPtr, View, check, exp, product, uninit_vec, with_f32};

/// Bytes of scores one task keeps (fits in L2 alongside its K and V panels).
const SCORE_BLOCK_BYTES: usize = 512 << 10;

/// `q` [B, Nq, H·D], `k`/`v` [B, Nk, H·D] (contiguous f32, CPU) → [B, Nq, H·D].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f32) -> candle_core::Result<Tensor> {
    attention_masked(q, k, v, heads, scale, false)
}

/// As [`attention`]; with `causal`, query i sees keys 0..=i only (CLIP's text encoder).
pub fn attention_masked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    causal: bool,
) -> candle_core::Result<Tensor> {
    const K: &str = "attention";
    check::f32(K, "q", q)?;
    let (b, nq, hd) = q.dims3()?;
    let nk = check::rank(K, "k", k, 3)?[1];
    check::dims(K, "k", k, &[b, nk, hd])?;
    check::dims(K, "v", v, &[b, nk, hd])?;
    check::that(K, heads > 0 && hd % heads == 0, || {
        format!("{heads} heads do not divide the width {hd}")
    })?;
    check::that(K, nk > 0, || "no keys".into())?;
    check::that(K, !causal || nq == nk, || {
        format!("causal attention needs as many queries as keys, got {nq} and {nk}")
    })?;
    #[cfg(target_arch = "x86_64")]
    {
        use super::simd::Level;
        match super::simd::cpu_level() {
            Level::Avx512 => return attention_blocked(q, k, v, heads, scale, causal, &AVX512),
            Level::Avx2 => return attention_blocked(q, k, v, heads, scale, causal, &AVX2),
            Level::Baseline => {}
        }
    }
    attention_gemm(q, k, v, heads, scale, causal)
}

/// The layout of Kᵀ the register-blocked kernels read: per (batch, head), panels of [`PANEL`]
/// keys, [Nk/32][D][32] (zero-padded), so the score loop reads one contiguous panel instead of
/// D rows 16 KB apart that all fall in the same L1 cache set.
#[cfg(target_arch = "x86_64")]
pub(crate) mod panels {
    /// Keys per panel of Kᵀ.
    pub const PANEL: usize = 32;

    /// Floats of Kᵀ panels for `nk` keys of dimension `d`.
    pub fn panel_len(nk: usize, d: usize) -> usize {
        nk.div_ceil(PANEL) * PANEL * d
    }

    /// Row stride of the scores scratch: padded off a power of two, so the rows of a block do
    /// not all map to one cache set (and long enough for whole panels of scores).
    pub fn score_stride(nk: usize) -> usize {
        nk.div_ceil(PANEL) * PANEL + 16
    }

    /// Writes key `j` (`d` floats) into the panel layout of Kᵀ.
    pub fn put_key(kt: &mut [f32], d: usize, j: usize, key: &[f32]) {
        let base = (j / PANEL) * d * PANEL + j % PANEL;
        for (dd, &x) in key.iter().enumerate() {
            kt[base + dd * PANEL] = x;
        }
    }
}

/// A register-blocked kernel: how many query rows one call takes, and the call.
#[cfg(target_arch = "x86_64")]
struct Kernel {
    rows: usize,
    block: BlockFn,
}

/// The signature of [`super::attention_avx512::block`] and [`super::attention_avx2::block`].
#[cfg(target_arch = "x86_64")]
type BlockFn = unsafe fn(&Block, &mut [f32]);

/// One block of query rows of one head, as the register-blocked kernels take it (with a
/// scratch of `ROWS · score_stride(nk)` floats for the scores).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    /// The first query row; rows are `q_rs` floats apart, each `d` long.
    pub q: *const f32,
    pub q_rs: usize,
    /// Query rows in the block: at most the kernel's `ROWS`.
    pub rows: usize,
    /// Kᵀ in panels ([`panels::put_key`], padding zeroed) and V as [nk][d].
    pub kt: &'a [f32],
    pub v: &'a [f32],
    pub nk: usize,
    pub d: usize,
    pub scale: f32,
    /// Causal masking: the block's first row sees keys `..hide_from`, each next row one
    /// more; `None` shows every key.
    pub hide_from: Option<usize>,
    /// The first output row; rows are `o_rs` floats apart.
    pub out: *mut f32,
    pub o_rs: usize,
}

#[cfg(target_arch = "x86_64")]
const AVX512: Kernel = Kernel {
    rows: super::attention_avx512::ROWS,
    block: super::attention_avx512::block,
};

#[cfg(target_arch = "x86_64")]
const AVX2: Kernel = Kernel {
    rows: super::attention_avx2::ROWS,
    block: super::attention_avx2::block,
};

/// Query-row blocks of the kernel one task takes.
#[cfg(target_arch = "x86_64")]
const BLOCKS_PER_TASK: usize = 8;

/// The register-blocked kernels' driver: Kᵀ and V copied per (batch, head) into the layout
/// the kernel reads, then tasks of a few row blocks each.
#[cfg(target_arch = "x86_64")]
fn attention_blocked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    causal: bool,
    kernel: &Kernel,
) -> candle_core::Result<Tensor> {
    use panels::{PANEL, panel_len, put_key, score_stride};
    let (b, nq, hd) = q.dims3()?;
    let (_, nk, _) = k.dims3()?;
    let d = hd / heads;
    let kt_len = panel_len(nk, d);
    // Kᵀ in panels and V [nk][d] per (batch, head), contiguous for the kernel.
    let (kt, vv) = with_f32(k, |k| {
        with_f32(v, |v| {
            let mut kt = uninit_vec(b * heads * kt_len);
            let mut vv = uninit_vec(b * heads * nk * d);
            kt.par_chunks_mut(kt_len)
                .zip(vv.par_chunks_mut(nk * d))
                .enumerate()
                .for_each(|(bh, (kt, vv))| {
                    let (bi, hi) = (bh / heads, bh % heads);
                    // The last panel's padding keys score 0 and are masked out by the kernel.
                    kt[(nk / PANEL) * PANEL * d..].fill(0.0);
                    for j in 0..nk {
                        let at = (bi * nk + j) * hd + hi * d;
                        put_key(kt, d, j, &k[at..at + d]);
                        vv[j * d..(j + 1) * d].copy_from_slice(&v[at..at + d]);
                    }
                });
            (kt, vv)
        })
    })??;
    let mut out = uninit_vec(b * nq * hd);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let rows_per_task = kernel.rows * BLOCKS_PER_TASK;
    let chunks = nq.div_ceil(rows_per_task);
    with_f32(q, |q| {
        (0..b * heads * chunks).into_par_iter().for_each_init(
            || uninit_vec(kernel.rows * score_stride(nk)),
            |scores, task| {
                let (bh, chunk) = (task / chunks, task % chunks);
                let (bi, hi) = (bh / heads, bh % heads);
                let kt = &kt[bh * kt_len..(bh + 1) * kt_len];
                let vv = &vv[bh * nk * d..(bh + 1) * nk * d];
                let end = ((chunk + 1) * rows_per_task).min(nq);
                let mut r0 = chunk * rows_per_task;
                while r0 < end {
                    let rows = kernel.rows.min(end - r0);
                    let at = (bi * nq + r0) * hd + hi * d;
                    // SAFETY: the kernel's features were checked by the caller (`cpu_level`);
                    // rows r0..r0+rows of this head lie inside q and out, and each task
                    // writes only its own rows.
                    unsafe {
                        let block = Block {
                            q: q.as_ptr().add(at),
                            q_rs: hd,
                            rows,
                            kt,
                            v: vv,
                            nk,
                            d,
                            scale,
                            hide_from: causal.then_some(r0 + 1),
                            out: out_ptr.get().add(at),
                            o_rs: hd,
                        };
                        (kernel.block)(&block, scores);
                    }
                    r0 += rows;
                }
            },
        );
    })?;
    Tensor::from_vec(out, (b, nq, hd), &Device::Cpu)
}

/// The portable version: blocks of queries through two general matrix products.
fn attention_gemm(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f32,
    causal: bool,
) -> candle_core::Result<Tensor> {
    let (b, nq, hd) = q.dims3()?;
    let (_, nk, _) = k.dims3()?;
    let d = hd / heads;
    let level = super::simd::cpu_level();
    let block = (SCORE_BLOCK_BYTES / (4 * nk)).clamp(8, nq.max(8));
    let blocks_per_head = nq.div_ceil(block);
    let mut out = uninit_vec(b * nq * hd);
    let out_ptr = SendPtr(out.as_mut_ptr());
    with_f32(q, |q| {
        with_f32(k, |k| {
            with_f32(v, |v| {
                (0..b * heads * blocks_per_head)
                    .into_par_iter()
                    .with_min_len(4)
                    .for_each_init(
                        || (uninit_vec(block * nk), vec![0f32; block]),
                        |(scores, sums), task| {
                            let (bh, qb) = (task / blocks_per_head, task % blocks_per_head);
                            let (bi, hi) = (bh / heads, bh % heads);
                            let q0 = qb * block;
                            let rows = block.min(nq - q0);
                            let q_base = (bi * nq + q0) * hd + hi * d;
                            let kv_base = bi * nk * hd + hi * d;
                            let s = &mut scores[..rows * nk];
                            // SAFETY: every slice offset below stays inside q/k/v/out (dims checked
                            // by the caller's shapes); tasks write disjoint (rows × head) regions.
                            unsafe {
                                // S = Q_block · Kᵀ  (rows × nk), row-major.
                                product(
                                    level,
                                    (rows, nk, d),
                                    View::rows(s.as_mut_ptr(), nk),
                                    false,
                                    View::rows(q.as_ptr().add(q_base), hd),
                                    View::cols(k.as_ptr().add(kv_base), hd),
                                    Parallelism::None,
                                );
                            }
                            if causal {
                                for (r, row) in s.chunks_mut(nk).enumerate() {
                                    row.iter_mut().skip(q0 + r + 1).for_each(|x| *x = f32::NEG_INFINITY);
                                }
                            }
                            for (row, sum) in s.chunks_mut(nk).zip(sums.iter_mut()) {
                                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                                let mut total = 0f32;
                                for x in row.iter_mut() {
                                    let e = exp::exp((*x - max) * scale);
                                    *x = e;
                                    total += e;
                                }
                                *sum = total;
                            }
                            unsafe {
                                // O = P · V  (rows × d), written into the output's head columns.
                                let dst = out_ptr.get().add(q_base);
                                product(
                                    level,
                                    (rows, d, nk),
                                    View::rows(dst, hd),
                                    false,
                                    View::rows(s.as_ptr(), nk),
                                    View::rows(v.as_ptr().add(kv_base), hd),
                                    Parallelism::None,
                                );
                                for (r, sum) in sums[..rows].iter().enumerate() {
                                    let row = std::slice::from_raw_parts_mut(dst.add(r * hd), d);
                                    let inv = 1.0 / sum;
                                    row.iter_mut().for_each(|x| *x *= inv);
                                }
                            }
                        },
                    );
            })
        })
    })???;
    Tensor::from_vec(out, (b, nq, hd), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::max_abs_diff;

    #[test]
    fn both_kernels_match_plain_attention() {
        // At every level this CPU can run, so the generic path and each vectorised one are
        // checked against the same reference.
        crate::model::cpu::simd::for_each_level(|_| {
            let dev = Device::Cpu;
            for &(b, nq, nk, heads, d) in &[
                (2, 37, 77, 2, 40),
                (1, 20, 20, 1, 64),
                (2, 9, 33, 3, 8),
                // Head sizes that are not whole vectors, at and past one vector.
                (1, 13, 29, 2, 12),
                (2, 7, 50, 2, 20),
                (1, 64, 130, 2, 160),
                (1, 20, 40, 2, 80),
                // Several row blocks per task and a causal mask over them.
                (1, 150, 150, 2, 40),
                (2, 300, 333, 2, 48),
            ] {
                let q = Tensor::randn(0f32, 1.0, (b, nq, heads * d), &dev).unwrap();
                let k = Tensor::randn(0f32, 1.0, (b, nk, heads * d), &dev).unwrap();
                let v = Tensor::randn(0f32, 1.0, (b, nk, heads * d), &dev).unwrap();
                let scale = (d as f32).powf(-0.5);
                let split = |t: &Tensor, n| {
                    t.reshape((b, n, heads, d))
                        .unwrap()
                        .transpose(1, 2)
                        .unwrap()
                        .contiguous()
                        .unwrap()
                };
                let (qs, ks, vs) = (split(&q, nq), split(&k, nk), split(&v, nk));
                let p =
                    candle_nn::ops::softmax_last_dim(&(qs.matmul(&ks.t().unwrap()).unwrap() * scale as f64).unwrap())
                        .unwrap();
                let want = p
                    .matmul(&vs)
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .reshape((b, nq, heads * d))
                    .unwrap();
                let check = |got: Tensor, what: &str| {
                    let diff = max_abs_diff(&got, &want);
                    assert!(diff < 1e-4, "{what} {b}x{nq}x{nk}x{heads}x{d}: {diff}");
                };
                check(attention_gemm(&q, &k, &v, heads, scale, false).unwrap(), "gemm");
                check(attention(&q, &k, &v, heads, scale).unwrap(), "dispatched");
                if nq == nk {
                    let mask: Vec<f32> = (0..nq)
                        .flat_map(|i| (0..nk).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
                        .collect();
                    let mask = Tensor::from_vec(mask, (nq, nk), &dev).unwrap();
                    let scores = (qs.matmul(&ks.t().unwrap()).unwrap() * scale as f64)
                        .unwrap()
                        .broadcast_add(&mask)
                        .unwrap();
                    let p = candle_nn::ops::softmax_last_dim(&scores).unwrap();
                    let want_causal = p
                        .matmul(&vs)
                        .unwrap()
                        .transpose(1, 2)
                        .unwrap()
                        .reshape((b, nq, heads * d))
                        .unwrap();
                    for (got, what) in [
                        (attention_gemm(&q, &k, &v, heads, scale, true).unwrap(), "gemm causal"),
                        (
                            attention_masked(&q, &k, &v, heads, scale, true).unwrap(),
                            "dispatched causal",
                        ),
                    ] {
                        let diff = max_abs_diff(&got, &want_causal);
                        assert!(diff < 1e-4, "{what}: {diff}");
                    }
                }
            }
        });
    }
}
