//! Data-dependent control flow (tutorial 002): a `while` loop whose trip count and an
//! `if` whose branch depend on the input. The function is linear in `a` on each piece,
//! `f(a) = k a` for a `k` the loop picks, so the gradient is `f(a) / a`.
//!
//! The tape records only the operations that ran, as PyTorch does, so the gradient
//! follows whichever path the input took. `#[differentiable]` sends this body to the
//! tape by itself (the static path does not take loops yet), and the same body can be
//! written by hand on tape variables.
//!
//! Run it with `cargo run --example control_flow`.

use adjoint::prelude::*;
use adjoint::tape::{Tape, Var};

/// The tutorial's `f`; `f_grad` comes from the macro's automatic tape fallback.
#[differentiable]
pub fn f(a: f64) -> f64 {
    let mut b = a * 2.0;
    while b.abs() < 1000.0 {
        b *= 2.0;
    }
    if b > 0.0 {
        b
    } else {
        100.0 * b
    }
}

/// The same body on tape variables: the loop and the branch run on the values.
pub fn f_tape<'t>(a: Var<'t>) -> Var<'t> {
    let mut b = a * 2.0;
    while b.abs() < 1000.0 {
        b *= 2.0;
    }
    if b > 0.0 {
        b
    } else {
        100.0 * b
    }
}

/// `(f(a), df/da, f(a) / a)` from the hand-written tape version.
pub fn gradient(a: f64) -> (f64, f64, f64) {
    let tape: Tape = Tape::new();
    let x = tape.var(a);
    let y = f_tape(x);
    y.backward();
    (y.item(), x.grad_scalar(), f(a) / a)
}

fn main() {
    // -0.4315 is the tutorial's random draw; the others take the other branch and
    // other trip counts.
    for a in [-0.4315, 0.4315, 3.0, -250.0] {
        let (y, g, ratio) = gradient(a);
        assert_eq!(
            f_grad(a),
            (y, g),
            "the macro and the hand-written tape agree"
        );
        println!(
            "a = {a:>8}: f(a) = {y:>12}, a.grad = {g:>8}, f(a)/a = {ratio:>8}, equal: {}",
            g == ratio
        );
    }
}
