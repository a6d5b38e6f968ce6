//! The `mean` examples of tutorial 001: the gradient of `out = mean(z)` with respect
//! to every entry of `X` (all entries are 1, so every entry of the gradient is equal).
//!
//! | body | by hand | value |
//! |---|---|---|
//! | `y = X + 2`, `z = 3 y y`, 2×2 | `(1/4) · 6 y` | 4.5 |
//! | `y = X + 2`, `z = 2 y^2`, 2×2 | `(1/4) · 4 y` | 3 |
//! | `y = X + 2`, `z = 2 y^3`, 2×2 | `(1/4) · 6 y^2` | 13.5 |
//! | `y = 4 X + 2`, `z = 8 y^2`, 3×3 | `(1/9) · 16 y · 4` | 42.6667 |
//!
//! Run it with `cargo run --example tutorial_means`.

use adjoint::prelude::*;

/// `mean(3 (X + 2)^2)`, written as the tutorial does: `y * y * 3`.
#[differentiable]
pub fn mean_3yy(x: &Tensor) -> f64 {
    let y = x + 2.0;
    let z = &y * &y * 3.0;
    z.mean()
}

/// `mean(2 (X + 2)^2)`.
#[differentiable]
pub fn mean_2y2(x: &Tensor) -> f64 {
    let y = x + 2.0;
    let z = y.powi(2) * 2.0;
    z.mean()
}

/// `mean(2 (X + 2)^3)`.
#[differentiable]
pub fn mean_2y3(x: &Tensor) -> f64 {
    let y = x + 2.0;
    let z = y.powi(3) * 2.0;
    z.mean()
}

/// `mean(8 (4 X + 2)^2)`.
#[differentiable]
pub fn mean_8y2(x: &Tensor) -> f64 {
    let y = x * 4.0 + 2.0;
    let z = y.powi(2) * 8.0;
    z.mean()
}

/// `(out, d out / d X)` of each function, at `X = ones`.
pub fn results() -> Vec<(&'static str, f64, Tensor)> {
    let x2 = Tensor::ones(&[2, 2]);
    let x3 = Tensor::ones(&[3, 3]);
    let mut out = Vec::new();
    let (v, g) = mean_3yy_grad(&x2);
    out.push(("mean(3 y y), y = X + 2, X = ones(2, 2)", v, g));
    let (v, g) = mean_2y2_grad(&x2);
    out.push(("mean(2 y^2), y = X + 2, X = ones(2, 2)", v, g));
    let (v, g) = mean_2y3_grad(&x2);
    out.push(("mean(2 y^3), y = X + 2, X = ones(2, 2)", v, g));
    let (v, g) = mean_8y2_grad(&x3);
    out.push(("mean(8 y^2), y = 4 X + 2, X = ones(3, 3)", v, g));
    out
}

fn main() {
    for (what, value, grad) in results() {
        println!(
            "{what}: out = {value}, X.grad = {:.4} everywhere",
            grad.as_slice()[0]
        );
        println!("    {grad:?}");
    }
}
