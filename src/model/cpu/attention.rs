//! Multi-head attention on the CPU without materialising the whole score matrix: queries are
//! taken in blocks, each block's scores (block × keys) stay in a cache-sized buffer, go
//! through the softmax and straight into the product with V. Q, K and V are read in the
//! [batch, tokens, heads·dim] layout the projections produce, and the result is written in
//! the same layout, so no transposes or copies happen around it.

use candle_core::{Device, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::{exp, with_f32};

/// Bytes of scores one task keeps (fits in L2 alongside its K and V panels).
const SCORE_BLOCK_BYTES: usize = 512 << 10;

/// `q` [B, Nq, H·D], `k`/`v` [B, Nk, H·D] (contiguous f32, CPU) → [B, Nq, H·D].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f32) -> candle_core::Result<Tensor> {
    let (b, nq, hd) = q.dims3()?;
    let (_, nk, _) = k.dims3()?;
    let d = hd / heads;
    let block = (SCORE_BLOCK_BYTES / (4 * nk)).clamp(8, nq.max(8));
    let blocks_per_head = nq.div_ceil(block);
    let mut out = vec![0f32; b * nq * hd];
    let out_ptr = SendPtr(out.as_mut_ptr());
    with_f32(q, |q| {
        with_f32(k, |k| {
            with_f32(v, |v| {
                (0..b * heads * blocks_per_head).into_par_iter().for_each_init(
                    || vec![0f32; block * nk],
                    |scores, task| {
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
                            gemm(
                                rows,
                                nk,
                                d,
                                s.as_mut_ptr(),
                                1,
                                nk as isize,
                                false,
                                q.as_ptr().add(q_base),
                                1,
                                hd as isize,
                                k.as_ptr().add(kv_base),
                                hd as isize,
                                1,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                        let mut sums = vec![0f32; rows];
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
                            gemm(
                                rows,
                                d,
                                nk,
                                dst,
                                1,
                                hd as isize,
                                false,
                                s.as_ptr(),
                                1,
                                nk as isize,
                                v.as_ptr().add(kv_base),
                                1,
                                hd as isize,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                            for (r, sum) in sums.iter().enumerate() {
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

/// A raw pointer the worker threads may share; each writes only its own region.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}
