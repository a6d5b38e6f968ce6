//! The seed function of tutorial 004, `f(x1, x2) = (1 + sin x2) / (x2 + e^x1) + x1 x2`
//! at `(1.5, 0.5)`: reverse mode by the macro and by the tape, finite differences, the
//! torchviz variant with a third leaf `c`, `detach` and `no_grad`.
//!
//! By hand, with `d = x2 + e^x1` and `n = 1 + sin x2`:
//! `∂f/∂x1 = -n e^x1 / d^2 + x2` and `∂f/∂x2 = cos x2 / d - n / d^2 + x1 = 1.6165488…`.
//!
//! Run it with `cargo run --example seed_function`.

use adjoint::prelude::*;
use adjoint::tape::Tape;

/// The seed function.
#[differentiable]
pub fn f(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

/// The torchviz variant: `(sin x2 + c) / (x2 + e^x1) + x1`, with `c` a leaf too. Its
/// gradient at `(1.5, 0.5, 1)` is `(0.7328, 0.1165, 0.2007)`; the tutorial prints
/// `c.grad = 0.2007` with, for `x1` and `x2`, the values of `f` above.
#[differentiable]
pub fn g(x1: f64, x2: f64, c: f64) -> f64 {
    (x2.sin() + c) / (x2 + x1.exp()) + x1
}

/// The hand-derived gradient.
pub fn by_hand(x1: f64, x2: f64) -> (f64, f64) {
    let d = x2 + x1.exp();
    let n = 1.0 + x2.sin();
    (
        -n * x1.exp() / (d * d) + x2,
        x2.cos() / d - n / (d * d) + x1,
    )
}

/// The forward difference `(f(x + e) - f(x)) / e` the tutorial uses, and the central
/// difference `(f(x + e) - f(x - e)) / 2e`, both with respect to `x2`.
pub fn finite_differences(x1: f64, x2: f64, e: f64) -> (f64, f64) {
    let forward = (f(x1, x2 + e) - f(x1, x2)) / e;
    let central = (f(x1, x2 + e) - f(x1, x2 - e)) / (2.0 * e);
    (forward, central)
}

/// `(f, ∂f/∂x1, ∂f/∂x2)` on the tape.
pub fn tape_grad(x1: f64, x2: f64) -> (f64, f64, f64) {
    let tape: Tape = Tape::new();
    let x1 = tape.var(x1);
    let x2 = tape.var(x2);
    let y = (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2;
    y.backward();
    (y.item(), x1.grad_scalar(), x2.grad_scalar())
}

/// `r = sum(2 x + (3 + x'))` at `x = [1, 1]`, where `x'` is `x` or `x.detach()`:
/// `x.grad` is `[3, 3]` without detach and `[2, 2]` with it.
pub fn detach_grad(detach: bool) -> Vec<f64> {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2]));
    let y = 2.0 * x;
    let z = 3.0 + if detach { x.detach() } else { x };
    (y + z).sum().backward();
    x.grad_tensor().to_vec()
}

/// Inside `no_grad` nothing is recorded: `(value, requires_grad)` of `y = 2 x`, `x = 2`.
pub fn no_grad_result() -> (f64, bool) {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let y = tape.no_grad(|| x * 2.0);
    (y.item(), y.requires_grad())
}

fn main() {
    let (x1, x2) = (1.5, 0.5);
    let (y, (d1, d2)) = f_grad(x1, x2);
    println!("f(1.5, 0.5) = {y}");
    println!("macro:   df/dx1 = {d1:.16}, df/dx2 = {d2:.16}");
    let (h1, h2) = by_hand(x1, x2);
    println!("by hand: df/dx1 = {h1:.16}, df/dx2 = {h2:.16}");
    let (_, t1, t2) = tape_grad(x1, x2);
    println!("tape:    df/dx1 = {t1:.16}, df/dx2 = {t2:.16}");
    let (fwd, central) = finite_differences(x1, x2, 1e-4);
    println!("finite differences (e = 1e-4), df/dx2: forward {fwd:.10}, central {central:.10}");
    let report = gradcheck(
        |x: &[f64]| f(x[0], x[1]),
        |x: &[f64]| f_grad(x[0], x[1]).1,
        &[x1, x2],
        Tolerance::default(),
    );
    println!(
        "gradcheck: {}",
        if report.is_ok() { "passed" } else { "FAILED" }
    );
    let (_, (g1, g2, gc)) = g_grad(x1, x2, 1.0);
    println!("torchviz variant (sin x2 + c)/(x2 + e^x1) + x1: x1.grad = {g1:.4}, x2.grad = {g2:.4}, c.grad = {gc:.4}");
    println!(
        "detach: x.grad = {:?} without, {:?} with",
        detach_grad(false),
        detach_grad(true)
    );
    let (v, rg) = no_grad_result();
    println!("no_grad: y = 2 x = {v}, y.requires_grad = {rg}");
}
