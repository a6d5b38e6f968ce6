//! Composition: calls chain through `NAME_vjp`, generated or hand-written (a custom
//! gradient), on the static path and on the tape, and `wrt` and `detach`.

#![allow(dead_code)] // some primals are used only through their companions

use adjoint::check::{gradcheck, Tolerance};
use adjoint::prelude::*;

#[differentiable]
fn inner(a: f64, b: f64) -> f64 {
    a * b.sin() + a.exp()
}

#[differentiable]
fn scaled(x: f64, k: i32) -> f64 {
    x * k as f64
}

// f(x, y) = inner(x, y) x + inner(y, 2) + scaled(y, 3)
#[differentiable]
fn outer(x: f64, y: f64) -> f64 {
    inner(x, y) * x + inner(y, 2.0) + scaled(y, 3)
}

#[differentiable(tape)]
fn outer_tape(x: f64, y: f64) -> f64 {
    inner(x, y) * x + inner(y, 2.0) + scaled(y, 3)
}

#[test]
fn calls_chain_through_vjp() {
    let tol = Tolerance::default().atol(1e-7).rtol(1e-6);
    for (x, y) in [(0.3, 1.2), (-1.1, 0.4), (2.0, -0.7)] {
        let (v, g) = outer_grad(x, y);
        assert_eq!(v.to_bits(), outer(x, y).to_bits());
        gradcheck(
            |p: &[f64]| outer(p[0], p[1]),
            |p: &[f64]| outer_grad(p[0], p[1]).1,
            &[x, y],
            tol,
        )
        .unwrap();
        let (tv, tg) = outer_tape_grad(x, y);
        assert!((v - tv).abs() < 1e-12);
        assert!(
            (g.0 - tg.0).abs() < 1e-12 && (g.1 - tg.1).abs() < 1e-12,
            "{g:?} vs {tg:?}"
        );
    }
}

// A straight-through estimator: the forward pass rounds, the backward pass pretends
// it was the identity. The true derivative of `round` is 0 almost everywhere, so the
// gradients below can only come from the hand-written rule.
fn round_ste(x: f64) -> f64 {
    x.round()
}

fn round_ste_vjp(x: f64, seed: f64) -> (f64, f64) {
    (x.round(), seed)
}

#[differentiable]
fn quantized(w: f64, x: f64) -> f64 {
    round_ste(w * x) * 3.0
}

#[differentiable(tape)]
fn quantized_tape(w: f64, x: f64) -> f64 {
    round_ste(w * x) * 3.0
}

#[test]
fn custom_gradient_is_used() {
    let (v, (dw, dx)) = quantized_grad(0.7, 2.0);
    assert_eq!(v, 3.0 * (1.4f64).round());
    // d/dw = 3 x, d/dx = 3 w through the straight-through rule.
    assert_eq!((dw, dx), (6.0, 3.0 * 0.7));
    let (tv, (tw, tx)) = quantized_tape_grad(0.7, 2.0);
    assert_eq!((tv, tw, tx), (v, dw, dx));
    let (_, (vw, vx)) = quantized_vjp(0.7, 2.0, 0.5);
    assert_eq!((vw, vx), (3.0, 0.5 * 3.0 * 0.7));
}

// A static function calling a tape function and the other way round.
#[differentiable(tape)]
fn softsq_tape(x: f64) -> f64 {
    (x * x + 1.0).sqrt()
}

#[differentiable]
fn mixed(x: f64, y: f64) -> f64 {
    softsq_tape(x * y) + outer_tape(y, x)
}

#[test]
fn static_and_tape_functions_compose() {
    let tol = Tolerance::default().atol(1e-7).rtol(1e-6);
    for (x, y) in [(0.3, 1.2), (-1.1, 0.4)] {
        gradcheck(
            |p: &[f64]| mixed(p[0], p[1]),
            |p: &[f64]| mixed_grad(p[0], p[1]).1,
            &[x, y],
            tol,
        )
        .unwrap();
    }
}

// wrt: only the named parameters; the gradient is bare for one.
#[differentiable(wrt(b))]
fn affine(w: f64, b: f64, x: f64) -> f64 {
    (w * x + b).tanh()
}

#[differentiable(wrt(w, x))]
fn affine2(w: f64, b: f64, x: f64) -> f64 {
    (w * x + b).tanh()
}

#[test]
fn wrt_restricts_the_gradient() {
    let (w, b, x) = (0.4f64, -0.2f64, 1.5f64);
    let t = (w * x + b).tanh();
    let (v, db): (f64, f64) = affine_grad(w, b, x);
    assert_eq!(v, affine(w, b, x));
    assert!((db - (1.0 - t * t)).abs() < 1e-15);
    let (_, (dw, dx)) = affine2_grad(w, b, x);
    assert!((dw - (1.0 - t * t) * x).abs() < 1e-15);
    assert!((dx - (1.0 - t * t) * w).abs() < 1e-15);
}

// detach: the value flows, no gradient flows back through it.
#[differentiable]
fn with_detach(x: f64) -> f64 {
    let s = x.sin().detach();
    s * x + x.detach() * x.detach()
}

#[differentiable(tape)]
fn with_detach_tape(x: f64) -> f64 {
    let s = x.sin().detach();
    s * x + x.detach() * x.detach()
}

#[test]
fn detach_stops_the_gradient() {
    let x = 0.8f64;
    let (v, g) = with_detach_grad(x);
    assert_eq!(v, with_detach(x));
    assert_eq!(g, x.sin());
    assert_eq!(with_detach_tape_grad(x).1, x.sin());
}

// A `mut` parameter reassigned in the body, on both paths.
#[differentiable]
fn mut_param(mut x: f64) -> f64 {
    x *= 3.0;
    x.sin()
}

#[differentiable(tape)]
fn mut_param_tape(mut x: f64) -> f64 {
    x *= 3.0;
    x.sin()
}

#[test]
fn mut_parameters() {
    let (v, g) = mut_param_grad(0.4);
    assert_eq!(v, mut_param(0.4));
    assert!((g - 3.0 * (1.2f64).cos()).abs() < 1e-15);
    assert!((mut_param_tape_grad(0.4).1 - g).abs() < 1e-15);
}
