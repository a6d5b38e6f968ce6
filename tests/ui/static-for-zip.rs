use adjoint::prelude::*;

// Without `static` this function would run on the tape: `filter` is not lowered.
#[differentiable(static)]
fn f(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y.iter()).filter(|(a, _)| **a > 0.0) {
        s += a * b;
    }
    s
}

fn main() {}
