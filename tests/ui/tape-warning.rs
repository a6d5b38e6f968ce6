// A function that takes the tape without being asked says so, on the construct.
#![deny(deprecated)]

use adjoint::prelude::*;

#[differentiable]
fn by_mode(x: &[f64], mode: u8) -> f64 {
    let l: f64 = x.iter().filter(|v| **v > 0.0).sum();
    if mode == 0 {
        l.sin()
    } else {
        l * x[0]
    }
}

#[differentiable]
fn pair(x: f64) -> f64 {
    let mut n = 0.0;
    let mut bump = |t: f64| {
        n += t;
        t
    };
    bump(x) * n
}

fn main() {
    let _ = (by_mode_grad(&[1.0, 2.0], 0), pair_grad(1.0));
}
