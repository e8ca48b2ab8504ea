//! The attention kernel for CPUs with AVX-512, where the scores of eight query rows are
//! computed against all keys in registers (no packing of K or of the probabilities, which is
//! what a general matrix product would spend its time on at head sizes of 40–64), the softmax
//! runs on whole vectors, and the probabilities are multiplied by V straight from cache.
//!
//! Layout per (batch, head), prepared once: Kᵀ in [`super::attention::panels`], V as [Nk][D].

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::attention::Block;
use super::attention::panels::{PANEL, score_stride};

/// Query rows handled together: 8 rows × 3 vectors of V = 24 accumulators of 32 registers.
pub const ROWS: usize = 8;

/// One [`Block`] of up to [`ROWS`] query rows of one head; `scores` is scratch of
/// `ROWS · score_stride(nk)` floats.
///
/// # Safety
/// The CPU must support AVX-512F (`simd::cpu_level()` at `Avx512`); every pointer must be valid
/// for the rows and lengths described.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn block(block: &Block, scores: &mut [f32]) {
    unsafe {
        match block.rows {
            8 => block_n::<8>(block, scores),
            7 => block_n::<7>(block, scores),
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

#[inline(always)]
fn tail_mask(len: usize) -> __mmask16 {
    if len >= 16 {
        0xffff
    } else {
        ((1u32 << len) - 1) as __mmask16
    }
}

#[target_feature(enable = "avx512f")]
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
        // 1. Scores S = Q·Kᵀ, 32 keys at a time (two vectors per row: each broadcast query
        // value feeds two FMAs), with the running row maxima.
        let mut maxv = [_mm512_set1_ps(f32::NEG_INFINITY); R];
        let mut j = 0;
        while j < nk {
            let m0 = tail_mask(nk - j);
            let m1 = tail_mask((nk - j).saturating_sub(16));
            let mut acc0 = [_mm512_setzero_ps(); R];
            let mut acc1 = [_mm512_setzero_ps(); R];
            let panel = kt.add(j * d);
            for dd in 0..d {
                let k0 = _mm512_loadu_ps(panel.add(dd * PANEL));
                let k1 = _mm512_loadu_ps(panel.add(dd * PANEL + 16));
                for r in 0..R {
                    let qv = _mm512_set1_ps(*q.add(r * q_rs + dd));
                    acc0[r] = _mm512_fmadd_ps(qv, k0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(qv, k1, acc1[r]);
                }
            }
            for r in 0..R {
                let out = s.add(r * ss + j);
                _mm512_mask_storeu_ps(out, m0, acc0[r]);
                maxv[r] = _mm512_mask_max_ps(maxv[r], m0, maxv[r], acc0[r]);
                if m1 != 0 {
                    _mm512_mask_storeu_ps(out.add(16), m1, acc1[r]);
                    maxv[r] = _mm512_mask_max_ps(maxv[r], m1, maxv[r], acc1[r]);
                }
            }
            j += 32;
        }
        // Causal masking: hidden keys get −∞ (the maxima above only grow with them, harmlessly;
        // their probabilities are zeroed after the exponential).
        if let Some(first) = hide_from {
            for r in 0..R {
                for j in (first + r).min(nk)..nk {
                    *s.add(r * ss + j) = f32::NEG_INFINITY;
                }
            }
        }
        // 2. Softmax numerators in place, and their sums.
        let mut inv_sum = [0f32; R];
        for r in 0..R {
            let row_max = match hide_from {
                // The maxima above saw the hidden scores too; take the visible ones only, so
                // visible probabilities cannot underflow against a larger hidden score.
                Some(first) => (0..(first + r).min(nk))
                    .map(|j| *s.add(r * ss + j))
                    .fold(f32::NEG_INFINITY, f32::max),
                None => _mm512_reduce_max_ps(maxv[r]),
            };
            let max = _mm512_set1_ps(row_max);
            let sc = _mm512_set1_ps(scale);
            let max_scaled = _mm512_set1_ps(row_max * scale);
            let mut sum = _mm512_setzero_ps();
            let row = s.add(r * ss);
            let mut j = 0;
            while j < nk {
                let m = tail_mask(nk - j);
                let x = _mm512_maskz_loadu_ps(m, row.add(j));
                let e = if hide_from.is_some() {
                    let e = exp512(_mm512_mul_ps(_mm512_sub_ps(x, max), sc));
                    // exp512 clamps its input, so −∞ would give 1e-38, not 0: zero it exactly.
                    _mm512_maskz_mov_ps(
                        _mm512_cmp_ps_mask::<_CMP_NEQ_OQ>(x, _mm512_set1_ps(f32::NEG_INFINITY)),
                        e,
                    )
                } else {
                    // (x − max)·scale as one fused step: finite and ≤ 0, so only the lower
                    // clamp matters (it keeps results normal: denormals slow the products).
                    exp512_finite(_mm512_max_ps(_mm512_fmsub_ps(x, sc, max_scaled), _mm512_set1_ps(-87.3)))
                };
                _mm512_mask_storeu_ps(row.add(j), m, e);
                sum = _mm512_mask_add_ps(sum, m, sum, e);
                j += 16;
            }
            inv_sum[r] = 1.0 / _mm512_reduce_add_ps(sum);
        }
        // 3. O = P·V, up to 48 output dimensions (3 vectors) per pass over the keys; a
        // narrower last pass runs with only the vectors it needs (64 = 48 + 16 would
        // otherwise do half again the multiply-adds).
        let mut c0 = 0;
        while c0 < d {
            let width = (d - c0).min(48);
            let pass = Pass {
                s,
                ss,
                v: v.as_ptr().add(c0),
                d,
                nk,
                width,
                out: out.add(c0),
                o_rs,
            };
            match width.div_ceil(16) {
                1 => pv_pass::<R, 1>(&pass, &inv_sum),
                2 => pv_pass::<R, 2>(&pass, &inv_sum),
                _ => pv_pass::<R, 3>(&pass, &inv_sum),
            }
            c0 += 48;
        }
    }
}

/// One pass of O = P·V over `width` output dimensions (at most 48) for R rows.
struct Pass {
    /// The probabilities: R rows, `ss` apart.
    s: *const f32,
    ss: usize,
    /// V at the pass's first dimension; rows `d` apart.
    v: *const f32,
    d: usize,
    nk: usize,
    width: usize,
    /// The output at the pass's first dimension; rows `o_rs` apart.
    out: *mut f32,
    o_rs: usize,
}

/// [`Pass`] with `N` vectors of 16 dimensions (`width` ≤ 16·N), each row's sum divided out.
#[inline(always)]
unsafe fn pv_pass<const R: usize, const N: usize>(pass: &Pass, inv_sum: &[f32; R]) {
    let Pass {
        s,
        ss,
        v,
        d,
        nk,
        width,
        out,
        o_rs,
    } = *pass;
    unsafe {
        let masks: [__mmask16; N] = std::array::from_fn(|i| tail_mask(width.saturating_sub(16 * i)));
        let mut acc = [[_mm512_setzero_ps(); N]; R];
        for j in 0..nk {
            let vr = v.add(j * d);
            let vv: [__m512; N] = std::array::from_fn(|i| _mm512_maskz_loadu_ps(masks[i], vr.add(16 * i)));
            for (r, a) in acc.iter_mut().enumerate() {
                let p = _mm512_set1_ps(*s.add(r * ss + j));
                for i in 0..N {
                    a[i] = _mm512_fmadd_ps(p, vv[i], a[i]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let inv = _mm512_set1_ps(inv_sum[r]);
            let o = out.add(r * o_rs);
            for i in 0..N {
                _mm512_mask_storeu_ps(o.add(16 * i), masks[i], _mm512_mul_ps(a[i], inv));
            }
        }
    }
}

/// e^x on 16 lanes: x = n·ln2 + r, e^r by a degree-6 polynomial, scaled by 2ⁿ exactly
/// (`vscalefps`). Relative error below 2e-7; 0 for x below −87.
#[inline(always)]
unsafe fn exp512(x: __m512) -> __m512 {
    unsafe {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.3));
        let x = _mm512_min_ps(x, _mm512_set1_ps(88.7));
        exp512_finite(x)
    }
}

/// e^x for x in [−87.3, 88.7] (the caller clamps).
#[inline(always)]
unsafe fn exp512_finite(x: __m512) -> __m512 {
    unsafe {
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
        let r2 = _mm512_mul_ps(r, r);
        p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
        _mm512_scalef_ps(p, n)
    }
}
