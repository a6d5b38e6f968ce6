mod common;

use adjoint_gradbench::evals::ba::{
    jacobian, jacobian_into, objective, reproj_error_vjp, Input, Problem, SparseJacobian, CAM,
};
use common::{assert_close, fd_jacobian_columns, uniform};
use serde_json::{json, Value};

/// ADBench's first problem's camera, point, weight and feature (`ba1`).
const BASE_CAM: [f64; CAM] = [
    -0.758453, -1.109613, -0.845551, 34.556073, 39.676747, 53.881673, 419.194514, 5.864426,
    -8.518870, 0.087812, 0.002739,
];
const BASE_X: [f64; 3] = [7.203245, 0.001144, 3.023326];
const BASE_FEAT: [f64; 2] = [271.760969, 834.209256];

/// A problem with distinct cameras, points, weights and features (not the
/// replicated one of the eval's input, where every block is the same).
fn problem(n: usize, m: usize, p: usize, seed: u64) -> Problem {
    let mut noise = uniform(seed, CAM * n + 3 * m + 3 * p).into_iter();
    let mut next = || noise.next().unwrap();
    let cams = (0..n)
        .map(|_| {
            let mut c = BASE_CAM;
            for v in &mut c {
                *v *= 1.0 + 0.1 * next();
            }
            c
        })
        .collect();
    let x = (0..m).map(|_| BASE_X.map(|v| v + next())).collect();
    let w = (0..p).map(|_| 0.4 + 0.3 * next()).collect();
    let feats = (0..p)
        .map(|_| BASE_FEAT.map(|v| v + 10.0 * next()))
        .collect();
    let obs = (0..p).map(|i| [i % n, (2 * i + 1) % m]).collect();
    Problem {
        cams,
        x,
        w,
        obs,
        feats,
    }
}

/// The parameters in the Jacobian's column order: cameras, points, weights.
fn flatten(pr: &Problem) -> Vec<f64> {
    let mut v: Vec<f64> = pr.cams.iter().flatten().copied().collect();
    v.extend(pr.x.iter().flatten());
    v.extend(&pr.w);
    v
}

fn unflatten(like: &Problem, v: &[f64]) -> Problem {
    let (n, m) = (like.cams.len(), like.x.len());
    let (cams, rest) = v.split_at(CAM * n);
    let (x, w) = rest.split_at(3 * m);
    Problem {
        cams: cams.chunks(CAM).map(|c| c.try_into().unwrap()).collect(),
        x: x.chunks(3).map(|c| c.try_into().unwrap()).collect(),
        w: w.to_vec(),
        obs: like.obs.clone(),
        feats: like.feats.clone(),
    }
}

/// The sparse Jacobian written out, one `Vec` per row.
fn dense(jac: &SparseJacobian, n_cols: usize) -> Vec<Vec<f64>> {
    jac.rows
        .windows(2)
        .map(|r| {
            let mut row = vec![0.0; n_cols];
            for k in r[0]..r[1] {
                row[jac.cols[k]] += jac.vals[k];
            }
            row
        })
        .collect()
}

/// Every entry of the Jacobian (zeros included, so the sparsity pattern too)
/// against central differences of the objective.
fn check_jacobian(pr: &Problem) {
    let params = flatten(pr);
    let jac = jacobian(pr);
    let p = pr.obs.len();
    assert_eq!(jac.rows.len(), 3 * p + 1);
    assert_eq!(jac.cols.len(), 31 * p);
    let got = dense(&jac, params.len());
    let columns = fd_jacobian_columns(
        |v| {
            let r = objective(&unflatten(pr, v));
            r.reproj_err.into_iter().chain(r.w_err).collect()
        },
        &params,
    );
    for (j, column) in columns.iter().enumerate() {
        let got_column: Vec<f64> = got.iter().map(|row| row[j]).collect();
        assert_close(&got_column, column, 1e-5);
    }
}

#[test]
fn jacobian_matches_finite_differences() {
    check_jacobian(&problem(2, 3, 5, 1));
    check_jacobian(&problem(3, 2, 7, 2));
}

#[test]
fn jacobian_at_zero_rotation_matches_finite_differences() {
    // Rodrigues' formula divides by the angle: at zero the first-order branch
    // pt + rot × pt is taken, whose derivative is the formula's limit.
    let mut pr = problem(2, 2, 3, 3);
    pr.cams[0][..3].fill(0.0);
    check_jacobian(&pr);
}

#[test]
fn jacobian_layout_is_that_of_sparse_mat() {
    let pr = problem(2, 3, 4, 4);
    let (n, m) = (2, 3);
    let jac = jacobian(&pr);
    // 15 entries in each reprojection row, then 1 in each weight row.
    let want_rows: Vec<usize> = (0..=8)
        .map(|r| 15 * r)
        .chain((1..=4).map(|r| 120 + r))
        .collect();
    assert_eq!(jac.rows, want_rows);
    for (i, &[cam, pt]) in pr.obs.iter().enumerate() {
        let want: Vec<usize> = (CAM * cam..CAM * cam + CAM)
            .chain(CAM * n + 3 * pt..CAM * n + 3 * pt + 3)
            .chain([CAM * n + 3 * m + i])
            .collect();
        assert_eq!(&jac.cols[30 * i..30 * i + 15], &want[..]);
        assert_eq!(&jac.cols[30 * i + 15..30 * i + 30], &want[..]);
    }
    let w_cols: Vec<usize> = (0..4).map(|i| CAM * n + 3 * m + i).collect();
    assert_eq!(&jac.cols[120..], &w_cols[..]);
}

/// One reprojection error, computed with the rotation matrix
/// R = I + sin θ [n]ₓ + (1 − cos θ) [n]ₓ², n = rot / θ.
fn reproj_error_by_matrix(cam: &[f64; CAM], x: &[f64; 3], w: f64, feat: &[f64; 2]) -> [f64; 2] {
    let theta = (cam[0] * cam[0] + cam[1] * cam[1] + cam[2] * cam[2]).sqrt();
    let k = [cam[0] / theta, cam[1] / theta, cam[2] / theta];
    let kx = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]];
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let kx2: f64 = (0..3).map(|l| kx[i][l] * kx[l][j]).sum();
            let eye = if i == j { 1.0 } else { 0.0 };
            r[i][j] = eye + theta.sin() * kx[i][j] + (1.0 - theta.cos()) * kx2;
        }
    }
    let d = [x[0] - cam[3], x[1] - cam[4], x[2] - cam[5]];
    let xc: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|j| r[i][j] * d[j]).sum())
        .collect();
    let (u, v) = (xc[0] / xc[2], xc[1] / xc[2]);
    let rsq = u * u + v * v;
    let l = 1.0 + cam[9] * rsq + cam[10] * rsq * rsq;
    [
        w * (u * l * cam[6] + cam[7] - feat[0]),
        w * (v * l * cam[6] + cam[8] - feat[1]),
    ]
}

#[test]
fn objective_matches_the_rotation_matrix() {
    let pr = problem(3, 4, 6, 5);
    let r = objective(&pr);
    assert_eq!(r.reproj_err.len(), 12);
    for (i, &[cam, pt]) in pr.obs.iter().enumerate() {
        let want = reproj_error_by_matrix(&pr.cams[cam], &pr.x[pt], pr.w[i], &pr.feats[i]);
        assert_close(&r.reproj_err[2 * i..2 * i + 2], &want, 1e-12);
    }
    let want_w: Vec<f64> = pr.w.iter().map(|w| 1.0 - w * w).collect();
    assert_close(&r.w_err, &want_w, 1e-15);
}

#[test]
fn input_is_replicated() {
    let input: Input = serde_json::from_value(json!({
        "n": 2, "m": 3, "p": 5,
        "cam": BASE_CAM, "x": BASE_X, "w": 0.5, "feat": BASE_FEAT,
    }))
    .unwrap();
    let pr = Problem::replicate(&input);
    assert_eq!(pr.cams, vec![BASE_CAM; 2]);
    assert_eq!(pr.x, vec![BASE_X; 3]);
    assert_eq!(pr.w, vec![0.5; 5]);
    assert_eq!(pr.feats, vec![BASE_FEAT; 5]);
    assert_eq!(pr.obs, vec![[0, 0], [1, 1], [0, 2], [1, 0], [0, 1]]);
}

fn eval_input(n: usize, m: usize, p: usize, w: f64) -> Value {
    json!({
        "n": n, "m": m, "p": p,
        "cam": BASE_CAM, "x": BASE_X, "w": w, "feat": BASE_FEAT,
        "min_runs": 2, "min_seconds": 0.0,
    })
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn integers(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn evaluate_objective_end_to_end() {
    let (n, m, p, w) = (3, 4, 12, 0.7);
    let e = adjoint_gradbench::evals::evaluate("ba", "objective", eval_input(n, m, p, w)).unwrap();
    assert_eq!(e.timings.len(), 2);
    let out = e.output.as_object().unwrap();
    assert_eq!(out.len(), 2);
    let reproj = &out["reproj_error"];
    assert_eq!(reproj.as_object().unwrap().len(), 2);
    let want = reproj_error_by_matrix(&BASE_CAM, &BASE_X, w, &BASE_FEAT);
    assert_close(&numbers(&reproj["elements"]), &want, 1e-12);
    assert_eq!(reproj["repeated"], json!(p));
    let w_err = &out["w_err"];
    assert_eq!(w_err.as_object().unwrap().len(), 2);
    assert_close(&[w_err["element"].as_f64().unwrap()], &[1.0 - w * w], 1e-15);
    assert_eq!(w_err["repeated"], json!(p));
}

#[test]
fn evaluate_jacobian_end_to_end() {
    // p ≥ 15, so that the first 30 rows are reprojection errors.
    let (n, m, p, w) = (3, 4, 20, 0.7);
    let e = adjoint_gradbench::evals::evaluate("ba", "jacobian", eval_input(n, m, p, w)).unwrap();
    assert_eq!(e.timings.len(), 2);
    let out = e.output.as_object().unwrap();
    assert_eq!(out.len(), 3);
    // The first 30 entries of each list, and the last.
    let rows = integers(&out["rows"]);
    let want_rows: Vec<usize> = (0..30).map(|r| 15 * r).chain([31 * p]).collect();
    assert_eq!(rows, want_rows);
    let cols = integers(&out["cols"]);
    let block: Vec<usize> = (0..CAM)
        .chain(CAM * n..CAM * n + 3)
        .chain([CAM * n + 3 * m])
        .collect();
    let want_cols: Vec<usize> = block
        .iter()
        .chain(&block)
        .copied()
        .chain([CAM * n + 3 * m + p - 1])
        .collect();
    assert_eq!(cols, want_cols);
    let vals = numbers(&out["vals"]);
    assert_eq!(vals.len(), 31);
    for (r, seed) in [[1.0, 0.0], [0.0, 1.0]].into_iter().enumerate() {
        let (_, (d_cam, d_x, d_w)) = reproj_error_vjp(&BASE_CAM, &BASE_X, w, &BASE_FEAT, seed);
        let want: Vec<f64> = d_cam.iter().chain(&d_x).copied().chain([d_w]).collect();
        assert_eq!(&vals[15 * r..15 * r + 15], &want[..]);
    }
    assert_eq!(vals[30], -2.0 * w);
}

#[test]
fn unknown_function_is_an_error() {
    let e = adjoint_gradbench::evals::evaluate("ba", "gradient", eval_input(1, 1, 1, 0.5));
    assert!(e.is_err());
}

#[test]
fn a_reused_jacobian_buffer_is_refilled_whole() {
    // The timed runs refill one buffer: after a larger problem, a smaller one
    // must leave nothing of the first behind.
    let (big, small) = (problem(3, 4, 9, 5), problem(2, 2, 3, 6));
    let mut jac = SparseJacobian::default();
    jacobian_into(&big, &mut jac);
    assert_eq!(jac, jacobian(&big));
    jacobian_into(&small, &mut jac);
    assert_eq!(jac, jacobian(&small));
}
