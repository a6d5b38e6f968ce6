//! The shared weight of tutorial 000: `a = (x w)^2 + (x w)^3` at `x = 2`, `w = 1`.
//!
//! `w` reaches `a` along two paths, and reverse mode adds their contributions:
//! `∂a/∂w = 2 u1 · x + 3 u2^2 · x = 8 + 24 = 32` (with `u1 = u2 = x w = 2`).
//!
//! Run it with `cargo run --example shared_weight`.

use adjoint::prelude::*;
use adjoint::tape::Tape;

/// Two paths from `w` to `a`.
#[differentiable(wrt(w))]
pub fn two_paths(x: f64, w: f64) -> f64 {
    let u1 = x * w;
    let u2 = x * w;
    let v1 = u1.powi(2);
    let v2 = u2.powi(3);
    v1 + v2
}

/// `(a, ∂a/∂w)` from the static macro.
pub fn static_grad() -> (f64, f64) {
    two_paths_grad(2.0, 1.0)
}

/// `(a, ∂a/∂w)` from the tape.
pub fn tape_grad() -> (f64, f64) {
    let tape: Tape = Tape::new();
    let x = tape.constant(2.0);
    let w = tape.var(1.0);
    let a = (x * w).powi(2) + (x * w).powi(3);
    a.backward();
    (a.item(), w.grad_scalar())
}

fn main() {
    let (a, dw) = static_grad();
    println!("static: a = {a}, da/dw = {dw}");
    let (a, dw) = tape_grad();
    println!("tape:   a = {a}, da/dw = {dw}");
}
