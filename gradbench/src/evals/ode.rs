//! `ode`: cmpad's `an_ode`, y₀′ = x₀ and yᵢ′ = xᵢ yᵢ₋₁ for i > 0 from y(0) = 0,
//! solved on [0, 2] by s steps of the classical fourth-order Runge-Kutta
//! scheme. `primal` is the final y, `gradient` the gradient of its last
//! element in x.

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    pub x: Vec<f64>,
    pub s: usize,
    #[serde(flatten)]
    pub runs: Runs,
}

/// y(2) after `s` RK4 steps. Each stage's slope is written out in place:
/// kᵢ = xᵢ (yᵢ₋₁ + c h k′ᵢ₋₁), with k′ the previous stage.
#[differentiable(static)]
pub fn ode(x: &[f64], s: usize) -> Vec<f64> {
    let n = x.len();
    let h = 2.0 / s as f64;
    let mut y = vec![0.0; n];
    let mut k1 = vec![0.0; n];
    let mut k2 = vec![0.0; n];
    let mut k3 = vec![0.0; n];
    let mut k4 = vec![0.0; n];
    for _ in 0..s {
        k1[0] = x[0];
        for i in 1..n {
            k1[i] = x[i] * y[i - 1];
        }
        k2[0] = x[0];
        for i in 1..n {
            k2[i] = x[i] * (y[i - 1] + h * k1[i - 1] / 2.0);
        }
        k3[0] = x[0];
        for i in 1..n {
            k3[i] = x[i] * (y[i - 1] + h * k2[i - 1] / 2.0);
        }
        k4[0] = x[0];
        for i in 1..n {
            k4[i] = x[i] * (y[i - 1] + h * k3[i - 1]);
        }
        for i in 0..n {
            y[i] += h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]) / 6.0;
        }
    }
    y
}

/// The gradient of the last element of [`ode`] in x: one `_vjp` with the
/// unit seed on that element.
pub fn last_gradient(x: &[f64], s: usize) -> Vec<f64> {
    let mut seed = vec![0.0; x.len()];
    seed[x.len() - 1] = 1.0;
    ode_vjp(x, s, seed).1
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { x, s, runs } = input("ode", value)?;
    if x.is_empty() {
        return Err("`ode` needs at least one element in `x`".into());
    }
    match function {
        "primal" => timed(runs, || ode(&x, s)),
        "gradient" => timed(runs, || last_gradient(&x, s)),
        _ => unknown("ode", function),
    }
}
