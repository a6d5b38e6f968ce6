use adjoint::prelude::*;

#[differentiable]
fn f(x: f64, idx: &[usize]) -> f64 {
    x * idx.len() as f64
}

fn main() {}
