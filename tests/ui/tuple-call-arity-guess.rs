use adjoint::prelude::*;

#[differentiable]
fn g(x: f64) -> (f64, f64, f64) {
    (x, x * 2.0, x * 3.0)
}

// `g(x).1` shows a tuple of at least two elements; the static path guesses two. The
// wrong guess is a type error at the call, never a wrong gradient: name every
// element (`let (a, b, _) = g(x);`) to fix it.
#[differentiable]
fn f(x: f64) -> f64 {
    g(x).1 * x
}

fn main() {}
