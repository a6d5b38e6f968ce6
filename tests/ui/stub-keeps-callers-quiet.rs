use adjoint::prelude::*;

// One mistake in the body gives one error: `f_grad` still exists for its callers.
#[differentiable]
fn f(x: f64) -> f64 {
    x.to_degrees()
}

fn main() {
    let (_y, _dx) = f_grad(1.0);
}
