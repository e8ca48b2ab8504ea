//! The allocator the `lantern` binary uses: mimalloc, plus a small cache of large blocks.
//!
//! A diffusion loop allocates and frees the same large activations (tens of MB each) every
//! step. Returned to the OS, each one comes back as fresh pages that the kernel must fault in
//! and zero — about a tenth of a UNet step on a CPU. Freed blocks of 1 MiB and more are kept
//! here, keyed by exact size, and handed out again to the next request of that size. A miss
//! means the work moved on to larger buffers (the VAE climbing to full resolution), so the
//! smaller cached blocks are returned then rather than held through the larger phase.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;

use mimalloc::MiMalloc;

const MIN_CACHED: usize = 1 << 20;
const SLOTS: usize = 96;
/// Upper bound on memory held free in the cache. Every cached byte adds to the peak
/// resident size: 512 MiB keeps a 512² UNet step as fast as with more, and keeps a VAE
/// decode's peak (the peak of a whole generation) below diffusers'.
const MAX_CACHED_BYTES: usize = 512 << 20;

struct Cache {
    /// (size, align, address); address 0 = empty slot.
    slots: [(usize, usize, usize); SLOTS],
    bytes: usize,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    slots: [(0, 0, 0); SLOTS],
    bytes: 0,
});

pub struct CachingAllocator;

unsafe extern "C" {
    /// mimalloc's runtime options (the library is linked in by the `mimalloc` crate).
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 2's option list (`mimalloc.h`, `mi_option_e`).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Sets up memory for this workload; call first thing in `main`, before any other thread
/// exists (the binary's allocator; the library and its tests do not need it).
pub fn configure() {
    // Keep freed memory for a second before returning it to the OS: a UNet step frees and
    // reallocates the same large buffers many times, and each return costs page faults and
    // zeroing (about a tenth of a step) when they come back. Purges read the option when they
    // are scheduled, so setting it here is in time.
    // SAFETY: a plain option setter, called before other threads can allocate.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    disable_transparent_huge_pages();
}

/// No transparent huge pages for this process. mimalloc asks for them on its arenas, and its
/// 64 KiB purges then split 2 MiB pages that the kernel faults in and zeroes whole again: half
/// of the runs of a small model's generation spent 40 % of their time zeroing pages (0.5 s
/// became 0.9–1.1 s), and a 512² VAE decode was 10 % slower and 4 % larger. mimalloc's own
/// `allow_thp` option cannot help: its first arena is reserved by the Rust runtime's first
/// allocation, before `main`. The process flag is checked at every fault, so it covers that
/// arena too.
fn disable_transparent_huge_pages() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
        let done = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } == 0;
        if !done {
            // Kernels before 3.15, or an emulator that does not pass the call on: slower
            // first touches of memory, nothing worse.
            tracing::debug!("transparent huge pages stay on: {}", std::io::Error::last_os_error());
        }
        done
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Returns every cached block to the system allocator: called between phases whose buffers
/// differ (the UNet loop, the VAE decode), so memory held for one does not add to the other's
/// peak. A no-op when this allocator is not the global one (the cache is then always empty).
pub fn release_cached() {
    let blocks = {
        let Ok(mut cache) = CACHE.lock() else { return };
        cache.evict_smaller_than(usize::MAX)
    };
    free_blocks(blocks);
}

impl Cache {
    /// Empties the slots holding blocks smaller than `size` and returns them.
    fn evict_smaller_than(&mut self, size: usize) -> Vec<(usize, usize, usize)> {
        let mut taken = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| s.2 != 0 && s.0 < size) {
            taken.push(*slot);
            self.bytes -= slot.0;
            *slot = (0, 0, 0);
        }
        taken
    }
}

/// Hands evicted blocks back to mimalloc (outside the cache's lock: freeing may allocate).
fn free_blocks(blocks: Vec<(usize, usize, usize)>) {
    for (size, align, ptr) in blocks {
        // SAFETY: these blocks came from MiMalloc with this size and alignment and are unused.
        unsafe { MiMalloc.dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(size, align)) };
    }
}

impl CachingAllocator {
    fn take(layout: Layout) -> *mut u8 {
        let stale = {
            let Ok(mut cache) = CACHE.lock() else {
                return std::ptr::null_mut();
            };
            for slot in cache.slots.iter_mut() {
                if slot.2 != 0 && slot.0 == layout.size() && slot.1 == layout.align() {
                    let ptr = slot.2 as *mut u8;
                    *slot = (0, 0, 0);
                    cache.bytes -= layout.size();
                    return ptr;
                }
            }
            cache.evict_smaller_than(layout.size())
        };
        free_blocks(stale);
        std::ptr::null_mut()
    }

    /// Keeps the block; false when the cache is full (the caller frees it).
    fn keep(ptr: *mut u8, layout: Layout) -> bool {
        let Ok(mut cache) = CACHE.lock() else { return false };
        if cache.bytes + layout.size() > MAX_CACHED_BYTES {
            return false;
        }
        let Some(slot) = cache.slots.iter_mut().find(|s| s.2 == 0) else {
            return false;
        };
        *slot = (layout.size(), layout.align(), ptr as usize);
        cache.bytes += layout.size();
        true
    }
}

// SAFETY: every block handed out is either fresh from mimalloc or a block of exactly the same
// size and alignment that was freed earlier and is no longer used by anyone.
unsafe impl GlobalAlloc for CachingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_CACHED {
            let ptr = Self::take(layout);
            if !ptr.is_null() {
                return ptr;
            }
        }
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_CACHED {
            let ptr = Self::take(layout);
            if !ptr.is_null() {
                unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
                return ptr;
            }
        }
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= MIN_CACHED && Self::keep(ptr, layout) {
            return;
        }
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() >= MIN_CACHED || new_size >= MIN_CACHED {
            // Through alloc/dealloc so cached blocks keep their exact sizes.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
            }
            return new;
        }
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn turning_transparent_huge_pages_off_shows_in_the_process_status() {
        super::configure();
        // Where the kernel took the flag (not, e.g., under qemu-user, which does not pass the
        // call on), the process status must say so; kernels before 5.0 have no such line.
        if super::disable_transparent_huge_pages() {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
                assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
            }
        }
    }
}
