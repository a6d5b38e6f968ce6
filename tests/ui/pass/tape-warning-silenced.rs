// No tape warning: the tape asked for, the warning allowed on the function, a body the
// static path takes, and `inline(..)` (which implies the tape).
#![deny(warnings)]

use adjoint::prelude::*;

#[differentiable(tape)]
fn asked(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.sin(),
        _ => x * x,
    }
}

#[allow(deprecated)]
#[differentiable]
fn allowed(x: f64) -> f64 {
    let (a, b) = (x, x * 2.0);
    a * b
}

#[differentiable]
fn straight(x: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += x * i as f64;
    }
    s
}

fn sq<V: Copy + std::ops::Mul<Output = V>>(v: V) -> V {
    v * v
}

#[differentiable(inline(sq))]
fn inlined(x: f64) -> f64 {
    sq(x) * 2.0
}

fn main() {
    assert_eq!(asked_grad(2.0, 1), (4.0, 4.0));
    assert_eq!(allowed_grad(1.0), (2.0, 4.0));
    assert_eq!(straight_grad(1.0), (3.0, 3.0));
    assert_eq!(inlined_grad(1.0), (2.0, 4.0));
}
