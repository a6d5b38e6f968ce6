//! Bytes and allocations of one gradient of the 64×1000×100×10 networks, per
//! way of computing it, by a counting global allocator.
//!
//! Run with `cargo test --release --test alloc_count -- --nocapture` to see the
//! table. Each gradient is called once before it is measured, so one-time
//! costs (thread-local buffers) are not counted.

#[path = "../benches/common/mlp.rs"]
mod mlp;

use mlp::{double, single, ReluNet, TanhNet};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `System`, counting what the measuring thread allocates.
struct Counting;

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
struct Usage {
    calls: u64,
    bytes: u64,
    peak: u64,
}

/// Runs `f` once to warm up, then once more counting its allocations.
fn measure<R>(mut f: impl FnMut() -> R) -> Usage {
    drop(f());
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

/// Measures every row, prints the table, and returns the usage by row name.
fn report(title: &str, rows: Vec<(&'static str, Usage)>) -> Vec<(&'static str, Usage)> {
    println!("\n{title}");
    println!(
        "{:<8} {:>8} {:>12} {:>12} {:>10}",
        "gradient", "allocs", "bytes", "peak bytes", "bytes/fused"
    );
    let fused = rows.iter().find(|r| r.0 == "fused").map(|r| r.1.bytes);
    for (name, u) in &rows {
        let ratio = fused.map_or("-".to_string(), |f| {
            format!("{:.2}", u.bytes as f64 / f as f64)
        });
        println!(
            "{name:<8} {:>8} {:>12} {:>12} {ratio:>10}",
            u.calls, u.bytes, u.peak
        );
    }
    rows
}

fn usage(rows: &[(&str, Usage)], name: &str) -> Usage {
    rows.iter().find(|r| r.0 == name).unwrap().1
}

#[track_caller]
fn assert_fused_allocates_least(net: &str, rows: &[(&str, Usage)]) {
    let fused = usage(rows, "fused");
    for other in ["hand", "tape"] {
        let u = usage(rows, other);
        assert!(
            fused.bytes < u.bytes && fused.calls < u.calls,
            "{net}: fused ({fused:?}) does not allocate less than {other} ({u:?})"
        );
    }
}

/// The gradient `#[differentiable]` emits allocates less than the tape, in bytes
/// and in calls.
#[track_caller]
fn assert_static_allocates_less_than_the_tape(net: &str, rows: &[(&str, Usage)]) {
    let (stat, tape) = (usage(rows, "static"), usage(rows, "tape"));
    assert!(
        stat.bytes < tape.bytes && stat.calls < tape.calls,
        "{net}: static ({stat:?}) does not allocate less than the tape ({tape:?})"
    );
}

// One test, so that no other test of this binary runs during a measurement.
#[test]
fn one_gradient_allocates_least_when_fused() {
    let net = TanhNet::<f64>::new(1);
    let rows = double::tanh_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("tanh network, f64, one gradient", rows);
    assert_fused_allocates_least("tanh f64", &rows);
    assert_static_allocates_less_than_the_tape("tanh f64", &rows);

    let net = TanhNet::<f32>::new(1);
    let rows = single::tanh_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("tanh network, f32, one gradient", rows);
    assert_fused_allocates_least("tanh f32", &rows);
    assert_static_allocates_less_than_the_tape("tanh f32", &rows);

    let net = ReluNet::<f64>::new(1);
    let rows = double::relu_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("ReLU network, f64, one gradient", rows);
    assert_fused_allocates_least("relu f64", &rows);
    assert_static_allocates_less_than_the_tape("relu f64", &rows);

    let net = ReluNet::<f32>::new(1);
    let rows = single::relu_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("ReLU network, f32, one gradient", rows);
    assert_fused_allocates_least("relu f32", &rows);
    assert_static_allocates_less_than_the_tape("relu f32", &rows);

    // The primal, for scale.
    let net = TanhNet::<f64>::new(1);
    report(
        "tanh network, f64, the primal loss",
        vec![("primal", measure(|| double::tanh_loss(&net)))],
    );
}
