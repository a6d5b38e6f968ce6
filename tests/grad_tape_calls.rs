//! Calls from a `#[differentiable(tape)]` body to functions that take or return
//! tensors: each records one tape node whose backward runs the callee's `_vjp`. Checked
//! against the same body written inline on the static path and against finite
//! differences.

#![allow(dead_code)] // some primals are used only through their companions

use adjoint::check::{gradcheck_tensor, Tolerance};
use adjoint::prelude::*;

#[differentiable]
fn layer(w: &Tensor, x: &Tensor) -> Tensor {
    w.matmul(x).tanh()
}

#[differentiable]
fn loss(w: &Tensor, s: f64) -> f64 {
    (w * s).sin().sum()
}

// Tensor result, `&Tensor` arguments (a parameter passed on, and a local borrowed).
#[differentiable(tape)]
fn two_layers_tape(w: &Tensor, x: &Tensor) -> f64 {
    let h = layer(w, x);
    let o = layer(w, &h);
    (&o * &o).sum()
}

#[differentiable]
fn two_layers_inline(w: &Tensor, x: &Tensor) -> f64 {
    let h = w.matmul(x).tanh();
    let o = w.matmul(&h).tanh();
    (&o * &o).sum()
}

// Tensor argument, scalar result, mixed with a scalar parameter (and a constant).
#[differentiable(tape)]
fn scaled_tape(w: &Tensor, s: f64) -> f64 {
    let a = loss(w, s * 2.0);
    let b = loss(w, 0.5);
    a * s + b
}

#[differentiable]
fn scaled_inline(w: &Tensor, s: f64) -> f64 {
    let a = (w * (s * 2.0)).sin().sum();
    let b = (w * 0.5).sin().sum();
    a * s + b
}

// A tape function with a tensor result, calling one.
#[differentiable(tape)]
fn layer_twice_tape(w: &Tensor, x: &Tensor) -> Tensor {
    layer(w, &layer(w, x))
}

// A tape function calling a tape function with a tensor result.
#[differentiable(tape)]
fn outer_tape(w: &Tensor, x: &Tensor, s: f64) -> f64 {
    layer_twice_tape(w, x).sum() * s
}

fn w0() -> Tensor {
    Tensor::from_vec(
        vec![0.3, -0.2, 0.5, 0.1, 0.4, -0.6, 0.2, 0.7, -0.1],
        &[3, 3],
    )
}

fn x0() -> Tensor {
    Tensor::from_vec(vec![0.5, -1.0, 0.8], &[3])
}

fn close(a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape(), b.shape());
    for (p, q) in a.as_slice().iter().zip(b.as_slice()) {
        assert!((p - q).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-7).rtol(1e-6)
}

#[test]
fn tensor_result_calls_match_inline_and_finite_differences() {
    let (w, x) = (w0(), x0());
    let (v, (gw, gx)) = two_layers_tape_grad(&w, &x);
    let (vi, (gwi, gxi)) = two_layers_inline_grad(&w, &x);
    assert!((v - vi).abs() < 1e-12);
    close(&gw, &gwi);
    close(&gx, &gxi);
    gradcheck_tensor(
        |w| two_layers_inline(w, &x),
        |w| two_layers_tape_grad(w, &x).1 .0,
        &w,
        tol(),
    )
    .unwrap();
    gradcheck_tensor(
        |x| two_layers_inline(&w, x),
        |x| two_layers_tape_grad(&w, x).1 .1,
        &x,
        tol(),
    )
    .unwrap();
}

#[test]
fn tensor_argument_scalar_result_calls_match_inline_and_finite_differences() {
    let w = w0();
    for s in [0.7, -1.3] {
        let (v, (gw, gs)) = scaled_tape_grad(&w, s);
        let (vi, (gwi, gsi)) = scaled_inline_grad(&w, s);
        assert!((v - vi).abs() < 1e-12);
        assert!((gs - gsi).abs() < 1e-12);
        close(&gw, &gwi);
        gradcheck_tensor(
            |w| scaled_inline(w, s),
            |w| scaled_tape_grad(w, s).1 .0,
            &w,
            tol(),
        )
        .unwrap();
        let h = 1e-6;
        let fd = (scaled_inline(&w, s + h) - scaled_inline(&w, s - h)) / (2.0 * h);
        assert!((gs - fd).abs() < 1e-6, "{gs} vs {fd}");
    }
}

#[test]
fn tensor_valued_tape_function_calls_tensor_function() {
    let (w, x) = (w0(), x0());
    let seed = Tensor::from_vec(vec![1.0, -0.5, 2.0], &[3]);
    let (v, (gw, gx)) = layer_twice_tape_vjp(&w, &x, seed.clone());
    let h = layer(&w, &x);
    close(&v, &layer(&w, &h));
    // By hand: the outer layer's VJP, then the inner one's with the gradient for `h`.
    let (_, (gw_outer, gh)) = layer_vjp(&w, &h, seed.clone());
    let (_, (gw_inner, gx_ref)) = layer_vjp(&w, &x, gh);
    close(&gw, &(gw_outer + gw_inner));
    close(&gx, &gx_ref);
    gradcheck_tensor(
        |x| layer_twice_tape(&w, x).dot(&seed),
        |x| layer_twice_tape_vjp(&w, x, seed.clone()).1 .1,
        &x,
        tol(),
    )
    .unwrap();
}

#[test]
fn tape_functions_with_tensors_compose() {
    let (w, x) = (w0(), x0());
    let s = 1.7;
    let (v, (gw, gx, gs)) = outer_tape_grad(&w, &x, s);
    let ones = Tensor::ones(&[3]);
    let (y, (gw_ref, gx_ref)) = layer_twice_tape_vjp(&w, &x, &ones * s);
    assert!((v - y.sum() * s).abs() < 1e-12);
    assert!((gs - y.sum()).abs() < 1e-12);
    close(&gw, &gw_ref);
    close(&gx, &gx_ref);
}

// Found by the random-program tester: on the tape, a float computed from constants
// only (`2.0f64.ln()`, a literal receiver `0.0f64.max(x)`, a returned constant) stayed
// an `f64` where a `Var` was expected and did not compile; so did a parenthesized
// reference argument `(&h)`.
#[differentiable(tape)]
fn constant_arms(x: f64) -> f64 {
    if x > 1.0 {
        return 0.5f64.sin();
    }
    let a = if x > 0.0 { 2.0f64.ln() } else { x };
    a * x + 0.0f64.max(x) + 2.0f64.mul_add(x, 1.0)
}

#[differentiable]
fn constant_arms_static(x: f64) -> f64 {
    if x > 1.0 {
        return 0.5f64.sin();
    }
    let a = if x > 0.0 { 2.0f64.ln() } else { x };
    a * x + 0.0f64.max(x) + 2.0f64.mul_add(x, 1.0)
}

#[differentiable]
fn paren_layer(w: &Tensor, x: &Tensor) -> Tensor {
    w.matmul(x).tanh()
}

#[differentiable(tape)]
#[allow(unused_parens)]
fn paren_arg(w: &Tensor, x: &Tensor) -> f64 {
    let h: Tensor = paren_layer(w, x);
    let o: Tensor = paren_layer(w, (&h));
    o.sum()
}

#[test]
fn constant_expressions_and_parenthesized_arguments_on_the_tape() {
    for x in [-0.7, 0.4, 1.6] {
        let (v, g) = constant_arms_grad(x);
        let (sv, sg) = constant_arms_static_grad(x);
        assert_eq!(v, constant_arms(x));
        assert!(
            (v - sv).abs() < 1e-15 && (g - sg).abs() < 1e-12,
            "{x}: {g} vs {sg}"
        );
        adjoint::check::gradcheck_scalar(
            constant_arms,
            |x| constant_arms_grad(x).1,
            x,
            Tolerance::default(),
        )
        .unwrap();
    }
    let w = Tensor::from_vec(vec![0.3, -0.2, 0.5, 0.1], &[2, 2]);
    let x = Tensor::from_vec(vec![0.7, -0.4, 0.2, 0.9], &[2, 2]);
    let (v, (gw, gx)) = paren_arg_grad(&w, &x);
    assert_eq!(gx.shape(), &[2, 2]);
    assert_eq!(v, paren_arg(&w, &x));
    adjoint::check::gradcheck_tensor(
        |w: &Tensor| paren_arg(w, &x),
        |w: &Tensor| paren_arg_grad(w, &x).1 .0,
        &w,
        Tolerance::default(),
    )
    .unwrap();
    adjoint::check::gradcheck_tensor(
        |x: &Tensor| paren_arg(&w, x),
        |x: &Tensor| paren_arg_grad(&w, x).1 .1,
        &x,
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(gw.shape(), &[2, 2]);
}

// A tuple local with a float annotation: its constant elements become tape constants,
// as the annotation became `(Var, Var)` (it did not compile).
#[differentiable(tape)]
fn tuple_local(x: f64) -> f64 {
    let p: (f64, f64) = (x, 1.5);
    p.0 * p.1 + p.0 * p.0
}

#[test]
fn tuple_local_with_constant() {
    for x in [-0.7, 0.4, 2.0] {
        let (v, g) = tuple_local_grad(x);
        assert_eq!(v, x * 1.5 + x * x);
        assert!((g - (1.5 + 2.0 * x)).abs() <= 1e-12);
        adjoint::check::gradcheck_scalar(
            tuple_local,
            |x| tuple_local_grad(x).1,
            x,
            Tolerance::default(),
        )
        .unwrap();
    }
}
