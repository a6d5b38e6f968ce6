//! Gradient descent with and without `detach` (tutorial 000): minimise
//! `l = (a - 1)^2 + (b + 1)^2 + (a - b)^2` from `a = 0.5`, `b = -0.5`, 100 steps of 0.1.
//!
//! Without `detach` the minimum is `(1/3, -1/3)`. With `a.detach()` in the last term no
//! gradient reaches `a` through it, so `a` only sees `(a - 1)^2` and goes to 1, and `b`
//! then settles where `(b + 1) + (b - a) = 0`, at 0.
//!
//! Run it with `cargo run --example descent_detach`.

use adjoint::prelude::*;
use adjoint::tape::Tape;

/// The full loss.
#[differentiable]
pub fn loss(a: f64, b: f64) -> f64 {
    (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a - b).powi(2)
}

/// The same loss with `a` detached in the coupling term.
#[differentiable]
pub fn loss_detached(a: f64, b: f64) -> f64 {
    (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a.detach() - b).powi(2)
}

/// 100 steps of gradient descent with the gradient function `grad`.
pub fn descend(grad: fn(f64, f64) -> (f64, (f64, f64))) -> (f64, f64) {
    let (mut a, mut b) = (0.5, -0.5);
    let eta = 0.1;
    for _ in 0..100 {
        let (_, (ga, gb)) = grad(a, b);
        a -= eta * ga;
        b -= eta * gb;
    }
    (a, b)
}

/// The same descent on the tape, as the tutorial writes it: the update runs in a
/// `no_grad` scope and writes the leaves' values in place.
pub fn descend_on_tape(detach: bool) -> (f64, f64) {
    let tape: Tape = Tape::new();
    let a = tape.var(0.5);
    let b = tape.var(-0.5);
    let eta = 0.1;
    for _ in 0..100 {
        let coupled = if detach { a.detach() } else { a };
        let l = (a - 1.0).powi(2) + (b + 1.0).powi(2) + (coupled - b).powi(2);
        let grads = tape.grad(l, &[a, b]);
        let (ga, gb) = (grads[0].item(), grads[1].item());
        tape.no_grad(|| {
            a.set_value(a.item() - eta * ga);
            b.set_value(b.item() - eta * gb);
        });
        tape.clear_graph();
    }
    (a.item(), b.item())
}

fn main() {
    // Prints e.g. -3e-12 as 0.000000, not -0.000000.
    let show = |v: f64| if v.abs() < 5e-7 { 0.0 } else { v };
    let (a, b) = descend(loss_grad);
    println!("without detach: a = {:.6}, b = {:.6}", show(a), show(b));
    let (a, b) = descend(loss_detached_grad);
    println!("with detach:    a = {:.6}, b = {:.6}", show(a), show(b));
    let (a, b) = descend_on_tape(false);
    println!(
        "tape, without detach: a = {:.6}, b = {:.6}",
        show(a),
        show(b)
    );
    let (a, b) = descend_on_tape(true);
    println!(
        "tape, with detach:    a = {:.6}, b = {:.6}",
        show(a),
        show(b)
    );
}
