//! Helpers that write into `&mut` out-parameters (issue 11, coverage item 5): a
//! `#[differentiable]` helper takes `&mut [f64]`, `&mut Vec<f64>` or `&mut f64` with
//! in-out semantics, and its `_vjp` takes one seed per `&mut` parameter (for its final
//! value) before `seed`, and gives the gradient of each one's initial value. Callers
//! pass a local buffer, a sub-slice of one or a local scalar. Every caller is
//! `#[differentiable(static)]` and is checked against central finite differences and
//! against a twin on the tape written without out-parameters (the same math, returning
//! values).

#![allow(dead_code)]
// `&mut Vec<f64>` is one of the forms under test.
#![allow(
    clippy::needless_range_loop,
    clippy::assign_op_pattern,
    clippy::ptr_arg
)]

use adjoint::prelude::*;

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

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

fn point(n: usize, shift: f64) -> Vec<f64> {
    (0..n)
        .map(|i| shift + 0.17 * i as f64 - 0.05 * (i * i) as f64)
        .collect()
}

// ----- the helpers -------------------------------------------------------------------

/// An out-parameter only written.
#[differentiable]
fn subtract(x: &[f64], y: &[f64], out: &mut [f64]) {
    for i in 0..out.len() {
        out[i] = x[i] - y[i];
    }
}

/// In-out: the initial value is read.
#[differentiable]
fn axpy_sin(a: f64, x: &[f64], out: &mut [f64]) {
    for i in 0..out.len() {
        out[i] = a * out[i] + x[i].sin();
    }
}

/// A result and a `&mut Vec` written and read back.
#[differentiable]
fn scale_norm(x: &[f64], out: &mut Vec<f64>) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        out[i] = out[i] * x[i];
        s += out[i] * out[i];
    }
    s.sqrt()
}

/// `&mut f64` accumulation.
#[differentiable]
fn acc(x: f64, s: &mut f64) {
    *s += x * x.sin();
}

/// `&mut f64` read, written, and a result.
#[differentiable]
fn acc_ret(x: f64, s: &mut f64) -> f64 {
    let old = *s;
    *s = *s * x + 1.0;
    old.cos() * x
}

/// A helper passing its own `&mut` parameter on to another helper.
#[differentiable]
fn double_sub(x: &[f64], y: &[f64], out: &mut [f64]) {
    subtract(x, y, &mut out[..]);
    for i in 0..out.len() {
        out[i] *= out[i] + 2.0;
    }
}

// ----- callers and their tape twins --------------------------------------------------

// A local buffer filled by a helper, then read.
#[differentiable(static)]
fn dist(x: &[f64], y: &[f64]) -> f64 {
    let mut d = vec![0.0; x.len()];
    subtract(x, y, &mut d);
    let mut s = 0.0;
    for i in 0..d.len() {
        s += d[i] * d[i].sin();
    }
    s
}

#[differentiable(tape)]
fn dist_tape(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let d = x[i] - y[i];
        s += d * d.sin();
    }
    s
}

#[test]
fn local_buffer_written_by_a_helper() {
    let (x, y) = (point(4, 0.3), point(4, -0.6));
    let (v, (gx, gy)) = dist_grad(&x, &y);
    assert_eq!(v.to_bits(), dist(&x, &y).to_bits());
    assert_close(&gx, &fd(|x| dist(x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| dist(&x, y), &y), "dy");
    let (tv, (tx, ty)) = dist_tape_grad(&x, &y);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
    // `_vjp` scales by its seed.
    let (_, (vx, _)) = dist_vjp(&x, &y, 2.5);
    assert_close(&vx, &gx.iter().map(|g| 2.5 * g).collect::<Vec<_>>(), "vjp");
}

// The same buffer passed to a helper twice: the second call reads what the first
// wrote, and the buffer's initial value is active.
#[differentiable(static)]
fn twice(p: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = x[i] * y[i];
    }
    axpy_sin(p[0], x, &mut b);
    axpy_sin(p[1], y, &mut b);
    let mut s = 0.0;
    for i in 0..n {
        s += b[i] * b[i] * (i as f64 + 1.0);
    }
    s
}

#[differentiable(tape)]
fn twice_tape(p: &[f64], x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let b = x[i] * y[i];
        let b = p[0] * b + x[i].sin();
        let b = p[1] * b + y[i].sin();
        s += b * b * (i as f64 + 1.0);
    }
    s
}

#[test]
fn one_buffer_through_two_calls() {
    let (p, x, y) = (vec![0.7, -1.3], point(3, 0.2), point(3, 0.9));
    let (v, (gp, gx, gy)) = twice_grad(&p, &x, &y);
    assert_eq!(v.to_bits(), twice(&p, &x, &y).to_bits());
    assert_close(&gp, &fd(|p| twice(p, &x, &y), &p), "dp");
    assert_close(&gx, &fd(|x| twice(&p, x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| twice(&p, &x, y), &y), "dy");
    let (_, (tp, tx, ty)) = twice_tape_grad(&p, &x, &y);
    assert_close(&gp, &tp, "dp vs tape");
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
}

// Sub-slices `&mut b[a..b]` and `&mut b[..k]` of a local array, with sub-slices of
// parameters as inputs.
#[differentiable(static)]
fn window(x: &[f64], y: &[f64]) -> f64 {
    let mut b = [0.0; 5];
    for i in 0..5 {
        b[i] = x[i].exp();
    }
    subtract(&x[1..3], &y[0..2], &mut b[2..4]);
    axpy_sin(x[4], &y[1..], &mut b[..3]);
    let mut s = 0.0;
    for i in 0..5 {
        s += b[i] * (b[i] + y[i]);
    }
    s
}

#[differentiable(tape)]
fn window_tape(x: &[f64], y: &[f64]) -> f64 {
    let b0 = x[0].exp();
    let b1 = x[1].exp();
    let b2 = x[1] - y[0];
    let b3 = x[2] - y[1];
    let b4 = x[4].exp();
    let b0 = x[4] * b0 + y[1].sin();
    let b1 = x[4] * b1 + y[2].sin();
    let b2 = x[4] * b2 + y[3].sin();
    b0 * (b0 + y[0]) + b1 * (b1 + y[1]) + b2 * (b2 + y[2]) + b3 * (b3 + y[3]) + b4 * (b4 + y[4])
}

#[test]
fn sub_slices_passed_mut() {
    let (x, y) = (point(5, 0.1), point(5, -0.4));
    let (v, (gx, gy)) = window_grad(&x, &y);
    assert_eq!(v.to_bits(), window(&x, &y).to_bits());
    assert!(
        (v - window_tape(&x, &y)).abs() < 1e-12,
        "the twin computes the same"
    );
    assert_close(&gx, &fd(|x| window(x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| window(&x, y), &y), "dy");
    let (_, (tx, ty)) = window_tape_grad(&x, &y);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
}

// A helper called in a loop on the same buffer: each iteration's initial value is
// saved for the reverse sweep.
#[differentiable(static)]
fn looped(x: &[f64], y: &[f64]) -> f64 {
    let n = y.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = y[i] * 0.5;
    }
    for k in 0..x.len() {
        axpy_sin(x[k], y, &mut b);
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i].sin() * b[i];
    }
    s
}

#[differentiable(tape)]
fn looped_tape(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..y.len() {
        let mut b = y[i] * 0.5;
        for k in 0..x.len() {
            b = x[k] * b + y[i].sin();
        }
        s += b.sin() * b;
    }
    s
}

#[test]
fn helper_called_in_a_loop() {
    let (x, y) = (vec![0.8, -0.6, 1.1], point(4, 0.4));
    let (v, (gx, gy)) = looped_grad(&x, &y);
    assert_eq!(v.to_bits(), looped(&x, &y).to_bits());
    assert_close(&gx, &fd(|x| looped(x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| looped(&x, y), &y), "dy");
    let (_, (tx, ty)) = looped_tape_grad(&x, &y);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
}

// `&mut f64` accumulation in a loop.
#[differentiable(static)]
fn accum(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        acc(x[i], &mut s);
    }
    s * s
}

#[differentiable(tape)]
fn accum_tape(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i].sin();
    }
    s * s
}

#[test]
fn scalar_accumulated_through_mut_ref() {
    let x = point(4, 0.5);
    let (v, g) = accum_grad(&x);
    assert_eq!(v.to_bits(), accum(&x).to_bits());
    assert_close(&g, &fd(accum, &x), "dx");
    let (_, t) = accum_tape_grad(&x);
    assert_close(&g, &t, "dx vs tape");
}

// A `&mut f64` whose initial value is read, and the helper's result used.
#[differentiable(static)]
fn accum_ret(a: f64, b: f64, c: f64) -> f64 {
    let mut s = a * b;
    let r = acc_ret(b, &mut s);
    let q = acc_ret(c, &mut s);
    r * s + q
}

#[differentiable(tape)]
fn accum_ret_tape(a: f64, b: f64, c: f64) -> f64 {
    let s = a * b;
    let r = s.cos() * b;
    let s = s * b + 1.0;
    let q = s.cos() * c;
    let s = s * c + 1.0;
    r * s + q
}

#[test]
fn scalar_mut_ref_with_a_result() {
    let (a, b, c) = (0.7, -0.4, 1.3);
    let (v, (ga, gb, gc)) = accum_ret_grad(a, b, c);
    assert_eq!(v.to_bits(), accum_ret(a, b, c).to_bits());
    let want = fd(|p| accum_ret(p[0], p[1], p[2]), &[a, b, c]);
    assert_close(&[ga, gb, gc], &want, "d(a, b, c)");
    let (_, (ta, tb, tc)) = accum_ret_tape_grad(a, b, c);
    assert_close(&[ga, gb, gc], &[ta, tb, tc], "vs tape");
}

// A result and a `&mut Vec<f64>`, and a helper that passes its `&mut` parameter on.
#[differentiable(static)]
fn vec_and_nested(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let mut v = vec![0.0; n];
    for i in 0..n {
        v[i] = x[i] + 1.0;
    }
    let r = scale_norm(y, &mut v);
    let mut w = vec![0.0; n];
    double_sub(&v, x, &mut w);
    let mut s = r;
    for i in 0..n {
        s += w[i] * v[i];
    }
    s
}

#[differentiable(tape)]
fn vec_and_nested_tape(x: &[f64], y: &[f64]) -> f64 {
    let mut r = 0.0;
    for i in 0..x.len() {
        let v = (x[i] + 1.0) * y[i];
        r += v * v;
    }
    let mut s = r.sqrt();
    for i in 0..x.len() {
        let v = (x[i] + 1.0) * y[i];
        let w = v - x[i];
        let w = w * (w + 2.0);
        s += w * v;
    }
    s
}

#[test]
fn mut_vec_result_and_nested_helper() {
    let (x, y) = (point(3, 0.3), point(3, 1.1));
    let (v, (gx, gy)) = vec_and_nested_grad(&x, &y);
    assert_eq!(v.to_bits(), vec_and_nested(&x, &y).to_bits());
    assert_close(&gx, &fd(|x| vec_and_nested(x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| vec_and_nested(&x, y), &y), "dy");
    let (_, (tx, ty)) = vec_and_nested_tape_grad(&x, &y);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
}

// A local buffer passed as an input and overwritten after the call: the reverse sweep
// hands `_vjp` its value at the call (a copy), not the final contents.
#[differentiable(static)]
fn input_overwritten(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let mut c = vec![0.0; n];
    for i in 0..n {
        c[i] = x[i].cos();
    }
    let mut d = vec![0.0; n];
    for i in 0..n {
        d[i] = 2.0 * y[i];
    }
    axpy_sin(x[0], &c, &mut d);
    for i in 0..n {
        c[i] = 3.0 * y[i] + c[i];
    }
    let mut s = 0.0;
    for i in 0..n {
        s += d[i] * c[i];
    }
    s
}

#[differentiable(tape)]
fn input_overwritten_tape(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let c = x[i].cos();
        let d = x[0] * (2.0 * y[i]) + c.sin();
        let c = 3.0 * y[i] + c;
        s += d * c;
    }
    s
}

#[test]
fn buffer_input_is_taken_at_the_call() {
    let (x, y) = (point(3, 0.4), point(3, -0.2));
    let (v, (gx, gy)) = input_overwritten_grad(&x, &y);
    assert_eq!(v.to_bits(), input_overwritten(&x, &y).to_bits());
    assert_close(&gx, &fd(|x| input_overwritten(x, &y), &x), "dx");
    assert_close(&gy, &fd(|y| input_overwritten(&x, y), &y), "dy");
    let (_, (tx, ty)) = input_overwritten_tape_grad(&x, &y);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&gy, &ty, "dy vs tape");
}

// Calls in the branches of an `if`.
#[differentiable(static)]
fn branchy(x: &[f64], y: &[f64]) -> f64 {
    let n = y.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = y[i] * x[2];
    }
    if x[0] > 0.0 {
        axpy_sin(x[1], y, &mut b);
    } else {
        subtract(y, x, &mut b);
    }
    let mut s = 0.0;
    for i in 0..n {
        s += b[i] * b[i];
    }
    s
}

#[differentiable(tape)]
fn branchy_tape(x: &[f64], y: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..y.len() {
        let b = if x[0] > 0.0 {
            x[1] * (y[i] * x[2]) + y[i].sin()
        } else {
            y[i] - x[i]
        };
        s += b * b;
    }
    s
}

#[test]
fn helper_called_in_branches() {
    let y = point(3, 0.6);
    for x in [vec![0.5, -0.7, 1.2], vec![-0.5, 0.3, 0.9]] {
        let (v, (gx, gy)) = branchy_grad(&x, &y);
        assert_eq!(v.to_bits(), branchy(&x, &y).to_bits());
        assert_close(&gx, &fd(|x| branchy(x, &y), &x), "dx");
        assert_close(&gy, &fd(|y| branchy(&x, y), &y), "dy");
        let (_, (tx, ty)) = branchy_tape_grad(&x, &y);
        assert_close(&gx, &tx, "dx vs tape");
        assert_close(&gy, &ty, "dy vs tape");
    }
}

/// `*s` carried through the helper's own loop.
#[differentiable]
fn sum_sq_into(x: &[f64], s: &mut f64) {
    for i in 0..x.len() {
        *s += x[i] * x[i] * *s;
    }
}

#[differentiable(static)]
fn sum_sq(x: &[f64], a: f64) -> f64 {
    let mut s = a;
    sum_sq_into(&x[1..], &mut s);
    s * x[0]
}

#[differentiable(tape)]
fn sum_sq_tape(x: &[f64], a: f64) -> f64 {
    let mut s = a;
    for i in 1..x.len() {
        s += x[i] * x[i] * s;
    }
    s * x[0]
}

#[test]
fn mut_scalar_carried_through_the_helpers_loop() {
    let (x, a) = (point(4, 0.3), 0.8);
    let (v, (gx, ga)) = sum_sq_grad(&x, a);
    assert_eq!(v.to_bits(), sum_sq(&x, a).to_bits());
    assert_close(&gx, &fd(|x| sum_sq(x, a), &x), "dx");
    assert_close(&[ga], &fd(|p| sum_sq(&x, p[0]), &[a]), "da");
    let (_, (tx, ta)) = sum_sq_tape_grad(&x, a);
    assert_close(&gx, &tx, "dx vs tape");
    assert_close(&[ga], &[ta], "da vs tape");
}

// ----- the helpers' own `_vjp` -------------------------------------------------------

// `axpy_sin_vjp(a, x, out, seed_out, ())`: performs the writes, and gives the
// gradient of `<seed_out, final out>` with respect to `a`, `x` and the initial `out`.
#[test]
fn helper_vjp_of_a_mut_slice() {
    let (a, x, out0) = (0.6, point(3, 0.2), point(3, -0.5));
    let seed_out = vec![1.0, -2.0, 0.5];
    let mut out = out0.clone();
    let ((), (ga, gx, gout)) = axpy_sin_vjp(a, &x, &mut out, &seed_out, ());
    let mut want_out = out0.clone();
    axpy_sin(a, &x, &mut want_out);
    assert_eq!(out, want_out, "the forward writes");
    let dot = |a: f64, x: &[f64], o: &[f64]| {
        let mut o = o.to_vec();
        axpy_sin(a, x, &mut o);
        o.iter().zip(&seed_out).map(|(o, s)| o * s).sum::<f64>()
    };
    assert_close(&[ga], &fd(|p| dot(p[0], &x, &out0), &[a]), "da");
    assert_close(&gx, &fd(|x| dot(a, x, &out0), &x), "dx");
    assert_close(&gout, &fd(|o| dot(a, &x, o), &out0), "dout");
}

// `acc_ret_vjp(x, s, seed_s, seed)`: one seed for the final `*s`, one for the result.
#[test]
fn helper_vjp_of_a_mut_scalar() {
    let (x, s0, seed_s, seed) = (0.9, -0.3, 1.7, -0.8);
    let mut s = s0;
    let (r, (gx, gs)) = acc_ret_vjp(x, &mut s, seed_s, seed);
    let mut want_s = s0;
    assert_eq!(r.to_bits(), acc_ret(x, &mut want_s).to_bits());
    assert_eq!(s.to_bits(), want_s.to_bits(), "the forward write");
    let dot = |p: &[f64]| {
        let mut s = p[1];
        let r = acc_ret(p[0], &mut s);
        seed * r + seed_s * s
    };
    assert_close(&[gx, gs], &fd(dot, &[x, s0]), "d(x, s)");
    // `_grad` is the gradient of the result alone: the final `*s` gets no seed.
    let mut s = s0;
    let (_, (hx, hs)) = acc_ret_grad(x, &mut s);
    let res = |p: &[f64]| acc_ret(p[0], &mut p[1].clone());
    assert_close(&[hx, hs], &fd(res, &[x, s0]), "grad");
    assert_eq!(s.to_bits(), want_s.to_bits(), "`_grad` writes too");
}

// ----- f32 ---------------------------------------------------------------------------

#[differentiable]
fn scale32(x: &[f32], out: &mut [f32]) {
    for i in 0..out.len() {
        out[i] = out[i] * x[i] + 0.5;
    }
}

#[differentiable(static)]
fn use32(x: &[f32]) -> f32 {
    let mut b = vec![1.5f32; x.len()];
    scale32(x, &mut b);
    scale32(x, &mut b);
    let mut s = 0.0f32;
    for i in 0..b.len() {
        s += b[i] * b[i];
    }
    s
}

#[differentiable(tape)]
fn use32_tape(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for i in 0..x.len() {
        let b = (1.5f32 * x[i] + 0.5) * x[i] + 0.5;
        s += b * b;
    }
    s
}

#[test]
fn f32_out_parameters() {
    let x = vec![0.5f32, -1.25, 2.0];
    let (v, g) = use32_grad(&x);
    assert_eq!(v.to_bits(), use32(&x).to_bits());
    // d/dx of (b(x))^2 with b = (1.5 x + 0.5) x + 0.5, computed in f64.
    for i in 0..3 {
        let xi = f64::from(x[i]);
        let b = (1.5 * xi + 0.5) * xi + 0.5;
        let want = 2.0 * b * (3.0 * xi + 0.5);
        assert!(
            (f64::from(g[i]) - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "dx[{i}]: {} vs {want}",
            g[i]
        );
    }
    let (_, t) = use32_tape_grad(&x);
    for i in 0..3 {
        assert!(
            (g[i] - t[i]).abs() <= 1e-4 * (1.0 + t[i].abs()),
            "vs tape [{i}]"
        );
    }
}
