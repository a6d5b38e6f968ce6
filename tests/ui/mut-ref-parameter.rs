use adjoint::prelude::*;

// An array behind `&mut` is not an in-out parameter (take `&mut [f64]`).
#[differentiable]
fn f(x: f64, out: &mut [f64; 3]) -> f64 {
    out[0] = x;
    x * x
}

fn main() {}
