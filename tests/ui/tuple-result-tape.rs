use adjoint::prelude::*;

// A tuple result has no tape fallback: the tape has no tuple seed.
#[differentiable(tape)]
fn f(x: f64) -> (f64, f64) {
    (x, x * x)
}

fn main() {}
