//! `det`: the determinant of a row-major ℓ×ℓ matrix by expansion by minors,
//! det A = Σ_σ sgn σ · Πₖ A[k, σ(k)]. `primal` is its value, `gradient` its
//! gradient in A (the cofactor matrix), row-major.
//!
//! The macro takes no recursion, so the expansion is written as a loop over
//! the permutations in lexicographic order. Consecutive permutations share
//! a prefix; the running products of the leading factors are kept, and only
//! those past the first changed position are recomputed: the multiplications
//! are those of the recursive expansion, about e·ℓ! in all.

// The objective indexes its buffers as the static path reads them.
#![allow(clippy::needless_range_loop)]

use adjoint::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::{input, timed, unknown, Evaluation};
use crate::runs::Runs;

#[derive(Deserialize)]
pub struct Input {
    #[serde(rename = "A")]
    pub a: Vec<f64>,
    pub ell: usize,
    #[serde(flatten)]
    pub runs: Runs,
}

/// det of the ℓ×ℓ row-major `a`, ℓ ≥ 1.
///
/// `perm` holds column indices as floats: the static path takes local
/// buffers of floats only.
#[differentiable(static)]
pub fn det(a: &[f64], ell: usize) -> f64 {
    let n = ell;
    let mut perm = vec![0.0; n];
    for k in 0..n {
        perm[k] = k as f64;
    }
    // prefix[k] = Π_{i ≤ k} a[i, perm[i]], valid below `from`.
    let mut prefix = vec![0.0; n];
    let mut from = 0;
    let mut odd = false;
    let mut det = 0.0;
    loop {
        for k in from..n {
            let before = if k == 0 { 1.0 } else { prefix[k - 1] };
            prefix[k] = before * a[k * n + perm[k] as usize];
        }
        if odd {
            det -= prefix[n - 1];
        } else {
            det += prefix[n - 1];
        }
        // The next permutation: the longest decreasing tail perm[i..] ...
        let mut i = n - 1;
        while i > 0 && perm[i - 1] > perm[i] {
            i -= 1;
        }
        if i == 0 {
            break;
        }
        // ... its successor of perm[i - 1] swapped in, and the tail reversed.
        let mut j = n - 1;
        while perm[j] < perm[i - 1] {
            j -= 1;
        }
        perm.swap(i - 1, j);
        odd = !odd;
        let mut lo = i;
        let mut hi = n - 1;
        while lo < hi {
            perm.swap(lo, hi);
            lo += 1;
            hi -= 1;
            odd = !odd;
        }
        from = i - 1;
    }
    det
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let Input { a, ell, runs } = input("det", value)?;
    if ell == 0 || a.len() != ell * ell {
        return Err(format!(
            "`det` needs ℓ ≥ 1 and ℓ² elements in `A`: ℓ = {ell}, {} elements",
            a.len()
        ));
    }
    match function {
        "primal" => timed(runs, || det(&a, ell)),
        "gradient" => timed(runs, || det_grad(&a, ell).1),
        _ => unknown("det", function),
    }
}
