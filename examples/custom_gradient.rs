//! Custom gradients (tutorial 001's `torch.autograd.Function`), both ways:
//!
//! - static: write a plain `g` and a hand-made `g_vjp(args, seed) -> (value, grads)`
//!   beside it; a `#[differentiable]` body that calls `g` chains through `g_vjp`;
//! - tape: implement [`Function`] (forward, and backward from the saved inputs and
//!   output) and record it with [`Tape::apply`].
//!
//! Run it with `cargo run --example custom_gradient`.

use adjoint::prelude::*;
use adjoint::tape::{Function, Tape, Value};

/// `e^x`, with a hand-written VJP that reuses the output (`d e^x = e^x dx`).
pub fn my_exp(x: f64) -> f64 {
    x.exp()
}

/// The custom gradient of [`my_exp`]: `(e^x, seed · e^x)`.
pub fn my_exp_vjp(x: f64, seed: f64) -> (f64, f64) {
    let y = x.exp();
    (y, seed * y)
}

/// Rounding, whose true derivative is 0 almost everywhere. Its custom gradient is the
/// straight-through estimator (pass the seed unchanged), as quantised networks use.
pub fn round_ste(x: f64) -> f64 {
    x.round()
}

/// The straight-through gradient of [`round_ste`].
pub fn round_ste_vjp(x: f64, seed: f64) -> (f64, f64) {
    (x.round(), seed)
}

/// `exp(w x) + round(w x)`: both calls chain through the hand-written VJPs.
#[differentiable(wrt(w))]
pub fn model(w: f64, x: f64) -> f64 {
    my_exp(w * x) + round_ste(w * x)
}

/// ReLU as a tape [`Function`]: the backward zeroes the gradient where the input was
/// negative (and at 0, PyTorch's convention).
pub struct Relu;

impl Function<f64> for Relu {
    fn name(&self) -> &str {
        "MyRelu"
    }
    fn forward(&self, inputs: &[Value<f64>]) -> Value<f64> {
        inputs[0].map(|x| x.max(0.0))
    }
    fn backward(
        &self,
        inputs: &[Value<f64>],
        _output: &Value<f64>,
        grad_output: &Value<f64>,
    ) -> Vec<Option<Value<f64>>> {
        let g = grad_output.zip_map(&inputs[0], |g, x| if x > 0.0 { g } else { 0.0 });
        vec![Some(g)]
    }
}

/// `e^x` as a tape [`Function`]: the backward multiplies by the saved output.
pub struct Exp;

impl Function<f64> for Exp {
    fn name(&self) -> &str {
        "MyExp"
    }
    fn forward(&self, inputs: &[Value<f64>]) -> Value<f64> {
        inputs[0].map(f64::exp)
    }
    fn backward(
        &self,
        _inputs: &[Value<f64>],
        output: &Value<f64>,
        grad_output: &Value<f64>,
    ) -> Vec<Option<Value<f64>>> {
        vec![Some(grad_output.zip_map(output, |g, y| g * y))]
    }
}

/// The static model at `w = 0.7`, `x = 2`: `(value, d/dw)`; the exact derivative of
/// the exponential part is `x e^{w x}`, and the straight-through part adds `x`.
pub fn static_result() -> (f64, f64) {
    model_grad(0.7, 2.0)
}

/// The tape functions on `x = [-1, 0.5, 2]`: `sum(MyExp(MyRelu(x)))`; returns the
/// value, `x.grad` and the output's `grad_fn` chain.
pub fn tape_result() -> (f64, Vec<f64>, Vec<String>) {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![-1.0, 0.5, 2.0], &[3]));
    let r = tape.apply(Relu, &[x]);
    let e = tape.apply(Exp, &[r]);
    let s = e.sum();
    s.backward();
    let mut names = Vec::new();
    let mut node = s.grad_fn();
    while let Some(f) = node {
        names.push(f.name());
        node = f.next_functions().into_iter().flatten().next();
    }
    (s.item(), x.grad_tensor().to_vec(), names)
}

fn main() {
    let (y, dw) = static_result();
    println!(
        "static: model(0.7, 2) = {y:.6}, d/dw = {dw:.6} (= 2 e^1.4 + 2 = {:.6})",
        2.0 * 1.4f64.exp() + 2.0
    );
    let (s, g, names) = tape_result();
    println!("tape: sum(MyExp(MyRelu([-1, 0.5, 2]))) = {s:.6}");
    println!("tape: x.grad = {g:?} (0 where x < 0, e^x elsewhere)");
    println!("tape: grad_fn chain: {}", names.join(" -> "));
}
