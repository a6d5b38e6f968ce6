//! The tape fallback: bodies with loops, slices, closures, `match`, early `return` and
//! local `Vec`s take the tape automatically (no option), give the same result as
//! `#[differentiable(tape)]`, and agree with central finite differences.
//!
//! When the static path learns loops and slices, the same functions get static
//! gradients to compare against these.

#![allow(dead_code)]
// some primals are used only through their companions
// `b = b * 2.0` as the tutorial writes it; index loops because indexing is under test.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

use adjoint::check::{gradcheck, gradcheck_scalar, Tolerance};
use adjoint::prelude::*;

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

// The tutorial's data-dependent function: b = 2a, doubled while |b| < 1000, then
// b or 100 b by its sign. Piecewise linear: f(a) = c·2^k·a, so f'(a) = f(a)/a.
#[differentiable]
fn doubling(a: f64) -> f64 {
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

#[differentiable(tape)]
fn doubling_tape(a: f64) -> f64 {
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

#[test]
fn doubling_gradient_is_value_over_input() {
    for a in [0.3, -0.7, 1.9, -123.4, 5e-3] {
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

// The tensor form: `while b.norm() < 1000`, `if b.sum() > 0`. Each output is c·2^k·aᵢ
// with the same c and k, so the VJP with seed v is v ⊙ f(a) / a. Without an option it
// now takes the static path (tests/grad_control_tensor.rs), checked here against the
// tape twin.
#[differentiable]
fn doubling_tensor(a: &Tensor) -> Tensor {
    let mut b = a * 2.0;
    while b.norm() < 1000.0 {
        b = b * 2.0;
    }
    if b.sum() > 0.0 {
        b
    } else {
        b * 100.0
    }
}

#[differentiable(tape)]
fn doubling_tensor_tape(a: &Tensor) -> Tensor {
    let mut b = a * 2.0;
    while b.norm() < 1000.0 {
        b = b * 2.0;
    }
    if b.sum() > 0.0 {
        b
    } else {
        b * 100.0
    }
}

#[test]
fn doubling_tensor_gradient_is_value_over_input() {
    let v = Tensor::from_vec(vec![0.1, 1.0, 0.0001], &[3]);
    for a in [[0.5, -1.2, 0.3], [-0.5, -1.2, 0.3], [12.0, 3.0, -40.0]] {
        let a = Tensor::from_vec(a.to_vec(), &[3]);
        let y = doubling_tensor(&a);
        for seed in [Tensor::ones(&[3]), v.clone()] {
            let (value, g) = doubling_tensor_vjp(&a, seed.clone());
            let (tvalue, tg) = doubling_tensor_tape_vjp(&a, seed.clone());
            assert_eq!(value.as_slice(), y.as_slice());
            assert_eq!(tvalue.as_slice(), y.as_slice());
            assert_eq!(g.shape(), &[3]);
            for i in 0..3 {
                let want = seed.as_slice()[i] * y.as_slice()[i] / a.as_slice()[i];
                assert!(close(g.as_slice()[i], want), "{g:?}");
                assert_eq!(g.as_slice()[i].to_bits(), tg.as_slice()[i].to_bits());
            }
        }
    }
}

// f(x) = Σ (1 - xᵢ)² + 100 (xᵢ₊₁ - xᵢ²)²
#[differentiable]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
    }
    s
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
    let (_, gs) = rosenbrock_vjp(&x0, -0.5);
    assert!(gs.iter().zip(&g).all(|(a, b)| close(*a, -0.5 * b)));
    // At the minimum every partial is 0.
    let (m, gm) = rosenbrock_grad(&[1.0; 6]);
    assert_eq!(m, 0.0);
    assert!(gm.iter().all(|&d| d == 0.0));
}

// p(x) = c₀ + c₁x + ... + cₙ₋₁xⁿ⁻¹ by Horner's rule; ∂p/∂cᵢ = xⁱ, ∂p/∂x = p'(x).
#[differentiable]
fn horner(c: &[f64], x: f64) -> f64 {
    let n = c.len();
    let mut y = 0.0;
    for i in 0..n {
        y = y * x + c[n - 1 - i];
    }
    y
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

// The logistic map x ← r x (1 - x), n times.
#[differentiable]
fn logistic(x0: f64, r: f64, n: usize) -> f64 {
    let mut x = x0;
    for _ in 0..n {
        x = r * x * (1.0 - x);
    }
    x
}

#[test]
fn logistic_recurrence() {
    for (x0, r, n) in [(0.2, 2.5, 10), (0.6, 3.2, 7), (0.3, 1.5, 0)] {
        let (v, (gx, gr)) = logistic_grad(x0, r, n);
        assert_eq!(v.to_bits(), logistic(x0, r, n).to_bits());
        gradcheck(
            |p: &[f64]| logistic(p[0], p[1], n),
            |p: &[f64]| logistic_grad(p[0], p[1], n).1,
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
#[differentiable]
fn pairwise(x: &[f64]) -> f64 {
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

#[test]
fn nested_loops_with_a_branch() {
    let x0 = [0.3, -1.1, 2.0, 0.7, 0.71];
    let (v, _) = pairwise_grad(&x0);
    assert_eq!(v.to_bits(), pairwise(&x0).to_bits());
    gradcheck(pairwise, |x: &[f64]| pairwise_grad(x).1, &x0, tol()).unwrap();
}

// √a by Newton's iteration x ← (x + a/x)/2, stopped by a tolerance or a counter:
// d√a/da = 1/(2√a).
#[differentiable]
fn newton_sqrt(a: f64) -> f64 {
    let mut x = a;
    let mut k = 0;
    while k < 50 && (x * x - a).abs() > 1e-13 * a {
        x = 0.5 * (x + a / x);
        k += 1;
    }
    x
}

#[test]
fn newton_iteration() {
    for a in [0.5, 2.0, 10.0, 1234.5] {
        let (v, g) = newton_sqrt_grad(a);
        assert!(close(v, a.sqrt()));
        assert!((g - 0.5 / a.sqrt()).abs() < 1e-9, "{a}: {g}");
        gradcheck_scalar(newton_sqrt, |a| newton_sqrt_grad(a).1, a, tol()).unwrap();
    }
}

// The Huber-like function: -x - 1/2 below -1, x²/2 on [-1, 1), x - 1/2 above, with an
// early `return`; and a `match` on an integer mode.
#[differentiable]
fn piecewise(x: f64) -> f64 {
    if x < -1.0 {
        return -x - 0.5;
    }
    if x < 1.0 {
        0.5 * x * x
    } else {
        x - 0.5
    }
}

#[differentiable]
fn by_mode(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.sin(),
        1 => x * x,
        _ => 2.0,
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
        gradcheck_scalar(piecewise, |x| piecewise_grad(x).1, x, tol()).unwrap();
        assert!(close(by_mode_grad(x, 0).1, x.cos()));
        assert!(close(by_mode_grad(x, 1).1, 2.0 * x));
        assert_eq!(by_mode_grad(x, 7), (2.0, 0.0));
    }
}

// The first element above t, times t (0 if none): a search loop with `break`.
#[differentiable]
fn first_above(x: &[f64], t: f64) -> f64 {
    let mut found = 0.0;
    for i in 0..x.len() {
        if x[i] > t {
            found = x[i] * t;
            break;
        }
    }
    found
}

// A `loop` whose value comes from `break`.
#[differentiable]
fn damped(x: f64) -> f64 {
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
    gradcheck(
        |p: &[f64]| first_above(&p[..5], p[5]),
        |p: &[f64]| {
            let (_, (mut g, gt)) = first_above_grad(&p[..5], p[5]);
            g.push(gt);
            g
        },
        &p,
        tol(),
    )
    .unwrap();
    gradcheck_scalar(damped, |x| damped_grad(x).1, 0.8, tol()).unwrap();
}

// ⟨a, b⟩ over an array and a Vec, with iterator adapters and `.sum()`.
#[differentiable]
fn dot3(a: [f64; 3], b: Vec<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

// The variance Σ (xᵢ - m)² / n with m the mean: `len()`, `iter().sum::<f64>()`.
#[differentiable]
fn variance(x: Vec<f64>) -> f64 {
    let m: f64 = x.iter().sum::<f64>() / x.len() as f64;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

#[test]
fn array_and_vec_parameters() {
    let a = [1.0, -2.0, 0.5];
    let b = vec![0.3, 0.7, -1.1];
    let (v, (ga, gb)): (f64, ([f64; 3], Vec<f64>)) = dot3_grad(a, b.clone());
    assert!(close(v, dot3(a, b.clone())));
    assert_eq!(ga, [0.3, 0.7, -1.1]);
    assert_eq!(gb, vec![1.0, -2.0, 0.5]);
    let x = vec![0.2, 1.5, -0.3, 0.9];
    let (_, g) = variance_grad(x.clone());
    // ∂var/∂xᵢ = 2 (xᵢ - m) / n
    let m = x.iter().sum::<f64>() / 4.0;
    for (gi, xi) in g.iter().zip(&x) {
        assert!(close(*gi, 2.0 * (xi - m) / 4.0));
    }
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

#[test]
fn closures() {
    let (x, y) = (0.4, -1.3);
    let (v, (gx, gy)) = with_closures_grad(x, y);
    assert!(close(v, with_closures(x, y)));
    assert!(close(gx, 2.0 * x + x.cos() * y));
    assert!(close(gy, x.sin() + 2.0 * y));
}

// A helper generic over the value type runs on tape values as written: `inline(..)`.
fn cube<V: Copy + std::ops::Mul<Output = V>>(v: V) -> V {
    v * v * v
}

#[differentiable(inline(cube))]
fn uses_cube(x: f64) -> f64 {
    cube(x) + x
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

#[differentiable]
fn smoothed(x: &[f64]) -> f64 {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 1..n - 1 {
        y[i] = (x[i - 1] + x[i] + x[i + 1]) / 3.0;
    }
    y.iter().map(|v| v * v).sum()
}

#[test]
fn helpers_and_local_vecs() {
    let (v, g) = uses_cube_grad(1.5);
    assert!(close(v, 1.5f64.powi(3) + 1.5));
    assert!(close(g, 3.0 * 1.5 * 1.5 + 1.0));
    let x = [0.5, -0.2, 1.1, 0.4];
    gradcheck(
        prefix_energy,
        |x: &[f64]| prefix_energy_grad(x).1,
        &x,
        tol(),
    )
    .unwrap();
    gradcheck(smoothed, |x: &[f64]| smoothed_grad(x).1, &x, tol()).unwrap();
}

// f32 slices: Σ xᵢ³ over an `&[f32]`, gradient 3xᵢ².
#[differentiable]
fn cubes32(x: &[f32]) -> f32 {
    let mut s = 0.0;
    for v in x.iter() {
        s += v.powi(3);
    }
    s
}

#[test]
fn f32_slices() {
    let (v, g): (f32, Vec<f32>) = cubes32_grad(&[1.0, -2.0]);
    assert_eq!(v, -7.0);
    assert_eq!(g, vec![3.0, 12.0]);
}

// `static` keeps a straight-line function on the static path; it compiles and agrees
// with the tape.
#[differentiable(static)]
fn straight(x: f64, y: f64) -> f64 {
    (x * y).sin() + x / y
}

#[differentiable(tape)]
fn straight_tape(x: f64, y: f64) -> f64 {
    (x * y).sin() + x / y
}

#[test]
fn static_and_tape_agree() {
    let (v, g) = straight_grad(0.3, 1.7);
    let (tv, tg) = straight_tape_grad(0.3, 1.7);
    assert!(close(v, tv) && close(g.0, tg.0) && close(g.1, tg.1));
}

// A borrowed slice stays a borrowed slice on the tape: iterated by value, reborrowed,
// and used again. f(x) = Σ xᵢ² + x₁ + ... + xₙ₋₁ (the tail).
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

#[test]
fn borrowed_slices_stay_borrowed() {
    let x = [1.0, 2.0, -3.0];
    let (v, (g, gv)) = reborrow_grad(&x, &vec![0.5]);
    assert_eq!(v, reborrow(&x, &vec![0.5]));
    assert_eq!(g, vec![2.0, 5.0, -5.0]);
    assert_eq!(gv, vec![3.0]);
}

// Tensors in a loop: h ← tanh(W h), n times, then Σ h + max h. The loop sends it to the
// tape; the tensor operations are the tape's.
#[differentiable]
fn unrolled(w: &Tensor, x: &Tensor, n: usize) -> f64 {
    let mut h = x.clone();
    for _ in 0..n {
        h = w.matmul(&h).tanh();
    }
    h.sum() + h.max()
}

#[test]
fn tensor_loop() {
    let w = Tensor::from_vec(vec![0.5, -0.3, 0.2, 0.8], &[2, 2]);
    let x = Tensor::from_vec(vec![0.7, -0.4], &[2]);
    let (v, (gw, gx)) = unrolled_grad(&w, &x, 3);
    assert!(close(v, unrolled(&w, &x, 3)));
    assert_eq!((gw.shape(), gx.shape()), (&[2, 2][..], &[2][..]));
    adjoint::check::gradcheck_tensor(
        |w| unrolled(w, &x, 3),
        |w| unrolled_grad(w, &x, 3).1 .0,
        &w,
        tol(),
    )
    .unwrap();
    adjoint::check::gradcheck_tensor(
        |x| unrolled(&w, x, 3),
        |x| unrolled_grad(&w, x, 3).1 .1,
        &x,
        tol(),
    )
    .unwrap();
}
