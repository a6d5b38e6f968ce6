//! The two-layer ReLU network of the PyTorch tensor tutorial,
//! `ŷ = (X W1).clamp(0, ∞) W2` with the squared-error loss `L = Σ (ŷ - y)²`,
//! N = 64, D_in = 1000, H = 100, D_out = 10, trained by plain gradient descent
//! with the gradient that `#[differentiable]` generates at compile time.
//!
//! Run it with `cargo run --release --example relu_net`.

use adjoint::prelude::*;

/// The batch size, input, hidden and output widths.
pub const N: usize = 64;
/// The input width.
pub const D_IN: usize = 1000;
/// The hidden width.
pub const H: usize = 100;
/// The output width.
pub const D_OUT: usize = 10;

/// The loss of the batch `x` against the targets `y`; gradients for the weights.
#[differentiable(wrt(w1, w2))]
pub fn loss(w1: &Tensor, w2: &Tensor, x: &Tensor, y: &Tensor) -> f64 {
    let h = x.matmul(w1).clamp(0.0, f64::INFINITY);
    (h.matmul(w2) - y).powi(2).sum()
}

/// Trains for `steps` steps with learning rate `lr`; returns the loss of every step
/// (before its update).
pub fn train(steps: usize, lr: f64, print: bool) -> Vec<f64> {
    let x = Tensor::randn(&[N, D_IN], 1);
    let y = Tensor::randn(&[N, D_OUT], 2);
    let mut w1 = Tensor::randn(&[D_IN, H], 3);
    let mut w2 = Tensor::randn(&[H, D_OUT], 4);
    let mut history = Vec::with_capacity(steps);
    for step in 0..steps {
        let (l, (dw1, dw2)) = loss_grad(&w1, &w2, &x, &y);
        history.push(l);
        if print && (step % 50 == 0 || step + 1 == steps) {
            println!("step {step:4}  loss {l:.4e}");
        }
        w1 -= dw1 * lr;
        w2 -= dw2 * lr;
    }
    history
}

fn main() {
    let history = train(500, 1e-6, true);
    let (first, last) = (history[0], history[history.len() - 1]);
    println!("loss {first:.4e} -> {last:.4e}");
}
