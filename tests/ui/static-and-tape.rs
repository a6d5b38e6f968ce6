use adjoint::prelude::*;

#[differentiable(static, tape)]
fn f(x: f64) -> f64 {
    x * x
}

fn main() {}
