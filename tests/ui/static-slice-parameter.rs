use adjoint::prelude::*;

// Without `static` this function would run on the tape.
#[differentiable(static)]
fn f(x: &[f64]) -> f64 {
    x[0] * x[1]
}

fn main() {}
