use adjoint::prelude::*;

// The static path's error for a function with a tuple result does not advise the
// tape, which cannot take it.
#[differentiable]
fn f(x: &[f64]) -> (f64, f64) {
    let l: f64 = x.iter().filter(|v| **v > 0.0).sum();
    (l, x[0])
}

fn main() {}
