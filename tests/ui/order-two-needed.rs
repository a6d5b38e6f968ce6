use adjoint::prelude::*;

#[differentiable]
fn potential(x: f64, w: f64) -> f64 {
    (x - w).powi(2) + x.sin()
}

// Differentiating a body that calls `potential_grad` needs `potential`'s second-order
// companions: `potential` lacks `order = 2`.
#[differentiable]
fn step(x: f64, w: f64) -> f64 {
    let (_, (gx, _)) = potential_grad(x, w);
    x - 0.1 * gx
}

fn main() {
    let _ = step_grad(1.0, 0.5);
    // Its own Hessian-vector product, likewise.
    let _ = potential_hvp(1.0, 0.5, 1.0, 0.0);
}
