//! Memory of the static path's loop reversal, by a counting global allocator: the peak
//! bytes one gradient call allocates grows linearly with the trip count, and a second
//! call on the same thread reuses the stack buffers (no allocation but the result).
//!
//! `cargo test --release --test control_memory -- --nocapture` prints the table.

#![allow(dead_code)] // the primals are measured through their companions

use adjoint::prelude::*;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

/// (allocation calls, peak live bytes) of `f`.
fn measure<R>(f: impl FnOnce() -> R) -> (u64, u64) {
    let usage = counting_alloc::measure(f);
    (usage.calls, usage.peak)
}

// x is overwritten every iteration and the adjoint reads it: one f64 pushed per step.
#[differentiable(static)]
fn logistic(x0: f64, r: f64, n: usize) -> f64 {
    let mut x = x0;
    for _ in 0..n {
        x = r * x * (1.0 - x);
    }
    x
}

// Nothing pushed: `a`, `b` are recomputed, `s` is an accumulator.
#[differentiable(static)]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
    }
    s
}

#[test]
fn stack_memory_grows_linearly_and_is_reused() {
    println!(
        "{:>9} {:>16} {:>16} {:>16}",
        "n", "logistic peak B", "2nd call allocs", "rosenbrock peak B"
    );
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        // A fresh thread: an empty pool, so the first call grows its stack.
        let (first, second, rosen) = std::thread::spawn(move || {
            let first = measure(|| logistic_grad(0.3, 3.1, n));
            let second = measure(|| logistic_grad(0.3, 3.1, n));
            let x: Vec<f64> = (0..n).map(|i| 0.5 + 0.001 * i as f64).collect();
            let rosen = measure(|| rosenbrock_grad(&x));
            (first, second, rosen)
        })
        .join()
        .unwrap();
        println!("{n:>9} {:>16} {:>16} {:>16}", first.1, second.0, rosen.1);
        // The stack holds n f64s (doubling growth: at most 2× plus the old buffer
        // during a reallocation).
        let bytes = 8 * n as u64;
        assert!(
            first.1 >= bytes && first.1 <= 4 * bytes + 4096,
            "{n}: {first:?}"
        );
        // Reused: the second call allocates nothing.
        assert_eq!(second.0, 0, "{n}");
        // Rosenbrock allocates only its gradient.
        assert_eq!(rosen, (1, bytes), "{n}");
    }
}
