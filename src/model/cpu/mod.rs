//! Hand-written CPU kernels for the operations that dominate a Stable Diffusion step on a
//! laptop: 3×3 convolutions (Winograd), attention (blocked, never the whole score matrix),
//! GroupNorm fused with SiLU, and GEGLU. Each works on contiguous f32 CPU tensors; callers
//! fall back to candle's generic ops for other devices and dtypes.

pub mod attention;
pub mod exp;
pub mod group_norm;
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
