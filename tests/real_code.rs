//! The ports of `benches/common/ports.rs` (Rosenbrock, ADBench/GradBench GMM, the
//! GradBench LSTM) at small sizes: each `_grad` against central finite differences
//! and against its `#[differentiable(tape)]` twin, the hand-written Rosenbrock
//! gradients against `rosenbrock_grad`, and the objectives' values against direct
//! formulas, so that the ports compute what the evals define.

#[path = "../benches/common/ports.rs"]
mod ports;

use adjoint::check::{gradcheck, Tolerance};
use ports::{Gmm, Lstm};

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

/// Equal up to rounding: the two routes sum in different orders.
#[track_caller]
fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-10 * (1.0 + x.abs().max(y.abs())),
            "entry {i}: {x} vs {y}"
        );
    }
}

#[track_caller]
fn assert_near(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{a} vs {b}");
}

// ---- Rosenbrock ----

#[test]
fn rosenbrock_grad_matches_differences_and_tape() {
    let x = ports::normal(7, 11, 1.0);
    let (y, g) = ports::rosenbrock_grad(&x);
    assert_eq!(y, ports::rosenbrock(&x));
    gradcheck(
        ports::rosenbrock,
        |x| ports::rosenbrock_grad(x).1,
        &x,
        tol(),
    )
    .unwrap();
    let (yt, gt) = ports::rosenbrock_tape_grad(&x);
    assert_near(yt, y, 1e-14);
    assert_close(&g, &gt);
}

#[test]
fn rosenbrock_windows_grad_matches_differences_and_tape() {
    let x = ports::normal(7, 12, 1.0);
    let (y, g) = ports::rosenbrock_windows_grad(&x);
    assert_near(y, ports::rosenbrock(&x), 1e-14);
    gradcheck(
        ports::rosenbrock_windows,
        |x| ports::rosenbrock_windows_grad(x).1,
        &x,
        tol(),
    )
    .unwrap();
    assert_close(&g, &ports::rosenbrock_windows_tape_grad(&x).1);
}

#[test]
fn hand_written_rosenbrock_gradients_match_the_generated_one() {
    for n in [2, 3, 8] {
        let x = ports::normal(n, 13 + n as u64, 1.0);
        let (y, g) = ports::rosenbrock_grad(&x);
        // Garbage in `g` first: gather must overwrite, accumulate must clear.
        let mut gather = vec![f64::NAN; n];
        let mut accumulate = vec![f64::NAN; n];
        assert_near(ports::rosenbrock_grad_gather(&x, &mut gather), y, 1e-14);
        assert_near(
            ports::rosenbrock_grad_accumulate(&x, &mut accumulate),
            y,
            1e-14,
        );
        assert_close(&gather, &g);
        assert_close(&accumulate, &g);
    }
}

// ---- GMM ----

fn gmm_at(g: &Gmm, p: &[f64]) -> f64 {
    let (alphas, means, icf) = g.split(p);
    ports::gmm_objective(g.d, g.k, g.n, alphas, means, icf, &g.x, g.gamma, g.m)
}

fn gmm_grad_at(g: &Gmm, p: &[f64]) -> (f64, Vec<f64>) {
    let (alphas, means, icf) = g.split(p);
    let (y, (da, dm, di)) =
        ports::gmm_objective_grad(g.d, g.k, g.n, alphas, means, icf, &g.x, g.gamma, g.m);
    (y, [da, dm, di].concat())
}

fn gmm_tape_grad_at(g: &Gmm, p: &[f64]) -> (f64, Vec<f64>) {
    let (alphas, means, icf) = g.split(p);
    let (y, (da, dm, di)) =
        ports::gmm_objective_tape_grad(g.d, g.k, g.n, alphas, means, icf, &g.x, g.gamma, g.m);
    (y, [da, dm, di].concat())
}

#[test]
fn log_gamma_matches_known_values() {
    let sqrt_pi_ln = 0.5 * std::f64::consts::PI.ln();
    assert_near(ports::log_gamma(0.5), sqrt_pi_ln, 1e-14);
    assert_near(ports::log_gamma(1.0), 0.0, 1e-14);
    assert_near(ports::log_gamma(5.0), 24f64.ln(), 1e-14);
    // Γ(10.5) = 19!! / 2¹⁰ √π
    let double_factorial: f64 = (1..=19).step_by(2).map(|i| i as f64).product();
    assert_near(
        ports::log_gamma(10.5),
        double_factorial.ln() - 10.0 * 2f64.ln() + sqrt_pi_ln,
        1e-13,
    );
    // Γ₁(a) = Γ(a); Γ₂(a) = √π Γ(a) Γ(a - ½).
    assert_near(Gmm::log_gamma_distrib(7, 1), ports::log_gamma(3.5), 1e-14);
    assert_near(
        Gmm::log_gamma_distrib(7, 2),
        sqrt_pi_ln + ports::log_gamma(3.5) + ports::log_gamma(3.0),
        1e-14,
    );
}

/// One component in two dimensions: the objective is the log density of the points
/// under N(μ, P⁻¹) with P = QᵀQ, plus the log Wishart density of P with V = I/γ² and
/// n = d + m + 1 degrees of freedom, written out with the matrices.
#[test]
fn gmm_objective_is_the_log_posterior() {
    let mut g = Gmm::new(2, 1, 3, 2, 21);
    g.gamma = 0.7;
    let (q0, q1, l) = (g.icf[0], g.icf[1], g.icf[2]);
    // Q = [[e^q0, 0], [l, e^q1]], P = QᵀQ.
    let q = [[q0.exp(), 0.0], [l, q1.exp()]];
    let mut p = [[0.0; 2]; 2];
    for (i, row) in p.iter_mut().enumerate() {
        for (j, pij) in row.iter_mut().enumerate() {
            *pij = q[0][i] * q[0][j] + q[1][i] * q[1][j];
        }
    }
    let det_p = p[0][0] * p[1][1] - p[0][1] * p[1][0];
    let mut likelihood = 0.0;
    for i in 0..g.n {
        let c = [g.x[2 * i] - g.means[0], g.x[2 * i + 1] - g.means[1]];
        let quad =
            c[0] * (p[0][0] * c[0] + p[0][1] * c[1]) + c[1] * (p[1][0] * c[0] + p[1][1] * c[1]);
        likelihood += -(2.0 * std::f64::consts::PI).ln() + 0.5 * det_p.ln() - 0.5 * quad;
    }
    let (d, nw) = (2.0, (2 + g.m + 1) as f64);
    let prior = 0.5 * (nw - d - 1.0) * det_p.ln()
        - 0.5 * g.gamma * g.gamma * (p[0][0] + p[1][1])
        - 0.5 * nw * d * 2f64.ln()
        + nw * d * g.gamma.ln()
        - Gmm::log_gamma_distrib(2 + g.m + 1, 2);
    assert_near(gmm_at(&g, &g.params()), likelihood + prior, 1e-12);
}

#[test]
fn gmm_grad_matches_differences_and_tape() {
    let g = Gmm::new(3, 4, 5, 2, 31);
    let p = g.params();
    let (y, grad) = gmm_grad_at(&g, &p);
    assert_near(y, gmm_at(&g, &p), 1e-13);
    gradcheck(|p| gmm_at(&g, p), |p| gmm_grad_at(&g, p).1, &p, tol()).unwrap();
    let (yt, gt) = gmm_tape_grad_at(&g, &p);
    assert_near(yt, y, 1e-13);
    assert_close(&grad, &gt);
}

// ---- LSTM ----

fn lstm_at(s: &Lstm, p: &[f64]) -> f64 {
    let (main, extra) = p.split_at(s.main_params.len());
    ports::lstm_objective(s.l, s.c, s.b, main, extra, &s.state, &s.sequence)
}

fn lstm_grad_at(s: &Lstm, p: &[f64]) -> (f64, Vec<f64>) {
    let (main, extra) = p.split_at(s.main_params.len());
    let (y, (dm, de)) =
        ports::lstm_objective_grad(s.l, s.c, s.b, main, extra, &s.state, &s.sequence);
    (y, [dm, de].concat())
}

fn lstm_tape_grad_at(s: &Lstm, p: &[f64]) -> (f64, Vec<f64>) {
    let (main, extra) = p.split_at(s.main_params.len());
    let (y, (dm, de)) =
        ports::lstm_objective_tape_grad(s.l, s.c, s.b, main, extra, &s.state, &s.sequence);
    (y, [dm, de].concat())
}

/// One layer of one cell, one step: the loss written out gate by gate.
#[test]
fn lstm_objective_is_the_eval_loss() {
    let s = Lstm::new(1, 2, 1, 41);
    let (w, e, st, seq) = (&s.main_params, &s.extra_params, &s.state, &s.sequence);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let input = seq[0] * e[0];
    let forget = sig(input * w[0] + w[4]);
    let ingate = sig(st[0] * w[1] + w[5]);
    let outgate = sig(input * w[2] + w[6]);
    let change = (st[0] * w[3] + w[7]).tanh();
    let cell = st[1] * forget + ingate * change;
    let hidden = outgate * cell.tanh();
    let ypred = hidden * e[1] + e[2];
    let lse = (ypred.exp() + 2.0).ln();
    let want = -(seq[1] * (ypred - lse));
    assert_near(lstm_at(&s, &s.params()), want, 1e-14);
}

#[test]
fn lstm_grad_matches_differences_and_tape() {
    let s = Lstm::new(2, 4, 3, 51);
    let p = s.params();
    let (y, grad) = lstm_grad_at(&s, &p);
    assert_near(y, lstm_at(&s, &p), 1e-13);
    gradcheck(|p| lstm_at(&s, p), |p| lstm_grad_at(&s, p).1, &p, tol()).unwrap();
    let (yt, gt) = lstm_tape_grad_at(&s, &p);
    assert_near(yt, y, 1e-13);
    assert_close(&grad, &gt);
}
