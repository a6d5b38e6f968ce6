//! The ReLU neuron of tutorial 000: `a = relu(x w + b)` at `x = 3`, `w = 2`, `b = 1`.
//!
//! By the chain rule `∂a/∂w = relu'(v) · x = 3` and `∂a/∂b = relu'(v) = 1`, since
//! `v = x w + b = 7 > 0`. The static macro computes both at compile time; the tape
//! records the same graph at run time and names its nodes as PyTorch does.
//!
//! Run it with `cargo run --example relu_neuron`.

use adjoint::prelude::*;
use adjoint::tape::Tape;

/// One neuron; `x` is the input (a constant), `w` and `b` are differentiated.
#[differentiable(wrt(w, b))]
pub fn neuron(x: f64, w: f64, b: f64) -> f64 {
    let u = x * w;
    let v = u + b;
    v.relu()
}

/// `(a, (∂a/∂w, ∂a/∂b))` from the static macro.
pub fn static_grads() -> (f64, (f64, f64)) {
    neuron_grad(3.0, 2.0, 1.0)
}

/// The same on the tape: `(v, ∂a/∂w, ∂a/∂b, grad_fn names from the output down)`.
pub fn tape_grads() -> (f64, f64, f64, Vec<String>) {
    let tape: Tape = Tape::new();
    let x = tape.constant(3.0);
    let w = tape.var(2.0);
    let b = tape.var(1.0);
    let u = x * w;
    let v = u + b;
    let a = v.clamp(0.0, f64::INFINITY); // PyTorch's `torch.clamp(v, min=0)`
    a.backward();
    let mut names = Vec::new();
    let mut node = a.grad_fn();
    while let Some(f) = node {
        names.push(f.name());
        node = f.next_functions().into_iter().flatten().next();
    }
    (v.item(), w.grad_scalar(), b.grad_scalar(), names)
}

fn main() {
    let (a, (dw, db)) = static_grads();
    println!("static:  a = {a}, da/dw = {dw}, da/db = {db}");
    let (v, tw, tb, names) = tape_grads();
    println!("tape:    v = {v}, da/dw = {tw}, da/db = {tb}");
    println!("grad_fn chain: {}", names.join(" -> "));
}
