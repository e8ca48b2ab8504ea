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
