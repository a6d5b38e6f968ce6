//! `ba`: bundle adjustment, as in ADBench. Each of the `p` observations sees
//! one point through one camera; its residuals are the weighted reprojection
//! error (2 rows) and the weight's deviation from 1 (1 row). `objective` gives
//! them all, `jacobian` their sparse Jacobian with respect to the cameras, the
//! points and the weights, in the compressed row layout of GradBench's C++
//! `SparseMat`. The input holds one camera, point, weight and feature, which
//! the tool replicates into the full problem before any run.

// The residuals index small arrays in loops, as ADBench's C++ does.
#![allow(clippy::needless_range_loop)]

use adjoint::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input, timed, timed_into, unknown, Evaluation};
use crate::runs::Runs;

/// Parameters per camera: rotation (angle-axis, 3), centre (3), focal length,
/// principal point (2), radial distortion (2).
pub const CAM: usize = 11;

#[derive(Deserialize)]
pub struct Input {
    pub n: usize,
    pub m: usize,
    pub p: usize,
    pub cam: [f64; CAM],
    pub x: [f64; 3],
    pub w: f64,
    pub feat: [f64; 2],
    #[serde(flatten)]
    pub runs: Runs,
}

/// The full problem: `n` cameras, `m` points, and `p` observations, the
/// `i`-th of camera `obs[i][0]` and point `obs[i][1]`.
pub struct Problem {
    pub cams: Vec<[f64; CAM]>,
    pub x: Vec<[f64; 3]>,
    pub w: Vec<f64>,
    pub obs: Vec<[usize; 2]>,
    pub feats: Vec<[f64; 2]>,
}

impl Problem {
    /// The input's one camera, point, weight and feature, replicated; the
    /// observations cycle through cameras and points together.
    pub fn replicate(input: &Input) -> Problem {
        Problem {
            cams: vec![input.cam; input.n],
            x: vec![input.x; input.m],
            w: vec![input.w; input.p],
            obs: (0..input.p).map(|i| [i % input.n, i % input.m]).collect(),
            feats: vec![input.feat; input.p],
        }
    }
}

/// `pt` rotated by the angle-axis vector `rot` (Rodrigues' formula); at angle
/// zero, its first-order form pt + rot × pt.
#[differentiable(static)]
#[inline]
pub fn rodrigues_rotate_point(rot: &[f64; 3], pt: &[f64; 3]) -> [f64; 3] {
    let sqtheta = rot[0] * rot[0] + rot[1] * rot[1] + rot[2] * rot[2];
    let mut rotated = [0.0; 3];
    if sqtheta != 0.0 {
        let theta = sqtheta.sqrt();
        let costheta = theta.cos();
        let sintheta = theta.sin();
        let theta_inverse = 1.0 / theta;
        let w = [
            rot[0] * theta_inverse,
            rot[1] * theta_inverse,
            rot[2] * theta_inverse,
        ];
        let w_cross_pt = [
            w[1] * pt[2] - w[2] * pt[1],
            w[2] * pt[0] - w[0] * pt[2],
            w[0] * pt[1] - w[1] * pt[0],
        ];
        let tmp = (w[0] * pt[0] + w[1] * pt[1] + w[2] * pt[2]) * (1.0 - costheta);
        for i in 0..3 {
            rotated[i] = pt[i] * costheta + w_cross_pt[i] * sintheta + w[i] * tmp;
        }
    } else {
        let rot_cross_pt = [
            rot[1] * pt[2] - rot[2] * pt[1],
            rot[2] * pt[0] - rot[0] * pt[2],
            rot[0] * pt[1] - rot[1] * pt[0],
        ];
        for i in 0..3 {
            rotated[i] = pt[i] + rot_cross_pt[i];
        }
    }
    rotated
}

/// `proj` scaled by 1 + k₁r² + k₂r⁴, r² = |proj|², with `rad_params` = (k₁, k₂).
#[differentiable(static)]
#[inline]
pub fn radial_distort(rad_params: &[f64; 2], proj: &[f64; 2]) -> [f64; 2] {
    let rsq = proj[0] * proj[0] + proj[1] * proj[1];
    let l = 1.0 + rad_params[0] * rsq + rad_params[1] * rsq * rsq;
    [proj[0] * l, proj[1] * l]
}

/// Where camera `cam` sees point `x`, in pixels.
#[differentiable(static)]
#[inline]
pub fn project(cam: &[f64; CAM], x: &[f64; 3]) -> [f64; 2] {
    let x_cam = rodrigues_rotate_point(
        &[cam[0], cam[1], cam[2]],
        &[x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]],
    );
    let distorted = radial_distort(
        &[cam[9], cam[10]],
        &[x_cam[0] / x_cam[2], x_cam[1] / x_cam[2]],
    );
    [
        distorted[0] * cam[6] + cam[7],
        distorted[1] * cam[6] + cam[8],
    ]
}

/// The weighted distance between where `cam` sees `x` and the feature `feat`.
#[differentiable(static, wrt(cam, x, w))]
#[inline(always)]
pub fn reproj_error(cam: &[f64; CAM], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> [f64; 2] {
    let proj = project(cam, x);
    [w * (proj[0] - feat[0]), w * (proj[1] - feat[1])]
}

/// 1 − w²: zero when the weight is 1.
#[differentiable(static)]
pub fn weight_error(w: f64) -> f64 {
    1.0 - w * w
}

/// Every observation's residuals: 2 per reprojection error, 1 per weight.
#[derive(Debug, PartialEq)]
pub struct Residuals {
    pub reproj_err: Vec<f64>,
    pub w_err: Vec<f64>,
}

pub fn objective(problem: &Problem) -> Residuals {
    let mut reproj_err = Vec::with_capacity(2 * problem.obs.len());
    let mut w_err = Vec::with_capacity(problem.obs.len());
    for (i, &[cam, pt]) in problem.obs.iter().enumerate() {
        let e = reproj_error(
            &problem.cams[cam],
            &problem.x[pt],
            problem.w[i],
            &problem.feats[i],
        );
        reproj_err.extend_from_slice(&e);
    }
    for &w in &problem.w {
        w_err.push(weight_error(w));
    }
    Residuals { reproj_err, w_err }
}

/// Nonzeros in a reprojection error's row: its camera, its point, its weight.
const ROW: usize = CAM + 3 + 1;

/// The Jacobian in compressed rows: row `r`'s entries are `cols[k]`, `vals[k]`
/// for `k` in `rows[r]..rows[r + 1]`. Rows are the 2p reprojection errors,
/// then the p weight errors; columns the 11n camera parameters, the 3m point
/// coordinates, then the p weights.
#[derive(Debug, Default, PartialEq)]
pub struct SparseJacobian {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    pub vals: Vec<f64>,
}

pub fn jacobian(problem: &Problem) -> SparseJacobian {
    let mut jac = SparseJacobian::default();
    jacobian_into(problem, &mut jac);
    jac
}

/// [`jacobian`] into `jac`, whose buffers are cleared and refilled (their
/// capacity kept).
pub fn jacobian_into(problem: &Problem, jac: &mut SparseJacobian) {
    let (n, m, p) = (problem.cams.len(), problem.x.len(), problem.obs.len());
    let nnz = 2 * ROW * p + p;
    jac.rows.clear();
    jac.cols.clear();
    jac.vals.clear();
    jac.rows.reserve(3 * p + 1);
    jac.cols.reserve(nnz);
    jac.vals.reserve(nnz);
    jac.rows.push(0);
    let (x_cols, w_cols) = (CAM * n, CAM * n + 3 * m);
    for (i, &[cam, pt]) in problem.obs.iter().enumerate() {
        let (c, x, w, f) = (
            &problem.cams[cam],
            &problem.x[pt],
            problem.w[i],
            &problem.feats[i],
        );
        // One row per seed. Both calls are inlined: the compiler shares the
        // forward pass (the rotation's sin and cos) between them.
        let row_u = reproj_error_vjp(c, x, w, f, [1.0, 0.0]).1;
        let row_v = reproj_error_vjp(c, x, w, f, [0.0, 1.0]).1;
        for (d_cam, d_x, d_w) in [row_u, row_v] {
            jac.rows.push(jac.cols.len() + ROW);
            jac.cols.extend(CAM * cam..CAM * (cam + 1));
            jac.vals.extend_from_slice(&d_cam);
            jac.cols.extend(x_cols + 3 * pt..x_cols + 3 * (pt + 1));
            jac.vals.extend_from_slice(&d_x);
            jac.cols.push(w_cols + i);
            jac.vals.push(d_w);
        }
    }
    for (i, &w) in problem.w.iter().enumerate() {
        let (_, d_w) = weight_error_grad(w);
        jac.rows.push(jac.cols.len() + 1);
        jac.cols.push(w_cols + i);
        jac.vals.push(d_w);
    }
}

/// GradBench's objective output: one observation's reprojection error and
/// weight error, and how often each repeats (the input is `p` copies of one).
#[derive(Serialize)]
struct ObjectiveOutput {
    reproj_error: Repeated<Vec<f64>>,
    w_err: RepeatedOne,
}

#[derive(Serialize)]
struct Repeated<T> {
    elements: T,
    repeated: usize,
}

#[derive(Serialize)]
struct RepeatedOne {
    element: f64,
    repeated: usize,
}

impl Serialize for Residuals {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ObjectiveOutput {
            reproj_error: Repeated {
                elements: self.reproj_err.iter().take(2).copied().collect(),
                repeated: self.reproj_err.len() / 2,
            },
            w_err: RepeatedOne {
                element: self.w_err.first().copied().unwrap_or(f64::NAN),
                repeated: self.w_err.len(),
            },
        }
        .serialize(s)
    }
}

/// Keeps the first 30 entries and the last of each list, as GradBench's
/// jacobian output does: the first observation's two rows, and the end.
fn abridge<T: Copy>(v: &[T]) -> Vec<T> {
    let head = v.len().min(2 * ROW);
    let mut out = v[..head].to_vec();
    out.extend(v.last().copied());
    out
}

#[derive(Serialize)]
struct JacobianOutput {
    rows: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f64>,
}

impl Serialize for SparseJacobian {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        JacobianOutput {
            rows: abridge(&self.rows),
            cols: abridge(&self.cols),
            vals: abridge(&self.vals),
        }
        .serialize(s)
    }
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let input: Input = input("ba", value)?;
    if input.p > 0 && (input.n == 0 || input.m == 0) {
        return Err("`ba` needs at least one camera and one point when `p` > 0".into());
    }
    let problem = Problem::replicate(&input);
    match function {
        "objective" => timed(input.runs, || objective(&problem)),
        "jacobian" => timed_into(input.runs, |jac| jacobian_into(&problem, jac)),
        _ => unknown("ba", function),
    }
}
