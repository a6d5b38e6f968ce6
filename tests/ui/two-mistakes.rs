use adjoint::prelude::*;

fn first(p: (f64, f64)) -> f64 {
    p.0
}

// Both mistakes are reported in one compile.
#[differentiable(static)]
fn f(x: f64, y: f64) -> f64 {
    let a = x.to_degrees();
    let p = (y, y);
    a + first(p)
}

fn main() {}
