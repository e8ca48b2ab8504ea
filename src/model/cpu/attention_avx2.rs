//! The attention kernel for CPUs with AVX2 and FMA but no AVX-512 (most laptops): the same
//! plan as [`super::attention_avx512`] — the scores of a few query rows against all keys kept
//! in registers while they form, the softmax on whole vectors, the probabilities multiplied by
//! V straight from cache — cut to the 16 eight-lane registers AVX2 has.
//!
//! Registers: the score loop keeps [`ROWS`] rows × 16 keys (2 vectors each) = 12 accumulators
//! plus two vectors of Kᵀ and one broadcast query value; the P·V loop keeps [`ROWS`] rows × 16
//! output dimensions the same way. Kᵀ comes in the shared panel layout ([`super::attention::panels`],
//! 32 keys a panel), of which each pass of the score loop reads one half.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::attention::Block;
use super::attention::panels::{PANEL, score_stride};
use super::exp;

/// Query rows handled together.
pub const ROWS: usize = 6;
/// Keys per pass of the score loop (two vectors).
const KEYS: usize = 16;
/// Output dimensions per pass of the P·V loop (two vectors).
const DIMS: usize = 16;

/// One [`Block`] of up to [`ROWS`] query rows of one head; `scores` is scratch of
/// `ROWS · score_stride(nk)` floats.
///
/// # Safety
/// The CPU must support AVX2 and FMA (`simd::cpu_level()` at `Avx2` or above); every pointer
/// must be valid for the rows and lengths described.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn block(block: &Block, scores: &mut [f32]) {
    unsafe {
        match block.rows {
            6 => block_n::<6>(block, scores),
            5 => block_n::<5>(block, scores),
            4 => block_n::<4>(block, scores),
            3 => block_n::<3>(block, scores),
            2 => block_n::<2>(block, scores),
            1 => block_n::<1>(block, scores),
            _ => {}
        }
    }
}

/// Lanes `0..len` set (all eight from 8 on), as `maskload`/`maskstore` want them.
#[inline(always)]
unsafe fn lane_mask(len: usize) -> __m256i {
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(len.min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

#[inline(always)]
unsafe fn hmax(x: __m256) -> f32 {
    unsafe {
        let m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_shuffle_ps::<0b01>(m, m));
        _mm_cvtss_f32(m)
    }
}

#[inline(always)]
unsafe fn hsum(x: __m256) -> f32 {
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn block_n<const R: usize>(block: &Block, scores: &mut [f32]) {
    let Block {
        q,
        q_rs,
        kt,
        v,
        nk,
        d,
        scale,
        hide_from,
        out,
        o_rs,
        ..
    } = *block;
    unsafe {
        let kt = kt.as_ptr();
        let s = scores.as_mut_ptr();
        let ss = score_stride(nk);
        // 1. Scores S = Q·Kᵀ, 16 keys a pass. The padding keys of the last panel score 0 and
        // are stored (the scratch rows are long enough) but kept out of the maxima.
        let mut maxv = [_mm256_set1_ps(f32::NEG_INFINITY); R];
        let whole = nk / KEYS * KEYS;
        let mut j = 0;
        while j < nk {
            let mut acc0 = [_mm256_setzero_ps(); R];
            let mut acc1 = [_mm256_setzero_ps(); R];
            let keys = kt.add((j / PANEL) * d * PANEL + j % PANEL);
            for dd in 0..d {
                let k0 = _mm256_loadu_ps(keys.add(dd * PANEL));
                let k1 = _mm256_loadu_ps(keys.add(dd * PANEL + 8));
                for r in 0..R {
                    let qv = _mm256_broadcast_ss(&*q.add(r * q_rs + dd));
                    acc0[r] = _mm256_fmadd_ps(qv, k0, acc0[r]);
                    acc1[r] = _mm256_fmadd_ps(qv, k1, acc1[r]);
                }
            }
            for r in 0..R {
                let row = s.add(r * ss + j);
                _mm256_storeu_ps(row, acc0[r]);
                _mm256_storeu_ps(row.add(8), acc1[r]);
                if j < whole {
                    maxv[r] = _mm256_max_ps(maxv[r], _mm256_max_ps(acc0[r], acc1[r]));
                }
            }
            j += KEYS;
        }
        // 2. Softmax numerators in place over the keys each row sees (all, or up to its
        // causal limit: the hidden ones get probability 0), and their sums.
        let mut inv_sum = [0f32; R];
        for (r, inv) in inv_sum.iter_mut().enumerate() {
            let row = s.add(r * ss);
            let seen = hide_from.map_or(nk, |first| (first + r).min(nk));
            let row_max = match hide_from {
                Some(_) => (0..seen).map(|j| *row.add(j)).fold(f32::NEG_INFINITY, f32::max),
                None => (whole..nk).map(|j| *row.add(j)).fold(hmax(maxv[r]), f32::max),
            };
            let sc = _mm256_set1_ps(scale);
            let max_scaled = _mm256_set1_ps(row_max * scale);
            let floor = _mm256_set1_ps(-87.3);
            let mut sum = _mm256_setzero_ps();
            let mut j = 0;
            while j + 8 <= seen {
                let x = _mm256_loadu_ps(row.add(j));
                // (x − max)·scale as one fused step: ≤ 0, so only the lower clamp matters (it
                // keeps results normal: denormals slow the products).
                let e = exp256(_mm256_max_ps(_mm256_fmsub_ps(x, sc, max_scaled), floor));
                _mm256_storeu_ps(row.add(j), e);
                sum = _mm256_add_ps(sum, e);
                j += 8;
            }
            let mut total = hsum(sum);
            for j in j..seen {
                let e = exp::exp((*row.add(j) - row_max) * scale);
                *row.add(j) = e;
                total += e;
            }
            for j in seen..nk {
                *row.add(j) = 0.0;
            }
            *inv = 1.0 / total;
        }
        // 3. O = P·V, 16 output dimensions a pass over the keys.
        let v = v.as_ptr();
        let mut c0 = 0;
        while c0 < d {
            let width = (d - c0).min(DIMS);
            let (m0, m1) = (lane_mask(width), lane_mask(width.saturating_sub(8)));
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            if width == DIMS {
                for j in 0..nk {
                    let vr = v.add(j * d + c0);
                    let (v0, v1) = (_mm256_loadu_ps(vr), _mm256_loadu_ps(vr.add(8)));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let p = _mm256_broadcast_ss(&*s.add(r * ss + j));
                        a[0] = _mm256_fmadd_ps(p, v0, a[0]);
                        a[1] = _mm256_fmadd_ps(p, v1, a[1]);
                    }
                }
            } else if width <= 8 {
                // One vector of dimensions left (SD 1.x's 40 = 16 + 16 + 8): half the
                // multiply-adds of the two-vector pass.
                for j in 0..nk {
                    let v0 = _mm256_maskload_ps(v.add(j * d + c0), m0);
                    for (r, a) in acc.iter_mut().enumerate() {
                        let p = _mm256_broadcast_ss(&*s.add(r * ss + j));
                        a[0] = _mm256_fmadd_ps(p, v0, a[0]);
                    }
                }
            } else {
                for j in 0..nk {
                    let vr = v.add(j * d + c0);
                    let v0 = _mm256_maskload_ps(vr, m0);
                    let v1 = _mm256_maskload_ps(vr.add(8.min(width)), m1);
                    for (r, a) in acc.iter_mut().enumerate() {
                        let p = _mm256_broadcast_ss(&*s.add(r * ss + j));
                        a[0] = _mm256_fmadd_ps(p, v0, a[0]);
                        a[1] = _mm256_fmadd_ps(p, v1, a[1]);
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                let inv = _mm256_set1_ps(inv_sum[r]);
                let o = out.add(r * o_rs + c0);
                _mm256_maskstore_ps(o, m0, _mm256_mul_ps(a[0], inv));
                if width > 8 {
                    _mm256_maskstore_ps(o.add(8), m1, _mm256_mul_ps(a[1], inv));
                }
            }
            c0 += DIMS;
        }
    }
}

/// e^x on 8 lanes for x in [−87.3, 0] (the caller clamps): x = n·ln2 + r, e^r by the same
/// degree-6 polynomial as [`exp::exp`], times 2ⁿ built in the exponent bits.
#[inline(always)]
unsafe fn exp256(x: __m256) -> __m256 {
    unsafe {
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_5e-1));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        let r2 = _mm256_mul_ps(r, r);
        p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        // 2ⁿ for n in [−126, 0]: (n + 127) in the exponent field.
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
        _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
    }
}
