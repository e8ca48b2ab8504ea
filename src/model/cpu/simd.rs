//! Element-wise loops compiled for the widest vector unit the CPU has, chosen at run time.
//!
//! The binary is built for baseline x86-64 (SSE2) so it runs on any laptop; the loops of
//! GEGLU, GELU, GroupNorm+SiLU and the Winograd transforms are written as plain Rust that
//! LLVM vectorises, and [`vectorized`] runs such a loop through a copy of it compiled with
//! AVX-512 or AVX2+FMA enabled. That is 4× or 2× the lanes of SSE2 for the same source.

/// The vector extensions this CPU offers, detected once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Baseline,
}

/// The widest usable level on this CPU.
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(detect)
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// Runs `f` — a loop over slices whose body is inlined — compiled for [`level`].
///
/// `f` is inlined into a function with the wider target features enabled, so LLVM
/// vectorises it at that width. Keep rayon and other calls that would not inline outside
/// `f`: code behind a call boundary keeps the baseline features.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match level() {
        // SAFETY: the features these functions enable were detected on this CPU.
        Level::Avx512 => return unsafe { with_avx512(f) },
        Level::Avx2 => return unsafe { with_avx2(f) },
        Level::Baseline => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_computes_the_same_loop() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 77.0).collect();
        let plain: Vec<f32> = x.iter().map(|&v| crate::model::cpu::exp::gelu(v)).collect();
        let wide = vectorized(|| x.iter().map(|&v| crate::model::cpu::exp::gelu(v)).collect::<Vec<_>>());
        for (a, b) in plain.iter().zip(&wide) {
            // FMA contraction may differ from separate multiply and add in the last bit.
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
