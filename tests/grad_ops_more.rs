//! The operations of issue 11 item 7 on both paths: `max_axis`/`min_axis`, the
//! piecewise-constant `signum floor ceil round trunc` (scalars and tensors), and the
//! elementwise binary tensor functions `atan2 hypot maximum minimum` with
//! broadcasting. Each body is compiled by the static path and by
//! `#[differentiable(tape)]`; away from kinks both gradients must agree with each
//! other and with central differences, at ties both must split the gradient evenly,
//! and the rounding functions must give exactly zero.

#![allow(dead_code)] // some primals are used only through their companions

use adjoint::check::{gradcheck, Flat, Tolerance};
use adjoint::prelude::*;

/// An input of a case: a tensor, or a scalar.
#[derive(Clone, Debug)]
enum Input {
    T(Tensor),
    S(f64),
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::T(t) => t.len(),
            Input::S(_) => 1,
        }
    }
}

/// A tensor input from its elements and shape.
fn ten(v: &[f64], shape: &[usize]) -> Input {
    Input::T(Tensor::from_vec(v.to_vec(), shape))
}

/// A tensor input of random elements in `[0.5, 1.5)` (no ties, with probability 1).
fn r(shape: &[usize], seed: u64) -> Input {
    Input::T(Tensor::rand(shape, seed) + 0.5)
}

fn flat(inputs: &[Input]) -> Vec<f64> {
    let mut v = Vec::new();
    for i in inputs {
        match i {
            Input::T(t) => v.extend_from_slice(t.as_slice()),
            Input::S(s) => v.push(*s),
        }
    }
    v
}

/// `inputs` with the values of `flat` (same layout).
fn unflat(inputs: &[Input], flat: &[f64]) -> Vec<Input> {
    let mut at = 0;
    inputs
        .iter()
        .map(|i| {
            let chunk = &flat[at..at + i.len()];
            at += i.len();
            match i {
                Input::T(t) => Input::T(Tensor::from_vec(chunk.to_vec(), t.shape())),
                Input::S(_) => Input::S(chunk[0]),
            }
        })
        .collect()
}

/// The primal, then `(value, gradient)` of the static path and of the tape.
type Outcome = (f64, (f64, Vec<f64>), (f64, Vec<f64>));

/// Reads a parameter of the function from an [`Input`].
trait Take<'a> {
    fn take(i: &'a Input) -> Self;
}

impl<'a> Take<'a> for &'a Tensor {
    fn take(i: &'a Input) -> Self {
        match i {
            Input::T(t) => t,
            Input::S(_) => unreachable!("a tensor parameter"),
        }
    }
}

impl Take<'_> for f64 {
    fn take(i: &Input) -> Self {
        match i {
            Input::S(s) => *s,
            Input::T(_) => unreachable!("a scalar parameter"),
        }
    }
}

/// Each body twice, `f` on the static path and `t` on the tape, and a test at the
/// given inputs; `run(inputs)` gives both gradients, flattened.
macro_rules! twins {
    ($($s:ident ($($p:ident : $ty:ty = $init:expr),+) $body:block)*) => {
        $(
            mod $s {
                use super::*;

                #[differentiable(static)]
                pub fn f($($p: $ty),+) -> f64 $body

                #[differentiable(tape)]
                pub fn t($($p: $ty),+) -> f64 $body

                pub fn inputs() -> Vec<Input> {
                    vec![$($init),+]
                }

                /// The primal, then `(value, gradient)` of the static path and the tape.
                pub fn run(inputs: &[Input]) -> Outcome {
                    let mut it = inputs.iter();
                    $(let $p: $ty = Take::take(it.next().unwrap());)+
                    let (sv, sg) = f_grad($($p),+);
                    let (tv, tg) = t_grad($($p),+);
                    (f($($p),+), (sv, sg.flat()), (tv, tg.flat()))
                }

                #[test]
                fn matches_finite_differences_and_the_tape() {
                    check(stringify!($s), &inputs(), run);
                }
            }
        )*
    };
}

/// Static and tape agree in value and gradient, and central differences agree.
#[track_caller]
fn check(name: &str, inputs: &[Input], run: fn(&[Input]) -> Outcome) {
    let (value, (sv, sg), (tv, tg)) = run(inputs);
    assert_eq!(
        sv.to_bits(),
        value.to_bits(),
        "{name}: _grad's value is the primal's"
    );
    assert!(close(value, tv), "{name}: tape value {tv} vs {value}");
    assert_eq!(
        sg.len(),
        flat(inputs).len(),
        "{name}: one gradient entry per input"
    );
    for (k, (a, b)) in sg.iter().zip(&tg).enumerate() {
        assert!(close(*a, *b), "{name}: entry {k}: static {a} vs tape {b}");
    }
    let x0 = flat(inputs);
    let f = |x: &[f64]| run(&unflat(inputs, x)).0;
    let grad = |x: &[f64]| run(&unflat(inputs, x)).1 .1;
    if let Err(report) = gradcheck(f, grad, &x0, tol()) {
        panic!("{name}: {report}");
    }
}

fn tol() -> Tolerance {
    Tolerance::default().eps(1e-6).atol(1e-6).rtol(1e-5)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * (1.0 + a.abs().max(b.abs()))
}

/// Both paths give exactly `want` (`0.0` and `-0.0` count as equal).
#[track_caller]
fn exact(name: &str, got: Outcome, want: &[f64]) {
    let (value, (sv, sg), (tv, tg)) = got;
    assert_eq!(sv.to_bits(), value.to_bits(), "{name}: static value");
    assert_eq!(tv, value, "{name}: tape value");
    assert_eq!(sg, want, "{name}: static gradient");
    assert_eq!(tg, want, "{name}: tape gradient");
}

// A 3-row matrix with distinct entries, away from integers and halves.
const M: [f64; 12] = [
    -1.3, 0.7, 2.2, -0.4, 1.9, -2.6, 0.2, 1.15, -0.85, 2.7, -1.65, 0.45,
];

twins! {
    // d max_axis(x, k) = dy at the maximum of each line along k
    max_axis0 (x: &Tensor = r(&[3, 4], 1)) { x.max_axis(0).powi(2).sum() + x.min_axis(1).sin().sum() }
    // along the middle axis of a 3-d tensor, and the scalar result of a 1-d one
    max_axis3 (x: &Tensor = r(&[2, 3, 2], 2), v: &Tensor = r(&[5], 3)) {
        (x.max_axis(1) * x.min_axis(2).sum()).sum() + v.max_axis(0).sum() * v.min_axis(0).sum()
    }
    // the axis extremum inside a chain, and of a broadcast product
    max_axis_chain (x: &Tensor = r(&[3, 4], 4), b: &Tensor = r(&[4], 5)) {
        let h = (x * b).tanh();
        (h.max_axis(1).exp() + h.min_axis(1)).mean() + (x - b).max_axis(0).norm()
    }
    // floor, ceil, round, trunc, signum: locally constant, so only the other factors
    // carry gradient
    rounding_t (x: &Tensor = ten(&M, &[3, 4])) {
        (x.floor() * x + x.ceil() * 2.0 + x.round() * x.sin() + x.trunc() - x.signum() * x.exp()).sum()
    }
    // the same on scalars, as methods and as `f64::floor(x)`
    rounding_s (x: f64 = Input::S(-1.3), y: f64 = Input::S(2.35)) {
        x.floor() * y + x.ceil() * x + (x * y).round() * x + f64::trunc(y) * y.sin()
            + x.signum() * y.exp() + (y - x).floor().powi(2)
    }
    // [2,3] with [3]: the second operand's gradient is summed over rows
    atan2_bcast (a: &Tensor = r(&[2, 3], 6), b: &Tensor = r(&[3], 7)) {
        a.atan2(b).sum() + (b * 2.0).atan2(&(a - 1.0)).exp().mean()
    }
    // [2,3] with a 0-d tensor, on both sides (the result of `c.hypot(..)` has the
    // second operand's shape: the shape analysis once took the first's)
    hypot_bcast (a: &Tensor = r(&[2, 3], 8), c: &Tensor = ten(&[0.8], &[])) {
        (a.hypot(c) * a).sum() + c.hypot(&(a - 1.0)).ln().sum()
    }
    // maximum/minimum of [2,3] with [3] and with a 0-d tensor (no ties)
    maximum_bcast (a: &Tensor = ten(&M[..6], &[2, 3]), b: &Tensor = ten(&[0.1, -0.5, 1.0], &[3]), c: &Tensor = ten(&[0.33], &[])) {
        (a.maximum(b) * a).sum() + b.minimum(a).sin().sum() + a.minimum(c).powi(2).sum()
            + c.maximum(a).mean()
    }
    // everything together, with a scalar parameter
    mixed (x: &Tensor = r(&[3, 3], 9), s: f64 = Input::S(0.6)) {
        let y = x.hypot(&x.t()).maximum(&(x * s));
        y.max_axis(1).sum() * s.round() + y.floor().sum() + y.atan2(x).min_axis(0).sum() * s
    }
}

// Ties: the tied elements of a line (max_axis) or the equal operands (maximum) split
// the gradient evenly, on both paths.
mod ties {
    use super::*;

    #[differentiable(static)]
    pub fn axis_s(x: &Tensor, w: &Tensor) -> f64 {
        (x.max_axis(1) * w).sum() + x.min_axis(0).sum()
    }

    #[differentiable(tape)]
    pub fn axis_t(x: &Tensor, w: &Tensor) -> f64 {
        (x.max_axis(1) * w).sum() + x.min_axis(0).sum()
    }

    #[differentiable(static)]
    pub fn max_s(a: &Tensor, b: &Tensor) -> f64 {
        a.maximum(b).sum() + (a.minimum(b) * 3.0).sum()
    }

    #[differentiable(tape)]
    pub fn max_t(a: &Tensor, b: &Tensor) -> f64 {
        a.maximum(b).sum() + (a.minimum(b) * 3.0).sum()
    }
}

#[test]
fn max_axis_splits_a_tied_line_evenly() {
    // Row 0 ties for its maximum (3, 3); column 0 ties for its minimum (1, 1).
    let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 1.0, 0.0, 2.0], &[2, 3]);
    let w = Tensor::from_vec(vec![4.0, 10.0], &[2]);
    let want_x = [0.5, 2.0, 2.0, 0.5, 1.0, 10.0 + 1.0];
    let (sv, (sx, sw)) = ties::axis_s_grad(&x, &w);
    let (tv, (tx, tw)) = ties::axis_t_grad(&x, &w);
    assert_eq!(sv, ties::axis_s(&x, &w));
    assert_eq!(tv, sv);
    assert_eq!(sx.as_slice(), &want_x);
    assert_eq!(tx.as_slice(), &want_x);
    assert_eq!(sw.as_slice(), &[3.0, 2.0]);
    assert_eq!(tw.as_slice(), &[3.0, 2.0]);
}

#[test]
fn maximum_splits_equal_elements_evenly() {
    // Same shapes: elements 0 and 2 are equal.
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    let b = Tensor::from_vec(vec![1.0, 5.0, 3.0], &[3]);
    // maximum: 0.5 / 0.5 at ties; minimum (times 3): 1.5 / 1.5 at ties.
    let want_a = [2.0, 3.0, 2.0];
    let want_b = [2.0, 1.0, 2.0];
    for (a_g, b_g) in [ties::max_s_grad(&a, &b).1, ties::max_t_grad(&a, &b).1] {
        assert_eq!(a_g.as_slice(), &want_a);
        assert_eq!(b_g.as_slice(), &want_b);
    }
    // Broadcast [2,3] against [3]: each tie gives half to each side, and b's
    // shares are summed over the rows.
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 3.0, 2.0, 1.0], &[2, 3]);
    let b = Tensor::from_vec(vec![2.0, 2.0, 2.0], &[3]);
    let want_a = [3.0, 2.0, 1.0, 1.0, 2.0, 3.0];
    let want_b = [4.0, 4.0, 4.0];
    for (a_g, b_g) in [ties::max_s_grad(&a, &b).1, ties::max_t_grad(&a, &b).1] {
        assert_eq!(a_g.as_slice(), &want_a);
        assert_eq!(b_g.as_slice(), &want_b);
    }
    // Against a 0-d tensor equal to some elements.
    let c = Tensor::scalar(2.0);
    for (a_g, c_g) in [ties::max_s_grad(&a, &c).1, ties::max_t_grad(&a, &c).1] {
        assert_eq!(a_g.as_slice(), &want_a);
        assert_eq!(c_g.as_slice(), &[12.0]);
    }
}

#[test]
fn rounding_gives_exactly_zero() {
    // At the jumps too: integers, halves, signed zeros.
    let pts = [2.0, -2.0, 0.5, -0.5, 2.5, 0.0, -0.0, 1e300];
    for &x in &pts {
        let y = 0.75;
        let inputs = [Input::S(x), Input::S(y)];
        let (_, (_, sg), (_, tg)) = rounding_s::run(&inputs);
        // Only the `* y`, `* x` and `y.sin()`/`y.exp()` factors carry gradient.
        let (fx, cx, rxy, sx) = (x.floor(), x.ceil(), (x * y).round(), x.signum());
        let want = [cx + rxy, fx + y.trunc() * y.cos() + sx * y.exp()];
        assert_eq!(sg, want, "static at {x}");
        assert_eq!(tg, want, "tape at {x}");
    }
    let x = Tensor::from_vec(pts.to_vec(), &[2, 4]);
    exact("zeros_t", zeros_t::run(&[Input::T(x.clone())]), &[0.0; 8]);
    // An infinite adjoint into `floor` still gives exactly 0.
    exact("inf_t", inf_t::run(&[Input::T(x)]), &[1.0; 8]);
    exact("inf_s", inf_s::run(&[Input::S(2.5)]), &[1.0]);
}

twins! {
    zeros_t (x: &Tensor = r(&[2], 10)) {
        (x.floor() + x.ceil() * 2.0 + x.round().exp() + x.trunc() + x.signum()).sum()
    }
    inf_t (x: &Tensor = r(&[2], 11)) { (x.floor() * f64::INFINITY).sum().min(0.0) + x.sum() }
    inf_s (x: f64 = Input::S(0.3)) { (x.round() * f64::INFINITY).min(0.0) + x }
}

// One f32 case on both paths, against the same body in f64.
mod in_f32 {
    use super::*;

    #[differentiable(static)]
    pub fn s(x: &Tensor<f32>, b: &Tensor<f32>, k: f32) -> f32 {
        (x.max_axis(0) * k.floor()).sum()
            + x.hypot(b).atan2(x).sum()
            + x.minimum(b).sum()
            + k.round() * k
    }

    #[differentiable(tape)]
    pub fn t(x: &Tensor<f32>, b: &Tensor<f32>, k: f32) -> f32 {
        (x.max_axis(0) * k.floor()).sum()
            + x.hypot(b).atan2(x).sum()
            + x.minimum(b).sum()
            + k.round() * k
    }

    #[differentiable(static)]
    pub fn s64(x: &Tensor, b: &Tensor, k: f64) -> f64 {
        (x.max_axis(0) * k.floor()).sum()
            + x.hypot(b).atan2(x).sum()
            + x.minimum(b).sum()
            + k.round() * k
    }
}

#[test]
fn f32_matches_the_tape_and_f64() {
    let xv = [0.3f32, 1.2, -0.7, 0.9, 0.4, -1.1];
    let bv = [0.5f32, -0.2, 1.0];
    let x = Tensor::<f32>::from_vec(xv.to_vec(), &[2, 3]);
    let b = Tensor::<f32>::from_vec(bv.to_vec(), &[3]);
    let k = 2.3f32;
    let (sv, (sx, sb, sk)) = in_f32::s_grad(&x, &b, k);
    let (tv, (tx, tb, tk)) = in_f32::t_grad(&x, &b, k);
    assert_eq!(sv.to_bits(), in_f32::s(&x, &b, k).to_bits());
    let to64 = |v: &[f32]| v.iter().map(|&e| e as f64).collect::<Vec<_>>();
    let x64 = Tensor::from_vec(to64(&xv), &[2, 3]);
    let b64 = Tensor::from_vec(to64(&bv), &[3]);
    let (v64, (gx, gb, gk)) = in_f32::s64_grad(&x64, &b64, k as f64);
    let near = |a: f32, b: f64| (a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs());
    assert!(near(sv, v64) && near(tv, v64), "{sv} {tv} {v64}");
    for (g, (t, w)) in sx
        .as_slice()
        .iter()
        .zip(tx.as_slice().iter().zip(gx.as_slice()))
    {
        assert!(near(*g, *w) && near(*t, *w), "x: {g} {t} {w}");
    }
    for (g, (t, w)) in sb
        .as_slice()
        .iter()
        .zip(tb.as_slice().iter().zip(gb.as_slice()))
    {
        assert!(near(*g, *w) && near(*t, *w), "b: {g} {t} {w}");
    }
    assert!(near(sk, gk) && near(tk, gk), "k: {sk} {tk} {gk}");
    // k's gradient is only `round(k)`: floor and round carry none.
    assert_eq!(sk, 2.0);
}
