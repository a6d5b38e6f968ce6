//! Tensors on the static path of bodies with loops and branches: tensor-valued
//! loop-carried variables, conditions computed from tensors, tensor results. Each
//! function is checked against a `tape` twin, a closed form where there is one, and
//! central finite differences.

#![allow(dead_code)]
// some primals are used only through their companions
// `b = b * 2.0` as the tutorial writes it.
#![allow(clippy::assign_op_pattern)]

use adjoint::check::{gradcheck, gradcheck_tensor, vjpcheck, Tolerance};
use adjoint::prelude::*;

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
        assert!(
            (x - y).abs() <= 1e-12 * (1.0 + x.abs().max(y.abs())),
            "{what}: {:?} vs {:?}",
            a.as_slice(),
            b.as_slice()
        );
    }
}

// The tutorial's data-dependent function on a tensor: b = 2a, doubled while
// |b| < 1000, then b or 100 b by the sign of its sum. Every output is c·2^k·aᵢ with
// the same c and k, so the VJP with seed v is v ⊙ f(a) / a.
#[differentiable(static)]
fn doubling(a: &Tensor) -> Tensor {
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
fn doubling_tape(a: &Tensor) -> Tensor {
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
fn doubling_vjp_is_value_over_input() {
    let v = Tensor::from_vec(vec![0.1, 1.0, 0.0001], &[3]);
    for a in [
        [0.5, -1.2, 0.3],
        [-0.5, -1.2, 0.3],
        [12.0, 3.0, -40.0],
        [700.0, 1.0, 2.0],
        [-0.001, 0.002, -0.003],
    ] {
        let a = Tensor::from_vec(a.to_vec(), &[3]);
        let y = doubling(&a);
        for seed in [Tensor::ones(&[3]), v.clone()] {
            let (value, g) = doubling_vjp(&a, seed.clone());
            let (tvalue, tg) = doubling_tape_vjp(&a, seed.clone());
            assert_eq!(value.as_slice(), y.as_slice());
            assert_eq!(tvalue.as_slice(), y.as_slice());
            assert_close(&g, &tg, "static vs tape");
            let want = &seed * &y / &a;
            assert_close(&g, &want, "v f(a)/a");
            let f = |x: &[f64]| doubling(&Tensor::from_vec(x.to_vec(), &[3])).to_vec();
            let vjp = |x: &[f64]| {
                doubling_vjp(&Tensor::from_vec(x.to_vec(), &[3]), seed.clone())
                    .1
                    .to_vec()
            };
            // Away from the jumps (|b| crossing 1000, the sum crossing 0) f is linear.
            let eps = Tolerance::default().eps(1e-7).atol(1e-4).rtol(1e-6);
            vjpcheck(f, vjp, a.as_slice(), seed.as_slice(), eps).unwrap();
        }
    }
}

// An RNN-style recurrence over n steps with the weights as parameters:
// h ← tanh(h W + b), the loss the mean of the last state.
#[differentiable(static)]
fn rnn(h0: &Tensor, w: &Tensor, b: &Tensor, n: usize) -> f64 {
    let mut h = h0.clone();
    for _ in 0..n {
        h = (h.matmul(w) + b).tanh();
    }
    h.mean()
}

#[differentiable(tape)]
fn rnn_tape(h0: &Tensor, w: &Tensor, b: &Tensor, n: usize) -> f64 {
    let mut h = h0.clone();
    for _ in 0..n {
        h = (h.matmul(w) + b).tanh();
    }
    h.mean()
}

fn rnn_inputs() -> (Tensor, Tensor, Tensor) {
    let h0 = Tensor::randn(&[2, 3], 1);
    let w = Tensor::randn(&[3, 3], 2) * 0.7;
    let b = Tensor::randn(&[3], 3) * 0.3;
    (h0, w, b)
}

#[test]
fn rnn_matches_the_tape_and_finite_differences() {
    let (h0, w, b) = rnn_inputs();
    for n in [0, 1, 4, 9] {
        let (y, (dh0, dw, db)) = rnn_grad(&h0, &w, &b, n);
        let (ty, (tdh0, tdw, tdb)) = rnn_tape_grad(&h0, &w, &b, n);
        assert!((y - rnn(&h0, &w, &b, n)).abs() < 1e-15);
        assert!((y - ty).abs() < 1e-12);
        assert_close(&dh0, &tdh0, "dh0");
        assert_close(&dw, &tdw, "dw");
        assert_close(&db, &tdb, "db");
        gradcheck_tensor(
            |w: &Tensor| rnn(&h0, w, &b, n),
            |w: &Tensor| rnn_grad(&h0, w, &b, n).1 .1,
            &w,
            tol(),
        )
        .unwrap();
        gradcheck_tensor(
            |b: &Tensor| rnn(&h0, &w, b, n),
            |b: &Tensor| rnn_grad(&h0, &w, b, n).1 .2,
            &b,
            tol(),
        )
        .unwrap();
        gradcheck_tensor(
            |h: &Tensor| rnn(h, &w, &b, n),
            |h: &Tensor| rnn_grad(h, &w, &b, n).1 .0,
            &h0,
            tol(),
        )
        .unwrap();
    }
}

// The same recurrence returning the last state: a `Tensor` seed.
#[differentiable(static)]
fn rnn_state(h0: &Tensor, w: &Tensor, n: usize) -> Tensor {
    let mut h = h0.clone();
    for _ in 0..n {
        h = h.matmul(w).tanh();
    }
    h
}

#[differentiable(tape)]
fn rnn_state_tape(h0: &Tensor, w: &Tensor, n: usize) -> Tensor {
    let mut h = h0.clone();
    for _ in 0..n {
        h = h.matmul(w).tanh();
    }
    h
}

#[test]
fn rnn_state_vjp_matches_the_tape() {
    let (h0, w, _) = rnn_inputs();
    let seed = Tensor::randn(&[2, 3], 4);
    for n in [0, 1, 5] {
        let (y, (dh0, dw)) = rnn_state_vjp(&h0, &w, n, seed.clone());
        let (ty, (tdh0, tdw)) = rnn_state_tape_vjp(&h0, &w, n, seed.clone());
        assert_close(&y, &ty, "value");
        assert_close(&dh0, &tdh0, "dh0");
        assert_close(&dw, &tdw, "dw");
        let f = |x: &[f64]| rnn_state(&h0, &Tensor::from_vec(x.to_vec(), &[3, 3]), n).to_vec();
        let vjp = |x: &[f64]| {
            rnn_state_vjp(&h0, &Tensor::from_vec(x.to_vec(), &[3, 3]), n, seed.clone())
                .1
                 .1
                .to_vec()
        };
        vjpcheck(f, vjp, w.as_slice(), seed.as_slice(), tol()).unwrap();
    }
}

// A scalar parameter mixed into a tensor loop, a tensor accumulator (`acc += ..`)
// and a scalar computed from a tensor inside the loop.
#[differentiable(static)]
fn damped(x: &Tensor, s: f64, n: usize) -> f64 {
    let mut h = x * s;
    let mut acc = x * 0.0;
    let mut r = 0.0;
    for i in 0..n {
        h = (&h * s).sin() + x;
        acc += &h * (i as f64 + 1.0);
        r = r + h.sum() * s;
        if r > 2.0 {
            h = h * 0.5;
        }
    }
    acc.sum() + r * r
}

#[differentiable(tape)]
fn damped_tape(x: &Tensor, s: f64, n: usize) -> f64 {
    let mut h = x * s;
    let mut acc = x * 0.0;
    let mut r = 0.0;
    for i in 0..n {
        h = (&h * s).sin() + x;
        acc += &h * (i as f64 + 1.0);
        r = r + h.sum() * s;
        if r > 2.0 {
            h = h * 0.5;
        }
    }
    acc.sum() + r * r
}

#[test]
fn scalar_parameter_in_a_tensor_loop() {
    let x = Tensor::from_vec(vec![0.3, -0.7, 1.1], &[3]);
    for (s, n) in [(0.8, 0), (0.8, 1), (1.3, 4), (-0.6, 6)] {
        let (y, (dx, ds)) = damped_grad(&x, s, n);
        let (ty, (tdx, tds)) = damped_tape_grad(&x, s, n);
        assert!((y - damped(&x, s, n)).abs() < 1e-14);
        assert!((y - ty).abs() < 1e-12 * (1.0 + y.abs()));
        assert_close(&dx, &tdx, "dx");
        assert!((ds - tds).abs() < 1e-10 * (1.0 + ds.abs()), "{ds} vs {tds}");
        gradcheck_tensor(
            |x: &Tensor| damped(x, s, n),
            |x: &Tensor| damped_grad(x, s, n).1 .0,
            &x,
            tol(),
        )
        .unwrap();
        gradcheck(
            |p: &[f64]| damped(&x, p[0], n),
            |p: &[f64]| vec![damped_grad(&x, p[0], n).1 .1],
            &[s],
            tol(),
        )
        .unwrap();
    }
}

// f32 tensors, `loop` with `break`, and an integer counter: b ← 1.5 b + a until the
// sum passes `limit`.
#[differentiable(static)]
fn grow(a: &Tensor<f32>, limit: f32) -> f32 {
    let mut b = a.clone();
    let mut k = 0;
    loop {
        b = &b * 1.5 + a;
        k += 1;
        if b.sum() > limit || k > 20 {
            break;
        }
    }
    b.mean() * limit
}

#[differentiable(tape)]
fn grow_tape(a: &Tensor<f32>, limit: f32) -> f32 {
    let mut b = a.clone();
    let mut k = 0;
    loop {
        b = &b * 1.5 + a;
        k += 1;
        if b.sum() > limit || k > 20 {
            break;
        }
    }
    b.mean() * limit
}

#[test]
fn f32_loop_with_break_matches_the_tape() {
    let a = Tensor::<f32>::from_vec(vec![0.5, 1.0, -0.25], &[3]);
    for limit in [1.0f32, 10.0, 100.0] {
        let (y, (da, dl)) = grow_grad(&a, limit);
        let (ty, (tda, tdl)) = grow_tape_grad(&a, limit);
        assert_eq!(y, grow(&a, limit));
        assert!((y - ty).abs() <= 1e-5 * (1.0 + y.abs()));
        assert!((dl - tdl).abs() <= 1e-5 * (1.0 + dl.abs()));
        for (x, t) in da.as_slice().iter().zip(tda.as_slice()) {
            assert!((x - t).abs() <= 1e-5 * (1.0 + x.abs()), "{x} vs {t}");
        }
    }
}

// Found by the random-program tester: `acc += b` with `b` broadcast over `acc`'s rows
// (and `acc -= x` with a scalar `x`) inside a loop. The local adjoint differentiated
// only `b`, so `b`'s gradient kept `acc`'s shape [2, 3] instead of being summed to [3],
// and the scalar case did not compile.
#[differentiable(static)]
fn broadcast_acc(w0: &Tensor, b: &Tensor, x: f64) -> f64 {
    let mut acc = w0 * 2.0;
    for _ in 0..2 {
        acc += b;
        acc -= x;
        acc *= 1.5;
    }
    (&acc * &acc).sum()
}

#[differentiable(tape)]
fn broadcast_acc_tape(w0: &Tensor, b: &Tensor, x: f64) -> f64 {
    let mut acc = w0 * 2.0;
    for _ in 0..2 {
        acc += b;
        acc -= x;
        acc *= 1.5;
    }
    (&acc * &acc).sum()
}

#[test]
fn broadcast_compound_assignment_in_a_loop() {
    let w0 = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], &[2, 3]);
    let b = Tensor::from_vec(vec![1.0, -1.0, 0.5], &[3]);
    let x = 0.3;
    let (v, (gw, gb, gx)) = broadcast_acc_grad(&w0, &b, x);
    let (tv, (tw, tb, tx)) = broadcast_acc_tape_grad(&w0, &b, x);
    assert!((v - tv).abs() <= 1e-12 * v.abs());
    assert_eq!(gb.shape(), &[3]);
    assert_close(&gw, &tw, "w0");
    assert_close(&gb, &tb, "b");
    assert!((gx - tx).abs() <= 1e-10 * (1.0 + gx.abs()), "{gx} vs {tx}");
    gradcheck_tensor(
        |b: &Tensor| broadcast_acc(&w0, b, x),
        |b: &Tensor| broadcast_acc_grad(&w0, b, x).1 .1,
        &b,
        tol(),
    )
    .unwrap();
    gradcheck(
        |p: &[f64]| broadcast_acc(&w0, &b, p[0]),
        |p: &[f64]| vec![broadcast_acc_grad(&w0, &b, p[0]).1 .2],
        &[x],
        tol(),
    )
    .unwrap();
}

// Found by the random-program tester: a tensor constructor in a straight-line body was
// rejected by the default route ("use #[differentiable(tape)]") although the
// statement-level static path takes it.
#[differentiable]
fn with_ones(x: f64, w: &Tensor) -> f64 {
    (Tensor::ones(&[3]) * x + w).sin().sum()
}

#[differentiable(tape)]
fn with_ones_tape(x: f64, w: &Tensor) -> f64 {
    (Tensor::ones(&[3]) * x + w).sin().sum()
}

#[test]
fn tensor_constructor_in_a_straight_line_body() {
    let w = Tensor::from_vec(vec![0.1, -0.5, 0.9], &[3]);
    let x = 0.4;
    let (v, (gx, gw)) = with_ones_grad(x, &w);
    let (tv, (tx, tw)) = with_ones_tape_grad(x, &w);
    assert!((v - tv).abs() <= 1e-12);
    assert!((gx - tx).abs() <= 1e-12, "{gx} vs {tx}");
    assert_close(&gw, &tw, "w");
    gradcheck_tensor(
        |w: &Tensor| with_ones(x, w),
        |w: &Tensor| with_ones_grad(x, w).1 .1,
        &w,
        tol(),
    )
    .unwrap();
}

// `t.min()` in a body with a slice (the statement-level path): a scalar, like
// `t.max()`. The path once typed it as a tensor, and the function did not compile.
#[differentiable(static)]
fn min_in_control(w: &Tensor, v: &[f64]) -> f64 {
    let lo = w.min().sigmoid();
    let hi = w.max();
    lo * v[0] + hi * v[1]
}

#[differentiable(tape)]
fn min_in_control_tape(w: &Tensor, v: &[f64]) -> f64 {
    let lo = w.min().sigmoid();
    let hi = w.max();
    lo * v[0] + hi * v[1]
}

#[test]
fn tensor_min_is_a_scalar_in_control_bodies() {
    let w = Tensor::from_vec(vec![0.3, -0.8, 1.2, 0.1], &[2, 2]);
    let v = [0.7, -1.1];
    let (y, (gw, gv)) = min_in_control_grad(&w, &v);
    assert_eq!(y.to_bits(), min_in_control(&w, &v).to_bits());
    let s = (-0.8f64).sigmoid();
    // The gradient goes to the smallest element (index 1) and the largest (index 2).
    let want = [0.0, v[0] * s * (1.0 - s), v[1], 0.0];
    for (a, b) in gw.as_slice().iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", gw.as_slice());
    }
    assert!((gv[0] - s).abs() < 1e-12 && (gv[1] - 1.2).abs() < 1e-12);
    let (ty, (tw, tv)) = min_in_control_tape_grad(&w, &v);
    assert!((y - ty).abs() < 1e-12);
    assert_close(&gw, &tw, "min_in_control vs tape");
    assert!((gv[0] - tv[0]).abs() < 1e-12 && (gv[1] - tv[1]).abs() < 1e-12);
    gradcheck_tensor(
        |w| min_in_control(w, &v),
        |w| min_in_control_grad(w, &v).1 .0,
        &w,
        tol(),
    )
    .unwrap();
}
