//! `particle`: a unit charge starting at (0, 8) with velocity (0.75, 0), pushed
//! by the field of two fixed unit charges at (10, 10 − w) and (10, 0), hits the
//! x axis at some x₀; the argmin of x₀² in w by gradient descent ([`gd`]).
//! Euler steps of the trajectory need the potential's gradient in the position,
//! and the descent the gradient of the whole in w: nested AD, by reverse (r) or
//! forward (f) mode for each, the outer mode first in the function's name.
//!
//! [`gd`]: super::gd

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::gd::argmin;
use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

/// The functions: the outer mode, then the inner.
pub const VARIANTS: [&str; 4] = ["rr", "rf", "fr", "ff"];

#[derive(Deserialize)]
pub struct Input {
    pub w: f64,
    #[serde(flatten)]
    pub runs: Runs,
}

/// The potential at (x0, x1): the sum of the inverse distances to the charges.
#[differentiable(static, order = 2)]
pub fn potential(x0: f64, x1: f64, w: f64) -> f64 {
    let d1 = ((x0 - 10.0).powi(2) + (x1 - (10.0 - w)).powi(2)).sqrt();
    let d2 = ((x0 - 10.0).powi(2) + x1.powi(2)).sqrt();
    1.0 / d1 + 1.0 / d2
}

/// x₀(t_f)², by Euler steps of 0.1 until the particle crosses the x axis, the
/// crossing interpolated linearly within the last step; the acceleration (minus
/// the potential's gradient) by reverse mode.
#[differentiable(static)]
pub fn euler_r(w: f64) -> f64 {
    let (mut x0, mut x1) = (0.0, 8.0);
    let (mut v0, mut v1) = (0.75, 0.0);
    let dt = 0.1;
    loop {
        let (_, (p0, p1, _)) = potential_grad(x0, x1, w);
        x0 += dt * v0;
        x1 += dt * v1;
        if x1 <= 0.0 {
            let xf = x0 - x1 / v1 * v0;
            return xf * xf;
        }
        v0 -= dt * p0;
        v1 -= dt * p1;
    }
}

/// [`euler_r`] with the potential's gradient by two forward passes.
#[differentiable(static)]
pub fn euler_f(w: f64) -> f64 {
    let (mut x0, mut x1) = (0.0, 8.0);
    let (mut v0, mut v1) = (0.75, 0.0);
    let dt = 0.1;
    loop {
        let (_, p0) = potential_jvp(x0, x1, w, 1.0, 0.0, 0.0);
        let (_, p1) = potential_jvp(x0, x1, w, 0.0, 1.0, 0.0);
        x0 += dt * v0;
        x1 += dt * v1;
        if x1 <= 0.0 {
            let xf = x0 - x1 / v1 * v0;
            return xf * xf;
        }
        v0 -= dt * p0;
        v1 -= dt * p1;
    }
}

/// The w that descent from `w` stops at, in the variant `function` names.
pub fn solve(function: &str, w: f64) -> Option<f64> {
    let [w] = match function {
        "rr" => argmin(|w| euler_r(w[0]), |w| [euler_r_grad(w[0]).1], [w]),
        "rf" => argmin(|w| euler_f(w[0]), |w| [euler_f_grad(w[0]).1], [w]),
        "fr" => argmin(|w| euler_r(w[0]), |w| [euler_r_jvp(w[0], 1.0).1], [w]),
        "ff" => argmin(|w| euler_f(w[0]), |w| [euler_f_jvp(w[0], 1.0).1], [w]),
        _ => return None,
    };
    Some(w)
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { w, runs } = input("particle", value)?;
    if !VARIANTS.contains(&function) {
        return unknown("particle", function);
    }
    timed(runs, || solve(function, w))
}
