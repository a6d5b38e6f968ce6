//! Control flow on the static path: loops over slices, `while` with data-dependent trip
//! counts, nested loops with branches, `break`, `continue` and early `return`. Every
//! function is `#[differentiable(static)]` (so a silent fall back to the tape fails to
//! compile) and is checked against central finite differences and against its
//! `#[differentiable(tape)]` twin. (What takes the tape without an option is tested in
//! `grad_tape_fallback.rs`.)

#![allow(dead_code)]
// `b = b * 2.0` as the tutorial writes it; index loops because indexing is under test.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

use adjoint::check::{gradcheck, gradcheck_scalar, gradcheck_tensor, Tolerance};
use adjoint::prelude::*;

/// Defines `$name` on the static path and `$tape` on the tape, with one body.
macro_rules! twins {
    ($name:ident / $tape:ident ($($p:ident : $t:ty),*) -> $r:ty $body:block) => {
        #[differentiable(static)]
        fn $name($($p: $t),*) -> $r $body

        #[differentiable(tape)]
        fn $tape($($p: $t),*) -> $r $body
    };
}

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

// The tutorial's data-dependent function: b = 2a, doubled while |b| < 1000, then b or
// 100 b by its sign. Piecewise linear: f(a) = c·2^k·a, so f'(a) = f(a)/a.
twins! {
    doubling / doubling_tape (a: f64) -> f64 {
        let mut b = 2.0 * a;
        while b.abs() < 1000.0 {
            b = b * 2.0;
        }
        if b > 0.0 {
            b
        } else {
            100.0 * b
        }
    }
}

#[test]
fn doubling_gradient_is_value_over_input() {
    for a in [0.3, -0.7, 1.9, -123.4, 5e-3, 2000.0] {
        let y = doubling(a);
        let (v, g) = doubling_grad(a);
        let (tv, tg) = doubling_tape_grad(a);
        assert_eq!(v.to_bits(), y.to_bits());
        assert_eq!((v.to_bits(), g.to_bits()), (tv.to_bits(), tg.to_bits()));
        assert!(close(g, y / a), "a = {a}: {g} vs {}", y / a);
        let (_, g3) = doubling_vjp(a, 3.0);
        assert!(close(g3, 3.0 * g));
    }
}

// f(x) = Σ (1 - xᵢ)² + 100 (xᵢ₊₁ - xᵢ²)²
twins! {
    rosenbrock / rosenbrock_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() - 1 {
            let a = 1.0 - x[i];
            let b = x[i + 1] - x[i] * x[i];
            s += a * a + 100.0 * b * b;
        }
        s
    }
}

#[test]
fn rosenbrock_over_a_slice() {
    let x0 = [-1.2, 1.0, 0.3, 0.9, 1.1];
    let (v, g) = rosenbrock_grad(&x0);
    assert_eq!(v.to_bits(), rosenbrock(&x0).to_bits());
    assert_eq!(g.len(), x0.len());
    gradcheck(rosenbrock, |x: &[f64]| rosenbrock_grad(x).1, &x0, tol()).unwrap();
    // ∂f/∂x₀ by hand: -2(1 - x₀) - 400 x₀ (x₁ - x₀²)
    let d0 = -2.0 * (1.0 - x0[0]) - 400.0 * x0[0] * (x0[1] - x0[0] * x0[0]);
    assert!(close(g[0], d0));
    assert!(all_close(&g, &rosenbrock_tape_grad(&x0).1));
    let (_, gs) = rosenbrock_vjp(&x0, -0.5);
    assert!(gs.iter().zip(&g).all(|(a, b)| close(*a, -0.5 * b)));
    let (m, gm) = rosenbrock_grad(&[1.0; 6]);
    assert_eq!(m, 0.0);
    assert!(gm.iter().all(|&d| d == 0.0));
}

// p(x) = c₀ + c₁x + ... + cₙ₋₁xⁿ⁻¹ by Horner's rule; ∂p/∂cᵢ = xⁱ, ∂p/∂x = p'(x).
twins! {
    horner / horner_tape (c: &[f64], x: f64) -> f64 {
        let n = c.len();
        let mut y = 0.0;
        for i in 0..n {
            y = y * x + c[n - 1 - i];
        }
        y
    }
}

#[test]
fn horner_polynomial() {
    let c = [1.0, -2.0, 0.5, 3.0];
    let x = 0.7;
    let (v, (gc, gx)) = horner_grad(&c, x);
    assert!(close(v, 1.0 - 2.0 * x + 0.5 * x * x + 3.0 * x * x * x));
    for (i, g) in gc.iter().enumerate() {
        assert!(close(*g, x.powi(i as i32)));
    }
    assert!(close(gx, -2.0 + x + 9.0 * x * x));
    let (_, (tc, tx)) = horner_tape_grad(&c, x);
    assert!(all_close(&gc, &tc) && close(gx, tx));
    let mut p = c.to_vec();
    p.push(x);
    gradcheck(
        |p: &[f64]| horner(&p[..4], p[4]),
        |p: &[f64]| {
            let (_, (mut g, gx)) = horner_grad(&p[..4], p[4]);
            g.push(gx);
            g
        },
        &p,
        tol(),
    )
    .unwrap();
}

// The logistic map x ← r x (1 - x), n times: x is pushed every iteration.
twins! {
    logistic / logistic_tape (x0: f64, r: f64, n: usize) -> f64 {
        let mut x = x0;
        for _ in 0..n {
            x = r * x * (1.0 - x);
        }
        x
    }
}

#[test]
fn logistic_recurrence() {
    for (x0, r, n) in [(0.2, 2.5, 10), (0.6, 3.2, 7), (0.3, 1.5, 0)] {
        let (v, (gx, gr)) = logistic_grad(x0, r, n);
        assert_eq!(v.to_bits(), logistic(x0, r, n).to_bits());
        let (_, (tx, tr)) = logistic_tape_grad(x0, r, n);
        assert!(close(gx, tx) && close(gr, tr));
        gradcheck(
            |p: &[f64]| logistic(p[0], p[1], n),
            |p: &[f64]| {
                let (_, (a, b)) = logistic_grad(p[0], p[1], n);
                vec![a, b]
            },
            &[x0, r],
            tol(),
        )
        .unwrap();
        if n == 0 {
            assert_eq!((gx, gr), (1.0, 0.0));
        }
    }
}

// Σ_{i<j} (xᵢ - xⱼ)² where xᵢ > xⱼ, -(xᵢ - xⱼ)/2 otherwise: nested loops with dependent
// bounds and a branch inside.
twins! {
    pairwise / pairwise_tape (x: &[f64]) -> f64 {
        let n = x.len();
        let mut s = 0.0;
        for i in 0..n {
            for j in (i + 1)..n {
                let d = x[i] - x[j];
                if d > 0.0 {
                    s += d * d;
                } else {
                    s -= 0.5 * d;
                }
            }
        }
        s
    }
}

#[test]
fn nested_loops_with_a_branch() {
    let x0 = [0.3, -1.1, 2.0, 0.7, 0.71];
    let (v, g) = pairwise_grad(&x0);
    assert_eq!(v.to_bits(), pairwise(&x0).to_bits());
    assert!(all_close(&g, &pairwise_tape_grad(&x0).1));
    gradcheck(pairwise, |x: &[f64]| pairwise_grad(x).1, &x0, tol()).unwrap();
}

// √a by Newton's iteration x ← (x + a/x)/2, stopped by a tolerance or a counter:
// d√a/da = 1/(2√a).
twins! {
    newton_sqrt / newton_sqrt_tape (a: f64) -> f64 {
        let mut x = a;
        let mut k = 0;
        while k < 50 && (x * x - a).abs() > 1e-13 * a {
            x = 0.5 * (x + a / x);
            k += 1;
        }
        x
    }
}

#[test]
fn newton_iteration() {
    for a in [0.5, 2.0, 10.0, 1234.5] {
        let (v, g) = newton_sqrt_grad(a);
        assert!(close(v, a.sqrt()));
        assert!((g - 0.5 / a.sqrt()).abs() < 1e-9, "{a}: {g}");
        assert!(close(g, newton_sqrt_tape_grad(a).1));
        gradcheck_scalar(newton_sqrt, |a| newton_sqrt_grad(a).1, a, tol()).unwrap();
    }
}

// The Huber-like function: -x - 1/2 below -1, x²/2 on [-1, 1), x - 1/2 above, with an
// early `return`.
twins! {
    piecewise / piecewise_tape (x: f64) -> f64 {
        if x < -1.0 {
            return -x - 0.5;
        }
        if x < 1.0 {
            0.5 * x * x
        } else {
            x - 0.5
        }
    }
}

// An early `return` from inside a loop: the first partial sum above 1, else the sum.
twins! {
    first_partial_sum / first_partial_sum_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() {
            s += x[i] * x[i];
            if s > 1.0 {
                return s.sqrt();
            }
        }
        s
    }
}

#[test]
fn piecewise_functions() {
    for x in [-3.0, -1.5, -0.4, 0.2, 0.9, 1.3, 4.0] {
        let (v, g) = piecewise_grad(x);
        assert_eq!(v.to_bits(), piecewise(x).to_bits());
        let want = if x < -1.0 {
            -1.0
        } else if x < 1.0 {
            x
        } else {
            1.0
        };
        assert_eq!(g, want);
        assert_eq!(g, piecewise_tape_grad(x).1);
        gradcheck_scalar(piecewise, |x| piecewise_grad(x).1, x, tol()).unwrap();
    }
    for x0 in [vec![0.3, 0.4, 0.9, 2.0], vec![0.1, 0.2]] {
        let (v, g) = first_partial_sum_grad(&x0);
        assert_eq!(v.to_bits(), first_partial_sum(&x0).to_bits());
        assert!(all_close(&g, &first_partial_sum_tape_grad(&x0).1));
        gradcheck(
            first_partial_sum,
            |x: &[f64]| first_partial_sum_grad(x).1,
            &x0,
            tol(),
        )
        .unwrap();
    }
}

// The first element above t, times t (0 if none): a search loop with `break`.
twins! {
    first_above / first_above_tape (x: &[f64], t: f64) -> f64 {
        let mut found = 0.0;
        for i in 0..x.len() {
            if x[i] > t {
                found = x[i] * t;
                break;
            }
        }
        found
    }
}

// A `loop` whose value comes from `break`.
twins! {
    damped / damped_tape (x: f64) -> f64 {
        let mut y = x;
        let mut k = 0;
        loop {
            y = y.sin() + 0.5 * y;
            k += 1;
            if k == 5 {
                break y * 2.0;
            }
        }
    }
}

// `continue` skips the negative elements; `(0..n).rev()` walks backwards.
twins! {
    skip_negative / skip_negative_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in (0..x.len()).rev() {
            if x[i] < 0.0 {
                continue;
            }
            s = s * 0.5 + x[i].sin();
        }
        s
    }
}

#[test]
fn break_out_of_a_search_loop() {
    let x = [0.1, 0.4, 1.7, 2.5, 0.2];
    let (v, (gx, gt)) = first_above_grad(&x, 1.0);
    assert_eq!(v, 1.7);
    assert_eq!(gx, vec![0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(gt, 1.7);
    let (v, (gx, gt)) = first_above_grad(&x, 3.0);
    assert_eq!((v, gt), (0.0, 0.0));
    assert!(gx.iter().all(|&d| d == 0.0));
    let mut p = x.to_vec();
    p.push(0.9);
    let grad = |p: &[f64]| {
        let (_, (mut g, gt)) = first_above_grad(&p[..5], p[5]);
        g.push(gt);
        g
    };
    gradcheck(|p: &[f64]| first_above(&p[..5], p[5]), grad, &p, tol()).unwrap();
    let (_, (tx, tt)) = first_above_tape_grad(&p[..5], p[5]);
    let g = grad(&p);
    assert!(all_close(&g[..5], &tx) && close(g[5], tt));

    gradcheck_scalar(damped, |x| damped_grad(x).1, 0.8, tol()).unwrap();
    assert!(close(damped_grad(0.8).1, damped_tape_grad(0.8).1));
    assert_eq!(damped_grad(0.8).0.to_bits(), damped(0.8).to_bits());

    let x = [0.3, -0.2, 1.1, -4.0, 0.7];
    gradcheck(
        skip_negative,
        |x: &[f64]| skip_negative_grad(x).1,
        &x,
        tol(),
    )
    .unwrap();
    assert!(all_close(
        &skip_negative_grad(&x).1,
        &skip_negative_tape_grad(&x).1
    ));
}

// ⟨a, b⟩ over an array and a Vec.
twins! {
    dot3 / dot3_tape (a: [f64; 3], b: Vec<f64>) -> f64 {
        let mut s = 0.0;
        for i in 0..3 {
            s += a[i] * b[i];
        }
        s
    }
}

// The variance Σ (xᵢ - m)² / n with m the mean: `len()`, `iter().sum::<f64>()`, and a
// loop over the elements.
twins! {
    variance / variance_tape (x: Vec<f64>) -> f64 {
        let m: f64 = x.iter().sum::<f64>() / x.len() as f64;
        let mut s = 0.0;
        for &v in x.iter() {
            s += (v - m) * (v - m);
        }
        s / x.len() as f64
    }
}

// Element and index together: Σ i·xᵢ² over `&[f32]`, with `enumerate`.
twins! {
    weighted / weighted_tape (x: &[f32]) -> f32 {
        let mut s = 0.0;
        for (i, &v) in x.iter().enumerate() {
            s += (i as f32) * v * v;
        }
        s
    }
}

#[test]
fn array_and_vec_parameters() {
    let a = [1.0, -2.0, 0.5];
    let b = vec![0.3, 0.7, -1.1];
    let (v, (ga, gb)): (f64, ([f64; 3], Vec<f64>)) = dot3_grad(a, b.clone());
    assert!(close(v, dot3(a, b.clone())));
    assert_eq!(ga, [0.3, 0.7, -1.1]);
    assert_eq!(gb, vec![1.0, -2.0, 0.5]);
    let (_, (ta, tb)) = dot3_tape_grad(a, b.clone());
    assert!(all_close(&ga, &ta) && all_close(&gb, &tb));

    let x = vec![0.2, 1.5, -0.3, 0.9];
    let (_, g) = variance_grad(x.clone());
    // ∂var/∂xᵢ = 2 (xᵢ - m) / n
    let m = x.iter().sum::<f64>() / 4.0;
    for (gi, xi) in g.iter().zip(&x) {
        assert!(close(*gi, 2.0 * (xi - m) / 4.0));
    }
    assert!(all_close(&g, &variance_tape_grad(x.clone()).1));
    gradcheck(
        |x: &[f64]| variance(x.to_vec()),
        |x: &[f64]| variance_grad(x.to_vec()).1,
        &x,
        tol(),
    )
    .unwrap();

    let x = [0.5f32, -1.0, 2.0];
    let (v, g) = weighted_grad(&x);
    assert_eq!(v, weighted(&x));
    assert_eq!(g, vec![0.0, -2.0, 8.0]);
    assert_eq!(g, weighted_tape_grad(&x).1);
}

// f32 elements by reference: Σ xᵢ³ over an `&[f32]` with `for v in x.iter()` (no `&v`
// pattern: `v.powi(3)` auto-derefs), gradient 3xᵢ².
twins! {
    cubes32 / cubes32_tape (x: &[f32]) -> f32 {
        let mut s = 0.0;
        for v in x.iter() {
            s += v.powi(3);
        }
        s
    }
}

#[test]
fn f32_elements_by_reference() {
    let (v, g): (f32, Vec<f32>) = cubes32_grad(&[1.0, -2.0]);
    assert_eq!(v, -7.0);
    assert_eq!(g, vec![3.0, 12.0]);
    assert_eq!(cubes32_tape_grad(&[1.0, -2.0]), (v, g));
    let x = [0.5f32, -1.5, 2.0];
    let tol32 = Tolerance::default().eps(1e-2).atol(1e-2).rtol(1e-3);
    gradcheck(cubes32, |x: &[f32]| cubes32_grad(x).1, &x, tol32).unwrap();
}

// Tensors in a loop: h ← tanh(W h), n times (a matrix-vector product), then Σ h + max h.
twins! {
    unrolled / unrolled_tape (w: &Tensor, x: &Tensor, n: usize) -> f64 {
        let mut h = x.clone();
        for _ in 0..n {
            h = w.matmul(&h).tanh();
        }
        h.sum() + h.max()
    }
}

#[test]
fn tensor_loop() {
    let w = Tensor::from_vec(vec![0.5, -0.3, 0.2, 0.8], &[2, 2]);
    let x = Tensor::from_vec(vec![0.7, -0.4], &[2]);
    for n in [0, 1, 3] {
        let (v, (gw, gx)) = unrolled_grad(&w, &x, n);
        assert_eq!(v.to_bits(), unrolled(&w, &x, n).to_bits());
        assert_eq!((gw.shape(), gx.shape()), (&[2, 2][..], &[2][..]));
        let (tv, (tw, tx)) = unrolled_tape_grad(&w, &x, n);
        assert!(close(v, tv));
        assert!(all_close(gw.as_slice(), tw.as_slice()), "{gw:?} vs {tw:?}");
        assert!(all_close(gx.as_slice(), tx.as_slice()), "{gx:?} vs {tx:?}");
        gradcheck_tensor(
            |w| unrolled(w, &x, n),
            |w| unrolled_grad(w, &x, n).1 .0,
            &w,
            tol(),
        )
        .unwrap();
        gradcheck_tensor(
            |x| unrolled(&w, x, n),
            |x| unrolled_grad(&w, x, n).1 .1,
            &x,
            tol(),
        )
        .unwrap();
    }
}

// `wrt` on a slice function: only `c` gets a gradient.
#[differentiable(static, wrt(c))]
fn horner_c(c: &[f64], x: f64) -> f64 {
    let mut y = 0.0;
    for i in (0..c.len()).rev() {
        y = y * x + c[i];
    }
    y
}

#[test]
fn wrt_a_slice() {
    let (_, g) = horner_c_grad(&[1.0, 2.0, 3.0], 2.0);
    assert_eq!(g, vec![1.0, 2.0, 4.0]);
}

// An `if` inside a `while` condition and inside an `if` condition, in a body with a
// loop: the default attribute takes the tape (the statement-level static path takes
// conditions without control flow only). It once failed to compile, with a hint to
// remove a `static` that was not written. The tape warning is allowed.
#[allow(deprecated)]
#[differentiable]
fn branchy_condition(x: f64, y: f64) -> f64 {
    let mut s = x;
    let mut k = 0;
    while k < 3 && (if s > 0.25 { s } else { y }) > 0.0 {
        k += 1;
        s = s * y + 0.1;
    }
    if (if s > 1.0 { s } else { x }) < 0.5 {
        s * 2.0
    } else {
        s
    }
}

#[differentiable(tape)]
fn branchy_condition_tape(x: f64, y: f64) -> f64 {
    let mut s = x;
    let mut k = 0;
    while k < 3 && (if s > 0.25 { s } else { y }) > 0.0 {
        k += 1;
        s = s * y + 0.1;
    }
    if (if s > 1.0 { s } else { x }) < 0.5 {
        s * 2.0
    } else {
        s
    }
}

#[test]
fn control_flow_inside_conditions() {
    for (x, y) in [(0.7, 0.9), (0.1, 1.3), (-0.4, 0.6), (2.0, -0.5)] {
        let (v, (gx, gy)) = branchy_condition_grad(x, y);
        assert_eq!(v.to_bits(), branchy_condition(x, y).to_bits());
        let (tv, (tx, ty)) = branchy_condition_tape_grad(x, y);
        assert!(close(v, tv) && close(gx, tx) && close(gy, ty));
        gradcheck(
            |p: &[f64]| branchy_condition(p[0], p[1]),
            |p: &[f64]| {
                let (_, (a, b)) = branchy_condition_grad(p[0], p[1]);
                vec![a, b]
            },
            &[x, y],
            tol(),
        )
        .unwrap();
    }
}
