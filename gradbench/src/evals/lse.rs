//! `lse`: LogSumExp, ln Σ exp(xᵢ), with the maximum taken out first so that
//! no exponential overflows. `primal` is its value and `gradient` its gradient
//! (the softmax of x).

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    pub x: Vec<f64>,
    #[serde(flatten)]
    pub runs: Runs,
}

/// a + ln Σ exp(xᵢ − a), with a = max x.
///
/// The value does not depend on a (it cancels), so a is detached: its exact
/// derivative, 1 − Σ softmax(x), is zero but for rounding, and without it the
/// gradient skips the reverse of the maximum (as `jax.nn.logsumexp` does).
#[differentiable(static)]
pub fn logsumexp(x: &[f64]) -> f64 {
    let mut a = x[0];
    for i in 1..x.len() {
        a = a.max(x[i]);
    }
    let a = a.detach();
    let mut sum = 0.0;
    for i in 0..x.len() {
        sum += (x[i] - a).exp();
    }
    a + sum.ln()
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { x, runs } = input("lse", value)?;
    if x.is_empty() {
        return Err("`lse` needs at least one element in `x`".into());
    }
    match function {
        "primal" => timed(runs, || logsumexp(&x)),
        "gradient" => timed(runs, || logsumexp_grad(&x).1),
        _ => unknown("lse", function),
    }
}
