use adjoint::prelude::*;

// Both mistakes are reported in one compile.
#[differentiable(static)]
fn f(x: f64, y: f64) -> f64 {
    let a = x.to_degrees();
    let p = (y, y);
    a + p.0
}

fn main() {}
