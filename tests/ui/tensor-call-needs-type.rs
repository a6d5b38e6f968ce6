use adjoint::prelude::*;

#[differentiable]
fn energy(h: &Tensor) -> f64 {
    (h * h).sum()
}

// `energy(..)` takes a tensor: the static path cannot tell its result's kind (the
// tape can: without `static`, `f` takes it with a warning).
#[differentiable(static)]
fn f(x: &Tensor) -> f64 {
    x.sum() + energy(x)
}

fn main() {}
