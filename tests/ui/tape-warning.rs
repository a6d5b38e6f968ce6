// A function that takes the tape without being asked says so, on the construct.
#![deny(deprecated)]

use adjoint::prelude::*;

#[differentiable]
fn by_mode(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.sin(),
        _ => x * x,
    }
}

#[differentiable]
fn pair(x: f64) -> f64 {
    let (a, b) = (x, x * 2.0);
    a * b
}

fn main() {
    let _ = (by_mode_grad(1.0, 0), pair_grad(1.0));
}
