//! How many threads the numeric work (rayon's global pool: convolutions, products, attention)
//! runs on.
//!
//! The kernels keep both FMA units of a core busy, so a second hardware thread on the same
//! core (SMT, "hyper-threading") adds no arithmetic, only contention for the core's caches and
//! a straggler at every barrier. The default is therefore one thread per *physical* core the
//! process may run on; `LANTERN_THREADS` (or rayon's own `RAYON_NUM_THREADS`) overrides it.

use std::collections::BTreeSet;
use std::path::Path;

/// Where the thread count came from (shown by `lantern --version` and the bench).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadSource {
    /// `LANTERN_THREADS`.
    Lantern,
    /// `RAYON_NUM_THREADS`.
    Rayon,
    /// One per physical core the process may use.
    PhysicalCores,
    /// The core topology could not be read: one per logical CPU.
    LogicalCpus,
}

impl ThreadSource {
    pub fn describe(self) -> &'static str {
        match self {
            ThreadSource::Lantern => "LANTERN_THREADS",
            ThreadSource::Rayon => "RAYON_NUM_THREADS",
            ThreadSource::PhysicalCores => "physical cores",
            ThreadSource::LogicalCpus => "logical CPUs",
        }
    }
}

/// The thread count to use and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadChoice {
    pub count: usize,
    pub source: ThreadSource,
}

/// The choice for this process: an override from the environment, else the physical cores.
pub fn choose() -> ThreadChoice {
    let env = |name: &str| std::env::var(name).ok();
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    choose_from(
        env("LANTERN_THREADS"),
        env("RAYON_NUM_THREADS"),
        physical_cores(),
        logical,
    )
}

/// [`choose`] on given inputs. `logical` is what the process may use (affinity and cgroup
/// quota applied), so it also caps the physical count.
fn choose_from(
    lantern: Option<String>,
    rayon: Option<String>,
    physical: Option<usize>,
    logical: usize,
) -> ThreadChoice {
    let parse = |v: Option<String>| v.and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
    if let Some(count) = parse(lantern) {
        return ThreadChoice {
            count,
            source: ThreadSource::Lantern,
        };
    }
    if let Some(count) = parse(rayon) {
        return ThreadChoice {
            count,
            source: ThreadSource::Rayon,
        };
    }
    match physical {
        Some(cores) if cores > 0 => ThreadChoice {
            count: cores.min(logical.max(1)),
            source: ThreadSource::PhysicalCores,
        },
        _ => ThreadChoice {
            count: logical.max(1),
            source: ThreadSource::LogicalCpus,
        },
    }
}

/// Sizes rayon's global pool by [`choose`]; call once, before any parallel work. Returns the
/// pool's size (a pool built earlier keeps its own).
pub fn init() -> usize {
    let choice = choose();
    match rayon::ThreadPoolBuilder::new().num_threads(choice.count).build_global() {
        Ok(()) => tracing::debug!("{} compute threads ({})", choice.count, choice.source.describe()),
        Err(e) => tracing::debug!("compute thread pool already built: {e}"),
    }
    rayon::current_num_threads()
}

/// Physical cores among the CPUs this process may run on, where the OS says.
pub fn physical_cores() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        physical_cores_linux(Path::new("/sys/devices/system/cpu"), &allowed_cpus_linux()?)
    }
    #[cfg(target_os = "macos")]
    {
        sysctl_usize(c"hw.physicalcpu")
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        None
    }
}

/// The logical CPUs in this process's affinity mask.
#[cfg(target_os = "linux")]
fn allowed_cpus_linux() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is valid for `size` bytes; pid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set filled above, within its bounds.
    Some(
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect(),
    )
}

/// Distinct (package, core) pairs among `cpus`, read from sysfs's topology files under `root`
/// (`cpuN/topology/physical_package_id` and `core_id`). `None` when any is unreadable.
fn physical_cores_linux(root: &Path, cpus: &[usize]) -> Option<usize> {
    let read = |cpu: usize, file: &str| -> Option<i64> {
        let text = std::fs::read_to_string(root.join(format!("cpu{cpu}/topology/{file}"))).ok()?;
        text.trim().parse().ok()
    };
    let mut cores = BTreeSet::new();
    for &cpu in cpus {
        cores.insert((read(cpu, "physical_package_id")?, read(cpu, "core_id")?));
    }
    (!cores.is_empty()).then_some(cores.len())
}

#[cfg(target_os = "macos")]
fn sysctl_usize(name: &std::ffi::CStr) -> Option<usize> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    // SAFETY: `value` is valid for `len` bytes; no new value is written.
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && value > 0).then_some(value as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(root: &Path, cpu: usize, package: i64, core: i64) {
        let dir = root.join(format!("cpu{cpu}/topology"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("physical_package_id"), format!("{package}\n")).unwrap();
        std::fs::write(dir.join("core_id"), format!("{core}\n")).unwrap();
    }

    #[test]
    fn counts_cores_not_hardware_threads() {
        let dir = tempfile::tempdir().unwrap();
        // 4 cores × 2 threads on one package: CPUs n and n+4 share core n, as Linux numbers them.
        for cpu in 0..8 {
            topology(dir.path(), cpu, 0, (cpu % 4) as i64);
        }
        let all: Vec<usize> = (0..8).collect();
        assert_eq!(physical_cores_linux(dir.path(), &all), Some(4));
        // Pinned to both threads of two cores (taskset -c 0,1,4,5): two cores.
        assert_eq!(physical_cores_linux(dir.path(), &[0, 1, 4, 5]), Some(2));
        // Two packages with the same core ids are different cores.
        topology(dir.path(), 8, 1, 0);
        assert_eq!(physical_cores_linux(dir.path(), &[0, 8]), Some(2));
        // A CPU whose topology cannot be read: no answer rather than a wrong one.
        assert_eq!(physical_cores_linux(dir.path(), &[0, 9]), None);
    }

    #[test]
    fn overrides_win_and_quotas_cap() {
        let s = |v: &str| Some(v.to_string());
        let pick = |l, r, p, n| choose_from(l, r, p, n);
        assert_eq!(pick(s("3"), s("5"), Some(4), 8).count, 3);
        assert_eq!(pick(s("3"), s("5"), Some(4), 8).source, ThreadSource::Lantern);
        assert_eq!(pick(None, s("5"), Some(4), 8).source, ThreadSource::Rayon);
        // Unreadable or zero overrides are ignored.
        assert_eq!(
            pick(s("lots"), s("0"), Some(4), 8),
            ThreadChoice {
                count: 4,
                source: ThreadSource::PhysicalCores
            }
        );
        // A cgroup quota of 2 CPUs caps 4 physical cores.
        assert_eq!(pick(None, None, Some(4), 2).count, 2);
        assert_eq!(
            pick(None, None, None, 6),
            ThreadChoice {
                count: 6,
                source: ThreadSource::LogicalCpus
            }
        );
    }

    #[test]
    fn this_machine_has_at_least_one_core() {
        let choice = choose();
        assert!(choice.count >= 1);
        if let Some(cores) = physical_cores() {
            assert!(cores >= 1);
        }
    }
}
