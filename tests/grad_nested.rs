//! Nested differentiation: bodies that call another function's `_grad` or `_jvp`,
//! differentiated again by `_grad` (reverse) and `_jvp` (forward), in the four
//! combinations GradBench's `particle` and `saddle` ask for (ff, fr, rf, rr). Every
//! outer derivative is checked against central differences of the outer function.

#![allow(dead_code)]

use adjoint::prelude::*;

/// The potential of two unit charges at (10, 10 - w) and (10, 0).
#[differentiable(order = 2)]
fn potential(x0: f64, x1: f64, w: f64) -> f64 {
    let d1 = ((x0 - 10.0).powi(2) + (x1 - (10.0 - w)).powi(2)).sqrt();
    let d2 = ((x0 - 10.0).powi(2) + x1.powi(2)).sqrt();
    1.0 / d1 + 1.0 / d2
}

/// Euler steps of a particle pushed by the potential's gradient (reverse mode inside)
/// until it crosses the x axis; the square of where it crosses.
#[differentiable(static)]
fn euler_r(w: f64) -> f64 {
    let (mut x0, mut x1) = (0.0, 8.0);
    let (mut v0, mut v1) = (0.75, 0.0);
    let dt = 0.1;
    let mut out = 0.0;
    for _ in 0..1000 {
        let (_, (a0, a1, _)) = potential_grad(x0, x1, w);
        x0 += dt * v0;
        x1 += dt * v1;
        if x1 <= 0.0 {
            let dtf = -x1 / v1;
            let xf = x0 + dtf * v0;
            out = xf * xf;
            break;
        }
        v0 -= dt * a0;
        v1 -= dt * a1;
    }
    out
}

/// The same, with the gradient by two forward passes inside.
#[differentiable(static)]
fn euler_f(w: f64) -> f64 {
    let (mut x0, mut x1) = (0.0, 8.0);
    let (mut v0, mut v1) = (0.75, 0.0);
    let dt = 0.1;
    let mut out = 0.0;
    for _ in 0..1000 {
        let (_, a0) = potential_jvp(x0, x1, w, 1.0, 0.0, 0.0);
        let (_, a1) = potential_jvp(x0, x1, w, 0.0, 1.0, 0.0);
        x0 += dt * v0;
        x1 += dt * v1;
        if x1 <= 0.0 {
            let dtf = -x1 / v1;
            let xf = x0 + dtf * v0;
            out = xf * xf;
            break;
        }
        v0 -= dt * a0;
        v1 -= dt * a1;
    }
    out
}

fn fd(f: impl Fn(f64) -> f64, w: f64) -> f64 {
    let h = 1e-6;
    (f(w + h) - f(w - h)) / (2.0 * h)
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn particle_in_all_four_combinations() {
    for w in [0.0, 0.3, -0.4] {
        let want = fd(euler_r, w);
        // The inner gradients by the two modes round differently.
        close(euler_f(w), euler_r(w), "the primals");
        let (y, rr) = euler_r_grad(w);
        assert_eq!(y, euler_r(w));
        close(rr, want, "rr");
        let (_, rf) = euler_f_grad(w);
        close(rf, want, "rf");
        let (y, fr) = euler_r_jvp(w, 1.0);
        assert_eq!(y, euler_r(w));
        close(fr, want, "fr");
        let (_, ff) = euler_f_jvp(w, 1.0);
        close(ff, want, "ff");
        // The four agree with each other far more closely than with differences.
        for (name, v) in [("rf", rf), ("fr", fr), ("ff", ff)] {
            assert!(
                (v - rr).abs() <= 1e-9 * (1.0 + rr.abs()),
                "{name} {v} vs rr {rr}"
            );
        }
    }
}

/// `(x1^2 + y1^2) - (x2^2 + y2^2)`, the saddle.
#[differentiable(order = 2)]
fn saddle(x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    (x1 * x1 + y1 * y1) - (x2 * x2 + y2 * y2)
}

/// Gradient ascent in (x2, y2) from (s1, s2), a fixed number of steps, with the
/// gradient by reverse mode inside: the inner maximum as a function of (x1, y1).
#[differentiable(static)]
fn inner_max_r(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let (mut a, mut b) = (s1, s2);
    for _ in 0..20 {
        let (_, (_, _, ga, gb)) = saddle_grad(x1, y1, a, b);
        a += 0.1 * ga;
        b += 0.1 * gb;
    }
    saddle(x1, y1, a, b) + x1 * a
}

/// The same with the gradient by forward mode inside.
#[differentiable(static)]
fn inner_max_f(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let (mut a, mut b) = (s1, s2);
    for _ in 0..20 {
        let (_, ga) = saddle_jvp(x1, y1, a, b, 0.0, 0.0, 1.0, 0.0);
        let (_, gb) = saddle_jvp(x1, y1, a, b, 0.0, 0.0, 0.0, 1.0);
        a += 0.1 * ga;
        b += 0.1 * gb;
    }
    saddle(x1, y1, a, b) + x1 * a
}

#[test]
fn saddle_in_all_four_combinations() {
    let (x1, y1, s1, s2) = (0.7, -0.4, 1.0, 0.5);
    let f = |x1: f64, y1: f64| inner_max_r(x1, y1, s1, s2);
    let want = (fd(|x| f(x, y1), x1), fd(|y| f(x1, y), y1));
    let (_, (rr1, rr2, _, _)) = inner_max_r_grad(x1, y1, s1, s2);
    let (_, (rf1, rf2, _, _)) = inner_max_f_grad(x1, y1, s1, s2);
    let (_, fr1) = inner_max_r_jvp(x1, y1, s1, s2, 1.0, 0.0, 0.0, 0.0);
    let (_, fr2) = inner_max_r_jvp(x1, y1, s1, s2, 0.0, 1.0, 0.0, 0.0);
    let (_, ff1) = inner_max_f_jvp(x1, y1, s1, s2, 1.0, 0.0, 0.0, 0.0);
    let (_, ff2) = inner_max_f_jvp(x1, y1, s1, s2, 0.0, 1.0, 0.0, 0.0);
    for (name, (g1, g2)) in [
        ("rr", (rr1, rr2)),
        ("rf", (rf1, rf2)),
        ("fr", (fr1, fr2)),
        ("ff", (ff1, ff2)),
    ] {
        close(g1, want.0, name);
        close(g2, want.1, name);
    }
}

/// `_vjp` and `_hvp` of a nested function against differences of its `_grad`.
#[test]
fn nested_hessian_vector_products_are_not_built() {
    // A body calling `potential_grad` has `_grad`, `_vjp` and `_jvp`; differentiating
    // it twice would need the third order of `potential`.
    let (_, g) = euler_r_vjp(0.2, 2.0);
    close(g, 2.0 * fd(euler_r, 0.2), "vjp with seed 2");
}
