//! The autograd machinery (tutorials 000, 001 and 003) on the tape: leaves,
//! `requires_grad`, `is_leaf`, `grad_fn` and `next_functions`, `no_grad`, and the
//! graph of a small MLP's loss exported to Graphviz DOT (torchviz's `make_dot`),
//! written to target/plots/.
//!
//! Run it with `cargo run --example graph_mechanics`.

#[path = "common/mod.rs"]
mod common;

use adjoint::tape::{GradFn, Tape};
use adjoint::Tensor;

/// The names of `f` and the first input of each node below it, down to a leaf.
pub fn chain(f: Option<GradFn<'_>>) -> Vec<String> {
    let mut names = Vec::new();
    let mut node = f;
    while let Some(f) = node {
        names.push(f.name());
        node = f.next_functions().into_iter().flatten().next();
    }
    names
}

/// `s = sum(|x|)` at `x = [1, -2, 3, -4]`: `(s, grad_fn chain, x.grad)`.
pub fn abs_sum() -> (f64, Vec<String>, Vec<f64>) {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, -2.0, 3.0, -4.0], &[4]));
    let s = x.abs().sum();
    s.backward();
    (s.item(), chain(s.grad_fn()), x.grad_tensor().to_vec())
}

/// `q = |x|` at `x = [1, 2, 2]` (= 3), its gradient `x / q`, and the DOT of its graph.
pub fn norm() -> (f64, Vec<f64>, String) {
    let tape: Tape = Tape::new();
    let x = tape
        .tensor(Tensor::from_vec(vec![1.0, 2.0, 2.0], &[3]))
        .named("x");
    let q = x.norm().named("q");
    q.backward();
    (q.item(), x.grad_tensor().to_vec(), tape.to_dot(&[q]))
}

/// Leaves and results (tutorials 001 and 003): `x` requires a gradient, `k` does not.
/// Returns `(x.is_leaf, y.is_leaf, x.grad_fn, y.grad_fn, z.grad_fn, k.grad is None,
/// h.requires_grad for h computed under no_grad, x.grad)`.
#[allow(clippy::type_complexity)]
pub fn leaves() -> (bool, bool, Option<String>, String, String, bool, bool, f64) {
    let tape: Tape = Tape::new();
    let x = tape.var(1.0);
    let k = tape.constant(2.0);
    let y = x + 2.0;
    let z = y * k;
    z.backward();
    let h = tape.no_grad(|| z * 2.0);
    (
        x.is_leaf(),
        y.is_leaf(),
        x.grad_fn().map(|f| f.name()),
        y.grad_fn().map(|f| f.name()).unwrap_or_default(),
        z.grad_fn().map(|f| f.name()).unwrap_or_default(),
        k.grad().is_none(),
        h.requires_grad(),
        x.grad_scalar(),
    )
}

/// The MLP of tutorial 000: `h = tanh(W1 x + b1)`, `y = tanh(W2 h + b2)`,
/// `loss = mean((y - target)^2)`, with `W1: [20, 10]`, `W2: [5, 20]` (seeded uniform
/// entries). Returns the loss, the shapes of the gradients and the DOT of the graph.
pub fn mlp() -> (f64, Vec<Vec<usize>>, String) {
    let tape: Tape = Tape::new();
    let w1 = tape.tensor(Tensor::rand(&[20, 10], 1)).named("w1");
    let b1 = tape.tensor(Tensor::rand(&[20], 2)).named("b1");
    let w2 = tape.tensor(Tensor::rand(&[5, 20], 3)).named("w2");
    let b2 = tape.tensor(Tensor::rand(&[5], 4)).named("b2");
    let x = Tensor::rand(&[10], 5);
    let target = Tensor::rand(&[5], 6);
    let h = (w1.matmul(&x) + b1).tanh();
    let y = (w2.matmul(h) + b2).tanh();
    let loss = (y - &target).powi(2).mean().named("loss");
    loss.backward();
    let shapes = [w1, b1, w2, b2]
        .iter()
        .map(|p| p.grad_tensor().shape().to_vec())
        .collect();
    (loss.item(), shapes, tape.to_dot(&[loss]))
}

fn main() {
    let (s, names, g) = abs_sum();
    println!(
        "s = sum(|x|) = {s}; grad_fn chain: {}; x.grad = {g:?}",
        names.join(" -> ")
    );
    let (q, g, dot) = norm();
    println!("q = |[1, 2, 2]| = {q}; x.grad = {g:?}");
    let (xl, yl, xf, yf, zf, k_none, h_rg, xg) = leaves();
    println!("x.is_leaf = {xl}, y.is_leaf = {yl}; x.grad_fn = {xf:?}, y.grad_fn = {yf}, z.grad_fn = {zf}");
    println!("k (a constant) has no grad: {k_none}; under no_grad, h.requires_grad = {h_rg}; x.grad = {xg}");
    let (loss, shapes, mlp_dot) = mlp();
    println!("MLP loss = {loss:.6}; gradient shapes (w1, b1, w2, b2): {shapes:?}");
    let dir = common::plots_dir();
    for (name, text) in [("norm.dot", dot), ("mlp_loss.dot", mlp_dot)] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("cannot write the DOT file");
        println!(
            "wrote {} (render: dot -Tsvg {} -o graph.svg)",
            path.display(),
            path.display()
        );
    }
}
