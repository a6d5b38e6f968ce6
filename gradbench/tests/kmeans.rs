mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::kmeans::{cost, cost_grad, cost_hvp, dir};
use common::{assert_close, fd_gradient, fd_jacobian_columns, uniform};
use serde_json::json;

/// n points in [0, 1)^d, and k centroids: the last k points moved a little, so
/// that every centroid is the closest to at least one point and no distance
/// ties.
fn problem(n: usize, k: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let points: Vec<f64> = uniform(7, n * d).iter().map(|v| 0.5 + 0.5 * v).collect();
    let shift = uniform(8, k * d);
    let centroids = points[(n - k) * d..]
        .iter()
        .zip(&shift)
        .map(|(p, s)| p + 0.01 * s)
        .collect();
    (points, centroids)
}

/// The cost computed another way: each point's squared distances, their minimum
/// by `f64::min`.
fn direct_cost(points: &[f64], centroids: &[f64], d: usize) -> f64 {
    points
        .chunks(d)
        .map(|p| {
            centroids
                .chunks(d)
                .map(|c| p.iter().zip(c).map(|(a, b)| (a - b).powi(2)).sum::<f64>())
                .fold(f64::INFINITY, f64::min)
        })
        .sum()
}

#[test]
fn cost_matches_a_direct_computation() {
    for (n, k, d) in [(5, 1, 1), (20, 3, 2), (30, 4, 3)] {
        let (p, c) = problem(n, k, d);
        let want = direct_cost(&p, &c, d);
        assert!((cost(&p, &c, d) - want).abs() <= 1e-12 * want);
    }
}

#[test]
fn gradient_and_hessian_diagonal_match_finite_differences() {
    let (n, k, d) = (20, 3, 2);
    let (p, c) = problem(n, k, d);
    let ones = vec![1.0; k * d];
    let (value, grad, diag) = cost_hvp(&p, &c, d, &ones);
    assert_eq!(value, cost(&p, &c, d));
    assert_close(&grad, &fd_gradient(|c| cost(&p, c, d), &c), 1e-7);
    assert_close(&grad, &cost_grad(&p, &c, d).1, 1e-14);
    // Every column of the Hessian, by differences of the gradient: zero off the
    // diagonal, so H·1 is the diagonal.
    let columns = fd_jacobian_columns(|c| cost_grad(&p, c, d).1, &c);
    for (i, column) in columns.iter().enumerate() {
        let mut want = vec![0.0; k * d];
        want[i] = diag[i];
        assert_close(column, &want, 1e-6);
        assert!(diag[i] >= 2.0, "each centroid has a point: {}", diag[i]);
    }
    // Any other v: H·v against differences of the gradient along v.
    let v = uniform(9, k * d);
    let (_, _, hv) = cost_hvp(&p, &c, d, &v);
    let h = 1e-6;
    let at = |t: f64| -> Vec<f64> {
        let c: Vec<f64> = c.iter().zip(&v).map(|(a, b)| a + t * b).collect();
        cost_grad(&p, &c, d).1
    };
    let want: Vec<f64> = at(h)
        .iter()
        .zip(at(-h))
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    assert_close(&hv, &want, 1e-6);
}

#[test]
fn dir_is_each_centroid_minus_the_mean_of_its_points() {
    let (n, k, d) = (30, 4, 3);
    let (p, c) = problem(n, k, d);
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0.0; k];
    for point in p.chunks(d) {
        let dist = |j: usize| -> f64 { (0..d).map(|l| (point[l] - c[j * d + l]).powi(2)).sum() };
        let j = (0..k).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
        counts[j] += 1.0;
        for l in 0..d {
            sums[j * d + l] += point[l];
        }
    }
    let want: Vec<f64> = (0..k * d).map(|i| c[i] - sums[i] / counts[i / d]).collect();
    assert_close(&dir(&p, &c, d), &want, 1e-13);
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let (n, k, d) = (12, 3, 2);
    let (p, c) = problem(n, k, d);
    let rows = |m: &[f64]| -> Vec<Vec<f64>> { m.chunks(d).map(<[f64]>::to_vec).collect() };
    let input = json!({"points": rows(&p), "centroids": rows(&c), "min_runs": 2});
    let out = evaluate("kmeans", "cost", input.clone()).unwrap();
    assert_eq!(out.timings.len(), 2);
    assert_eq!(out.output.as_f64(), Some(cost(&p, &c, d)));
    let out = evaluate("kmeans", "dir", input.clone()).unwrap();
    let got = out.output.as_array().expect("an array of rows");
    assert_eq!(got.len(), k);
    let want = dir(&p, &c, d);
    for (j, row) in got.iter().enumerate() {
        let row: Vec<f64> = row
            .as_array()
            .expect("a row")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(row, want[j * d..(j + 1) * d]);
    }
    assert!(evaluate("kmeans", "hessian", input).is_err());
    let ragged = json!({"points": [[0.0, 1.0], [2.0]], "centroids": [[0.0, 1.0]]});
    assert!(evaluate("kmeans", "cost", ragged).is_err());
}
