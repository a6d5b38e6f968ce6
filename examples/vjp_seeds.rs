//! Vector-Jacobian products (tutorials 002 and 003): `backward(gradient)` in PyTorch,
//! `NAME_vjp(.., seed)` here (or `Var::backward_with(seed)` on the tape).
//!
//! For `y = f(x)` with a vector result, the seed `v` picks the scalar `<v, y>`, and
//! the VJP is its gradient `Jᵀ v`. Each line prints what the tutorial prints.
//!
//! Run it with `cargo run --example vjp_seeds`.

use adjoint::prelude::*;
use adjoint::tape::Tape;

/// `2 <x, x>`: a vector to a scalar; its gradient is `4 x`.
#[differentiable]
pub fn two_dot(x: &Tensor) -> f64 {
    x.dot(x) * 2.0
}

/// `y = 3 x^2`, elementwise: a vector to a vector with Jacobian `diag(6 x)`.
#[differentiable]
pub fn three_sq(x: &Tensor) -> Tensor {
    x.powi(2) * 3.0
}

/// `y = x^2` on a scalar.
#[differentiable]
pub fn sq(x: f64) -> f64 {
    x * x
}

/// `y = 8 x^2` as tutorial 003 builds it: `y = 2 x`, `z = 2 y y`.
#[differentiable]
pub fn eight_sq(x: &Tensor) -> Tensor {
    let y = x * 2.0;
    &y * &y * 2.0
}

/// `<v, y>` for `y = (3 x1^2, x1^2 + 2 x2^3, 10 x2)`: the VJP of a function with three
/// outputs is the gradient of this scalar with respect to `x1` and `x2`.
#[differentiable(wrt(x1, x2))]
pub fn weighted_outputs(x1: f64, x2: f64, v1: f64, v2: f64, v3: f64) -> f64 {
    let y1 = 3.0 * x1.powi(2);
    let y2 = x1.powi(2) + 2.0 * x2.powi(3);
    let y3 = 10.0 * x2;
    v1 * y1 + v2 * y2 + v3 * y3
}

/// Every result, labelled as the tutorials label them.
pub fn results() -> Vec<(&'static str, Vec<f64>)> {
    let mut out = Vec::new();
    let x = Tensor::arange(4);
    out.push((
        "y = 2 dot(x, x), x = [0, 1, 2, 3]: x.grad",
        two_dot_grad(&x).1.to_vec(),
    ));

    let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    let (_, g) = three_sq_vjp(&x, Tensor::from_vec(vec![1.0, 1.0], &[2]));
    out.push(("y = 3 x^2, x = [1, 2], seed [1, 1]: x.grad", g.to_vec()));
    let (_, g) = three_sq_vjp(&x, Tensor::from_vec(vec![1.0, 10.0], &[2]));
    out.push(("y = 3 x^2, x = [1, 2], seed [1, 10]: x.grad", g.to_vec()));

    out.push(("y = x^2, x = 1: x.grad", vec![sq_grad(1.0).1]));
    out.push((
        "y = x^2, x = 1, seed 100: x.grad",
        vec![sq_vjp(1.0, 100.0).1],
    ));

    // torch.stack([x**2] * 4).backward([1, 10, 100, 1000]) on the tape.
    let tape: Tape = Tape::new();
    let x1 = tape.var(1.0);
    let y = x1.powi(2);
    let stacked = tape.stack(&[y, y, y, y]);
    stacked.backward_with(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1000.0], &[4]));
    out.push((
        "stack([x^2] * 4), x = 1, seed [1, 10, 100, 1000]: x.grad",
        vec![x1.grad_scalar()],
    ));

    // The same sum, by accumulation: four backward passes through one graph.
    let tape: Tape = Tape::new();
    let x1 = tape.var(1.0);
    let y = x1.powi(2);
    let mut steps = Vec::new();
    for v in [1.0, 10.0, 100.0, 1000.0] {
        y.backward_with(v);
        steps.push(x1.grad_scalar());
    }
    out.push((
        "y = x^2, backward with 1, 10, 100, 1000 in turn: x.grad after each",
        steps,
    ));

    // The static macro: a VJP is linear in its seed, so the stacked seed adds up too.
    let stacked: f64 = [1.0, 10.0, 100.0, 1000.0]
        .iter()
        .map(|&v| sq_vjp(1.0, v).1)
        .sum();
    out.push((
        "the same with sq_vjp, summed over the seeds: x.grad",
        vec![stacked],
    ));

    // Vector input, scalar output: y = sum(x).
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    x.sum().backward();
    out.push(("y = sum(x), x = [1, 2]: x.grad", x.grad_tensor().to_vec()));
    x.zero_grad();
    x.sum().backward_with(100.0);
    out.push((
        "y = sum(x), x = [1, 2], seed 100: x.grad",
        x.grad_tensor().to_vec(),
    ));
    x.zero_grad();
    let s = x.sum();
    tape.stack(&[s, s, s, s])
        .backward_with(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1000.0], &[4]));
    out.push((
        "stack([sum(x)] * 4), seed [1, 10, 100, 1000]: x.grad",
        x.grad_tensor().to_vec(),
    ));
    x.zero_grad();
    let mut steps = Vec::new();
    for v in [1.0, 10.0, 100.0, 1000.0] {
        s.backward_with(v);
        steps.extend(x.grad_tensor().to_vec());
    }
    out.push((
        "y = sum(x), backward with 1, 10, 100, 1000 in turn: x.grad after each",
        steps,
    ));

    // Vector input, vector output, full Jacobian: y = (3 x1^2, x1^2 + 2 x2^3, 10 x2).
    let (_, (g1, g2)) = weighted_outputs_grad(1.0, 2.0, 1.0, 10.0, 100.0);
    out.push((
        "y = (3 x1^2, x1^2 + 2 x2^3, 10 x2), x = [1, 2], seed [1, 10, 100]: x.grad",
        vec![g1, g2],
    ));

    // Tutorial 003: a = 1, b = a + 2, c = a b.
    let tape: Tape = Tape::new();
    let a = tape.var(1.0);
    let c = a * (a + 2.0);
    c.backward();
    out.push(("c = a (a + 2), a = 1: a.grad", vec![a.grad_scalar()]));

    // Tutorial 003: f(x) = 8 x^2 at x = ones(3), seed [1, 2, 3], then the unit seed.
    let x = Tensor::ones(&[3]);
    let (_, g) = eight_sq_vjp(&x, Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    out.push((
        "f(x) = 8 x^2, x = ones(3), seed [1, 2, 3]: x.grad",
        g.to_vec(),
    ));
    let (_, g) = eight_sq_vjp(&x, Tensor::ones(&[3]));
    out.push((
        "f(x) = 8 x^2, x = ones(3), seed ones(3): x.grad",
        g.to_vec(),
    ));
    out
}

fn main() {
    for (what, values) in results() {
        println!("{what}: {values:?}");
    }
}
