use adjoint::prelude::*;

// A tensor method the tape has and the static path does not: the message advises it.
#[differentiable(static)]
fn f(t: &Tensor) -> f64 {
    t.broadcast_to(&[2, 3]).sum()
}

fn main() {}
