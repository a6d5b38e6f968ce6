//! Tuples on the static path (issue 11): tuple values in a body (`let p = (x, y)`,
//! `p.0`, destructuring, nested patterns, `_`, tuples as the value of an `if` or a
//! block, tuples carried through loops), tuple results (`-> (f64, Tensor)`, whose
//! `_vjp` takes a tuple seed), and calls of helpers returning tuples. Every function
//! is `#[differentiable(static)]` and is checked against central finite differences
//! (of `<seed, f>` for a tuple result) and against a tape twin of the same body (for a
//! tuple result, a tape function returning `<seed, f>` as a scalar).

#![allow(
    dead_code,
    unused_braces,
    clippy::let_and_return,
    clippy::needless_range_loop,
    clippy::needless_return
)]

use adjoint::prelude::*;

/// Defines `$name` on the static path (`#[differentiable(static)]`) and `$tape` on
/// the tape, with one body.
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

/// Checks a function of two floats: the static gradient against central
/// differences and against the tape twin's gradient.
fn check2(
    name: &str,
    (x, y): (f64, f64),
    f: impl Fn(f64, f64) -> f64,
    grad: impl Fn(f64, f64) -> (f64, (f64, f64)),
    tape: impl Fn(f64, f64) -> (f64, (f64, f64)),
) {
    let (v, (gx, gy)) = grad(x, y);
    assert_eq!(v.to_bits(), f(x, y).to_bits(), "{name}: value");
    assert!(gx != 0.0 || gy != 0.0, "{name}: an all-zero gradient");
    let want = fd(|p| f(p[0], p[1]), &[x, y]);
    assert_close(&[gx, gy], &want, 1e-6, &format!("{name} vs differences"));
    let (tv, (tx, ty)) = tape(x, y);
    assert_close(&[tv], &[v], 1e-12, &format!("{name}: tape value"));
    assert_close(&[gx, gy], &[tx, ty], 1e-12, &format!("{name} vs tape"));
}

// ---- 1. tuple values in a body ----

twins! {
    pair_fields / pair_fields_tape (x: f64, m: f64) -> f64 {
        let p = (x, m * x);
        p.0 + p.1 * p.0.sin()
    }
}

twins! {
    destructure / destructure_tape (x: f64, y: f64) -> f64 {
        let (a, b) = (x * y, y);
        a.exp() * b + a
    }
}

twins! {
    destructure_mut / destructure_mut_tape (x: f64, y: f64) -> f64 {
        let (a, mut b) = (x * y, y);
        b += a.cos();
        b *= x;
        a + b
    }
}

twins! {
    nested / nested_tape (x: f64, y: f64) -> f64 {
        let ((a, b), c) = ((x, x * y), y.sin());
        let q = ((a, c), b);
        let ((u, _), w) = q;
        u * w + (q.0).1 * b + c
    }
}

twins! {
    wildcard / wildcard_tape (x: f64, y: f64) -> f64 {
        let (_, b, c) = (x.exp(), y * x, y);
        let _ = x * 3.0;
        b * c
    }
}

twins! {
    tuple_of_if / tuple_of_if_tape (x: f64, y: f64) -> f64 {
        let (lo, hi) = if x < y { (x, y) } else { (y, x * 2.0) };
        let p = if lo > 0.0 {
            let s = lo * hi;
            (s, hi)
        } else {
            (hi, lo)
        };
        p.0 * hi + p.1.sin() - lo
    }
}

twins! {
    tuple_of_block / tuple_of_block_tape (x: f64, y: f64) -> f64 {
        let (s, d) = {
            let t = x * y;
            (t + x, t - y)
        };
        s * d
    }
}

twins! {
    swap_in_loop / swap_in_loop_tape (x: f64, y: f64) -> f64 {
        let mut p = (x, y);
        for _ in 0..4 {
            p = (p.1, p.0 * 0.5 + p.1.sin());
        }
        let (mut a, mut b) = (x, y * y);
        for _ in 0..3 {
            (a, b) = (b, a + b * 0.25);
        }
        p.0 * p.1 + a - b
    }
}

twins! {
    reassigned_in_branch / reassigned_in_branch_tape (x: f64, y: f64) -> f64 {
        let mut p = (x, y);
        if x > 0.0 {
            p = (p.0 * y, p.1 + x);
        }
        p.0 + p.1 * p.1
    }
}

#[test]
fn tuple_values() {
    let pts = [(0.7, -0.4), (-0.8, 1.3)];
    for &pt in &pts {
        check2(
            "pair_fields",
            pt,
            pair_fields,
            pair_fields_grad,
            pair_fields_tape_grad,
        );
        check2(
            "destructure",
            pt,
            destructure,
            destructure_grad,
            destructure_tape_grad,
        );
        check2(
            "destructure_mut",
            pt,
            destructure_mut,
            destructure_mut_grad,
            destructure_mut_tape_grad,
        );
        check2("nested", pt, nested, nested_grad, nested_tape_grad);
        check2("wildcard", pt, wildcard, wildcard_grad, wildcard_tape_grad);
        check2(
            "tuple_of_if",
            pt,
            tuple_of_if,
            tuple_of_if_grad,
            tuple_of_if_tape_grad,
        );
        check2(
            "tuple_of_block",
            pt,
            tuple_of_block,
            tuple_of_block_grad,
            tuple_of_block_tape_grad,
        );
        check2(
            "swap_in_loop",
            pt,
            swap_in_loop,
            swap_in_loop_grad,
            swap_in_loop_tape_grad,
        );
        check2(
            "reassigned_in_branch",
            pt,
            reassigned_in_branch,
            reassigned_in_branch_grad,
            reassigned_in_branch_tape_grad,
        );
    }
}

// ---- 2. tuple results ----

/// `<s, (a, b)>` of two floats.
fn dot2(s: (f64, f64), v: (f64, f64)) -> f64 {
    s.0 * v.0 + s.1 * v.1
}

#[differentiable(static)]
fn polar(x: f64, y: f64) -> (f64, f64) {
    let r = (x * x + y * y).sqrt();
    (r, y.atan2(x) * r)
}

#[differentiable(tape, wrt(x, y))]
fn polar_dot_tape(x: f64, y: f64, s0: f64, s1: f64) -> f64 {
    let r = (x * x + y * y).sqrt();
    s0 * r + s1 * (y.atan2(x) * r)
}

// A tuple variable, an `if` and `return` as the result.
#[differentiable(static)]
fn ordered(x: f64, y: f64) -> (f64, f64) {
    let p = (x * y, y.exp());
    let q = if p.0 < p.1 { p } else { (p.1, p.0 * x) };
    return (q.1, q.0 + x);
}

#[differentiable(tape, wrt(x, y))]
fn ordered_dot_tape(x: f64, y: f64, s0: f64, s1: f64) -> f64 {
    let (a, b) = (x * y, y.exp());
    let (c, d) = if a < b { (a, b) } else { (b, a * x) };
    s0 * d + s1 * (c + x)
}

#[test]
fn tuple_results_take_a_tuple_seed() {
    for &(x, y) in &[(0.7, -0.4), (-0.8, 1.3), (1.1, 0.2)] {
        for &s in &[(1.0, 0.0), (0.0, 1.0), (0.6, -1.7)] {
            let (v, (gx, gy)) = polar_vjp(x, y, s);
            assert_eq!(v, polar(x, y));
            let want = fd(|p| dot2(s, polar(p[0], p[1])), &[x, y]);
            assert_close(&[gx, gy], &want, 1e-6, "polar vs differences");
            let (tv, (tx, ty)) = polar_dot_tape_grad(x, y, s.0, s.1);
            assert_close(&[tv], &[dot2(s, v)], 1e-12, "polar: tape value");
            assert_close(&[gx, gy], &[tx, ty], 1e-12, "polar vs tape");

            let (v, (gx, gy)) = ordered_vjp(x, y, s);
            assert_eq!(v, ordered(x, y));
            let want = fd(|p| dot2(s, ordered(p[0], p[1])), &[x, y]);
            assert_close(&[gx, gy], &want, 1e-6, "ordered vs differences");
            let (_, (tx, ty)) = ordered_dot_tape_grad(x, y, s.0, s.1);
            assert_close(&[gx, gy], &[tx, ty], 1e-12, "ordered vs tape");
        }
    }
}

// A float and a tensor.
#[differentiable(static)]
fn stats(t: &Tensor, a: f64) -> (f64, Tensor) {
    let u = t * a;
    (u.sum() * a, u.exp())
}

#[differentiable(tape, wrt(t, a))]
fn stats_dot_tape(t: &Tensor, a: f64, s0: f64, s1: &Tensor) -> f64 {
    let u = t * a;
    s0 * (u.sum() * a) + (u.exp() * s1).sum()
}

#[test]
fn float_and_tensor_result() {
    let t = Tensor::from_vec(vec![0.3, -0.5, 0.9, 0.1, -1.2, 0.4], &[2, 3]);
    let a = 0.8;
    let s1 = Tensor::from_vec(vec![1.0, -0.5, 0.25, 2.0, 0.0, -1.5], &[2, 3]);
    let s0 = 0.7;
    let ((v, vt), (gt, ga)) = stats_vjp(&t, a, (s0, s1.clone()));
    let (w, wt) = stats(&t, a);
    assert_eq!(v, w);
    assert_eq!(vt.as_slice(), wt.as_slice());
    let dot = |flat: &[f64]| {
        let t = Tensor::from_vec(flat[..6].to_vec(), &[2, 3]);
        let (p, q) = stats(&t, flat[6]);
        s0 * p
            + q.as_slice()
                .iter()
                .zip(s1.as_slice())
                .map(|(x, y)| x * y)
                .sum::<f64>()
    };
    let x0: Vec<f64> = t.as_slice().iter().copied().chain([a]).collect();
    let got: Vec<f64> = gt.as_slice().iter().copied().chain([ga]).collect();
    assert_close(&got, &fd(dot, &x0), 1e-6, "stats vs differences");
    let (_, (tt, ta)) = stats_dot_tape_grad(&t, a, s0, &s1);
    let tape: Vec<f64> = tt.as_slice().iter().copied().chain([ta]).collect();
    assert_close(&got, &tape, 1e-12, "stats vs tape");
}

// A float and an array, a Vec and a float.
#[differentiable(static)]
fn with_array(x: f64, y: f64) -> (f64, [f64; 2]) {
    let mut b = [0.0; 2];
    b[0] = x * y;
    b[1] = y.sin() + b[0];
    (x + y * y, b)
}

#[differentiable(tape, wrt(x, y))]
fn with_array_dot_tape(x: f64, y: f64, s0: f64, s1: [f64; 2]) -> f64 {
    let b0 = x * y;
    let b1 = y.sin() + b0;
    s0 * (x + y * y) + s1[0] * b0 + s1[1] * b1
}

#[differentiable(static)]
fn with_vec(v: &[f64], c: f64) -> (Vec<f64>, f64) {
    let mut out = vec![0.0; v.len()];
    let mut s = 0.0;
    for i in 0..v.len() {
        out[i] = v[i] * c;
        s += out[i] * v[i];
    }
    (out, s.sqrt())
}

#[test]
fn array_and_vec_elements() {
    let (x, y) = (0.6, -1.1);
    let s = (0.3, [1.5, -0.7]);
    let ((v0, vb), (gx, gy)) = with_array_vjp(x, y, s);
    assert_eq!((v0, vb), with_array(x, y));
    let dot = |p: &[f64]| {
        let (a, b) = with_array(p[0], p[1]);
        s.0 * a + s.1[0] * b[0] + s.1[1] * b[1]
    };
    assert_close(
        &[gx, gy],
        &fd(dot, &[x, y]),
        1e-6,
        "with_array vs differences",
    );
    let (_, (tx, ty)) = with_array_dot_tape_grad(x, y, s.0, s.1);
    assert_close(&[gx, gy], &[tx, ty], 1e-12, "with_array vs tape");

    let (v, c) = (vec![0.4, 1.2, -0.3], 0.9);
    let seed = (vec![0.5, -1.0, 2.0], 0.8);
    let ((out, n), (gv, gc)) = with_vec_vjp(&v, c, seed.clone());
    assert_eq!((out, n), with_vec(&v, c));
    let dot = |p: &[f64]| {
        let (o, n) = with_vec(&p[..3], p[3]);
        o.iter().zip(&seed.0).map(|(a, b)| a * b).sum::<f64>() + seed.1 * n
    };
    let got: Vec<f64> = gv.iter().copied().chain([gc]).collect();
    assert_close(
        &got,
        &fd(dot, &[0.4, 1.2, -0.3, 0.9]),
        1e-6,
        "with_vec vs differences",
    );
}

// ---- 3. calls of helpers with tuple results ----

#[differentiable]
fn split(x: f64, y: f64) -> (f64, f64) {
    (x * y, y.sin() - x)
}

/// `split`'s body, for the tape twins (the tape does not call tuple helpers).
fn split_inline(x: f64, y: f64) -> (f64, f64) {
    (x * y, y.sin() - x)
}

#[differentiable(static)]
fn calls_split(x: f64, y: f64) -> f64 {
    let (a, b) = split(x, y);
    let (_, d) = split(b, x);
    let e = split(y, a).1;
    a * b + d * d + e
}

#[differentiable(tape)]
fn calls_split_tape(x: f64, y: f64) -> f64 {
    let (a, b) = (x * y, y.sin() - x);
    let d = x.sin() - b;
    let e = a.sin() - y;
    a * b + d * d + e
}

// Both elements used, one only through a tuple variable, in a loop.
#[differentiable(static)]
fn split_in_loop(x: f64, y: f64) -> f64 {
    let mut acc = 0.0;
    let mut p = (x, y);
    for i in 0..3 {
        let q = split(p.0, p.1 + i as f64 * 0.1);
        acc += q.0 * q.1;
        p = (q.1 * 0.5, q.0);
    }
    acc + p.0
}

#[differentiable(tape)]
fn split_in_loop_tape(x: f64, y: f64) -> f64 {
    let mut acc = 0.0;
    let (mut p0, mut p1) = (x, y);
    for i in 0..3 {
        let t = p1 + i as f64 * 0.1;
        let (q0, q1) = (p0 * t, t.sin() - p0);
        acc += q0 * q1;
        p0 = q1 * 0.5;
        p1 = q0;
    }
    acc + p0
}

// A helper with a tuple result calling one: the seed passes through.
#[differentiable]
fn split_twice(x: f64, y: f64) -> (f64, f64) {
    let (a, b) = split(x, y);
    split(b, a * 0.5)
}

#[differentiable(static)]
fn calls_split_twice(x: f64, y: f64) -> f64 {
    let (a, b) = split_twice(x, y);
    a + b * b
}

#[differentiable(tape)]
fn calls_split_twice_tape(x: f64, y: f64) -> f64 {
    let (a0, b0) = (x * y, y.sin() - x);
    let t = a0 * 0.5;
    let (a, b) = (b0 * t, t.sin() - b0);
    a + b * b
}

#[test]
fn helpers_with_tuple_results() {
    assert_eq!(split(0.3, 0.9), split_inline(0.3, 0.9));
    for &pt in &[(0.7, -0.4), (-0.8, 1.3)] {
        check2(
            "calls_split",
            pt,
            calls_split,
            calls_split_grad,
            calls_split_tape_grad,
        );
        check2(
            "split_in_loop",
            pt,
            split_in_loop,
            split_in_loop_grad,
            split_in_loop_tape_grad,
        );
        check2(
            "calls_split_twice",
            pt,
            calls_split_twice,
            calls_split_twice_grad,
            calls_split_twice_tape_grad,
        );
    }
}

// A helper returning a float and a tensor; the caller annotates the kinds.
#[differentiable]
fn scale_sum(t: &Tensor, a: f64) -> (f64, Tensor) {
    let u = t * a;
    (u.sum(), u.tanh())
}

#[differentiable(static)]
fn calls_scale_sum(t: &Tensor, a: f64) -> f64 {
    let (s, u): (f64, Tensor) = scale_sum(t, a);
    let (_, w): (f64, Tensor) = scale_sum(&u, s);
    (w * &u).sum() + s * s
}

#[differentiable(tape)]
fn calls_scale_sum_tape(t: &Tensor, a: f64) -> f64 {
    let u0 = t * a;
    let s = u0.sum();
    let u = u0.tanh();
    let w = (&u * s).tanh();
    (w * &u).sum() + s * s
}

#[test]
fn helper_with_a_tensor_element() {
    let t = Tensor::from_vec(vec![0.3, -0.5, 0.9, 0.1], &[2, 2]);
    let a = 0.7;
    let (v, (gt, ga)) = calls_scale_sum_grad(&t, a);
    assert_eq!(v.to_bits(), calls_scale_sum(&t, a).to_bits());
    let f = |flat: &[f64]| calls_scale_sum(&Tensor::from_vec(flat[..4].to_vec(), &[2, 2]), flat[4]);
    let x0: Vec<f64> = t.as_slice().iter().copied().chain([a]).collect();
    let got: Vec<f64> = gt.as_slice().iter().copied().chain([ga]).collect();
    assert_close(&got, &fd(f, &x0), 1e-6, "calls_scale_sum vs differences");
    let (tv, (tt, ta)) = calls_scale_sum_tape_grad(&t, a);
    assert_close(&[tv], &[v], 1e-12, "calls_scale_sum: tape value");
    let tape: Vec<f64> = tt.as_slice().iter().copied().chain([ta]).collect();
    assert_close(&got, &tape, 1e-12, "calls_scale_sum vs tape");
}

// ---- 3'. calls of helpers with array and `Vec` results ----

#[differentiable]
fn rotate(x: f64, y: f64, a: f64) -> [f64; 2] {
    let (c, s) = (a.cos(), a.sin());
    [c * x - s * y, s * x + c * y]
}

#[differentiable]
fn powers(x: f64, n: usize) -> Vec<f64> {
    let mut out = vec![1.0; n];
    for i in 1..n {
        out[i] = out[i - 1] * x;
    }
    out
}

#[differentiable(static)]
fn calls_rotate(x: f64, y: f64) -> f64 {
    let r = rotate(x, y, 0.3 * y);
    let q: [f64; 2] = rotate(r[1], x, 0.5);
    let p = powers(x * y, 4);
    r[0] * r[1] + q[0] - q[1] * q[1] + p[3] + rotate(y, x, x)[1]
}

#[differentiable(tape)]
fn calls_rotate_tape(x: f64, y: f64) -> f64 {
    let a = 0.3 * y;
    let (r0, r1) = (a.cos() * x - a.sin() * y, a.sin() * x + a.cos() * y);
    let b = 0.5f64;
    let (q0, q1) = (b.cos() * r1 - b.sin() * x, b.sin() * r1 + b.cos() * x);
    let t = x * y;
    let p3 = t * t * t;
    r0 * r1 + q0 - q1 * q1 + p3 + (x.sin() * y + x.cos() * x)
}

#[test]
fn helpers_with_array_results() {
    for &pt in &[(0.7, -0.4), (-0.8, 1.3)] {
        check2(
            "calls_rotate",
            pt,
            calls_rotate,
            calls_rotate_grad,
            calls_rotate_tape_grad,
        );
    }
}

// An array result read in a loop body, and called in one.
#[differentiable(static)]
fn rotate_in_loop(x: f64, y: f64) -> f64 {
    let mut p = (x, y);
    let mut acc = 0.0;
    for k in 0..3 {
        let r = rotate(p.0, p.1, 0.2 * k as f64 + x);
        acc += r[0] * r[1];
        p = (r[1], r[0] * 0.9);
    }
    acc + p.0
}

#[differentiable(tape)]
fn rotate_in_loop_tape(x: f64, y: f64) -> f64 {
    let (mut p0, mut p1) = (x, y);
    let mut acc = 0.0;
    for k in 0..3 {
        let a = 0.2 * k as f64 + x;
        let (r0, r1) = (a.cos() * p0 - a.sin() * p1, a.sin() * p0 + a.cos() * p1);
        acc += r0 * r1;
        p0 = r1;
        p1 = r0 * 0.9;
    }
    acc + p0
}

#[test]
fn array_results_in_a_loop() {
    for &pt in &[(0.7, -0.4), (-0.8, 1.3)] {
        check2(
            "rotate_in_loop",
            pt,
            rotate_in_loop,
            rotate_in_loop_grad,
            rotate_in_loop_tape_grad,
        );
    }
}

// Memory arguments to helpers with array and tuple results, which the reverse sweep
// passes to the helper's `_vjp` again: array and slice parameters passed bare (a
// `&[f64; 3]` parameter is passed on as the reference, not copied), a view of a
// parameter and temporaries at the top of the body, and parameters in a loop.
// (GradBench's bundle adjustment: `project(cam, x)` calls Rodrigues' rotation with
// `&[cam[0], cam[1], cam[2]]`.) The helpers' `#[inline]` attributes go to their
// `_vjp` as well.
#[differentiable]
#[inline]
fn cross3(a: &[f64; 3], b: &[f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[differentiable]
#[inline(always)]
fn moments(v: &[f64]) -> (f64, f64) {
    let mut s = 0.0;
    let mut q = 0.0;
    for i in 0..v.len() {
        s += v[i];
        q += v[i] * v[i];
    }
    (s, q)
}

#[differentiable(static)]
fn calls_with_memory(a: &[f64; 3], b: &[f64; 3], x: &[f64]) -> f64 {
    let c = cross3(a, &[x[0], x[1] * x[2], a[0].sin()]);
    let (s, q) = moments(&x[1..]);
    let (s2, _) = moments(x);
    let mut acc = c[0] * s + c[1] * q.sin() + c[2] + s2 * a[1];
    for k in 0..3 {
        let r = cross3(a, b);
        acc += r[k] * x[k];
    }
    acc
}

// The same, with the helpers written out (the tape takes no array or tuple results).
#[differentiable(tape)]
fn calls_with_memory_tape(a: &[f64], b: &[f64], x: &[f64]) -> f64 {
    let t = [x[0], x[1] * x[2], a[0].sin()];
    let c0 = a[1] * t[2] - a[2] * t[1];
    let c1 = a[2] * t[0] - a[0] * t[2];
    let c2 = a[0] * t[1] - a[1] * t[0];
    let mut s = 0.0;
    let mut q = 0.0;
    for i in 1..x.len() {
        s += x[i];
        q += x[i] * x[i];
    }
    let mut s2 = 0.0;
    for i in 0..x.len() {
        s2 += x[i];
    }
    let r = [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ];
    c0 * s + c1 * q.sin() + c2 + s2 * a[1] + r[0] * x[0] + r[1] * x[1] + r[2] * x[2]
}

#[test]
fn memory_arguments_to_array_and_tuple_results() {
    let (a, b) = ([0.4, -1.1, 0.7], [1.3, 0.2, -0.6]);
    let x = vec![0.5, -0.8, 1.2, 0.3];
    let (v, (ga, gb, gx)) = calls_with_memory_grad(&a, &b, &x);
    let (ga, gb): ([f64; 3], [f64; 3]) = (ga, gb);
    assert_eq!(v.to_bits(), calls_with_memory(&a, &b, &x).to_bits());
    let flat: Vec<f64> = a.iter().chain(&b).chain(&x).copied().collect();
    let f = |p: &[f64]| calls_with_memory(&[p[0], p[1], p[2]], &[p[3], p[4], p[5]], &p[6..]);
    let got: Vec<f64> = ga.iter().chain(&gb).chain(&gx).copied().collect();
    assert_close(
        &got,
        &fd(f, &flat),
        1e-6,
        "calls_with_memory vs differences",
    );
    let (tv, (ta, tb, tx)) = calls_with_memory_tape_grad(&a, &b, &x);
    assert_close(&[tv], &[v], 1e-12, "calls_with_memory: tape value");
    let tape: Vec<f64> = ta.iter().chain(&tb).chain(&tx).copied().collect();
    assert_close(&got, &tape, 1e-12, "calls_with_memory vs tape");
}

// An early `return` of a tuple result, from a loop.
#[differentiable(static)]
fn first_above(x: f64, y: f64) -> (f64, f64) {
    let mut s = x;
    for k in 0..5 {
        s = s * 1.5 + y;
        if s > 2.0 {
            return (s, k as f64 * y);
        }
    }
    (s * y, s)
}

#[differentiable(tape, wrt(x, y))]
fn first_above_dot_tape(x: f64, y: f64, s0: f64, s1: f64) -> f64 {
    let mut s = x;
    for k in 0..5 {
        s = s * 1.5 + y;
        if s > 2.0 {
            return s0 * s + s1 * (k as f64 * y);
        }
    }
    s0 * (s * y) + s1 * s
}

#[test]
fn early_return_of_a_tuple() {
    for &(x, y) in &[(0.7, 0.4), (-0.8, 0.3), (0.1, -0.2)] {
        let s = (0.6, -1.3);
        let (v, (gx, gy)) = first_above_vjp(x, y, s);
        assert_eq!(v, first_above(x, y));
        let want = fd(|p| dot2(s, first_above(p[0], p[1])), &[x, y]);
        assert_close(&[gx, gy], &want, 1e-6, "first_above vs differences");
        let (tv, (tx, ty)) = first_above_dot_tape_grad(x, y, s.0, s.1);
        assert_close(&[tv], &[dot2(s, v)], 1e-12, "first_above: tape value");
        assert_close(&[gx, gy], &[tx, ty], 1e-12, "first_above vs tape");
    }
}

// `sin_cos` as a tuple (the tape has no `sin_cos`: its twin has `sin` and `cos`).
#[differentiable(static)]
fn with_sin_cos(x: f64, y: f64) -> f64 {
    let (s, c) = (x * y).sin_cos();
    let sc = y.sin_cos();
    s * c + sc.0 * x - sc.1 + x.sin_cos().1
}

#[differentiable(tape)]
fn with_sin_cos_tape(x: f64, y: f64) -> f64 {
    let (s, c) = ((x * y).sin(), (x * y).cos());
    s * c + y.sin() * x - y.cos() + x.cos()
}

// A tuple built in nested blocks (two hidden tuples at once).
twins! {
    nested_blocks / nested_blocks_tape (x: f64, y: f64) -> f64 {
        let p = {
            {
                let t = x * y;
                (t, t + y)
            }
        };
        let q = if x > y { { (p.1, x) } } else { (y, { p.0 }) };
        p.0 * q.0 + q.1
    }
}

#[test]
fn sin_cos_and_nested_blocks() {
    for &pt in &[(0.7, -0.4), (-0.8, 1.3)] {
        check2(
            "with_sin_cos",
            pt,
            with_sin_cos,
            with_sin_cos_grad,
            with_sin_cos_tape_grad,
        );
        check2(
            "nested_blocks",
            pt,
            nested_blocks,
            nested_blocks_grad,
            nested_blocks_tape_grad,
        );
    }
}

// A tensor in a tuple carried through a loop, and a helper with a tensor element
// called in it.
#[differentiable(static)]
fn tensor_pair_loop(t: &Tensor, a: f64) -> f64 {
    let mut p = (t * 1.0, a);
    for _ in 0..3 {
        let (s, u): (f64, Tensor) = scale_sum(&p.0, p.1);
        p = (u, s * 0.1 + a);
    }
    p.0.sum() * p.1
}

#[differentiable(tape)]
fn tensor_pair_loop_tape(t: &Tensor, a: f64) -> f64 {
    let mut p0 = t * 1.0;
    let mut p1 = a;
    for _ in 0..3 {
        let v = &p0 * p1;
        let s = v.sum();
        p0 = v.tanh();
        p1 = s * 0.1 + a;
    }
    p0.sum() * p1
}

#[test]
fn tensor_tuples_in_loops() {
    let t = Tensor::from_vec(vec![0.3, -0.5, 0.9, 0.1], &[2, 2]);
    let a = 0.7;
    let (v, (gt, ga)) = tensor_pair_loop_grad(&t, a);
    assert_eq!(v.to_bits(), tensor_pair_loop(&t, a).to_bits());
    let f =
        |flat: &[f64]| tensor_pair_loop(&Tensor::from_vec(flat[..4].to_vec(), &[2, 2]), flat[4]);
    let x0: Vec<f64> = t.as_slice().iter().copied().chain([a]).collect();
    let got: Vec<f64> = gt.as_slice().iter().copied().chain([ga]).collect();
    assert_close(&got, &fd(f, &x0), 1e-6, "tensor_pair_loop vs differences");
    let (tv, (tt, ta)) = tensor_pair_loop_tape_grad(&t, a);
    assert_close(&[tv], &[v], 1e-12, "tensor_pair_loop: tape value");
    let tape: Vec<f64> = tt.as_slice().iter().copied().chain([ta]).collect();
    assert_close(&got, &tape, 1e-12, "tensor_pair_loop vs tape");
}

// f32 elements.
#[differentiable(static)]
fn polar32(x: f32, y: f32) -> (f32, f32) {
    let r = (x * x + y * y).sqrt();
    (r, y * r)
}

#[differentiable(tape, wrt(x, y))]
fn polar32_dot_tape(x: f32, y: f32, s0: f32, s1: f32) -> f32 {
    let r = (x * x + y * y).sqrt();
    s0 * r + s1 * (y * r)
}

#[test]
fn f32_tuple_result() {
    let (x, y) = (0.7f32, -0.4f32);
    let (v, (gx, gy)) = polar32_vjp(x, y, (0.5, -2.0));
    assert_eq!(v, polar32(x, y));
    let r = (x * x + y * y).sqrt();
    // d/dx (0.5 r - 2 y r) = (0.5 - 2 y) x / r; d/dy = (0.5 - 2 y) y / r - 2 r.
    let (wx, wy) = ((0.5 - 2.0 * y) * x / r, (0.5 - 2.0 * y) * y / r - 2.0 * r);
    assert!(
        (gx - wx).abs() < 1e-5 && (gy - wy).abs() < 1e-5,
        "{gx} {gy} vs {wx} {wy}"
    );
    let (_, (tx, ty)) = polar32_dot_tape_grad(x, y, 0.5, -2.0);
    assert!(
        (gx - tx).abs() < 1e-6 && (gy - ty).abs() < 1e-6,
        "{gx} {gy} vs tape {tx} {ty}"
    );
}

#[test]
#[should_panic(
    expected = "element 0 of the seed of `with_vec_vjp` has 2 elements, that of its result 3"
)]
fn a_vec_seed_of_the_wrong_length_panics() {
    let _ = with_vec_vjp(&[0.4, 1.2, -0.3], 0.9, (vec![1.0, 2.0], 1.0));
}

// A tuple as the value of a `match`.
twins! {
    tuple_of_match / tuple_of_match_tape (x: f64, y: f64, k: usize) -> f64 {
        let (a, b) = match k % 3 {
            0 => (x, y),
            1 => {
                let t = x * y;
                (t, t.sin())
            }
            _ => (y * 2.0, x),
        };
        a * b + a
    }
}

#[test]
fn tuple_values_of_a_match() {
    for k in 0..3 {
        check2(
            "tuple_of_match",
            (0.7, -0.4),
            |x, y| tuple_of_match(x, y, k),
            |x, y| tuple_of_match_grad(x, y, k),
            |x, y| tuple_of_match_tape_grad(x, y, k),
        );
    }
}
