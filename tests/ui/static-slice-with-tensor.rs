use adjoint::prelude::*;

// Without `static` this function would run on the tape.
#[differentiable(static)]
fn f(x: &[f64], t: &Tensor) -> f64 {
    x[0] * t.sum()
}

fn main() {}
