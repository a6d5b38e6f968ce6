use adjoint::prelude::*;

// Under `static`, a slice method the static path does not know is an error: its
// gradient would otherwise be lost.
#[differentiable(static)]
fn f(x: &[f64]) -> f64 {
    if x.contains(&1.0) {
        0.0
    } else {
        2.0 * x[0]
    }
}

fn main() {}
