use adjoint::prelude::*;

// A pattern of two names for a tuple of three.
#[differentiable(static)]
fn f(x: f64) -> f64 {
    let (a, b) = (x, x * 2.0, x * 3.0);
    a + b
}

fn main() {}
