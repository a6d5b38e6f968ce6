//! The dynamic computation graph of tutorial 001: a two-layer ReLU network,
//! `y_pred = relu(X W1) W2`, `loss = sum((y_pred - y)^2)`, trained on random data on
//! the tape. Each step records a new graph, runs backward, updates the weights
//! outside the graph and zeroes their gradients (`w.grad.data.zero_()`).
//!
//! Run it with `cargo run --release --example dynamic_graph`.

use adjoint::tape::Tape;
use adjoint::Tensor;

/// `steps` steps of gradient descent; returns the loss before each step and the
/// prediction's shape.
pub fn train(steps: usize) -> (Vec<f64>, Vec<usize>) {
    let (n, d_in, h, d_out) = (64, 1000, 100, 10);
    let tape: Tape = Tape::new();
    let w1 = tape.tensor(Tensor::randn(&[d_in, h], 3));
    let w2 = tape.tensor(Tensor::randn(&[h, d_out], 4));
    let x = tape.constant_tensor(Tensor::randn(&[n, d_in], 1));
    let y = Tensor::randn(&[n, d_out], 2);
    let rate = 1e-6;
    let mut losses = Vec::with_capacity(steps);
    let mut shape = Vec::new();
    for _ in 0..steps {
        let y_pred = x.matmul(w1).relu().matmul(w2);
        shape = y_pred.shape();
        let loss = (y_pred - &y).powi(2).sum();
        losses.push(loss.item());
        loss.backward();
        for w in [w1, w2] {
            w.set_value(w.tensor() - w.grad_tensor() * rate);
            w.zero_grad();
        }
        tape.clear_graph();
    }
    (losses, shape)
}

fn main() {
    let (losses, shape) = train(10);
    println!("y_pred shape: {shape:?}");
    for (i, l) in losses.iter().enumerate() {
        println!("step {i}: loss {l:.1}");
    }
}
