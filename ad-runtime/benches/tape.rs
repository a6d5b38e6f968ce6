//! The tape beside the published Rust tape crates `reverse` and `echidna`:
//! the gradient of a scalar function of two variables and of the
//! 100-dimensional Rosenbrock function, each tape recording anew on every call.

use ad_runtime::tape::Tape;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use num_traits::Float as _;
use reverse::Gradient;

const DIM: usize = 100;

fn rosenbrock_point() -> Vec<f64> {
    (0..DIM)
        .map(|i| 0.5 + 0.01 * i as f64 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect()
}

// ----- ours ------------------------------------------------------------------

fn ours_f(tape: &mut Tape, x: &[f64; 2], out: &mut [f64; 2]) {
    tape.clear();
    let x1 = tape.var(x[0]);
    let x2 = tape.var(x[1]);
    let y = (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2;
    y.backward();
    *out = [x1.grad_scalar(), x2.grad_scalar()];
}

fn ours_rosenbrock(tape: &mut Tape, x: &[f64], out: &mut Vec<f64>) {
    tape.clear();
    let xs: Vec<_> = x.iter().map(|&v| tape.var(v)).collect();
    let mut sum = tape.constant(0.0);
    for i in 0..xs.len() - 1 {
        let a = xs[i + 1] - xs[i] * xs[i];
        let b = 1.0 - xs[i];
        sum = sum + 100.0 * a * a + b * b;
    }
    sum.backward();
    out.clear();
    out.extend(xs.iter().map(|v| v.grad_scalar()));
}

// ----- reverse 0.2 -------------------------------------------------------------

fn reverse_f(tape: &reverse::Tape, x: &[f64; 2]) -> Vec<f64> {
    tape.clear();
    let x1 = tape.add_var(x[0]);
    let x2 = tape.add_var(x[1]);
    let y = (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2;
    let g = y.grad();
    vec![g.wrt(&x1), g.wrt(&x2)]
}

fn reverse_rosenbrock(tape: &reverse::Tape, x: &[f64]) -> Vec<f64> {
    tape.clear();
    let xs = tape.add_vars(x);
    let mut sum = tape.add_var(0.0) * 0.0;
    for i in 0..xs.len() - 1 {
        let a = xs[i + 1] - xs[i] * xs[i];
        let b = 1.0 - xs[i];
        sum = sum + 100.0 * a * a + b * b;
    }
    let g = sum.grad();
    g.wrt(&xs)
}

// ----- echidna 0.15 ----------------------------------------------------------

fn echidna_f(x: &[f64; 2]) -> Vec<f64> {
    echidna::grad(
        |v| (v[1].sin() + 1.0) / (v[1] + v[0].exp()) + v[0] * v[1],
        x,
    )
}

fn echidna_rosenbrock(x: &[f64]) -> Vec<f64> {
    echidna::grad(
        |xs| {
            let mut sum = xs[0] * 0.0;
            for i in 0..xs.len() - 1 {
                let a = xs[i + 1] - xs[i] * xs[i];
                let b = 1.0 - xs[i];
                sum = sum + 100.0 * a * a + b * b;
            }
            sum
        },
        x,
    )
}

fn check_agreement() {
    let x = [1.5, 0.5];
    let mut tape = Tape::new();
    let mut ours = [0.0; 2];
    ours_f(&mut tape, &x, &mut ours);
    let e = echidna_f(&x);
    let rt = reverse::Tape::new();
    let xs = rt.add_vars(&x);
    let y = (xs[1].sin() + 1.0) / (xs[1] + xs[0].exp()) + xs[0] * xs[1];
    let r = y.grad().wrt(&xs);
    for k in 0..2 {
        assert!((ours[k] - e[k]).abs() < 1e-12 && (ours[k] - r[k]).abs() < 1e-12);
    }
    let p = rosenbrock_point();
    let mut ours = Vec::new();
    ours_rosenbrock(&mut tape, &p, &mut ours);
    let e = echidna_rosenbrock(&p);
    let r = reverse_rosenbrock(&rt, &p);
    for k in 0..DIM {
        assert!(
            (ours[k] - e[k]).abs() < 1e-9 && (ours[k] - r[k]).abs() < 1e-9,
            "coordinate {k}"
        );
    }
}

fn bench_scalar(c: &mut Criterion) {
    check_agreement();
    let x = [1.5, 0.5];
    let mut group = c.benchmark_group("tape/f(x1,x2)");
    let mut tape = Tape::with_capacity(64);
    let mut out = [0.0; 2];
    group.bench_function("adjoint", |b| {
        b.iter(|| {
            ours_f(&mut tape, black_box(&x), &mut out);
            black_box(out)
        })
    });
    let rt = reverse::Tape::new();
    group.bench_function("reverse", |b| {
        b.iter(|| black_box(reverse_f(&rt, black_box(&x))))
    });
    group.bench_function("echidna", |b| {
        b.iter(|| black_box(echidna_f(black_box(&x))))
    });
    group.finish();
}

fn bench_rosenbrock(c: &mut Criterion) {
    let x = rosenbrock_point();
    let mut group = c.benchmark_group("tape/rosenbrock100");
    let mut tape = Tape::with_capacity(1024);
    let mut out = Vec::with_capacity(DIM);
    group.bench_function("adjoint", |b| {
        b.iter(|| {
            ours_rosenbrock(&mut tape, black_box(&x), &mut out);
            black_box(out[0])
        })
    });
    let rt = reverse::Tape::new();
    group.bench_function("reverse", |b| {
        b.iter(|| black_box(reverse_rosenbrock(&rt, black_box(&x))))
    });
    group.bench_function("echidna", |b| {
        b.iter(|| black_box(echidna_rosenbrock(black_box(&x))))
    });
    group.finish();
}

criterion_group!(benches, bench_scalar, bench_rosenbrock);
criterion_main!(benches);
