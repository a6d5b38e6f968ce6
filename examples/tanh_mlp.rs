//! The two-layer tanh network of the PyTorch autograd tutorial,
//! `ŷ = tanh(W2 tanh(W1 x + b1) + b2)` with the mean-squared loss
//! `L = mean((ŷ - y)²)`, trained by plain gradient descent with the gradient that
//! `#[differentiable]` generates at compile time.
//!
//! Shapes as in the tutorial: `x ∈ R^10`, `W1 ∈ R^{20×10}`, `b1 ∈ R^20`,
//! `W2 ∈ R^{5×20}`, `b2 ∈ R^5`, targets in `R^5`; here a few samples are fitted at
//! once. Run it with `cargo run --release --example tanh_mlp`.

use adjoint::prelude::*;

/// The loss of one sample; the gradient is taken with respect to the weights only.
#[differentiable(wrt(w1, b1, w2, b2))]
pub fn loss(w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor, x: &Tensor, y: &Tensor) -> f64 {
    let h = (w1.matmul(x) + b1).tanh();
    let y_hat = (w2.matmul(&h) + b2).tanh();
    (y_hat - y).powi(2).mean()
}

/// The network's parameters.
pub struct Params {
    /// `[20, 10]`
    pub w1: Tensor,
    /// `[20]`
    pub b1: Tensor,
    /// `[5, 20]`
    pub w2: Tensor,
    /// `[5]`
    pub b2: Tensor,
}

/// Trains on `n_samples` random (input, target) pairs for `epochs` epochs with step
/// `lr`; returns the mean loss of every epoch (before its update).
pub fn train(n_samples: usize, epochs: usize, lr: f64, print: bool) -> Vec<f64> {
    // Uniform on [0, 1), as `torch.rand`; centred weights train faster.
    let mut p = Params {
        w1: Tensor::rand(&[20, 10], 1) - 0.5,
        b1: Tensor::rand(&[20], 2) - 0.5,
        w2: Tensor::rand(&[5, 20], 3) - 0.5,
        b2: Tensor::rand(&[5], 4) - 0.5,
    };
    let data: Vec<(Tensor, Tensor)> = (0..n_samples as u64)
        .map(|i| (Tensor::rand(&[10], 100 + i), Tensor::rand(&[5], 200 + i)))
        .collect();
    let mut history = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        let mut total = 0.0;
        let mut grads = (
            Tensor::zeros(&[20, 10]),
            Tensor::zeros(&[20]),
            Tensor::zeros(&[5, 20]),
            Tensor::zeros(&[5]),
        );
        for (x, y) in &data {
            let (l, (dw1, db1, dw2, db2)) = loss_grad(&p.w1, &p.b1, &p.w2, &p.b2, x, y);
            total += l;
            grads.0 += dw1;
            grads.1 += db1;
            grads.2 += dw2;
            grads.3 += db2;
        }
        let n = n_samples as f64;
        let mean = total / n;
        history.push(mean);
        if print && (epoch % 50 == 0 || epoch + 1 == epochs) {
            println!("epoch {epoch:4}  loss {mean:.6}");
        }
        let step = lr / n;
        p.w1 -= grads.0 * step;
        p.b1 -= grads.1 * step;
        p.w2 -= grads.2 * step;
        p.b2 -= grads.3 * step;
    }
    history
}

fn main() {
    let history = train(8, 400, 0.5, true);
    let (first, last) = (history[0], history[history.len() - 1]);
    println!("loss {first:.6} -> {last:.6}");
}
