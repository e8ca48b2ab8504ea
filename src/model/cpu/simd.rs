//! Element-wise loops compiled for the widest vector unit the CPU has, chosen at run time.
//!
//! The binary is built for baseline x86-64 (SSE2) so it runs on any laptop; the loops of
//! GEGLU, GELU, GroupNorm+SiLU and the Winograd transforms are written as plain Rust that
//! LLVM vectorises, and [`vectorized!`] runs such a loop through a copy of it compiled with
//! AVX-512 or AVX2+FMA enabled. That is 4× or 2× the lanes of SSE2 for the same source.

use std::cell::Cell;
use std::sync::OnceLock;

/// The vector extensions a kernel may use, narrowest first (so levels compare with `<`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain x86-64 (SSE2): what `LANTERN_CPU=generic` forces.
    Baseline,
    Avx2,
    Avx512,
}

/// Every feature some `#[target_feature]` function of a level enables. A level is used only
/// when the CPU reports all of them: enabling a feature the CPU lacks is undefined behaviour
/// and, on VMs that hide single flags (avx512vl, avx512bw…), an illegal instruction.
/// `with_avx2` enables avx2+fma (avx2 implies avx); `with_avx512` enables the AVX-512 set plus
/// avx2+fma; the attention and Winograd kernels enable avx512f.
pub const AVX2_FEATURES: &[&str] = &["avx", "avx2", "fma"];
pub const AVX512_FEATURES: &[&str] = &["avx", "avx2", "fma", "avx512f", "avx512dq", "avx512vl", "avx512bw"];

impl Level {
    /// The name `LANTERN_CPU` takes for this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "generic",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// The widest level whose every feature `has` reports.
pub fn level_for(has: impl Fn(&str) -> bool) -> Level {
    if AVX512_FEATURES.iter().all(|f| has(f)) {
        Level::Avx512
    } else if AVX2_FEATURES.iter().all(|f| has(f)) {
        Level::Avx2
    } else {
        Level::Baseline
    }
}

/// Whether this CPU (and OS) supports `feature`; unknown names are `false`, the safe answer.
fn cpu_has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // The detection macro wants literals, hence the table.
        match feature {
            "avx" => is_x86_feature_detected!("avx"),
            "avx2" => is_x86_feature_detected!("avx2"),
            "fma" => is_x86_feature_detected!("fma"),
            "avx512f" => is_x86_feature_detected!("avx512f"),
            "avx512dq" => is_x86_feature_detected!("avx512dq"),
            "avx512vl" => is_x86_feature_detected!("avx512vl"),
            "avx512bw" => is_x86_feature_detected!("avx512bw"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The widest level this CPU supports (detected once). Nothing may run above it.
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(|| level_for(cpu_has))
}

/// What a `LANTERN_CPU` value asks for, given the detected level: the level to use and a
/// warning to log when the value cannot be honoured.
pub fn parse_override(value: &str, detected: Level) -> (Level, Option<String>) {
    let wanted = match value.trim().to_ascii_lowercase().as_str() {
        "" => return (detected, None),
        "generic" | "baseline" => Level::Baseline,
        "avx2" => Level::Avx2,
        "avx512" => Level::Avx512,
        other => {
            return (
                detected,
                Some(format!(
                    "LANTERN_CPU={other:?} is not one of generic, avx2, avx512; using {}",
                    detected.name()
                )),
            );
        }
    };
    if wanted > detected {
        // Running wider code than the CPU has would crash; refuse rather than obey.
        let warning = format!(
            "LANTERN_CPU={} is more than this CPU supports; using {}",
            wanted.name(),
            detected.name()
        );
        return (detected, Some(warning));
    }
    (wanted, None)
}

/// The process-wide level: the detected one, or lower when `LANTERN_CPU` says so. Read once,
/// so a kernel never sees the level change under it.
fn process_level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let Ok(value) = std::env::var("LANTERN_CPU") else {
            return detected();
        };
        let (level, warning) = parse_override(&value, detected());
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        level
    })
}

thread_local! {
    /// A narrower level for this thread only ([`with_level`]): the environment is
    /// process-global, and tests running in parallel must not see each other's choice.
    static SCOPED: Cell<Option<Level>> = const { Cell::new(None) };
}

/// The level every dispatch site uses: this thread's [`with_level`] choice, else
/// `LANTERN_CPU`, else the detected level; never above what the CPU supports.
///
/// Kernels read it once on the calling thread and hand it to their parallel workers, so a
/// scoped choice covers the rayon tasks the kernel spawns.
pub fn cpu_level() -> Level {
    SCOPED.with(|s| s.get()).unwrap_or_else(process_level).min(detected())
}

/// Runs `f` with [`cpu_level`] at most `level` on this thread (for tests and benchmarks).
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Level>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(level.min(detected())))));
    f()
}

/// Every level this CPU can run, narrowest first.
pub fn available_levels() -> Vec<Level> {
    [Level::Baseline, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| l <= detected())
        .collect()
}

/// Runs `f` once under each level this CPU can run (the kernel tests use it).
pub fn for_each_level(mut f: impl FnMut(Level)) {
    for level in available_levels() {
        // Shown with a failing test's output, which level broke.
        eprintln!("at cpu level {}", level.name());
        with_level(level, || f(level));
    }
}

/// `vectorized!(level, body)` evaluates the expression `body` — loops over slices, with
/// every call in them `#[inline(always)]` — compiled for `level` (a kernel's [`cpu_level`],
/// read once outside its parallel loop), capped at the detected level.
///
/// The body is written out once per level, each copy in its own closure that is called from
/// exactly one place: the wrapper enabling that level's features (or, at the baseline, the
/// caller itself). LLVM always inlines a closure with a single caller, so the loops are
/// vectorised at that width. One closure shared by the three wrappers was not inlined once
/// its body outgrew the inliner's threshold: the wrappers became a jump to one SSE2 copy, and
/// GEGLU, GELU and the Winograd transforms ran at SSE2 width at every level.
/// `tools/check_vectorized.sh` checks a release build for such wrappers.
#[cfg(target_arch = "x86_64")]
macro_rules! vectorized {
    ($level:expr, $body:expr) => {{
        use $crate::model::cpu::simd::{Level, detected, with_avx2, with_avx512};
        match Level::min($level, detected()) {
            Level::Avx512 => {
                let body = || $body;
                // SAFETY: every feature the wrapper enables was detected on this CPU
                // (`AVX512_FEATURES`).
                unsafe { with_avx512(body) }
            }
            Level::Avx2 => {
                let body = || $body;
                // SAFETY: as above (`AVX2_FEATURES`).
                unsafe { with_avx2(body) }
            }
            Level::Baseline => $body,
        }
    }};
}

#[cfg(not(target_arch = "x86_64"))]
macro_rules! vectorized {
    ($level:expr, $body:expr) => {{
        let _: $crate::model::cpu::simd::Level = $level;
        $body
    }};
}

pub(crate) use vectorized;

/// Runs `f` compiled with the AVX-512 set (plus AVX2+FMA) enabled, when it is inlined here,
/// which [`vectorized!`] arranges.
///
/// # Safety
/// The CPU must support every feature in [`AVX512_FEATURES`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// As [`with_avx512`], with AVX2+FMA.
///
/// # Safety
/// The CPU must support every feature in [`AVX2_FEATURES`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_computes_the_same_loop() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 77.0).collect();
        let plain: Vec<f32> = x.iter().map(|&v| crate::model::cpu::exp::gelu(v)).collect();
        for_each_level(|level| {
            assert_eq!(cpu_level(), level);
            let wide = vectorized!(cpu_level(), {
                x.iter().map(|&v| crate::model::cpu::exp::gelu(v)).collect::<Vec<_>>()
            });
            for (a, b) in plain.iter().zip(&wide) {
                // FMA contraction may differ from separate multiply and add in the last bit.
                assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{level:?}: {a} vs {b}");
            }
        });
    }

    #[test]
    fn a_level_needs_every_feature_it_enables() {
        assert_eq!(level_for(|_| true), Level::Avx512);
        assert_eq!(level_for(|_| false), Level::Baseline);
        // Hiding any one AVX-512 feature (a VM without avx512vl, say) drops to AVX2.
        for &hidden in AVX512_FEATURES {
            let expect = if AVX2_FEATURES.contains(&hidden) {
                Level::Baseline
            } else {
                Level::Avx2
            };
            assert_eq!(level_for(|f| f != hidden), expect, "without {hidden}");
        }
        for &hidden in AVX2_FEATURES {
            let only_avx2 = |f: &str| AVX2_FEATURES.contains(&f) && f != hidden;
            assert_eq!(level_for(only_avx2), Level::Baseline, "without {hidden}");
        }
    }

    #[test]
    fn lantern_cpu_lowers_but_never_raises_the_level() {
        assert_eq!(parse_override("generic", Level::Avx2), (Level::Baseline, None));
        assert_eq!(parse_override("AVX2", Level::Avx512), (Level::Avx2, None));
        assert_eq!(parse_override("avx512", Level::Avx512), (Level::Avx512, None));
        let (level, warning) = parse_override("avx512", Level::Avx2);
        assert_eq!(level, Level::Avx2);
        assert!(warning.unwrap().contains("more than this CPU supports"));
        let (level, warning) = parse_override("sse9", Level::Avx2);
        assert_eq!(level, Level::Avx2);
        assert!(warning.unwrap().contains("not one of"));
    }

    #[test]
    fn a_scoped_level_is_capped_and_restored() {
        let before = cpu_level();
        with_level(Level::Avx512, || assert!(cpu_level() <= detected()));
        with_level(Level::Baseline, || {
            assert_eq!(cpu_level(), Level::Baseline);
            with_level(Level::Avx2, || assert!(cpu_level() <= Level::Avx2));
            assert_eq!(cpu_level(), Level::Baseline);
        });
        assert_eq!(cpu_level(), before);
        assert!(available_levels().contains(&Level::Baseline));
    }
}
