use adjoint::prelude::*;

#[differentiable]
fn f(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v * 2.0).collect()
}

fn main() {}
