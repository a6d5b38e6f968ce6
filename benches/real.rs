//! Real numerical code (`benches/common/ports.rs`) side by side: each objective and
//! its gradient in one group, so that `grad ÷ primal` reads off one run.
//!
//! - `real/rosenbrock_1e5`: the primal, the generated gradient, the hand-written
//!   gather and scatter gradients (into a buffer allocated once), the gather
//!   allocating its `Vec` as `_grad` does, and the `windows(2)` iterator chain's
//!   gradient;
//! - `real/gmm_d10_k25_n1000`: the ADBench/GradBench GMM log posterior;
//! - `real/lstm_l2_b16_c51`: GradBench's LSTM loss, 2 layers of 16 cells, 50 steps.

#[path = "common/ports.rs"]
mod ports;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ports::{Gmm, Lstm};

fn rosenbrock(c: &mut Criterion) {
    let x = ports::normal(100_000, 1, 1.0);
    let mut buf = vec![0.0; x.len()];
    let mut g = c.benchmark_group("real/rosenbrock_1e5");
    g.bench_function("primal", |b| b.iter(|| ports::rosenbrock(black_box(&x))));
    g.bench_function("grad", |b| b.iter(|| ports::rosenbrock_grad(black_box(&x))));
    g.bench_function("hand_gather", |b| {
        b.iter(|| ports::rosenbrock_grad_gather(black_box(&x), &mut buf))
    });
    g.bench_function("hand_accumulate", |b| {
        b.iter(|| ports::rosenbrock_grad_accumulate(black_box(&x), &mut buf))
    });
    g.bench_function("hand_gather_alloc", |b| {
        b.iter(|| {
            let mut g = vec![0.0; x.len()];
            let y = ports::rosenbrock_grad_gather(black_box(&x), &mut g);
            (y, g)
        })
    });
    g.sample_size(10);
    g.bench_function("windows_grad", |b| {
        b.iter(|| ports::rosenbrock_windows_grad(black_box(&x)))
    });
    g.finish();
}

fn gmm(c: &mut Criterion) {
    let m = Gmm::new(10, 25, 1000, 0, 2);
    let mut g = c.benchmark_group("real/gmm_d10_k25_n1000");
    g.sample_size(10);
    g.bench_function("primal", |b| {
        b.iter(|| {
            ports::gmm_objective(
                m.d,
                m.k,
                m.n,
                black_box(&m.alphas),
                black_box(&m.means),
                black_box(&m.icf),
                &m.x,
                m.gamma,
                m.m,
            )
        })
    });
    g.bench_function("grad", |b| {
        b.iter(|| {
            ports::gmm_objective_grad(
                m.d,
                m.k,
                m.n,
                black_box(&m.alphas),
                black_box(&m.means),
                black_box(&m.icf),
                &m.x,
                m.gamma,
                m.m,
            )
        })
    });
    g.finish();
}

fn lstm(c: &mut Criterion) {
    let s = Lstm::new(2, 51, 16, 3);
    let mut g = c.benchmark_group("real/lstm_l2_b16_c51");
    g.sample_size(10);
    g.bench_function("primal", |b| {
        b.iter(|| {
            ports::lstm_objective(
                s.l,
                s.c,
                s.b,
                black_box(&s.main_params),
                black_box(&s.extra_params),
                &s.state,
                &s.sequence,
            )
        })
    });
    g.bench_function("grad", |b| {
        b.iter(|| {
            ports::lstm_objective_grad(
                s.l,
                s.c,
                s.b,
                black_box(&s.main_params),
                black_box(&s.extra_params),
                &s.state,
                &s.sequence,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, rosenbrock, gmm, lstm);
criterion_main!(benches);
