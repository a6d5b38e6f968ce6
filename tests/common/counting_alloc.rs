//! A counting global allocator for the memory tests: `System`, plus counters of the
//! allocation calls, bytes and peak live bytes of the thread that is measuring.
//! A test binary includes it with `#[path = "common/counting_alloc.rs"] mod counting_alloc;`,
//! which also installs it as the binary's global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `System`, counting what the measuring thread allocates.
pub struct Counting;

/// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`) while measuring.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested by those calls (a `realloc` counts its new size).
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes live now and at most, counted from the start of the measurement.
static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only the thread that measures counts; the test harness's other threads
    // allocate too. `const` initialisation keeps this free of allocation.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn measuring() -> bool {
    MEASURING.try_with(Cell::get).unwrap_or(false)
}

fn grow(bytes: usize) {
    CALLS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
    let live = LIVE.fetch_add(bytes as u64, Relaxed) + bytes as u64;
    PEAK.fetch_max(live, Relaxed);
}

fn shrink(bytes: usize) {
    // Frees of memory allocated before the measurement may take this below 0.
    let _ = LIVE.fetch_update(Relaxed, Relaxed, |l| Some(l.saturating_sub(bytes as u64)));
}

// SAFETY: every method forwards to `System` with the same arguments and
// returns its result unchanged; the counting touches only atomics and a
// `const`-initialised thread-local, and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if measuring() {
            grow(layout.size());
        }
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if measuring() {
            grow(layout.size());
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if measuring() {
            shrink(layout.size());
        }
        // SAFETY: `ptr` came from `System` with this layout (every allocation
        // goes through this allocator, which forwards to `System`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if measuring() {
            shrink(layout.size());
            grow(new_size);
        }
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What one call allocated.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Allocation calls.
    pub calls: u64,
    /// Bytes requested.
    pub bytes: u64,
    /// Most bytes live at once.
    pub peak: u64,
}

/// Counts the allocations of one call of `f` on this thread (its result is dropped
/// inside the measurement).
pub fn measure<R>(f: impl FnOnce() -> R) -> Usage {
    for c in [&CALLS, &BYTES, &LIVE, &PEAK] {
        c.store(0, Relaxed);
    }
    MEASURING.with(|m| m.set(true));
    let r = f();
    MEASURING.with(|m| m.set(false));
    drop(r);
    Usage {
        calls: CALLS.load(Relaxed),
        bytes: BYTES.load(Relaxed),
        peak: PEAK.load(Relaxed),
    }
}
