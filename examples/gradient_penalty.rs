//! The gradient penalty of WGAN-GP, on the tape: the norm of a gradient, as part
//! of a loss, differentiated again (PyTorch's `torch.autograd.grad(..,
//! create_graph=True)`, here `Tape::grad_graph`).
//!
//! A critic `D(x) = w2 · tanh(W1 x + b1) + b2` scores points of the plane. Its loss
//! on a batch of real points `r` and generated points `f` is
//!
//! ```text
//! mean D(f) - mean D(r) + λ mean (|∇ₓ D(x̂)| - 1)²,   x̂ = ε r + (1 - ε) f,
//! ```
//!
//! whose last term needs the gradient of `D` with respect to its input as a
//! recorded value, so that the loss can be differentiated with respect to the
//! parameters through it. The example checks that gradient against central
//! finite differences of the loss, then takes a few steps of gradient descent.
//!
//! Run it with `cargo run --example gradient_penalty`.

use adjoint::prelude::*;
use adjoint::tape::{Tape, Var};

/// The penalty's weight.
const LAMBDA: f64 = 10.0;

/// The critic's parameters: `W1` (4×2), `b1` (4), `w2` (4), `b2` (a 1-element tensor).
pub fn initial_params() -> Vec<Tensor> {
    vec![
        Tensor::from_vec(vec![0.9, -0.4, 0.3, 0.8, -0.7, 0.5, 0.2, -0.6], &[4, 2]),
        Tensor::from_vec(vec![0.1, -0.2, 0.05, 0.3], &[4]),
        Tensor::from_vec(vec![0.7, -0.5, 0.9, 0.4], &[4]),
        Tensor::from_vec(vec![0.05], &[1]),
    ]
}

/// Real points, generated points and the interpolation weights, one row each.
fn batch() -> (Tensor, Tensor, Tensor) {
    let real = Tensor::from_vec(vec![1.0, 0.5, 0.8, 1.2, 1.3, 0.9], &[3, 2]);
    let fake = Tensor::from_vec(vec![-0.4, 0.1, 0.2, -0.6, -0.1, 0.7], &[3, 2]);
    let eps = Tensor::from_vec(vec![0.25, 0.6, 0.8], &[3, 1]);
    (real, fake, eps)
}

/// The critic's score of each row of `x` ([n, 2] to [n]).
fn critic<'t>(p: &[Var<'t>], x: Var<'t>) -> Var<'t> {
    let h = (x.matmul(p[0].t()) + p[1]).tanh();
    h.matmul(p[2]) + p[3]
}

/// The loss and the penalty on `tape`. With `record`, the input gradient is a
/// recorded `Var` (`grad_graph`), so that the loss can be differentiated with
/// respect to the parameters through it; without, it is a plain value
/// (`Tape::grad`), enough to evaluate the loss for finite differences.
fn loss<'t>(tape: &'t Tape, p: &[Var<'t>], record: bool) -> (Var<'t>, Var<'t>) {
    let (real, fake, eps) = batch();
    let one_minus = eps.map(|e| 1.0 - e);
    let mixed = tape.tensor(&real * &eps + &fake * &one_minus);
    let scores = critic(p, mixed).sum();
    // The rows are independent, so the gradient of the summed scores holds
    // each row's gradient of its own score.
    let dx = if record {
        tape.grad_graph(scores, &[mixed])[0]
    } else {
        tape.constant_tensor(tape.grad(scores, &[mixed])[0].to_tensor())
    };
    let norms = (dx * dx).sum_axis(1).sqrt();
    let penalty = (norms - 1.0).powi(2).mean();
    let wasserstein =
        critic(p, tape.constant_tensor(fake)).mean() - critic(p, tape.constant_tensor(real)).mean();
    (wasserstein + penalty * LAMBDA, penalty)
}

/// The loss, its penalty term and the gradient with respect to every
/// parameter (flattened, in order), by the tape.
pub fn loss_and_grad(params: &[Tensor]) -> (f64, f64, Vec<f64>) {
    let tape = Tape::new();
    let p: Vec<Var> = params.iter().map(|t| tape.tensor(t.clone())).collect();
    let (l, penalty) = loss(&tape, &p, true);
    l.backward();
    let grad = p
        .iter()
        .flat_map(|v| v.grad_tensor().as_slice().to_vec())
        .collect();
    (l.item(), penalty.item(), grad)
}

/// The loss alone, with the input gradient as a plain value.
fn loss_value(params: &[Tensor]) -> f64 {
    let tape = Tape::new();
    let p: Vec<Var> = params.iter().map(|t| tape.tensor(t.clone())).collect();
    loss(&tape, &p, false).0.item()
}

/// Central finite differences of the loss, flattened as `loss_and_grad`'s gradient.
pub fn finite_differences(params: &[Tensor]) -> Vec<f64> {
    let h = 1e-6;
    let mut out = Vec::new();
    for (j, t) in params.iter().enumerate() {
        for k in 0..t.len() {
            let at = |d: f64| {
                let mut q = params.to_vec();
                q[j].as_mut_slice()[k] += d;
                loss_value(&q)
            };
            out.push((at(h) - at(-h)) / (2.0 * h));
        }
    }
    out
}

/// The largest difference between the tape's gradient and finite differences,
/// relative to `1 + |finite difference|`.
pub fn check(params: &[Tensor]) -> f64 {
    let (_, _, grad) = loss_and_grad(params);
    let fd = finite_differences(params);
    grad.iter()
        .zip(&fd)
        .map(|(g, f)| (g - f).abs() / (1.0 + f.abs()))
        .fold(0.0, f64::max)
}

/// `steps` steps of gradient descent from the initial parameters: the loss
/// and the penalty before each step.
pub fn descend(steps: usize, lr: f64) -> Vec<(f64, f64)> {
    let mut params = initial_params();
    let mut trace = Vec::new();
    for _ in 0..steps {
        let (l, penalty, grad) = loss_and_grad(&params);
        trace.push((l, penalty));
        let mut k = 0;
        for t in params.iter_mut() {
            for v in t.as_mut_slice() {
                *v -= lr * grad[k];
                k += 1;
            }
        }
    }
    trace
}

fn main() {
    let params = initial_params();
    let (l, penalty, grad) = loss_and_grad(&params);
    let err = check(&params);
    assert!(
        err < 1e-6,
        "the tape's gradient is off finite differences by {err}"
    );
    println!("loss {l:.6} (penalty {penalty:.6})");
    let w1: Vec<String> = grad[..8].iter().map(|g| format!("{g:.5}")).collect();
    println!("d loss / d W1 = [{}]", w1.join(", "));
    println!("against central finite differences: largest relative error {err:.1e}");
    let trace = descend(30, 0.05);
    let (first, last) = (trace[0], trace[trace.len() - 1]);
    println!(
        "30 steps of descent: loss {:.4} -> {:.4}, penalty {:.4} -> {:.4}",
        first.0, last.0, first.1, last.1
    );
}
