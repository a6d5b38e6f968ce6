//! `while`, `loop`, `break`, `continue` (labeled too) and early `return` on the one IR,
//! over slices and local buffers: each function is `#[differentiable(static)]`, checked
//! against central finite differences and against its twin on the tape.

#![allow(dead_code)]
#![allow(clippy::needless_range_loop)]

use adjoint::prelude::*;

macro_rules! twins {
    ($name:ident / $tape:ident ($($p:ident : $t:ty),*) -> $r:ty $body:block) => {
        #[differentiable(static)]
        fn $name($($p: $t),*) -> $r $body

        #[differentiable(tape)]
        fn $tape($($p: $t),*) -> $r $body
    };
}

/// Central differences of `f` at `x`.
fn fd(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            (f(&a) - f(&b)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

/// Checks `grad` against finite differences of `f` and against the tape's gradient.
fn check(
    f: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64]) -> (f64, Vec<f64>),
    tape: impl Fn(&[f64]) -> (f64, Vec<f64>),
    x: &[f64],
) {
    let (v, g) = grad(x);
    let (tv, tg) = tape(x);
    assert_eq!(v.to_bits(), f(x).to_bits(), "value");
    assert_close(&[tv], &[v], 1e-12, "value vs tape");
    assert_close(&g, &fd(&f, x), 1e-5, "vs finite differences");
    assert_close(&g, &tg, 1e-10, "vs tape");
}

// A prefix sum that stops at the first negative element.
twins! {
    until_negative / until_negative_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() {
            if x[i] < 0.0 {
                break;
            }
            s += x[i] * x[i] * (i as f64 + 1.0);
        }
        s
    }
}

#[test]
fn for_with_break() {
    for x in [
        vec![0.5, 1.5, -0.2, 3.0],
        vec![0.5, 1.5, 0.2, 3.0],
        vec![-1.0, 2.0],
    ] {
        check(
            until_negative,
            until_negative_grad,
            until_negative_tape_grad,
            &x,
        );
    }
}

// Skips elements with `continue`, reads the index after the skip.
twins! {
    skip_small / skip_small_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for (i, v) in x.iter().enumerate() {
            if v.abs() < 0.5 {
                continue;
            }
            s += v.sin() * i as f64;
        }
        s
    }
}

#[test]
fn for_with_continue() {
    let x = [0.1, 0.9, -0.3, 1.7, 2.2];
    check(skip_small, skip_small_grad, skip_small_tape_grad, &x);
}

// A `while` over a float condition: Newton-like halving of a carried value.
twins! {
    halvings / halvings_tape (x: &[f64]) -> f64 {
        let mut y = x[0] * x[1];
        let mut k = 0;
        while y.abs() > 0.1 && k < 50 {
            y = 0.5 * y + 0.01 * y.sin();
            k += 1;
        }
        y + k as f64
    }
}

#[test]
fn while_on_a_float_condition() {
    for x in [[3.0, 2.0], [0.2, 0.3], [-5.0, 4.0]] {
        check(halvings, halvings_grad, halvings_tape_grad, &x);
    }
}

// A `while` whose condition indexes (it must not be evaluated past the end: `&&`
// short-circuits), and a buffer written in the loop.
twins! {
    leading_run / leading_run_tape (x: &[f64]) -> f64 {
        let n = x.len();
        let mut i = 0;
        let mut acc = vec![0.0; n];
        while i < n && x[i] > 0.0 {
            acc[i] = x[i].ln();
            i += 1;
        }
        let mut s = 0.0;
        for j in 0..i {
            s += acc[j] * x[j];
        }
        s
    }
}

#[test]
fn while_with_an_indexing_condition() {
    for x in [vec![0.5, 1.5, 2.5], vec![0.5, -1.5, 2.5], vec![-0.5]] {
        check(leading_run, leading_run_grad, leading_run_tape_grad, &x);
    }
}

// `loop` with a `break` in a branch, a carried counter and float state.
twins! {
    orbit / orbit_tape (x: &[f64]) -> f64 {
        let (mut a, mut b) = (x[0], x[1]);
        let mut n = 0;
        loop {
            let t = a * b - 0.3;
            a = b.cos() + 0.1 * t;
            b = t.tanh();
            n += 1;
            if n >= 7 || a > 10.0 {
                break;
            }
        }
        a * b
    }
}

#[test]
fn loop_with_break() {
    check(orbit, orbit_grad, orbit_tape_grad, &[0.4, 0.9]);
}

// An early `return` inside a loop, and one before it.
twins! {
    first_big / first_big_tape (x: &[f64]) -> f64 {
        if x[0] > 100.0 {
            return x[0];
        }
        let mut s = 0.0;
        for i in 0..x.len() {
            s += x[i] * x[i];
            if s > 4.0 {
                return s.sqrt() * x[i];
            }
        }
        s
    }
}

#[test]
fn early_returns() {
    for x in [vec![0.5, 1.5, 2.5], vec![0.5, 0.6, 0.7], vec![200.0, 1.0]] {
        check(first_big, first_big_grad, first_big_tape_grad, &x);
    }
}

// `break 'outer` and `continue 'outer` from an inner loop.
twins! {
    labeled_exits / labeled_exits_tape (x: &[f64]) -> f64 {
        let n = x.len();
        let mut s = 0.0;
        'rows: for i in 0..n {
            for j in 0..n {
                if j > i {
                    continue 'rows;
                }
                s += x[i] * x[j];
                if s > 6.0 {
                    break 'rows;
                }
            }
        }
        s
    }
}

#[test]
fn labeled_break_and_continue() {
    for x in [
        vec![0.5, 1.0, 1.5],
        vec![0.1, 0.2, 0.3, 0.4],
        vec![2.0, 2.0, 2.0],
    ] {
        check(
            labeled_exits,
            labeled_exits_grad,
            labeled_exits_tape_grad,
            &x,
        );
    }
}

// Regression (the tester, p59 of seed 10): a value that is both the initial value of
// a carried variable and read inside the loop lost the carried part of its gradient.
twins! {
    init_and_read / init_and_read_tape (x: &[f64]) -> f64 {
        let a = x[0];
        let mut acc = a;
        for _ in 0..3 {
            acc += a * x[1];
        }
        let mut k = 0;
        let mut b = a;
        while k < 2 && a < 5.0 {
            b = b * 0.5 + a;
            k += 1;
        }
        acc + b
    }
}

#[test]
fn a_carried_initial_value_read_in_the_loop() {
    check(
        init_and_read,
        init_and_read_grad,
        init_and_read_tape_grad,
        &[0.7, 1.3],
    );
}

// `break value` out of a `loop` that is the body's value, and an early `return`
// inside it.
twins! {
    settle / settle_tape (x: &[f64]) -> f64 {
        let mut y = x[0];
        let mut k = 0;
        loop {
            y = y.sin() + 0.5 * y * x[1];
            k += 1;
            if y > 50.0 {
                return y * x[0];
            }
            if k == 6 {
                break y * 2.0;
            }
        }
    }
}

#[test]
fn loop_value_from_break() {
    for x in [vec![0.8, 1.1], vec![3.0, 2.5]] {
        check(settle, settle_grad, settle_tape_grad, &x);
    }
}

// An early `return` in a function with a tensor result.
#[differentiable(static)]
fn clipped(w: &Tensor, x: f64) -> Tensor {
    if x > 1.0 {
        return w * x;
    }
    let mut h = w.sin();
    for _ in 0..2 {
        h = &h * x + w;
    }
    h
}

#[differentiable(tape)]
fn clipped_tape(w: &Tensor, x: f64) -> Tensor {
    if x > 1.0 {
        return w * x;
    }
    let mut h = w.sin();
    for _ in 0..2 {
        h = &h * x + w;
    }
    h
}

#[test]
fn early_return_with_a_tensor_result() {
    let w = Tensor::from_vec(vec![0.3, -0.7, 1.2], &[3]);
    for x in [0.4, 1.5] {
        let seed = Tensor::from_vec(vec![1.0, 0.5, -2.0], &[3]);
        let (v, (gw, gx)) = clipped_vjp(&w, x, seed.clone());
        let (tv, (tw, tx)) = clipped_tape_vjp(&w, x, seed.clone());
        assert_close(v.as_slice(), tv.as_slice(), 1e-12, "value vs tape");
        assert_close(gw.as_slice(), tw.as_slice(), 1e-10, "dw vs tape");
        assert_close(&[gx], &[tx], 1e-10, "dx vs tape");
        // <seed, f(x)> by central differences in x.
        let h = 1e-6;
        let dot = |t: &Tensor| {
            t.as_slice()
                .iter()
                .zip(seed.as_slice())
                .map(|(a, b)| a * b)
                .sum::<f64>()
        };
        let fd = (dot(&clipped(&w, x + h)) - dot(&clipped(&w, x - h))) / (2.0 * h);
        assert_close(&[gx], &[fd], 1e-5, "dx vs finite differences");
    }
}

/// A helper taking an array.
#[differentiable]
fn weigh(p: [f64; 3]) -> f64 {
    p[0] * p[1] + p[2].sin()
}

// Regression (the tester, seed 31): an early `return` before a call with an array
// literal; the rest of the body runs in a branch, and the array's adjoint made there
// got a `Vec` as the other branch's stand-in, which did not compile.
twins! {
    early_then_array / early_then_array_tape (x: &[f64]) -> f64 {
        if x[0] > 2.0 {
            return x[0];
        }
        let c: f64 = weigh([x[0], x[1] * x[0], x[1]]);
        c * x[1]
    }
}

#[test]
fn an_array_argument_after_an_early_return() {
    for x in [vec![0.5, 1.5], vec![3.0, -1.0]] {
        check(
            early_then_array,
            early_then_array_grad,
            early_then_array_tape_grad,
            &x,
        );
    }
}

// A `while` condition with an iterator chain in it (a loop inside the condition,
// computed before the loop and at the end of each iteration; the tester, seed 27182).
twins! {
    halving / halving_tape (x: &[f64]) -> f64 {
        let mut k = 0;
        let mut acc = x[0];
        while k < 4 && x[1] * acc > x.iter().map(|v| v * v).sum::<f64>() * 0.1 {
            k += 1;
            acc = acc * 0.5 + x[2];
        }
        acc * x[0]
    }
}

#[test]
fn while_condition_with_a_chain() {
    for x in [
        vec![2.0, 3.0, 0.1],
        vec![0.5, 1.0, 0.2],
        vec![3.0, -1.0, 0.4],
    ] {
        check(halving, halving_grad, halving_tape_grad, &x);
    }
}
