use adjoint::prelude::*;

// Under `static`, a slice read other than `x[i]`, `x.len()`, `x.iter().sum()`, a loop
// over it or a call argument is an error: its gradient would otherwise be lost.
#[differentiable(static)]
fn f(x: &[f64]) -> f64 {
    x.iter().product::<f64>() + 2.0 * x[0]
}

fn main() {}
