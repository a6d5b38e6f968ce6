#![allow(clippy::needless_range_loop)] // the reference computations index as the C++ does
mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::gmm::{
    gmm_objective, gmm_objective_grad, log_gamma, log_gamma_distrib,
};
use common::{assert_close, fd_gradient, uniform};
use serde_json::{json, Value};

/// A small problem: the parameters (alpha, mu, q, l concatenated) and the data.
struct Problem {
    d: usize,
    k: usize,
    n: usize,
    params: Vec<f64>,
    x: Vec<f64>,
    gamma: f64,
    m: usize,
}

impl Problem {
    fn new(d: usize, k: usize, n: usize, gamma: f64, m: usize, seed: u64) -> Problem {
        let len = k + 2 * k * d + k * d * (d - 1) / 2;
        Problem {
            d,
            k,
            n,
            params: uniform(seed, len),
            x: uniform(seed + 1, n * d).iter().map(|v| 2.0 * v).collect(),
            gamma,
            m,
        }
    }

    fn split<'a>(&self, p: &'a [f64]) -> [&'a [f64]; 4] {
        let (alpha, rest) = p.split_at(self.k);
        let (mu, rest) = rest.split_at(self.k * self.d);
        let (q, l) = rest.split_at(self.k * self.d);
        [alpha, mu, q, l]
    }

    fn objective(&self, p: &[f64]) -> f64 {
        let [alpha, mu, q, l] = self.split(p);
        gmm_objective(
            self.d, self.k, self.n, alpha, mu, q, l, &self.x, self.gamma, self.m,
        )
    }

    fn grad(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let [alpha, mu, q, l] = self.split(p);
        let (y, (da, dmu, dq, dl)) = gmm_objective_grad(
            self.d, self.k, self.n, alpha, mu, q, l, &self.x, self.gamma, self.m,
        );
        (y, [da, dmu, dq, dl].concat())
    }

    fn json(&self) -> Value {
        let [alpha, mu, q, l] = self.split(&self.params);
        let rows = |v: &[f64], n: usize| -> Vec<Vec<f64>> {
            let w = v.len() / n;
            (0..n).map(|i| v[i * w..(i + 1) * w].to_vec()).collect()
        };
        json!({
            "d": self.d, "k": self.k, "n": self.n,
            "x": rows(&self.x, self.n), "m": self.m, "gamma": self.gamma,
            "alpha": alpha, "mu": rows(mu, self.k), "q": rows(q, self.k), "l": rows(l, self.k),
            "min_runs": 2, "min_seconds": 0.0,
        })
    }
}

#[test]
fn gradient_matches_finite_differences() {
    // m > 0 and γ ≠ 1 so that every term of the prior counts.
    for (d, k, n) in [(3, 2, 5), (1, 3, 4), (4, 3, 2)] {
        let p = Problem::new(d, k, n, 1.3, 2, 10 * d as u64 + k as u64);
        let (y, grad) = p.grad(&p.params);
        assert_eq!(y, p.objective(&p.params));
        assert_close(&grad, &fd_gradient(|v| p.objective(v), &p.params), 1e-6);
    }
}

/// ln det of a small matrix, by Gaussian elimination with partial pivoting.
fn ln_det(mut a: Vec<Vec<f64>>) -> f64 {
    let d = a.len();
    let mut out = 0.0;
    for c in 0..d {
        let p = (c..d)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap();
        a.swap(c, p);
        out += a[c][c].abs().ln();
        for r in c + 1..d {
            let f = a[r][c] / a[c][c];
            for j in c..d {
                a[r][j] -= f * a[c][j];
            }
        }
    }
    out
}

/// The definition, without the README's simplifications: each Σₖ⁻¹ = QₖᵀQₖ
/// built as a matrix, Gaussian log densities through its determinant and
/// quadratic form, and the Wishart log density through det, trace and Γ_d.
fn log_posterior(p: &Problem) -> f64 {
    let (d, k) = (p.d, p.k);
    let [alpha, mu, q, l] = p.split(&p.params);
    let l_sz = d * (d - 1) / 2;
    let precision: Vec<Vec<Vec<f64>>> = (0..k)
        .map(|c| {
            let mut qm = vec![vec![0.0; d]; d];
            let mut ii = 0;
            for j in 0..d {
                qm[j][j] = q[c * d + j].exp();
                for i in j + 1..d {
                    qm[i][j] = l[c * l_sz + ii];
                    ii += 1;
                }
            }
            (0..d)
                .map(|r| {
                    (0..d)
                        .map(|s| (0..d).map(|t| qm[t][r] * qm[t][s]).sum())
                        .collect()
                })
                .collect()
        })
        .collect();
    let lse = |v: &[f64]| {
        let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        mx + v.iter().map(|u| (u - mx).exp()).sum::<f64>().ln()
    };
    let ln_phi: Vec<f64> = alpha.iter().map(|a| a - lse(alpha)).collect();
    let two_pi = 2.0 * std::f64::consts::PI;
    let mut likelihood = 0.0;
    for i in 0..p.n {
        let terms: Vec<f64> = (0..k)
            .map(|c| {
                let diff: Vec<f64> = (0..d).map(|j| p.x[i * d + j] - mu[c * d + j]).collect();
                let quad: f64 = (0..d)
                    .map(|r| {
                        (0..d)
                            .map(|s| diff[r] * precision[c][r][s] * diff[s])
                            .sum::<f64>()
                    })
                    .sum();
                ln_phi[c] - 0.5 * quad - 0.5 * d as f64 * two_pi.ln()
                    + 0.5 * ln_det(precision[c].clone())
            })
            .collect();
        likelihood += lse(&terms);
    }
    // Wishart W_d(V = I/γ², n') at X = Σₖ⁻¹.
    let n_w = (d + p.m + 1) as f64;
    let ln_multigamma = 0.25 * (d * (d - 1)) as f64 * std::f64::consts::PI.ln()
        + (1..=d)
            .map(|j| log_gamma(0.5 * n_w + 0.5 * (1.0 - j as f64)))
            .sum::<f64>();
    let mut prior = 0.0;
    for x in &precision {
        let trace: f64 = (0..d).map(|j| x[j][j]).sum();
        prior += 0.5 * (n_w - d as f64 - 1.0) * ln_det(x.clone())
            - 0.5 * p.gamma * p.gamma * trace
            - 0.5 * n_w * d as f64 * 2f64.ln()
            - 0.5 * n_w * (-2.0 * d as f64 * p.gamma.ln())
            - ln_multigamma;
    }
    likelihood + prior
}

#[test]
fn objective_is_the_log_posterior() {
    for (d, k, n, gamma, m) in [(3, 2, 5, 1.3, 2), (1, 2, 3, 1.0, 0), (4, 3, 6, 0.7, 1)] {
        let p = Problem::new(d, k, n, gamma, m, 7 + d as u64);
        let want = log_posterior(&p);
        let got = p.objective(&p.params);
        assert!(
            (got - want).abs() <= 1e-10 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}

#[test]
fn log_gamma_matches_known_values() {
    let ln_sqrt_pi = 0.5 * std::f64::consts::PI.ln();
    assert!((log_gamma(0.5) - ln_sqrt_pi).abs() < 1e-14);
    assert!(log_gamma(1.0).abs() < 1e-14);
    assert!((log_gamma(5.0) - 24f64.ln()).abs() < 1e-14);
    // Γ(33) = 32!, the size of the d = 64 default input.
    let fact: f64 = (1..=32).map(|i| (i as f64).ln()).sum();
    assert!((log_gamma(33.0) - fact).abs() < 1e-12 * fact);
    // Γ₂(a) = √π Γ(a) Γ(a - ½).
    let want = ln_sqrt_pi + log_gamma(3.5) + log_gamma(3.0);
    assert!((log_gamma_distrib(3.5, 2) - want).abs() < 1e-14);
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let p = Problem::new(3, 2, 4, 1.0, 0, 3);
    let objective = evaluate("gmm", "objective", p.json()).unwrap();
    assert_eq!(objective.output.as_f64(), Some(p.objective(&p.params)));
    assert_eq!(objective.timings.len(), 2);

    let jacobian = evaluate("gmm", "jacobian", p.json()).unwrap();
    let out = jacobian.output.as_object().unwrap();
    let mut keys: Vec<&str> = out.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["alpha", "l", "mu", "q"]);
    let flat = |name: &str, width: usize| -> Vec<f64> {
        let rows = out[name].as_array().unwrap();
        assert_eq!(rows.len(), p.k, "`{name}` rows");
        rows.iter()
            .flat_map(|r| {
                let r = r.as_array().unwrap();
                assert_eq!(r.len(), width, "`{name}` width");
                r.iter().map(|v| v.as_f64().unwrap())
            })
            .collect()
    };
    let alpha: Vec<f64> = out["alpha"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(alpha.len(), p.k);
    let got = [alpha, flat("mu", p.d), flat("q", p.d), flat("l", 3)].concat();
    assert_eq!(got, p.grad(&p.params).1);
}

#[test]
fn evaluate_takes_d_one_and_rejects_bad_shapes() {
    // d = 1: `l` is k empty rows, in and out.
    let p = Problem::new(1, 2, 3, 1.0, 0, 5);
    let out = evaluate("gmm", "jacobian", p.json()).unwrap().output;
    assert_eq!(out["l"], json!([[], []]));

    let mut bad = Problem::new(2, 2, 3, 1.0, 0, 5).json();
    bad["mu"][1] = json!([0.0]);
    let err = evaluate("gmm", "objective", bad).err().unwrap();
    assert!(err.contains("`mu` must be 2 rows of 2"), "{err}");
    assert!(evaluate("gmm", "hessian", p.json()).is_err());
}
