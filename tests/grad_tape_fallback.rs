//! The tape fallback: a body whose every refusal by the lowering is a construct the
//! tape takes (a closure that assigns a variable, `filter`, a call whose result kind
//! cannot be told) takes the tape without an option, and `inline(..)` asks for it.
//! Most functions here were written for constructs that took the tape before the one
//! IR learned them (`match`, closures, labels, iterator adapters, sub-slices, local
//! `Vec`s); they are static now, and still checked. Each is checked against central
//! finite differences and against the same function written for the static path
//! (`#[differentiable(static)]`, so the reference cannot drift to the tape itself).
//!
//! Every function's route is pinned by `ad-macros-core/tests/routes.rs`, which reads
//! this file: a function added here needs a line in its table. Control flow that the
//! static path takes is tested in `grad_control.rs` and `grad_control_tensor.rs`.

#![allow(dead_code)]
// Taking the tape without the option is under test: its warning is expected.
#![allow(deprecated)]
// some primals are used only through their companions
// index loops because indexing is under test.
#![allow(clippy::needless_range_loop)]

use adjoint::check::{gradcheck, gradcheck_scalar, gradcheck_tensor, Tolerance};
use adjoint::prelude::*;

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

// A `match` on an integer mode; the static form is an `if` chain.
#[differentiable]
fn by_mode(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.sin(),
        1 => x * x,
        _ => 2.0,
    }
}

#[differentiable(static)]
fn by_mode_static(x: f64, mode: u8) -> f64 {
    if mode == 0 {
        x.sin()
    } else if mode == 1 {
        x * x
    } else {
        2.0
    }
}

#[test]
fn match_on_a_mode() {
    for x in [-3.0, -0.4, 0.2, 1.3] {
        for mode in [0, 1, 7] {
            let (v, g) = by_mode_grad(x, mode);
            assert_eq!(v.to_bits(), by_mode(x, mode).to_bits());
            assert_eq!((v, g), by_mode_static_grad(x, mode), "mode {mode} at {x}");
            gradcheck_scalar(|x| by_mode(x, mode), |x| by_mode_grad(x, mode).1, x, tol()).unwrap();
        }
        assert!(close(by_mode_grad(x, 0).1, x.cos()));
        assert!(close(by_mode_grad(x, 1).1, 2.0 * x));
        assert_eq!(by_mode_grad(x, 7), (2.0, 0.0));
    }
}

// ⟨a, b⟩ over an array and a Vec, with `zip`, a closure in `map`, and `.sum()`.
#[differentiable]
fn dot3(a: [f64; 3], b: Vec<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

#[differentiable(static)]
fn dot3_static(a: [f64; 3], b: Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += a[i] * b[i];
    }
    s
}

// The variance Σ (xᵢ - m)² / n with m the mean, the sum of squares by `map`.
#[differentiable]
fn variance(x: Vec<f64>) -> f64 {
    let m: f64 = x.iter().sum::<f64>() / x.len() as f64;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

#[differentiable(static)]
fn variance_static(x: Vec<f64>) -> f64 {
    let m: f64 = x.iter().sum::<f64>() / x.len() as f64;
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - m) * (x[i] - m);
    }
    s / x.len() as f64
}

#[test]
fn iterator_adapters_over_array_and_vec_parameters() {
    let a = [1.0, -2.0, 0.5];
    let b = vec![0.3, 0.7, -1.1];
    let (v, (ga, gb)): (f64, ([f64; 3], Vec<f64>)) = dot3_grad(a, b.clone());
    assert!(close(v, dot3(a, b.clone())));
    assert_eq!(ga, [0.3, 0.7, -1.1]);
    assert_eq!(gb, vec![1.0, -2.0, 0.5]);
    let (sv, (sa, sb)) = dot3_static_grad(a, b.clone());
    assert!(close(v, sv) && all_close(&ga, &sa) && all_close(&gb, &sb));
    let mut p = a.to_vec();
    p.extend(&b);
    gradcheck(
        |p: &[f64]| dot3([p[0], p[1], p[2]], p[3..].to_vec()),
        |p: &[f64]| dot3_grad([p[0], p[1], p[2]], p[3..].to_vec()).1,
        &p,
        tol(),
    )
    .unwrap();

    let x = vec![0.2, 1.5, -0.3, 0.9];
    let (_, g) = variance_grad(x.clone());
    // ∂var/∂xᵢ = 2 (xᵢ - m) / n
    let m = x.iter().sum::<f64>() / 4.0;
    for (gi, xi) in g.iter().zip(&x) {
        assert!(close(*gi, 2.0 * (xi - m) / 4.0));
    }
    assert!(all_close(&g, &variance_static_grad(x.clone()).1));
    gradcheck(
        |x: &[f64]| variance(x.to_vec()),
        |x: &[f64]| variance_grad(x.to_vec()).1,
        &x,
        tol(),
    )
    .unwrap();
    // An empty sum is the constant 0, not a panic.
    assert_eq!(variance_grad(vec![]).1, Vec::<f64>::new());
}

// Closures, typed and untyped: sq(x) + sin(x)·y + sq(y).
#[differentiable]
fn with_closures(x: f64, y: f64) -> f64 {
    let sq = |t: f64| t * t;
    let g = |a: f64, b| f64::sin(a) * b;
    sq(x) + g(x, y) + sq(y)
}

#[differentiable(static)]
fn with_closures_static(x: f64, y: f64) -> f64 {
    x * x + x.sin() * y + y * y
}

// A helper generic over the value type runs on tape values as written: `inline(..)`.
fn cube<V: Copy + std::ops::Mul<Output = V>>(v: V) -> V {
    v * v * v
}

#[differentiable(inline(cube))]
fn uses_cube(x: f64) -> f64 {
    cube(x) + x
}

#[differentiable(static)]
fn uses_cube_static(x: f64) -> f64 {
    x * x * x + x
}

#[test]
fn closures_and_inlined_helpers() {
    for (x, y) in [(0.4, -1.3), (-2.0, 0.25)] {
        let (v, (gx, gy)) = with_closures_grad(x, y);
        assert!(close(v, with_closures(x, y)));
        assert!(close(gx, 2.0 * x + x.cos() * y));
        assert!(close(gy, x.sin() + 2.0 * y));
        let (_, (sx, sy)) = with_closures_static_grad(x, y);
        assert!(close(gx, sx) && close(gy, sy));
        gradcheck(
            |p: &[f64]| with_closures(p[0], p[1]),
            |p: &[f64]| with_closures_grad(p[0], p[1]).1,
            &[x, y],
            tol(),
        )
        .unwrap();
    }
    for x in [1.5, -0.7] {
        let (v, g) = uses_cube_grad(x);
        assert!(close(v, x.powi(3) + x));
        assert!(close(g, 3.0 * x * x + 1.0));
        assert!(close(g, uses_cube_static_grad(x).1));
        gradcheck_scalar(uses_cube, |x| uses_cube_grad(x).1, x, tol()).unwrap();
    }
}

// Local `Vec`s of tape values: `Vec::new` + `push`, `vec![0.0; n]` + index assignment.
#[differentiable]
fn prefix_energy(x: &[f64]) -> f64 {
    let mut acc = Vec::new();
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i];
        acc.push(s * s);
    }
    acc.iter().sum()
}

#[differentiable(static)]
fn prefix_energy_static(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut total = 0.0;
    for i in 0..x.len() {
        s += x[i];
        total += s * s;
    }
    total
}

#[differentiable]
fn smoothed(x: &[f64]) -> f64 {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 1..n - 1 {
        y[i] = (x[i - 1] + x[i] + x[i + 1]) / 3.0;
    }
    y.iter().map(|v| v * v).sum()
}

#[differentiable(static)]
fn smoothed_static(x: &[f64]) -> f64 {
    let n = x.len();
    let mut total = 0.0;
    for i in 1..n - 1 {
        let y = (x[i - 1] + x[i] + x[i + 1]) / 3.0;
        total += y * y;
    }
    total
}

#[test]
fn local_vecs() {
    let x = [0.5, -0.2, 1.1, 0.4];
    let (v, g) = prefix_energy_grad(&x);
    assert_eq!(v.to_bits(), prefix_energy(&x).to_bits());
    let (sv, sg) = prefix_energy_static_grad(&x);
    assert!(close(v, sv) && all_close(&g, &sg));
    gradcheck(
        prefix_energy,
        |x: &[f64]| prefix_energy_grad(x).1,
        &x,
        tol(),
    )
    .unwrap();
    let (v, g) = smoothed_grad(&x);
    assert_eq!(v.to_bits(), smoothed(&x).to_bits());
    let (sv, sg) = smoothed_static_grad(&x);
    assert!(close(v, sv) && all_close(&g, &sg));
    gradcheck(smoothed, |x: &[f64]| smoothed_grad(x).1, &x, tol()).unwrap();
}

// A borrowed slice stays a borrowed slice on the tape: iterated by value, sub-sliced
// (`&x[1..]`), and used again. f(x) = Σ xᵢ² + x₁ + ... + xₙ₋₁ + v₀·n.
#[differentiable]
#[allow(clippy::ptr_arg)] // `&Vec<f64>` on purpose: the tape keeps it a `&Vec<Var>`
fn reborrow(x: &[f64], v: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for xi in x {
        s += xi * xi;
    }
    let tail = &x[1..];
    for t in tail {
        s += *t;
    }
    s + v[0] * x.len() as f64
}

#[differentiable(static)]
#[allow(clippy::ptr_arg)]
fn reborrow_static(x: &[f64], v: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    for i in 1..x.len() {
        s += x[i];
    }
    s + v[0] * x.len() as f64
}

#[test]
fn borrowed_slices_stay_borrowed() {
    let x = [1.0, 2.0, -3.0];
    let (v, (g, gv)) = reborrow_grad(&x, &vec![0.5]);
    assert_eq!(v, reborrow(&x, &vec![0.5]));
    assert_eq!(g, vec![2.0, 5.0, -5.0]);
    assert_eq!(gv, vec![3.0]);
    let (sv, (sg, sgv)) = reborrow_static_grad(&x, &vec![0.5]);
    assert!(close(v, sv) && all_close(&g, &sg) && all_close(&gv, &sgv));
    let mut p = x.to_vec();
    p.push(0.5);
    gradcheck(
        |p: &[f64]| reborrow(&p[..3], &vec![p[3]]),
        |p: &[f64]| reborrow_grad(&p[..3], &vec![p[3]]).1,
        &p,
        tol(),
    )
    .unwrap();
}

// A labeled loop: `continue 'rows` leaves the inner loop at the first product above
// t. The static form breaks out of the inner loop, which is the last statement of
// the outer one, so the two agree.
#[differentiable]
fn labeled(x: &[f64], t: f64) -> f64 {
    let mut s = 0.0;
    'rows: for i in 0..x.len() {
        for j in 0..x.len() {
            if x[i] * x[j] > t {
                continue 'rows;
            }
            s += x[i] * x[j] * t;
        }
    }
    s
}

#[differentiable(static)]
fn labeled_static(x: &[f64], t: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in 0..x.len() {
            if x[i] * x[j] > t {
                break;
            }
            s += x[i] * x[j] * t;
        }
    }
    s
}

#[test]
fn labeled_loops() {
    let x = [0.3, -0.9, 1.4, 0.6];
    let t = 0.5;
    let (v, (g, gt)) = labeled_grad(&x, t);
    assert_eq!(v.to_bits(), labeled(&x, t).to_bits());
    let (sv, (sg, sgt)) = labeled_static_grad(&x, t);
    assert!(close(v, sv) && all_close(&g, &sg) && close(gt, sgt));
    let mut p = x.to_vec();
    p.push(t);
    gradcheck(
        |p: &[f64]| labeled(&p[..4], p[4]),
        |p: &[f64]| {
            let (_, (mut g, gt)) = labeled_grad(&p[..4], p[4]);
            g.push(gt);
            g
        },
        &p,
        tol(),
    )
    .unwrap();
}

// A destructuring `let` of a tuple: r cos θ + r² sin θ.
#[differentiable]
fn polar(r: f64, theta: f64) -> f64 {
    let (c, s) = (theta.cos(), theta.sin());
    r * c + r * r * s
}

#[differentiable(static)]
fn polar_static(r: f64, theta: f64) -> f64 {
    let c = theta.cos();
    let s = theta.sin();
    r * c + r * r * s
}

// An integer type's function in the body: x^min(n, 3).
#[differentiable]
fn capped_power(x: f64, n: usize) -> f64 {
    x.powi(usize::min(n, 3) as i32)
}

#[differentiable(static)]
fn capped_power_static(x: f64, n: usize) -> f64 {
    if n < 3 {
        x.powi(n as i32)
    } else {
        x.powi(3)
    }
}

#[test]
fn tuples_and_integer_calls() {
    for (r, theta) in [(1.5, 0.3), (-0.4, 2.2)] {
        let (v, (gr, gth)) = polar_grad(r, theta);
        assert_eq!(v.to_bits(), polar(r, theta).to_bits());
        assert!(close(gr, theta.cos() + 2.0 * r * theta.sin()));
        let (_, (sr, sth)) = polar_static_grad(r, theta);
        assert!(close(gr, sr) && close(gth, sth));
        gradcheck(
            |p: &[f64]| polar(p[0], p[1]),
            |p: &[f64]| polar_grad(p[0], p[1]).1,
            &[r, theta],
            tol(),
        )
        .unwrap();
    }
    for n in [0, 2, 3, 9] {
        for x in [0.7, -1.3] {
            let (v, g) = capped_power_grad(x, n);
            assert_eq!(v.to_bits(), capped_power(x, n).to_bits());
            assert!(close(g, capped_power_static_grad(x, n).1), "n = {n}");
            gradcheck_scalar(
                |x| capped_power(x, n),
                |x| capped_power_grad(x, n).1,
                x,
                tol(),
            )
            .unwrap();
        }
    }
}

// A call of another function among tensors in a loop: h ← layer(W, h), n times. The
// statement-level static path does not take calls among tensors; the tape records
// one node per call whose backward is `layer_vjp`.
#[differentiable]
fn layer(w: &Tensor, x: &Tensor) -> Tensor {
    w.matmul(x).tanh()
}

#[differentiable]
fn layers(w: &Tensor, x: &Tensor, n: usize) -> f64 {
    let mut h = x.clone();
    for _ in 0..n {
        h = layer(w, &h);
    }
    h.sum()
}

#[differentiable(static)]
fn layers_static(w: &Tensor, x: &Tensor, n: usize) -> f64 {
    let mut h = x.clone();
    for _ in 0..n {
        h = w.matmul(&h).tanh();
    }
    h.sum()
}

#[test]
fn tensor_calls_in_a_loop() {
    let w = Tensor::from_vec(vec![0.5, -0.3, 0.2, 0.8], &[2, 2]);
    let x = Tensor::from_vec(vec![0.7, -0.4], &[2]);
    for n in [0, 1, 3] {
        let (v, (gw, gx)) = layers_grad(&w, &x, n);
        assert_eq!(v.to_bits(), layers(&w, &x, n).to_bits());
        let (sv, (sw, sx)) = layers_static_grad(&w, &x, n);
        assert!(close(v, sv));
        assert!(all_close(gw.as_slice(), sw.as_slice()), "{gw:?} vs {sw:?}");
        assert!(all_close(gx.as_slice(), sx.as_slice()), "{gx:?} vs {sx:?}");
        gradcheck_tensor(
            |w| layers(w, &x, n),
            |w| layers_grad(w, &x, n).1 .0,
            &w,
            tol(),
        )
        .unwrap();
        gradcheck_tensor(
            |x| layers(&w, x, n),
            |x| layers_grad(&w, x, n).1 .1,
            &x,
            tol(),
        )
        .unwrap();
    }
}

// Constructs the static path does not take yet: a closure that assigns a variable of
// the body, and `filter`. Both take the tape unasked (with a warning, allowed above).
#[differentiable]
fn accumulated(x: &[f64]) -> f64 {
    let mut s = 0.0;
    let mut add = |v: f64| s += v * v;
    for i in 0..x.len() {
        add(x[i]);
    }
    s
}

#[differentiable]
fn positive_sum(x: &[f64]) -> f64 {
    x.iter().filter(|v| **v > 0.0).map(|v| v.exp()).sum()
}

#[differentiable(static)]
fn accumulated_static(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i];
    }
    s
}

#[differentiable(static)]
fn positive_sum_static(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        if x[i] > 0.0 {
            s += x[i].exp();
        }
    }
    s
}

#[test]
fn constructs_the_static_path_does_not_take_yet() {
    let x = [0.4, -1.2, 0.9, -0.1];
    let (v, g) = accumulated_grad(&x);
    let (sv, sg) = accumulated_static_grad(&x);
    assert!(close(v, sv) && all_close(&g, &sg));
    gradcheck(accumulated, |x: &[f64]| accumulated_grad(x).1, &x, tol()).unwrap();
    let (v, g) = positive_sum_grad(&x);
    let (sv, sg) = positive_sum_static_grad(&x);
    assert!(close(v, sv) && all_close(&g, &sg));
    gradcheck(positive_sum, |x: &[f64]| positive_sum_grad(x).1, &x, tol()).unwrap();
}
