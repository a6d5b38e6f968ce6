//! `kmeans`: the k-means cost Σᵢ minⱼ |Cⱼ − Pᵢ|² of n points P and k centroids
//! C in d dimensions. `cost` is its value; `dir` is the Newton direction
//! J ⊘ diag(H) in C, with J the gradient and H the Hessian, which is diagonal
//! (each centroid's cost is a sum of squares in its own coordinates).

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::{measure, Runs};

#[derive(Deserialize)]
pub struct Input {
    pub points: Vec<Vec<f64>>,
    pub centroids: Vec<Vec<f64>>,
    #[serde(flatten)]
    pub runs: Runs,
}

/// Σᵢ minⱼ |Cⱼ − Pᵢ|², with the points and centroids as row-major `d`-column
/// matrices.
#[differentiable(static, order = 2, wrt(centroids))]
pub fn cost(points: &[f64], centroids: &[f64], d: usize) -> f64 {
    let n = points.len() / d;
    let k = centroids.len() / d;
    let mut total = 0.0;
    for i in 0..n {
        let p = &points[i * d..(i + 1) * d];
        let mut closest = f64::INFINITY;
        for j in 0..k {
            let c = &centroids[j * d..(j + 1) * d];
            let mut dist = 0.0;
            for l in 0..d {
                let diff = p[l] - c[l];
                dist += diff * diff;
            }
            if dist < closest {
                closest = dist;
            }
        }
        total += closest;
    }
    total
}

/// J ⊘ diag(H): one Hessian-vector product with v = 1 gives the gradient and,
/// H being diagonal, its diagonal.
pub fn dir(points: &[f64], centroids: &[f64], d: usize) -> Vec<f64> {
    let ones = vec![1.0; centroids.len()];
    let (_, grad, diag) = cost_hvp(points, centroids, d, &ones);
    grad.iter().zip(&diag).map(|(g, h)| g / h).collect()
}

/// The rows of `m`, concatenated, and their common length.
fn flatten(what: &str, m: &[Vec<f64>]) -> Result<(Vec<f64>, usize), String> {
    let d = m.first().map_or(0, Vec::len);
    if d == 0 || m.iter().any(|row| row.len() != d) {
        return Err(format!(
            "`kmeans` needs `{what}` to be non-empty rows of one length"
        ));
    }
    Ok((m.concat(), d))
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input {
        points,
        centroids,
        runs,
    } = input("kmeans", value)?;
    let (points, d) = flatten("points", &points)?;
    let (centroids, dc) = flatten("centroids", &centroids)?;
    if dc != d {
        return Err("`kmeans` needs points and centroids of one dimension".into());
    }
    match function {
        "cost" => timed(runs, || cost(&points, &centroids, d)),
        "dir" => {
            let (flat, timings) = measure(runs, || dir(&points, &centroids, d));
            let rows: Vec<&[f64]> = flat.chunks(d).collect();
            let output = serde_json::to_value(rows).map_err(|e| format!("output: {e}"))?;
            Ok(Evaluation { output, timings })
        }
        _ => unknown("kmeans", function),
    }
}
