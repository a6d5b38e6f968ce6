//! `saddle`: min over p ∈ ℝ² of max over q ∈ ℝ² of f(p, q) = (x₁² + y₁²) −
//! (x₂² + y₂²), with p = (x₁, y₁) and q = (x₂, y₂), both by gradient descent
//! ([`gd`]) from the same start s. The outer descent needs the gradient in p of
//! the inner maximum, itself found with gradients in q: nested AD, by reverse
//! (r) or forward (f) mode for each, the outer mode first in the function's
//! name. The output is p, then the q that maximises f(p, ·), found as inside
//! (by the inner mode).
//!
//! [`gd`]: super::gd

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::gd::{argmax, argmin};
use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

/// The functions: the outer mode, then the inner.
pub const VARIANTS: [&str; 4] = ["rr", "rf", "fr", "ff"];

#[derive(Deserialize)]
pub struct Input {
    pub start: [f64; 2],
    #[serde(flatten)]
    pub runs: Runs,
}

/// f(p, q).
#[differentiable(static, order = 2)]
pub fn objective(x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    (x1 * x1 + y1 * y1) - (x2 * x2 + y2 * y2)
}

/// max over q of f(p, q), by ascent from q = (s1, s2) with the rules of
/// [`gd::argmax`](super::gd::argmax), the gradient in q by reverse mode.
#[differentiable(static, wrt(x1, y1))]
pub fn max_r(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    // Descent on −f.
    let (mut x2, mut y2) = (s1, s2);
    let mut fq = -objective(x1, y1, x2, y2);
    let (_, (_, _, g1, g2)) = objective_grad(x1, y1, x2, y2);
    let (mut g1, mut g2) = (-g1, -g2);
    let mut kept = 0;
    let mut eta = 1e-5;
    loop {
        if (g1 * g1 + g2 * g2).sqrt() <= 1e-5 {
            break;
        }
        if kept == 10 {
            eta *= 2.0;
            kept = 0;
        } else {
            let (n1, n2) = (x2 - eta * g1, y2 - eta * g2);
            if ((n1 - x2).powi(2) + (n2 - y2).powi(2)).sqrt() <= 1e-5 {
                break;
            }
            let f_next = -objective(x1, y1, n1, n2);
            if f_next < fq {
                (x2, y2) = (n1, n2);
                fq = f_next;
                let (_, (_, _, h1, h2)) = objective_grad(x1, y1, x2, y2);
                (g1, g2) = (-h1, -h2);
                kept += 1;
            } else {
                eta /= 2.0;
                kept = 0;
            }
        }
    }
    objective(x1, y1, x2, y2)
}

/// [`max_r`] with the gradient in q by two forward passes.
#[differentiable(static, wrt(x1, y1))]
pub fn max_f(x1: f64, y1: f64, s1: f64, s2: f64) -> f64 {
    let (mut x2, mut y2) = (s1, s2);
    let mut fq = -objective(x1, y1, x2, y2);
    let (_, g1) = objective_jvp(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
    let (_, g2) = objective_jvp(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
    let (mut g1, mut g2) = (-g1, -g2);
    let mut kept = 0;
    let mut eta = 1e-5;
    loop {
        if (g1 * g1 + g2 * g2).sqrt() <= 1e-5 {
            break;
        }
        if kept == 10 {
            eta *= 2.0;
            kept = 0;
        } else {
            let (n1, n2) = (x2 - eta * g1, y2 - eta * g2);
            if ((n1 - x2).powi(2) + (n2 - y2).powi(2)).sqrt() <= 1e-5 {
                break;
            }
            let f_next = -objective(x1, y1, n1, n2);
            if f_next < fq {
                (x2, y2) = (n1, n2);
                fq = f_next;
                let (_, h1) = objective_jvp(x1, y1, x2, y2, 0.0, 0.0, 1.0, 0.0);
                let (_, h2) = objective_jvp(x1, y1, x2, y2, 0.0, 0.0, 0.0, 1.0);
                (g1, g2) = (-h1, -h2);
                kept += 1;
            } else {
                eta /= 2.0;
                kept = 0;
            }
        }
    }
    objective(x1, y1, x2, y2)
}

/// ∇_q f(p, q) by reverse mode.
fn grad_q_r(p: [f64; 2], q: &[f64; 2]) -> [f64; 2] {
    let (_, (_, _, g1, g2)) = objective_grad(p[0], p[1], q[0], q[1]);
    [g1, g2]
}

/// ∇_q f(p, q) by forward mode.
fn grad_q_f(p: [f64; 2], q: &[f64; 2]) -> [f64; 2] {
    let (_, g1) = objective_jvp(p[0], p[1], q[0], q[1], 0.0, 0.0, 1.0, 0.0);
    let (_, g2) = objective_jvp(p[0], p[1], q[0], q[1], 0.0, 0.0, 0.0, 1.0);
    [g1, g2]
}

/// The gradient in p of the inner maximum, by `outer` mode over `inner` mode.
pub fn outer_gradient(outer: char, inner: char, p: [f64; 2], s: [f64; 2]) -> [f64; 2] {
    let [x1, y1] = p;
    let [s1, s2] = s;
    match (outer, inner) {
        ('r', 'r') => {
            let (_, (g1, g2)) = max_r_grad(x1, y1, s1, s2);
            [g1, g2]
        }
        ('r', _) => {
            let (_, (g1, g2)) = max_f_grad(x1, y1, s1, s2);
            [g1, g2]
        }
        (_, 'r') => [
            max_r_jvp(x1, y1, s1, s2, 1.0, 0.0).1,
            max_r_jvp(x1, y1, s1, s2, 0.0, 1.0).1,
        ],
        _ => [
            max_f_jvp(x1, y1, s1, s2, 1.0, 0.0).1,
            max_f_jvp(x1, y1, s1, s2, 0.0, 1.0).1,
        ],
    }
}

/// p then q, in the variant `function` names (`rr`, `rf`, `fr` or `ff`).
pub fn solve(function: &str, s: [f64; 2]) -> Option<[f64; 4]> {
    let (outer, inner) = match function {
        "rr" | "rf" | "fr" | "ff" => {
            let mut c = function.chars();
            (c.next()?, c.next()?)
        }
        _ => return None,
    };
    let [s1, s2] = s;
    let inner_max = |p: &[f64; 2]| {
        if inner == 'r' {
            max_r(p[0], p[1], s1, s2)
        } else {
            max_f(p[0], p[1], s1, s2)
        }
    };
    let p = argmin(inner_max, |p| outer_gradient(outer, inner, *p, s), s);
    let f = |q: &[f64; 2]| objective(p[0], p[1], q[0], q[1]);
    let q = if inner == 'r' {
        argmax(f, |q| grad_q_r(p, q), s)
    } else {
        argmax(f, |q| grad_q_f(p, q), s)
    };
    Some([p[0], p[1], q[0], q[1]])
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { start, runs } = input("saddle", value)?;
    if !VARIANTS.contains(&function) {
        return unknown("saddle", function);
    }
    timed(runs, || solve(function, start))
}
