//! Products of a few rows with a large weight matrix, `x · Wᵀ`: a text encoder's layers (154
//! rows for a prompt and its negative) and the UNet's projections at its smallest levels.
//! Driven here around the gemm crate's own microkernels.
//!
//! Given such a product with a row-major output, gemm computes its transpose and repacks all
//! of W into its panel layout on every call; with so few rows to share that cost, repacking
//! took a third of CLIP's time at AVX-512 and a tenth at AVX2. Here the few rows of `x` are
//! packed instead (they are small) and W is read in place: each thin slice of it (six of its
//! rows, [`KC`] deep) comes from memory once and stays in L1 while every row panel of `x`
//! passes over it (the microkernels broadcast W's values, so its rows need no reordering).
//! The result comes out column-major, one band of output columns per thread, and is
//! transposed into the caller's rows band by band.

use gemm_common::microkernel::MicroKernelFn;
use rayon::prelude::*;

use super::simd::Level;
use super::{Scratch, SendPtr, with_scratch};

/// Bytes of column-major results per block of output columns (well inside L2).
const BLOCK_BYTES: usize = 96 << 10;

/// Depth of one pass over W: the packed rows of `x` for a pass (at most 160 × 512 floats)
/// stay in L2 while W's slices go by.
const KC: usize = 512;

/// Output columns per microkernel call (gemm's f32 kernels at both levels).
const NR: usize = 6;

/// The microkernels of one CPU level: `ukr[v - 1][c - 1]` computes `v` vectors of rows by
/// `c` columns.
struct Kernels {
    lanes: usize,
    ukr: &'static [[MicroKernelFn<f32>; NR]],
}

impl Kernels {
    /// Rows per packed panel of `x`.
    fn mr(&self) -> usize {
        self.lanes * self.ukr.len()
    }
}

/// The kernels for `level`, where this driver has them (x86-64 with AVX2 or AVX-512).
fn kernels(level: Level) -> Option<Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        use gemm_f32::microkernel::{avx512f::f32 as avx512, fma::f32 as fma};
        const _: () = assert!(avx512::NR == NR && fma::NR == NR);
        match level {
            Level::Avx512 => Some(Kernels {
                lanes: 16,
                ukr: &avx512::UKR,
            }),
            Level::Avx2 => Some(Kernels {
                lanes: 8,
                ukr: &fma::UKR,
            }),
            Level::Baseline => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        None
    }
}

/// Whether [`rows_times_weights`] runs at `level`; elsewhere callers use gemm as it is.
pub(crate) fn available(level: Level) -> bool {
    kernels(level).is_some()
}

/// `out` (rows × n, row-major) = `x` (rows × k, row-major) · Wᵀ for `w` = W (n × k, row-major),
/// added to what `out` holds when `accumulate`. Splits the output columns over rayon's
/// threads. `level` must be one [`available`] reports (and never above the detected one: it
/// comes from [`super::simd::cpu_level`]).
pub(crate) fn rows_times_weights(
    level: Level,
    (rows, n, k): (usize, usize, usize),
    x: &[f32],
    w: &[f32],
    out: &mut [f32],
    accumulate: bool,
) {
    let kernels = kernels(level).expect("rows_times_weights at a level without kernels");
    assert!(x.len() >= rows * k && w.len() >= n * k && out.len() >= rows * n);
    if rows == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..rows * n].fill(0.0);
        }
        return;
    }
    let mr = kernels.mr();
    let rows_padded = rows.div_ceil(mr) * mr;
    with_scratch(Scratch::StreamedRows, rows_padded * k, |packed| {
        pack_rows(x, rows, k, mr, packed);
        let threads = rayon::current_num_threads().max(1);
        let band = n.div_ceil(threads).next_multiple_of(NR);
        let out_ptr = SendPtr(out.as_mut_ptr());
        // Columns per block: the block's column-major results (all rows) stay in L2 across
        // the passes over k, and are transposed out while still there.
        let block = (BLOCK_BYTES / (4 * rows_padded)).max(NR) / NR * NR;
        (0..n.div_ceil(band)).into_par_iter().for_each(|b| {
            let band_end = ((b + 1) * band).min(n);
            // A scratch buffer (per worker thread): a fresh one would be faulted in and
            // zeroed on every call.
            with_scratch(Scratch::StreamedBlock, rows_padded * block, |t| {
                for n0 in (b * band..band_end).step_by(block) {
                    let cols = block.min(band_end - n0);
                    // SAFETY: the microkernels' CPU features are present (`level` ≤
                    // detected); every pointer stays inside `packed` (rows_padded × k), `w`
                    // (rows n0.. of W) and `t`.
                    unsafe { block_product(&kernels, packed, &w[n0 * k..], (rows, rows_padded, cols, k), t) };
                    // SAFETY: this writes only columns n0..n0 + cols of each output row,
                    // which are this band's.
                    unsafe { transpose_into(t, rows_padded, (rows, cols), out_ptr.get().add(n0), n, accumulate) };
                }
            });
        });
    });
}

/// `x`'s rows in panels of `mr`: panel p holds, for each depth kk, rows p·mr.. side by side
/// (the layout the microkernels load as vectors); rows past the end are zero.
fn pack_rows(x: &[f32], rows: usize, k: usize, mr: usize, packed: &mut [f32]) {
    packed.par_chunks_mut(mr * k).enumerate().for_each(|(p, panel)| {
        let first = p * mr;
        let used = mr.min(rows - first.min(rows));
        // SAFETY: the panel's rows are x[first..first + used] (k floats each); the panel holds
        // k rows of mr floats, of which columns 0..used are written here. The level is at
        // least AVX2: this driver runs only where `kernels` has microkernels.
        unsafe { transpose(x[first * k..].as_ptr(), k, panel.as_mut_ptr(), mr, (k, used), false) };
        if used < mr {
            panel.chunks_exact_mut(mr).for_each(|depth| depth[used..].fill(0.0));
        }
    });
}

/// `t` (rows_padded × cols, column-major) = packed rows · Wᵀ for W's first `cols` rows; rows
/// from `rows_used` on (padding) may be left unwritten.
///
/// # Safety
/// The kernels' CPU features must be present; `packed` holds rows_padded × k, `w` at least
/// cols × k and `t` rows_padded × cols floats.
unsafe fn block_product(
    kernels: &Kernels,
    packed: &[f32],
    w: &[f32],
    (rows_used, rows_padded, cols, k): (usize, usize, usize, usize),
    t: &mut [f32],
) {
    let mr = kernels.mr();
    let panels = rows_padded / mr;
    // The last panel's padding rows are skipped a vector at a time: with 64-row panels at
    // AVX-512, CLIP's 154 rows would otherwise compute 192.
    let rows_used = rows_used.min(rows_padded);
    let vectors = |p: usize| (rows_used - p * mr).min(mr).div_ceil(kernels.lanes);
    for k0 in (0..k).step_by(KC) {
        let depth = KC.min(k - k0);
        // The first pass writes, later ones add.
        let alpha_status = u8::from(k0 > 0);
        for j in (0..cols).step_by(NR) {
            let width = NR.min(cols - j);
            let w_slice = w[j * k + k0..].as_ptr();
            for p in 0..panels {
                let v = vectors(p);
                // SAFETY: per this function's contract; the kernel reads `depth` steps of
                // the panel (mr apart) and of `width` rows of W (k apart), and writes an
                // mr × width block of t.
                unsafe {
                    kernels.ukr[v - 1][width - 1](
                        v * kernels.lanes,
                        width,
                        depth,
                        t.as_mut_ptr().add(j * rows_padded + p * mr),
                        packed.as_ptr().add(p * mr * k + k0 * mr),
                        w_slice,
                        rows_padded as isize,
                        1,
                        mr as isize,
                        1,
                        k as isize,
                        1.0,
                        1.0,
                        alpha_status,
                        false,
                        false,
                        false,
                        std::ptr::null(),
                    )
                };
            }
        }
    }
}

/// Writes the first `rows` of `t` (rows_padded × cols, column-major) into `out` (row `i` at
/// `out + i · stride`), adding to what is there when `accumulate`.
///
/// # Safety
/// `out` must be valid for `rows` rows of `cols` values, `stride` apart; the CPU must have
/// AVX2.
unsafe fn transpose_into(
    t: &[f32],
    rows_padded: usize,
    (rows, cols): (usize, usize),
    out: *mut f32,
    stride: usize,
    accumulate: bool,
) {
    assert!(rows <= rows_padded && t.len() >= rows_padded * cols);
    // SAFETY: t holds cols columns of rows_padded values; `out` per this function's contract.
    unsafe { transpose(t.as_ptr(), rows_padded, out, stride, (rows, cols), accumulate) };
}

/// `dst[i·ds + j] = src[j·ss + i]` (or `+=` when `accumulate`) for i < rows, j < cols: in
/// 8 × 8 tiles transposed in registers, walking `dst` row by row so that both sides stay in
/// L1 (an element at a time, the strided side missed cache on every access: a tenth of
/// CLIP's time went to packing and unpacking).
///
/// # Safety
/// `src` must be valid for `cols` rows of `rows` values, `ss` apart, `dst` for `rows` rows
/// of `cols` values, `ds` apart, not overlapping `src`; the CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose(
    src: *const f32,
    ss: usize,
    dst: *mut f32,
    ds: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    let full_rows = rows / 8 * 8;
    let full_cols = cols / 8 * 8;
    let write = |i: usize, j: usize, v: f32| {
        // SAFETY: i < rows, j < cols, per this function's contract.
        unsafe {
            let d = dst.add(i * ds + j);
            *d = if accumulate { *d + v } else { v };
        }
    };
    for i0 in (0..full_rows).step_by(8) {
        for j0 in (0..full_cols).step_by(8) {
            // SAFETY: a whole tile inside both matrices.
            unsafe { tile8(src.add(j0 * ss + i0), ss, dst.add(i0 * ds + j0), ds, accumulate) };
        }
        for i in i0..i0 + 8 {
            for j in full_cols..cols {
                // SAFETY: inside src, per the contract.
                write(i, j, unsafe { *src.add(j * ss + i) });
            }
        }
    }
    for i in full_rows..rows {
        for j in 0..cols {
            // SAFETY: as above.
            write(i, j, unsafe { *src.add(j * ss + i) });
        }
    }
}

/// One 8 × 8 tile of [`transpose`]: eight rows of `src` become eight columns of `dst`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile8(src: *const f32, ss: usize, dst: *mut f32, ds: usize, accumulate: bool) {
    use std::arch::x86_64::*;
    // SAFETY: eight rows of eight floats at src (ss apart) and dst (ds apart), per the caller.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        // Pairs of rows interleaved, then quadruples, then the 128-bit halves swapped.
        let lo = |a, b| _mm256_unpacklo_ps(a, b);
        let hi = |a, b| _mm256_unpackhi_ps(a, b);
        let t = [
            lo(r[0], r[1]),
            hi(r[0], r[1]),
            lo(r[2], r[3]),
            hi(r[2], r[3]),
            lo(r[4], r[5]),
            hi(r[4], r[5]),
            lo(r[6], r[7]),
            hi(r[6], r[7]),
        ];
        let q = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for c in 0..4 {
            let columns = [
                (c, _mm256_permute2f128_ps::<0x20>(q[c], q[c + 4])),
                (c + 4, _mm256_permute2f128_ps::<0x31>(q[c], q[c + 4])),
            ];
            for (row, v) in columns {
                let d = dst.add(row * ds);
                let v = if accumulate {
                    _mm256_add_ps(_mm256_loadu_ps(d), v)
                } else {
                    v
                };
                _mm256_storeu_ps(d, v);
            }
        }
    }
}

/// Off x86 this driver has no kernels and is never called.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose(_: *const f32, _: usize, _: *mut f32, _: usize, _: (usize, usize), _: bool) {
    unreachable!("the streamed driver runs only on x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::simd;

    /// Every shape edge at once: rows not a whole panel, columns not a whole kernel width or
    /// an even split over threads, depth over one pass and not a whole one.
    #[test]
    fn matches_a_plain_product_at_every_level() {
        let mut ran = 0;
        simd::for_each_level(|level| {
            if !available(level) {
                return;
            }
            ran += 1;
            for (rows, n, k) in [(37, 29, 600), (154, 96, 768), (1, 7, 3), (70, 13, 1030)] {
                let x: Vec<f32> = (0..rows * k).map(|i| ((i * 7 % 23) as f32 - 11.0) / 9.0).collect();
                let w: Vec<f32> = (0..n * k).map(|i| ((i * 5 % 19) as f32 - 9.0) / 7.0).collect();
                let want = |i: usize, j: usize| (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum::<f32>();
                for accumulate in [false, true] {
                    let mut out = vec![0.5f32; rows * n];
                    rows_times_weights(level, (rows, n, k), &x, &w, &mut out, accumulate);
                    for i in 0..rows {
                        for j in 0..n {
                            let expect = want(i, j) + if accumulate { 0.5 } else { 0.0 };
                            let got = out[i * n + j];
                            assert!(
                                (got - expect).abs() <= 1e-4 * expect.abs().max(1.0),
                                "{level:?} {rows}×{n}×{k} acc={accumulate}: [{i},{j}] {got} vs {expect}"
                            );
                        }
                    }
                }
            }
        });
        #[cfg(target_arch = "x86_64")]
        if simd::detected() >= simd::Level::Avx2 {
            assert!(ran > 0, "no level with kernels was tested");
        }
        let _ = ran;
    }
}
