//! Hand-written CPU kernels for the operations that dominate a Stable Diffusion step on a
//! laptop: 3×3 convolutions (Winograd), attention (blocked, never the whole score matrix),
//! GroupNorm fused with SiLU, and GEGLU. Each works on contiguous f32 CPU tensors; callers
//! fall back to candle's generic ops for other devices and dtypes.

pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod attention_avx512;
pub mod check;
pub mod conv;
pub mod exp;
pub mod group_norm;
pub mod matmul;
pub mod simd;
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
/// # Safety
/// Every view must be valid for its shape and strides, and `dst` must not overlap the inputs.
pub(crate) unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: View<*mut f32>,
    accumulate: bool,
    lhs: View<*const f32>,
    rhs: View<*const f32>,
    parallelism: gemm::Parallelism,
) {
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
