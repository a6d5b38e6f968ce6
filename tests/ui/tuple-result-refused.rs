use adjoint::prelude::*;

// The static path's error for a function with a tuple result does not advise the
// tape, which cannot take it.
#[differentiable]
fn f(x: &[f64]) -> (f64, f64) {
    let l = *x.last().unwrap();
    (l, x[0])
}

fn main() {}
