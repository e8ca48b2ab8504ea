//! Hand-written CPU kernels for the operations that dominate a Stable Diffusion step on a
//! laptop: 3×3 convolutions (Winograd), attention (blocked, never the whole score matrix),
//! GroupNorm fused with SiLU, and GEGLU. Each works on contiguous f32 CPU tensors; callers
//! fall back to candle's generic ops for other devices and dtypes.

pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod attention_avx2;
#[cfg(target_arch = "x86_64")]
pub mod attention_avx512;
pub mod check;
pub mod conv;
pub mod exp;
pub mod group_norm;
pub mod matmul;
pub mod simd;
pub mod streamed;
pub mod winograd;

use candle_core::{DType, Device, Storage, Tensor};

/// Whether a tensor can take the CPU fast paths.
pub fn is_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Runs `f` on the tensor's f32 data in row-major order (made contiguous first if needed).
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a CPU tensor");
    };
    let data = cpu.as_slice::<f32>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("expected a contiguous tensor".into()))?;
    Ok(f(&data[start..end]))
}

/// As [`with_f32`] for a tensor that may be absent.
pub fn with_opt_f32<R>(t: Option<&Tensor>, f: impl FnOnce(Option<&[f32]>) -> R) -> candle_core::Result<R> {
    match t {
        Some(t) => with_f32(t, |data| f(Some(data))),
        None => Ok(f(None)),
    }
}

/// A vector of `len` f32 whose contents the caller overwrites before reading. Skipping the
/// zero-fill saves a full pass over every large activation.
#[allow(clippy::uninit_vec)]
pub fn uninit_vec(len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: f32 has no invalid bit patterns; every caller writes all `len` values (gemm
    // with read_dst=false, a prefill, or an element-wise pass) before any is read.
    unsafe { v.set_len(len) };
    v
}

thread_local! {
    /// Scratch buffers kept between calls: the big temporaries of a convolution (Winograd's
    /// transformed weights, tiles and products, im2col's patches) reach hundreds of MB, and
    /// fresh ones cost page faults and zeroing on every call.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Named scratch slots (each may be borrowed once at a time on a thread).
#[derive(Clone, Copy)]
pub enum Scratch {
    WinogradWeights = 0,
    WinogradTiles = 1,
    WinogradProducts = 2,
    Im2col = 3,
    Im2colProduct = 4,
    StreamedRows = 5,
    StreamedBlock = 6,
}

/// Runs `f` with a reusable buffer of at least `len` f32 (contents unspecified).
pub fn with_scratch<R>(slot: Scratch, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() <= slot as usize {
            s.resize_with(slot as usize + 1, Vec::new);
        }
        std::mem::take(&mut s[slot as usize])
    });
    if buf.len() < len {
        buf = uninit_vec(len);
    }
    let result = f(&mut buf[..len]);
    SCRATCH.with(|s| s.borrow_mut()[slot as usize] = buf);
    result
}

/// Frees this thread's scratch buffers (after a phase of work; they come back on demand).
pub fn release_scratch() {
    SCRATCH.with(|s| s.borrow_mut().clear());
}

/// A raw pointer the worker threads may share; each writes only its own region.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the pointer is only dereferenced by tasks that write disjoint regions.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// A matrix in memory for [`product`]: its first element and the strides (in floats) between
/// neighbouring columns and rows.
#[derive(Clone, Copy)]
pub(crate) struct View<P> {
    pub ptr: P,
    pub col_stride: isize,
    pub row_stride: isize,
}

impl<P> View<P> {
    /// Row-major, rows `row_stride` floats apart.
    pub fn rows(ptr: P, row_stride: usize) -> View<P> {
        View {
            ptr,
            col_stride: 1,
            row_stride: row_stride as isize,
        }
    }

    /// Column-major (a row-major matrix read transposed), columns `col_stride` floats apart.
    pub fn cols(ptr: P, col_stride: usize) -> View<P> {
        View {
            ptr,
            col_stride: col_stride as isize,
            row_stride: 1,
        }
    }
}

/// gemm's own threading over rayon's pool, for products big enough to split.
pub(crate) fn parallelism() -> gemm::Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// `dst` (m × n) = `lhs` (m × k) · `rhs` (k × n), added to what `dst` holds when `accumulate`:
/// the one place the gemm crate's long argument list is spelled out.
///
/// `level` is the kernels' [`simd::cpu_level`], read by the caller on its own thread (so a
/// test's scoped level covers products run inside rayon tasks). The gemm crate picks its
/// microkernels from the CPU's flags alone; below the widest level this calls that level's
/// microkernels through gemm-common's driver instead, so `LANTERN_CPU=avx2` (or `generic`)
/// runs the products an AVX2-only (or pre-AVX) laptop would.
///
/// # Safety
/// Every view must be valid for its shape and strides (strides positive), and `dst` must not
/// overlap the inputs.
pub(crate) unsafe fn product(
    level: simd::Level,
    (m, n, k): (usize, usize, usize),
    dst: View<*mut f32>,
    accumulate: bool,
    lhs: View<*const f32>,
    rhs: View<*const f32>,
    parallelism: gemm::Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    if level < simd::Level::Avx512 && level < simd::detected() {
        // SAFETY: per this function's contract.
        unsafe { forced::product(level, (m, n, k), dst, accumulate, lhs, rhs, parallelism) };
        return;
    }
    let _ = level;
    // SAFETY: per this function's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The gemm crate's AVX2+FMA and scalar microkernels, called directly for a level below the
/// CPU's own.
#[cfg(target_arch = "x86_64")]
mod forced {
    use gemm_common::gemm::gemm_basic_generic;
    use gemm_common::simd::{MixedSimd, Scalar, V3};
    use gemm_f32::microkernel::{fma::f32 as fma, scalar::f32 as scalar};

    use super::{View, simd::Level};

    /// # Safety
    /// As [`super::product`]; `level` must not exceed the detected one.
    pub(super) unsafe fn product(
        level: Level,
        (m, n, k): (usize, usize, usize),
        dst: View<*mut f32>,
        accumulate: bool,
        lhs: View<*const f32>,
        rhs: View<*const f32>,
        parallelism: gemm::Parallelism,
    ) {
        // The microkernels want a column-major destination: a row-major product is computed
        // as its transpose (dstᵀ = rhsᵀ · lhsᵀ), as gemm's own entry point does.
        let (m, n, dst, lhs, rhs) = if dst.col_stride.abs() < dst.row_stride.abs() {
            let t = |v: View<*const f32>| View {
                ptr: v.ptr,
                col_stride: v.row_stride,
                row_stride: v.col_stride,
            };
            let dst_t = View {
                ptr: dst.ptr,
                col_stride: dst.row_stride,
                row_stride: dst.col_stride,
            };
            (n, m, dst_t, t(rhs), t(lhs))
        } else {
            (m, n, dst, lhs, rhs)
        };
        macro_rules! run {
            ($simd:expr, $kernels:ident, $lanes:expr) => {
                // SAFETY: the views are valid (caller); the simd token was created only after
                // its features were detected (`try_new`).
                unsafe {
                    gemm_basic_generic::<
                        _,
                        f32,
                        { $lanes },
                        { $kernels::MR_DIV_N * $lanes },
                        { $kernels::NR },
                        { $kernels::MR_DIV_N },
                        { $kernels::H_M },
                        { $kernels::H_N },
                    >(
                        $simd,
                        m,
                        n,
                        k,
                        dst.ptr,
                        dst.col_stride,
                        dst.row_stride,
                        accumulate,
                        lhs.ptr,
                        lhs.col_stride,
                        lhs.row_stride,
                        rhs.ptr,
                        rhs.col_stride,
                        rhs.row_stride,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        |a, b, c| a * b + c,
                        &$kernels::UKR,
                        &$kernels::H_UKR,
                        false,
                        parallelism,
                    )
                }
            };
        }
        match level {
            Level::Avx2 => {
                let simd = <V3 as MixedSimd<f32, f32, f32, f32>>::try_new().expect("AVX2+FMA detected");
                run!(simd, fma, 8)
            }
            _ => run!(Scalar, scalar, 1),
        }
    }
}

/// The largest |value| of a tensor.
#[cfg(test)]
pub(crate) fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The largest |a − b|.
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `product` at every level — the gemm crate's own choice at the widest, its AVX2 and
    /// scalar microkernels called directly below it — against a plain triple loop, for
    /// row- and column-major operands and destinations, with and without accumulation.
    #[test]
    fn products_match_at_every_level() {
        let (m, n, k) = (37, 29, 53);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 23) as f32 - 11.0) / 9.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 19) as f32 - 9.0) / 7.0).collect();
        let want = |i: usize, j: usize| (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
        simd::for_each_level(|level| {
            for (dst_rows, accumulate, parallel) in [(true, false, false), (false, true, true), (true, true, true)] {
                let mut dst = vec![1.0f32; m * n];
                let view = if dst_rows {
                    View::rows(dst.as_mut_ptr(), n)
                } else {
                    View::cols(dst.as_mut_ptr(), m)
                };
                let par = if parallel {
                    parallelism()
                } else {
                    gemm::Parallelism::None
                };
                // SAFETY: a is m×k and b is k×n row-major; dst holds m×n; none overlap.
                unsafe {
                    product(
                        level,
                        (m, n, k),
                        view,
                        accumulate,
                        View::rows(a.as_ptr(), k),
                        View::rows(b.as_ptr(), n),
                        par,
                    )
                };
                for i in 0..m {
                    for j in 0..n {
                        let got = if dst_rows { dst[i * n + j] } else { dst[j * m + i] };
                        let expect = want(i, j) + if accumulate { 1.0 } else { 0.0 };
                        assert!(
                            (got - expect).abs() < 1e-4 * expect.abs().max(1.0),
                            "{level:?} rows={dst_rows} acc={accumulate}: [{i},{j}] {got} vs {expect}"
                        );
                    }
                }
            }
        });
    }
}
