use adjoint::prelude::*;

const SCALE: f64 = 2.0;
const N: usize = 3;

#[differentiable]
fn g(a: f64, b: f64, n: usize) -> f64 {
    a * b * n as f64
}

// `SCALE` is a float the macro cannot see the type of: if it were not counted, `g_vjp`'s
// gradient for `b` could be taken for another argument's. `N` is an integer and passes.
#[differentiable]
fn f(x: f64) -> f64 {
    g(x, SCALE, N)
}

fn main() {}
