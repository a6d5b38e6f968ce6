//! Scalar gradients side by side: the primal, the static gradient of
//! `#[differentiable]`, a hand-written analytic gradient, and the dynamic tape, on the
//! seed function, 2-D Rosenbrock and a 40-operation expression.

use adjoint::prelude::*;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

// f(x1, x2) = (1 + sin x2) / (x2 + exp x1) + x1 x2
#[differentiable]
fn seed(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

#[differentiable(tape)]
#[allow(dead_code)] // only its companions are measured
fn seed_tape(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

fn seed_hand(x1: f64, x2: f64) -> (f64, (f64, f64)) {
    let e = x1.exp();
    let d = x2 + e;
    let (s, c) = x2.sin_cos();
    let q = (s + 1.0) / d;
    let f = q + x1 * x2;
    let qd = q / d;
    (f, (x2 - qd * e, c / d - qd + x1))
}

// f(x, y) = (1 - x)^2 + 100 (y - x^2)^2
#[differentiable]
fn rosen(x: f64, y: f64) -> f64 {
    let a = 1.0 - x;
    let b = y - x * x;
    a * a + 100.0 * b * b
}

#[differentiable(tape)]
#[allow(dead_code)] // only its companions are measured
fn rosen_tape(x: f64, y: f64) -> f64 {
    let a = 1.0 - x;
    let b = y - x * x;
    a * a + 100.0 * b * b
}

fn rosen_hand(x: f64, y: f64) -> (f64, (f64, f64)) {
    let a = 1.0 - x;
    let b = y - x * x;
    (a * a + 100.0 * b * b, (-2.0 * a - 400.0 * x * b, 200.0 * b))
}

// About 40 operations of every kind.
#[differentiable]
fn expr40(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let t1 = a * b + c.sin();
    let t2 = (t1 - d).exp() / (1.0 + a * a);
    let t3 = t2.tanh() * b - c * d;
    let t4 = (t3 * t3 + 1.0).sqrt() + a.cos() * t1;
    let t5 = t4.ln() * c + (b - a).sigmoid();
    let t6 = t5 * t2 + t3 / (t4 + 2.0);
    let t7 = (t6 - t1).atan() + d.exp() * 0.1;
    t7 * t6 + t5 * t5 - t4 * c + a * d
}

#[differentiable(tape)]
#[allow(dead_code)] // only its companions are measured
fn expr40_tape(a: f64, b: f64, c: f64, d: f64) -> f64 {
    let t1 = a * b + c.sin();
    let t2 = (t1 - d).exp() / (1.0 + a * a);
    let t3 = t2.tanh() * b - c * d;
    let t4 = (t3 * t3 + 1.0).sqrt() + a.cos() * t1;
    let t5 = t4.ln() * c + (b - a).sigmoid();
    let t6 = t5 * t2 + t3 / (t4 + 2.0);
    let t7 = (t6 - t1).atan() + d.exp() * 0.1;
    t7 * t6 + t5 * t5 - t4 * c + a * d
}

/// The reverse sweep of `expr40` written by hand, statement by statement.
fn expr40_hand(a: f64, b: f64, c: f64, d: f64) -> (f64, (f64, f64, f64, f64)) {
    let (sc, cc) = c.sin_cos();
    let t1 = a * b + sc;
    let eu = (t1 - d).exp();
    let den = 1.0 + a * a;
    let t2 = eu / den;
    let th = t2.tanh();
    let t3 = th * b - c * d;
    let r = (t3 * t3 + 1.0).sqrt();
    let (sa, ca) = a.sin_cos();
    let t4 = r + ca * t1;
    let lt = t4.ln();
    let sg = (b - a).sigmoid();
    let t5 = lt * c + sg;
    let w = t4 + 2.0;
    let t6 = t5 * t2 + t3 / w;
    let v = t6 - t1;
    let ed = d.exp();
    let t7 = v.atan() + ed * 0.1;
    let f = t7 * t6 + t5 * t5 - t4 * c + a * d;

    let g_t7 = t6;
    let mut g_t6 = t7;
    let mut g_t5 = 2.0 * t5;
    let mut g_t4 = -c;
    let mut g_c = -t4;
    let mut g_a = d;
    let mut g_d = a + 0.1 * ed * g_t7;
    let g_v = g_t7 / (1.0 + v * v);
    g_t6 += g_v;
    let mut g_t1 = -g_v;
    g_t5 += g_t6 * t2;
    let mut g_t2 = g_t6 * t5;
    let mut g_t3 = g_t6 / w;
    g_t4 -= g_t6 * t3 / (w * w);
    g_c += g_t5 * lt;
    let g_ba = g_t5 * sg * (1.0 - sg);
    let mut g_b = g_ba;
    g_a -= g_ba;
    g_t4 += g_t5 * c / t4;
    g_t1 += g_t4 * ca;
    g_a -= g_t4 * t1 * sa;
    g_t3 += t3 * g_t4 / r;
    g_b += g_t3 * th;
    g_c -= g_t3 * d;
    g_d -= g_t3 * c;
    g_t2 += g_t3 * b * (1.0 - th * th);
    let g_eu = g_t2 / den;
    g_a -= 2.0 * a * g_t2 * t2 / den;
    let g_u = g_eu * eu;
    g_t1 += g_u;
    g_d -= g_u;
    g_a += g_t1 * b;
    g_b += g_t1 * a;
    g_c += g_t1 * cc;
    (f, (g_a, g_b, g_c, g_d))
}

fn agree(x: (f64, f64, f64, f64), y: (f64, f64, f64, f64)) {
    for (p, q) in [(x.0, y.0), (x.1, y.1), (x.2, y.2), (x.3, y.3)] {
        assert!(
            (p - q).abs() < 1e-10 * (1.0 + p.abs()),
            "hand-written gradient disagrees: {x:?} vs {y:?}"
        );
    }
}

fn benches(c: &mut Criterion) {
    // The hand-written gradients are the ones the macro computes.
    agree(
        expr40_grad(0.3, -0.5, 0.8, 0.2).1,
        expr40_hand(0.3, -0.5, 0.8, 0.2).1,
    );
    let (s, h) = (seed_grad(1.5, 0.5).1, seed_hand(1.5, 0.5).1);
    agree((s.0, s.1, 0.0, 0.0), (h.0, h.1, 0.0, 0.0));

    let mut g = c.benchmark_group("seed");
    g.bench_function("primal", |b| {
        b.iter(|| seed(black_box(1.5), black_box(0.5)))
    });
    g.bench_function("static", |b| {
        b.iter(|| seed_grad(black_box(1.5), black_box(0.5)))
    });
    g.bench_function("hand", |b| {
        b.iter(|| seed_hand(black_box(1.5), black_box(0.5)))
    });
    g.bench_function("tape", |b| {
        b.iter(|| seed_tape_grad(black_box(1.5), black_box(0.5)))
    });
    g.finish();

    let mut g = c.benchmark_group("rosenbrock");
    g.bench_function("primal", |b| {
        b.iter(|| rosen(black_box(-1.2), black_box(1.0)))
    });
    g.bench_function("static", |b| {
        b.iter(|| rosen_grad(black_box(-1.2), black_box(1.0)))
    });
    g.bench_function("hand", |b| {
        b.iter(|| rosen_hand(black_box(-1.2), black_box(1.0)))
    });
    g.bench_function("tape", |b| {
        b.iter(|| rosen_tape_grad(black_box(-1.2), black_box(1.0)))
    });
    g.finish();

    let x = (0.3, -0.5, 0.8, 0.2);
    let mut g = c.benchmark_group("expr40");
    g.bench_function("primal", |b| {
        b.iter(|| {
            expr40(
                black_box(x.0),
                black_box(x.1),
                black_box(x.2),
                black_box(x.3),
            )
        })
    });
    g.bench_function("static", |b| {
        b.iter(|| {
            expr40_grad(
                black_box(x.0),
                black_box(x.1),
                black_box(x.2),
                black_box(x.3),
            )
        })
    });
    g.bench_function("hand", |b| {
        b.iter(|| {
            expr40_hand(
                black_box(x.0),
                black_box(x.1),
                black_box(x.2),
                black_box(x.3),
            )
        })
    });
    g.bench_function("tape", |b| {
        b.iter(|| {
            expr40_tape_grad(
                black_box(x.0),
                black_box(x.1),
                black_box(x.2),
                black_box(x.3),
            )
        })
    });
    g.finish();
}

criterion_group!(scalar, benches);
criterion_main!(scalar);
