//! `lstm`: ADBench's LSTM loss (diagonal weights), the mean cross-entropy of
//! each next character of `sequence` given the ones before. `objective` is its
//! value and `jacobian` its gradient with respect to `main_params`, then
//! `extra_params`, each flattened row-major.
#![allow(clippy::needless_range_loop)] // the C++ style

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    /// `[2 l][4 b]`: per layer, the weights of the forget, input, output and
    /// change gates, then their biases.
    pub main_params: Vec<Vec<f64>>,
    /// `[3][b]`: the input weights, the output weights, the output biases.
    pub extra_params: Vec<Vec<f64>>,
    /// `[2 l][b]`: per layer, the initial hidden state, then the initial cell.
    pub state: Vec<Vec<f64>>,
    /// `[c][b]`: the characters, one bit per entry.
    pub sequence: Vec<Vec<f64>>,
    #[serde(flatten)]
    pub runs: Runs,
}

/// 1 / (1 + e⁻ˣ).
#[differentiable(static)]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln(Σ exp(vᵢ) + 2): the eval's log-sum-exp, unstabilised as the eval has it.
#[differentiable(static)]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i].exp();
    }
    (sum + 2.0).ln()
}

/// The loss `-Σₜ Σᵢ yₜ₊₁,ᵢ (ŷₜ,ᵢ - lse(ŷₜ)) / ((c - 1) b)` of `l` layers of `b`
/// cells over `c` characters of `b` bits; all arrays row-major.
#[differentiable(static, wrt(main_params, extra_params))]
pub fn lstm_objective(
    l: usize,
    c: usize,
    b: usize,
    main_params: &[f64],
    extra_params: &[f64],
    state: &[f64],
    sequence: &[f64],
) -> f64 {
    let mut hidden = vec![0.0; l * b];
    let mut cell = vec![0.0; l * b];
    for i in 0..l {
        for j in 0..b {
            hidden[i * b + j] = state[2 * b * i + j];
            cell[i * b + j] = state[2 * b * i + b + j];
        }
    }
    let mut layer_input = vec![0.0; b];
    let mut ypred = vec![0.0; b];
    let mut total = 0.0;
    let mut count = 0;
    for t in 0..c - 1 {
        for j in 0..b {
            layer_input[j] = sequence[t * b + j] * extra_params[j];
        }
        for i in 0..l {
            // Layer i; its hidden state is the next layer's input.
            let w = 8 * b * i;
            for j in 0..b {
                let h = i * b + j;
                let forget =
                    sigmoid(layer_input[j] * main_params[w + j] + main_params[w + 4 * b + j]);
                let ingate =
                    sigmoid(hidden[h] * main_params[w + b + j] + main_params[w + 5 * b + j]);
                let outgate = sigmoid(
                    layer_input[j] * main_params[w + 2 * b + j] + main_params[w + 6 * b + j],
                );
                let change =
                    (hidden[h] * main_params[w + 3 * b + j] + main_params[w + 7 * b + j]).tanh();
                cell[h] = cell[h] * forget + ingate * change;
                hidden[h] = outgate * cell[h].tanh();
                layer_input[j] = hidden[h];
            }
        }
        for j in 0..b {
            ypred[j] = layer_input[j] * extra_params[b + j] + extra_params[2 * b + j];
        }
        let lse = logsumexp(&ypred);
        for j in 0..b {
            total += sequence[(t + 1) * b + j] * (ypred[j] - lse);
        }
        count += b;
    }
    -total / count as f64
}

/// The input's arrays, flattened row-major for [`lstm_objective`].
pub struct Flat {
    pub l: usize,
    pub c: usize,
    pub b: usize,
    pub main_params: Vec<f64>,
    pub extra_params: Vec<f64>,
    pub state: Vec<f64>,
    pub sequence: Vec<f64>,
}

impl Flat {
    /// Reads `l`, `b` and `c` off `input`'s shape, checks the rest against them
    /// and flattens it.
    pub fn new(input: &Input) -> Result<Flat, String> {
        let l = input.main_params.len() / 2;
        let b = input.main_params.first().map_or(0, |r| r.len() / 4);
        let c = input.sequence.len();
        if l == 0 || b == 0 || c < 2 {
            return Err("`lstm` needs a layer, a bit and two characters at least".into());
        }
        let flat = |name: &str, rows: &[Vec<f64>], len: usize, width: usize| {
            if rows.len() != len || rows.iter().any(|r| r.len() != width) {
                return Err(format!(
                    "`lstm` input: `{name}` must be {len} rows of {width}"
                ));
            }
            Ok(rows.concat())
        };
        Ok(Flat {
            l,
            c,
            b,
            main_params: flat("main_params", &input.main_params, 2 * l, 4 * b)?,
            extra_params: flat("extra_params", &input.extra_params, 3, b)?,
            state: flat("state", &input.state, 2 * l, b)?,
            sequence: flat("sequence", &input.sequence, c, b)?,
        })
    }

    pub fn objective(&self) -> f64 {
        lstm_objective(
            self.l,
            self.c,
            self.b,
            &self.main_params,
            &self.extra_params,
            &self.state,
            &self.sequence,
        )
    }

    /// ∂/∂main_params, then ∂/∂extra_params.
    pub fn jacobian(&self) -> Vec<f64> {
        let (_, (main, extra)) = lstm_objective_grad(
            self.l,
            self.c,
            self.b,
            &self.main_params,
            &self.extra_params,
            &self.state,
            &self.sequence,
        );
        [main, extra].concat()
    }
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let input: Input = input("lstm", value)?;
    let flat = Flat::new(&input)?;
    match function {
        "objective" => timed(input.runs, || flat.objective()),
        "jacobian" => timed(input.runs, || flat.jacobian()),
        _ => unknown("lstm", function),
    }
}
