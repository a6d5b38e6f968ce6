//! `llsq`: the linear least-squares objective of cmpad,
//! ½ Σᵢ (sᵢ − Σⱼ xⱼ tᵢʲ)² over n points tᵢ = −1 + 2i/(n − 1) with sᵢ = sign tᵢ
//! (0 at 0). `primal` is its value, `gradient` its gradient in x.

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    pub x: Vec<f64>,
    pub n: usize,
    #[serde(flatten)]
    pub runs: Runs,
}

/// ½ Σᵢ (sᵢ − Σⱼ xⱼ tᵢʲ)², the powers of tᵢ kept as a running product.
#[differentiable(static)]
pub fn llsq(x: &[f64], n: usize) -> f64 {
    let mut sum = 0.0;
    for i in 0..n {
        let t = -1.0 + i as f64 * 2.0 / (n as f64 - 1.0);
        let s = if t > 0.0 {
            1.0
        } else if t < 0.0 {
            -1.0
        } else {
            0.0
        };
        let mut r = s;
        let mut power = 1.0;
        for &xj in x {
            r -= xj * power;
            power *= t;
        }
        sum += r * r;
    }
    sum / 2.0
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { x, n, runs } = input("llsq", value)?;
    match function {
        "primal" => timed(runs, || llsq(&x, n)),
        "gradient" => timed(runs, || llsq_grad(&x, n).1),
        _ => unknown("llsq", function),
    }
}
