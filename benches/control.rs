//! Control flow side by side: the primal, the static gradient of `#[differentiable]`
//! (loops reversed with stacks), a hand-written gradient, and the dynamic tape, on
//! Rosenbrock over a slice (n = 1000) and the tutorial's data-dependent `while` loop;
//! then the static gradient of Rosenbrock for n = 10³ … 10⁶ (linear time).

use adjoint::prelude::*;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

// f(x) = Σ (1 - xᵢ)² + 100 (xᵢ₊₁ - xᵢ²)²
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

#[differentiable(tape)]
#[allow(dead_code)] // only its companions are measured
fn rosenbrock_tape(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
    }
    s
}

fn rosenbrock_hand(x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; x.len()];
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
        g[i] += -2.0 * a - 400.0 * b * x[i];
        g[i + 1] += 200.0 * b;
    }
    (s, g)
}

// The tutorial's f(a): b = 2a, doubled while |b| < 1000, then b or 100 b.
#[differentiable(static)]
#[allow(clippy::assign_op_pattern)] // as the tutorial writes it
fn doubling(a: f64) -> f64 {
    let mut b = 2.0 * a;
    while b.abs() < 1000.0 {
        b = b * 2.0;
    }
    if b > 0.0 {
        b
    } else {
        100.0 * b
    }
}

#[differentiable(tape)]
#[allow(dead_code, clippy::assign_op_pattern)]
fn doubling_tape(a: f64) -> f64 {
    let mut b = 2.0 * a;
    while b.abs() < 1000.0 {
        b = b * 2.0;
    }
    if b > 0.0 {
        b
    } else {
        100.0 * b
    }
}

fn doubling_hand(a: f64) -> (f64, f64) {
    let mut b = 2.0 * a;
    let mut d = 2.0;
    while b.abs() < 1000.0 {
        b *= 2.0;
        d *= 2.0;
    }
    if b > 0.0 {
        (b, d)
    } else {
        (100.0 * b, 100.0 * d)
    }
}

fn point(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 + 0.4 * ((i as f64) * 0.7).sin())
        .collect()
}

fn side_by_side(c: &mut Criterion) {
    let x = point(1000);
    let mut g = c.benchmark_group("control/rosenbrock_1000");
    g.bench_function("primal", |b| b.iter(|| rosenbrock(black_box(&x))));
    g.bench_function("static", |b| b.iter(|| rosenbrock_grad(black_box(&x))));
    g.bench_function("hand", |b| b.iter(|| rosenbrock_hand(black_box(&x))));
    g.bench_function("tape", |b| b.iter(|| rosenbrock_tape_grad(black_box(&x))));
    g.finish();

    let a = 0.37;
    let mut g = c.benchmark_group("control/doubling");
    g.bench_function("primal", |b| b.iter(|| doubling(black_box(a))));
    g.bench_function("static", |b| b.iter(|| doubling_grad(black_box(a))));
    g.bench_function("hand", |b| b.iter(|| doubling_hand(black_box(a))));
    g.bench_function("tape", |b| b.iter(|| doubling_tape_grad(black_box(a))));
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("control/rosenbrock_static");
    g.sample_size(10);
    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let x = point(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &x, |b, x| {
            b.iter(|| rosenbrock_grad(black_box(x)))
        });
    }
    g.finish();
}

criterion_group!(benches, side_by_side, scaling);
criterion_main!(benches);
