use adjoint::prelude::*;

#[differentiable]
fn scale(t: &Tensor) -> f64 {
    t.sum() * 2.0
}

// Without `static` this function would run on the tape: the statement-level static
// path takes tensors among loops and slices, but not calls of other functions there.
#[differentiable(static)]
fn f(x: &[f64], t: &Tensor) -> f64 {
    x[0] * scale(t)
}

fn main() {}
