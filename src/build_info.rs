//! What this build of Lantern is and where it keeps things: `lantern --version` and the
//! window's About panel say the same.

use std::path::PathBuf;

use crate::model::cpu::simd;

/// The facts a bug report needs.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildInfo {
    pub version: &'static str,
    /// `x86_64-linux`, `aarch64-macos`, …
    pub target: String,
    /// The CPU kernels in use (`avx2`, `avx512`, `generic`), after `LANTERN_CPU`.
    pub cpu_level: &'static str,
    /// The widest level this CPU supports, when `LANTERN_CPU` asked for less.
    pub cpu_detected: &'static str,
    /// Compute threads (rayon's pool: one per physical core unless `LANTERN_THREADS` says).
    pub threads: usize,
    pub cuda: bool,
    pub metal: bool,
    pub data_dir: PathBuf,
}

impl BuildInfo {
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            cpu_level: simd::cpu_level().name(),
            cpu_detected: simd::detected().name(),
            threads: rayon::current_num_threads(),
            cuda: cfg!(feature = "cuda"),
            metal: cfg!(feature = "metal"),
            data_dir: crate::paths::DataDir::from_env().root().to_path_buf(),
        }
    }

    /// "CPU (avx2, 4 threads)", "CPU (generic, avx512 available, 2 threads), CUDA".
    pub fn devices(&self) -> String {
        let mut cpu = format!("CPU ({}", self.cpu_level);
        if self.cpu_detected != self.cpu_level {
            cpu.push_str(&format!(", {} available", self.cpu_detected));
        }
        let plural = if self.threads == 1 { "" } else { "s" };
        cpu.push_str(&format!(", {} thread{plural})", self.threads));
        let mut parts = vec![cpu];
        if self.cuda {
            parts.push("CUDA".into());
        }
        if self.metal {
            parts.push("Metal".into());
        }
        parts.join(", ")
    }

    /// `lantern --version`: the version, then one fact per line.
    pub fn long_version(&self) -> String {
        format!(
            "{}\ntarget: {}\ndevices: {}\ndata folder: {}",
            self.version,
            self.target,
            self.devices(),
            self.data_dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_version_devices_and_data_folder() {
        let info = BuildInfo {
            version: "1.2.3",
            target: "x86_64-linux".into(),
            cpu_level: "generic",
            cpu_detected: "avx2",
            threads: 4,
            cuda: true,
            metal: false,
            data_dir: "/home/d/.local/share/lantern".into(),
        };
        assert_eq!(info.devices(), "CPU (generic, avx2 available, 4 threads), CUDA");
        let text = info.long_version();
        assert!(text.starts_with("1.2.3\n"), "{text}");
        assert!(text.contains("data folder: /home/d/.local/share/lantern"));
        let here = BuildInfo::current();
        assert_eq!(here.version, env!("CARGO_PKG_VERSION"));
        assert!(here.devices().starts_with("CPU ("));
    }
}
