//! `gmm`: the log posterior of a Gaussian mixture with a Wishart prior on the
//! precision matrices (ADBench's objective, as GradBench corrects it).
//! `objective` is its value and `jacobian` its gradient with respect to
//! `alpha`, `mu`, `q` and `l`, nested as the input nests them.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)] // the C++ style

use adjoint::prelude::*;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    /// `[n][d]`.
    pub x: Vec<Vec<f64>>,
    pub m: usize,
    pub gamma: f64,
    /// `[k]`.
    pub alpha: Vec<f64>,
    /// `[k][d]`.
    pub mu: Vec<Vec<f64>>,
    /// `[k][d]`: the log-diagonals of the factors Q.
    pub q: Vec<Vec<f64>>,
    /// `[k][d (d - 1) / 2]`: the strictly lower triangles of Q, column by column.
    pub l: Vec<Vec<f64>>,
    #[serde(flatten)]
    pub runs: Runs,
}

/// Σ vᵢ².
#[differentiable(static)]
pub fn sqnorm(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

/// ln Σ exp(vᵢ), with the maximum taken out first.
#[differentiable(static)]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut mx = v[0];
    for i in 1..v.len() {
        mx = mx.max(v[i]);
    }
    let mut semx = 0.0;
    for i in 0..v.len() {
        semx += (v[i] - mx).exp();
    }
    semx.ln() + mx
}

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, 9 terms; about 15 digits).
pub fn log_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - log_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ln Γ_p(a), the multivariate gamma function:
/// `p (p - 1) / 4 ln π + Σⱼ₌₁..ₚ ln Γ(a + (1 - j) / 2)`.
pub fn log_gamma_distrib(a: f64, p: usize) -> f64 {
    let mut out = 0.25 * (p * (p - 1)) as f64 * std::f64::consts::PI.ln();
    for j in 1..=p {
        out += log_gamma(a + 0.5 * (1.0 - j as f64));
    }
    out
}

/// The log posterior: `Σᵢ lse_k(αₖ + Σⱼ qₖⱼ - ½‖Qₖ(xᵢ - μₖ)‖²) - n lse(α)
/// - n d/2 ln 2π` plus the log Wishart prior
/// `k (n' d ln(γ/√2) - ln Γ_d(n'/2)) - Σₖ (γ²/2 ‖Qₖ‖²_F - m Σⱼ qₖⱼ)`, n' = d + m + 1.
/// `mu`, `q`, `l` and `x` are row-major.
#[differentiable(static, wrt(alpha, mu, q, l))]
pub fn gmm_objective(
    d: usize,
    k: usize,
    n: usize,
    alpha: &[f64],
    mu: &[f64],
    q: &[f64],
    l: &[f64],
    x: &[f64],
    gamma: f64,
    m: usize,
) -> f64 {
    let l_sz = d * (d - 1) / 2;
    let mut qdiags = vec![0.0; d * k];
    let mut sum_qs = vec![0.0; k];
    for ik in 0..k {
        for id in 0..d {
            qdiags[ik * d + id] = q[ik * d + id].exp();
            sum_qs[ik] += q[ik * d + id];
        }
    }

    let mut xcentered = vec![0.0; d];
    let mut qxcentered = vec![0.0; d];
    let mut main_term = vec![0.0; k];
    let mut slse = 0.0;
    for ix in 0..n {
        for ik in 0..k {
            for id in 0..d {
                xcentered[id] = x[ix * d + id] - mu[ik * d + id];
            }
            // Q (x - μ): the diagonal, then the strictly lower triangle.
            for id in 0..d {
                qxcentered[id] = qdiags[ik * d + id] * xcentered[id];
            }
            let mut li = ik * l_sz;
            for i in 0..d {
                for j in i + 1..d {
                    qxcentered[j] += l[li] * xcentered[i];
                    li += 1;
                }
            }
            main_term[ik] = alpha[ik] + sum_qs[ik] - 0.5 * sqnorm(&qxcentered);
        }
        slse += logsumexp(&main_term);
    }

    let constant = -(n as f64) * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
    let lse_alpha = logsumexp(alpha);

    // The log Wishart prior.
    let n_w = d + m + 1;
    let c =
        (n_w * d) as f64 * (gamma.ln() - 0.5 * 2f64.ln()) - log_gamma_distrib(0.5 * n_w as f64, d);
    let mut prior = 0.0;
    for ik in 0..k {
        let frobenius =
            sqnorm(&qdiags[ik * d..(ik + 1) * d]) + sqnorm(&l[ik * l_sz..(ik + 1) * l_sz]);
        prior += 0.5 * gamma * gamma * frobenius - m as f64 * sum_qs[ik];
    }

    constant + slse - n as f64 * lse_alpha - prior + k as f64 * c
}

/// The input's arrays, flattened row-major for [`gmm_objective`].
pub struct Flat {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    pub alpha: Vec<f64>,
    pub mu: Vec<f64>,
    pub q: Vec<f64>,
    pub l: Vec<f64>,
    pub x: Vec<f64>,
    pub gamma: f64,
    pub m: usize,
}

impl Flat {
    /// Checks `input`'s lengths against `d`, `k` and `n` and flattens it.
    pub fn new(input: &Input) -> Result<Flat, String> {
        let (d, k, n) = (input.d, input.k, input.n);
        if d == 0 || k == 0 {
            return Err("`gmm` needs `d` and `k` of at least 1".into());
        }
        let flat = |name: &str, rows: &[Vec<f64>], len: usize, width: usize| {
            if rows.len() != len || rows.iter().any(|r| r.len() != width) {
                return Err(format!(
                    "`gmm` input: `{name}` must be {len} rows of {width}"
                ));
            }
            Ok(rows.concat())
        };
        if input.alpha.len() != k {
            return Err(format!("`gmm` input: `alpha` must have {k} elements"));
        }
        Ok(Flat {
            d,
            k,
            n,
            alpha: input.alpha.clone(),
            mu: flat("mu", &input.mu, k, d)?,
            q: flat("q", &input.q, k, d)?,
            l: flat("l", &input.l, k, d * (d - 1) / 2)?,
            x: flat("x", &input.x, n, d)?,
            gamma: input.gamma,
            m: input.m,
        })
    }

    pub fn objective(&self) -> f64 {
        gmm_objective(
            self.d,
            self.k,
            self.n,
            &self.alpha,
            &self.mu,
            &self.q,
            &self.l,
            &self.x,
            self.gamma,
            self.m,
        )
    }

    pub fn jacobian(&self) -> Jacobian {
        let (_, (alpha, mu, q, l)) = gmm_objective_grad(
            self.d,
            self.k,
            self.n,
            &self.alpha,
            &self.mu,
            &self.q,
            &self.l,
            &self.x,
            self.gamma,
            self.m,
        );
        Jacobian {
            alpha,
            mu: Rows::new(mu, self.k),
            q: Rows::new(q, self.k),
            l: Rows::new(l, self.k),
        }
    }
}

/// The gradient, in the input's nesting.
#[derive(Serialize)]
pub struct Jacobian {
    pub alpha: Vec<f64>,
    pub mu: Rows,
    pub q: Rows,
    pub l: Rows,
}

/// A row-major matrix, written as an array of rows. The gradient stays flat
/// while timed; only the output is nested.
pub struct Rows {
    pub flat: Vec<f64>,
    pub rows: usize,
}

impl Rows {
    fn new(flat: Vec<f64>, rows: usize) -> Rows {
        Rows { flat, rows }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        let width = self.flat.len() / self.rows;
        &self.flat[i * width..(i + 1) * width]
    }
}

impl Serialize for Rows {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Not `chunks`: `l` has rows of width 0 when d = 1.
        serializer.collect_seq((0..self.rows).map(|i| self.row(i)))
    }
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let input: Input = input("gmm", value)?;
    let flat = Flat::new(&input)?;
    match function {
        "objective" => timed(input.runs, || flat.objective()),
        "jacobian" => timed(input.runs, || flat.jacobian()),
        _ => unknown("gmm", function),
    }
}
