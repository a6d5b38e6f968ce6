mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::saddle::{
    max_f, max_f_grad, max_r, max_r_grad, max_r_jvp, objective, objective_grad, outer_gradient,
    solve, VARIANTS,
};
use common::{assert_close, fd_gradient};
use serde_json::json;

#[test]
fn objective_gradient_matches_finite_differences() {
    let at = [0.3, -1.2, 0.8, 0.5];
    let (y, g) = objective_grad(at[0], at[1], at[2], at[3]);
    assert_eq!(y, objective(at[0], at[1], at[2], at[3]));
    let want = fd_gradient(|x| objective(x[0], x[1], x[2], x[3]), &at);
    assert_close(&[g.0, g.1, g.2, g.3], &want, 1e-8);
}

#[test]
fn inner_maximum_is_the_outer_point_s_squared_norm() {
    // max over q of |p|² − |q|² is |p|², at q = 0; ascent stops near it.
    for p in [[0.7, -0.4], [1.0, 1.0], [-2.0, 0.1]] {
        let want = p[0] * p[0] + p[1] * p[1];
        let r = max_r(p[0], p[1], 1.0, 0.5);
        let f = max_f(p[0], p[1], 1.0, 0.5);
        assert!(r <= want && want - r < 1e-9, "{r} vs {want}");
        assert!((r - f).abs() <= 1e-12, "{r} vs {f}");
    }
}

#[test]
fn the_four_outer_gradients_match_finite_differences_and_each_other() {
    let s = [1.0, 0.5];
    for p in [[0.7, -0.4], [1.0, 1.0], [-0.2, 0.3]] {
        let want = fd_gradient(|p| max_r(p[0], p[1], s[0], s[1]), &p);
        let (y, _) = max_r_grad(p[0], p[1], s[0], s[1]);
        assert_eq!(y, max_r(p[0], p[1], s[0], s[1]));
        let (y, _) = max_f_grad(p[0], p[1], s[0], s[1]);
        assert_eq!(y, max_f(p[0], p[1], s[0], s[1]));
        let (y, _) = max_r_jvp(p[0], p[1], s[0], s[1], 1.0, 0.0);
        assert_eq!(y, max_r(p[0], p[1], s[0], s[1]));
        let rr = outer_gradient('r', 'r', p, s);
        assert_close(&rr, &want, 1e-7);
        for (outer, inner) in [('r', 'f'), ('f', 'r'), ('f', 'f')] {
            let g = outer_gradient(outer, inner, p, s);
            assert_close(&g, &want, 1e-7);
            assert_close(&g, &rr, 1e-12);
        }
    }
}

#[test]
fn every_variant_finds_the_eval_s_saddle_point() {
    // python/gradbench/gradbench/evals/saddle/run.py's expected output, from (1, 1).
    let want = [8.246324826140356e-06; 4];
    let rr = solve("rr", [1.0, 1.0]).unwrap();
    for f in VARIANTS {
        let got = solve(f, [1.0, 1.0]).unwrap();
        assert_close(&got, &want, 1e-9);
        assert_close(&got, &rr, 1e-12);
    }
    assert!(solve("fx", [1.0, 1.0]).is_none());
}

#[test]
fn evaluate_answers_four_numbers() {
    let out = evaluate("saddle", "rf", json!({"start": [1.0, 1.0], "min_runs": 3})).unwrap();
    assert_eq!(out.timings.len(), 3);
    let got: Vec<f64> = out
        .output
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got, solve("rf", [1.0, 1.0]).unwrap());
    assert!(evaluate("saddle", "r", json!({"start": [1.0, 1.0]})).is_err());
    assert!(evaluate("saddle", "rr", json!({"start": [1.0]})).is_err());
}
