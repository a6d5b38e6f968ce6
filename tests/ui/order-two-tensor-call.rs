use adjoint::prelude::*;

#[differentiable]
fn scaled(w: &Tensor, s: f64) -> Tensor {
    w * s
}

// `_hvp` differentiates the call of `scaled` twice, which needs the second order of a
// tensor-valued function: not built yet.
#[differentiable(order = 2)]
fn energy(w: &Tensor, s: f64) -> f64 {
    let y: Tensor = scaled(w, s);
    y.sum()
}

fn main() {}
