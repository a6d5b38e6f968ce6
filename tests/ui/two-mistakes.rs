use adjoint::prelude::*;

// Both mistakes are reported in one compile.
#[differentiable(static)]
fn f(x: f64, y: f64) -> f64 {
    let a = x.to_degrees();
    let twice = |t: f64| t * 2.0;
    a + twice(y)
}

fn main() {}
