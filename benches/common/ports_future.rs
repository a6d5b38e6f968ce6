//! The faithful line-by-line ports of the C++ helpers that do not compile today: the
//! helpers write their result through `&mut [f64]`, which neither path of
//! `#[differentiable]` takes ("`&mut` parameters" are rejected), and the objective calls
//! the plain `log_gamma_distrib` (the tape records any free call and wants its
//! `_vjp`, even with integer arguments only). Not included by any target yet; the
//! variants of `ports.rs` inline the helpers instead. Uses `ports.rs`'s `sqnorm`,
//! `logsumexp`, `sigmoid`, `lstm_logsumexp` and `log_gamma`.
// static after issue 11 (every function of this file)
#![allow(dead_code)]
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use adjoint::prelude::*;

/// ln Γ_p(a), the multivariate gamma function.
pub fn log_gamma_distrib(a: f64, p: usize) -> f64 {
    let mut out = 0.25 * (p * (p - 1)) as f64 * std::f64::consts::PI.ln();
    for j in 1..=p {
        out += log_gamma(a + 0.5 * (1.0 - j as f64));
    }
    out
}

/// out = x - y.
#[differentiable]
pub fn subtract(x: &[f64], y: &[f64], out: &mut [f64]) {
    for i in 0..x.len() {
        out[i] = x[i] - y[i];
    }
}

/// out = Q x, with Q's diagonal and strictly lower triangle (column by column).
#[differentiable]
pub fn qtimesx(qdiag: &[f64], ltri: &[f64], x: &[f64], out: &mut [f64]) {
    let d = x.len();
    for id in 0..d {
        out[id] = qdiag[id] * x[id];
    }
    let mut li = 0;
    for i in 0..d {
        for j in i + 1..d {
            out[j] += ltri[li] * x[i];
            li += 1;
        }
    }
}

/// The log Wishart prior of the GMM.
#[differentiable(wrt(sum_qs, qdiags, icf))]
pub fn log_wishart_prior(
    d: usize,
    k: usize,
    gamma: f64,
    m: usize,
    sum_qs: &[f64],
    qdiags: &[f64],
    icf: &[f64],
) -> f64 {
    let n = d + m + 1;
    let icf_sz = d * (d + 1) / 2;
    let c = (n * d) as f64 * (gamma.ln() - 0.5 * 2f64.ln()) - log_gamma_distrib(0.5 * n as f64, d);
    let mut out = 0.0;
    for ik in 0..k {
        let frobenius = sqnorm(&qdiags[ik * d..(ik + 1) * d])
            + sqnorm(&icf[ik * icf_sz + d..(ik + 1) * icf_sz]);
        out += 0.5 * gamma * gamma * frobenius - m as f64 * sum_qs[ik];
    }
    -out + k as f64 * c
}

/// The GMM log posterior, as ADBench's C++ writes it.
#[differentiable(wrt(alphas, means, icf))]
pub fn gmm_objective(
    d: usize,
    k: usize,
    n: usize,
    alphas: &[f64],
    means: &[f64],
    icf: &[f64],
    x: &[f64],
    gamma: f64,
    m: usize,
) -> f64 {
    let constant = -(n as f64) * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
    let icf_sz = d * (d + 1) / 2;
    let mut qdiags = vec![0.0; d * k];
    let mut sum_qs = vec![0.0; k];
    for ik in 0..k {
        for id in 0..d {
            qdiags[ik * d + id] = icf[ik * icf_sz + id].exp();
            sum_qs[ik] += icf[ik * icf_sz + id];
        }
    }
    let mut xcentered = vec![0.0; d];
    let mut qxcentered = vec![0.0; d];
    let mut main_term = vec![0.0; k];
    let mut slse = 0.0;
    for ix in 0..n {
        for ik in 0..k {
            subtract(
                &x[ix * d..(ix + 1) * d],
                &means[ik * d..(ik + 1) * d],
                &mut xcentered,
            );
            qtimesx(
                &qdiags[ik * d..(ik + 1) * d],
                &icf[ik * icf_sz + d..(ik + 1) * icf_sz],
                &xcentered,
                &mut qxcentered,
            );
            main_term[ik] = alphas[ik] + sum_qs[ik] - 0.5 * sqnorm(&qxcentered);
        }
        slse += logsumexp(&main_term);
    }
    let lse_alpha = logsumexp(alphas);
    constant + slse - n as f64 * lse_alpha
        + log_wishart_prior(d, k, gamma, m, &sum_qs, &qdiags, icf)
}

/// One LSTM layer's step: `params` is the layer's `[8 b]`, `input` its input.
#[differentiable(wrt(params, hidden, cell, input))]
pub fn lstm_model(params: &[f64], hidden: &mut [f64], cell: &mut [f64], input: &[f64]) {
    let b = hidden.len();
    for i in 0..b {
        let forget = sigmoid(input[i] * params[i] + params[4 * b + i]);
        let ingate = sigmoid(hidden[i] * params[b + i] + params[5 * b + i]);
        let outgate = sigmoid(input[i] * params[2 * b + i] + params[6 * b + i]);
        let change = (hidden[i] * params[3 * b + i] + params[7 * b + i]).tanh();
        cell[i] = cell[i] * forget + ingate * change;
        hidden[i] = outgate * cell[i].tanh();
    }
}

/// The prediction of one step through `l` layers; `state` is `[l][hidden, cell]`.
#[differentiable(wrt(main_params, extra_params, state, input))]
pub fn lstm_predict(
    l: usize,
    b: usize,
    main_params: &[f64],
    extra_params: &[f64],
    state: &mut [f64],
    input: &[f64],
    output: &mut [f64],
) {
    for i in 0..b {
        output[i] = input[i] * extra_params[i];
    }
    for i in 0..l {
        let (hidden, cell) = state[2 * b * i..2 * b * (i + 1)].split_at_mut(b);
        lstm_model(
            &main_params[8 * b * i..8 * b * (i + 1)],
            hidden,
            cell,
            &output.to_vec(),
        );
        output.copy_from_slice(hidden);
    }
    for i in 0..b {
        output[i] = output[i] * extra_params[b + i] + extra_params[2 * b + i];
    }
}

/// GradBench's LSTM loss.
#[differentiable(wrt(main_params, extra_params))]
pub fn lstm_objective(
    l: usize,
    c: usize,
    b: usize,
    main_params: &[f64],
    extra_params: &[f64],
    state: &[f64],
    sequence: &[f64],
) -> f64 {
    let mut state = state.to_vec();
    let mut ypred = vec![0.0; b];
    let mut ynorm = vec![0.0; b];
    let mut total = 0.0;
    let mut count = 0;
    for t in 0..c - 1 {
        lstm_predict(
            l,
            b,
            main_params,
            extra_params,
            &mut state,
            &sequence[t * b..(t + 1) * b],
            &mut ypred,
        );
        let lse = lstm_logsumexp(&ypred);
        for i in 0..b {
            ynorm[i] = ypred[i] - lse;
        }
        let ygold = &sequence[(t + 1) * b..(t + 2) * b];
        for i in 0..b {
            total += ygold[i] * ynorm[i];
        }
        count += b;
    }
    -total / count as f64
}
