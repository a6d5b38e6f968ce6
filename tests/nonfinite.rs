//! Non-finite values propagate through gradients the way they do through the
//! primal, on both paths:
//!
//! - a branch not taken contributes nothing, even where it would compute NaN or an
//!   infinite derivative (`if x > 0.0 { x.sqrt() } else { 0.0 }` at x = -1), in
//!   straight-line code and inside loops;
//! - where the primal is finite and the derivative exists, the gradient is finite:
//!   a zero adjoint contributes zero, whatever the partial it meets (an infinite
//!   value cut off by `min`, `clamp` or `relu`, a detached infinity, `x * 0.0`);
//! - at the edges of a domain the conventions are PyTorch's: `sqrt'(0) = +inf`,
//!   `ln'(0) = +inf`, and `powf` with a zero base as in `tests/edge_points.rs`.
//!
//! Each body runs as `#[differentiable(static)]` and `#[differentiable(tape)]`; both
//! must give the documented value, with the same bits (NaN equal to NaN).

#![allow(dead_code)]
// the primals are used only through their companions
// The bodies are written the way a user would, branches and loops included.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

use adjoint::check::Flat;
use adjoint::prelude::*;

/// `mod $name { s (static), t (tape) }` from one body, with `run(..)` returning the
/// primal and, per path, the `_grad` value and the flattened gradient.
macro_rules! pair {
    ($($(#[$a:meta])? $name:ident ($($p:ident : $ty:ty),+) -> $out:ty $body:block)*) => {
        $(
            mod $name {
                use super::*;

                #[differentiable(static $(, $a)?)]
                pub fn s($($p: $ty),+) -> $out $body

                #[differentiable(tape $(, $a)?)]
                pub fn t($($p: $ty),+) -> $out $body

                pub fn run($($p: $ty),+) -> Outcome {
                    let primal = s($($p),+);
                    let (sv, sg) = s_grad($($p),+);
                    let (tv, tg) = t_grad($($p),+);
                    Outcome {
                        name: stringify!($name),
                        primal: primal as f64,
                        paths: [(sv as f64, flat64(&sg)), (tv as f64, flat64(&tg))],
                    }
                }
            }
        )*
    };
}

/// What one edge point gave on both paths.
pub struct Outcome {
    name: &'static str,
    primal: f64,
    /// `(value, gradient)` of the static path, then of the tape.
    paths: [(f64, Vec<f64>); 2],
}

/// A gradient as `f64`s (so `f32` functions share the checks).
fn flat64<T: Float, G: Flat<T>>(g: &G) -> Vec<f64> {
    g.flat().into_iter().map(Float::to_f64).collect()
}

/// The same bits, or both NaN (NaN payloads are not part of the contract), or both
/// zero: the sign of a zero gradient is not either: the static path moves a first
/// contribution `-dy = -0` in where the tape adds it to a `+0` accumulator.
fn same(a: f64, b: f64) -> bool {
    identical(a, b) || (a == 0.0 && b == 0.0)
}

/// The same bits, or both NaN: how a `_grad` value matches the primal's.
fn identical(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The documented value: equal (so `0.0` matches `-0.0`), or both NaN.
fn matches(got: f64, want: f64) -> bool {
    got == want || (got.is_nan() && want.is_nan())
}

std::thread_local! {
    /// The mismatches of the running test (each test runs on its own thread).
    static FAILED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a mismatch; [`finish`] reports them all at once.
fn fail(msg: String) {
    FAILED.with(|f| f.borrow_mut().push(msg));
}

/// Fails the test with every mismatch it recorded.
fn finish() {
    let failed = FAILED.with(|f| std::mem::take(&mut *f.borrow_mut()));
    assert!(
        failed.is_empty(),
        "{} mismatches:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

impl Outcome {
    /// Both paths give the primal's value and the gradient `want`, and the same bits.
    fn expect(&self, want: &[f64]) {
        let name = self.name;
        let [(sv, sg), (tv, tg)] = &self.paths;
        let at = format!("{name} (static {sv}, {sg:?}; tape {tv}, {tg:?})");
        if !identical(*sv, self.primal) || !identical(*tv, self.primal) {
            fail(format!(
                "{at}: the values differ from the primal {}",
                self.primal
            ));
        }
        if sg.len() != want.len() || tg.len() != want.len() {
            fail(format!("{at}: {} gradient entries expected", want.len()));
            return;
        }
        for (k, ((s, t), w)) in sg.iter().zip(tg).zip(want).enumerate() {
            if !matches(*s, *w) || !matches(*t, *w) {
                fail(format!("{at}: entry {k} is documented as {w}"));
            } else if !same(*s, *t) {
                fail(format!(
                    "{at}: entry {k}: static {s:e} and tape {t:e} differ in their bits"
                ));
            }
        }
    }
}

fn tol() -> Tolerance {
    Tolerance::default().eps(1e-6).atol(1e-7).rtol(1e-6)
}

fn t1(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
}

const INF: f64 = f64::INFINITY;

pair! {
    sqrt_if (x: f64) -> f64 { if x > 0.0 { x.sqrt() } else { 0.0 } }
    ln_if (x: f64) -> f64 { if x != 0.0 { x.ln() } else { 1.0 } }
    ln_if_used (x: f64) -> f64 {
        let y = if x > 0.0 { x.ln() } else { x };
        y * 2.0 + x
    }
    sqrt_for (x: f64, n: usize) -> f64 {
        let mut acc = 0.0;
        for _ in 0..n {
            let t = if x > 0.0 { x.sqrt() } else { 0.0 };
            acc = acc + t;
        }
        acc
    }
    sqrt_while (x: f64, n: usize) -> f64 {
        let mut acc = x;
        let mut i = 0;
        while i < n {
            if acc > 0.0 {
                acc = acc.sqrt();
            } else {
                acc = acc * 0.5;
            }
            i += 1;
        }
        acc
    }
    ln_for_carried (x: f64, n: usize) -> f64 {
        let mut y = x;
        for _ in 0..n {
            y = if y != 0.0 { y.ln() } else { y + 1.0 };
        }
        y
    }
    sqrt_if_t (x: &Tensor, s: f64) -> f64 {
        if s > 0.0 { (x * s.sqrt()).sum() } else { x.sum() - s }
    }
    mul_zero (x: f64) -> f64 { x.sqrt() * 0.0 + x }
    mul_zero_ln (x: f64) -> f64 { 0.0 * x.ln().exp() + x * 2.0 }
    min_cut (x: f64, y: f64) -> f64 { (x * y.detach()).min(1.0) + x }
    detached_inf (x: f64, y: f64) -> f64 { x * y.detach() + y }
    clamp_cut (x: f64) -> f64 { (1.0 / x).clamp(-1.0, 1.0) + x }
    relu_cut (x: f64) -> f64 { (-x.sqrt()).relu() + x }
    max_inf (x: f64, y: f64) -> f64 { x.max(y) }
    min_inf (x: f64, y: f64) -> f64 { x.min(y) * 2.0 }
    max_sub_inf (x: f64, y: f64) -> f64 { (x - y).max(0.0) + x }
    sqrt_s (x: f64) -> f64 { x.sqrt() }
    ln_s (x: f64) -> f64 { x.ln() }
    sqrt_prod (x: f64, y: f64) -> f64 { (x * y).sqrt() + x.ln() }
    sqrt_tensor (x: &Tensor) -> f64 { x.sqrt().sum() }
    ln_tensor (x: &Tensor) -> f64 { x.ln().sum() }
    relu_cut_t (x: &Tensor) -> f64 { (-x.sqrt()).relu().sum() + x.sum() }
    clamp_cut_t (x: &Tensor) -> f64 { x.recip().clamp(-1.0, 1.0).sum() + x.sum() }
}

// (a) A branch not taken contributes nothing.
#[test]
fn branches_not_taken_give_no_nan() {
    sqrt_if::run(-1.0).expect(&[0.0]);
    sqrt_if::run(4.0).expect(&[0.25]);
    ln_if::run(0.0).expect(&[0.0]);
    ln_if::run(2.0).expect(&[0.5]);
    ln_if_used::run(-1.0).expect(&[3.0]);
    sqrt_for::run(-1.0, 3).expect(&[0.0]);
    sqrt_for::run(4.0, 3).expect(&[0.75]);
    sqrt_while::run(-1.0, 3).expect(&[0.125]);
    ln_for_carried::run(0.0, 1).expect(&[1.0]);
    sqrt_if_t::run(&t1(&[1.0, 2.0]), -1.0).expect(&[1.0, 1.0, -1.0]);
    sqrt_if_t::run(&t1(&[1.0, 2.0]), 4.0).expect(&[2.0, 2.0, 0.75]);
    finish();
}

// (b) A finite primal with a derivative gives a finite gradient: a zero adjoint
// stays zero through an infinite partial.
#[test]
fn zero_adjoints_stay_zero_through_infinite_partials() {
    // 0 * sqrt(x) + x is x on [0, inf): gradient 1 at 0 (sqrt'(0) = inf meets 0).
    mul_zero::run(0.0).expect(&[1.0]);
    mul_zero_ln::run(0.0).expect(&[2.0]);
    // x * inf is cut to 1 by min: x gets 1 from `+ x` only; y is detached.
    min_cut::run(2.0, INF).expect(&[1.0, 0.0]);
    // A detached infinity: d/dx = inf (the true partial), d/dy = 1 (the `+ y`).
    detached_inf::run(2.0, 3.0).expect(&[3.0, 1.0]);
    // 1/x at 0 is inf, clamped to 1: only `+ x` contributes.
    clamp_cut::run(0.0).expect(&[1.0]);
    // -sqrt(0) = -0, relu gives 0 and no gradient: `+ x` gives 1.
    relu_cut::run(0.0).expect(&[1.0]);
    relu_cut_t::run(&t1(&[0.0, 4.0])).expect(&[1.0, 1.0]);
    clamp_cut_t::run(&t1(&[0.0, 0.5])).expect(&[1.0, 1.0]);
    // max/min against infinity.
    max_inf::run(2.0, INF).expect(&[0.0, 1.0]);
    max_inf::run(2.0, -INF).expect(&[1.0, 0.0]);
    min_inf::run(2.0, INF).expect(&[2.0, 0.0]);
    max_sub_inf::run(2.0, INF).expect(&[1.0, 0.0]);
    finish();
}

// A zero seed is a zero adjoint: `_vjp` with seed 0 gives exactly 0 on both paths,
// even through `sqrt'(0) = inf` and `ln'(0) = inf`.
#[test]
fn a_zero_seed_gives_a_zero_gradient() {
    let cases = [
        ("sqrt", sqrt_s::s_vjp(0.0, 0.0).1, sqrt_s::t_vjp(0.0, 0.0).1),
        ("ln", ln_s::s_vjp(0.0, 0.0).1, ln_s::t_vjp(0.0, 0.0).1),
    ];
    for (name, s, t) in cases {
        if s != 0.0 || t != 0.0 {
            fail(format!("{name}: static {s}, tape {t} with seed 0"));
        }
    }
    // Two gradients that are NaN with seed 1 (`inf * 0`): the static `_vjp` of a
    // function of floats tests its seed once, at the end (`adjoint::scalar_seed`).
    let (s, t) = (
        sqrt_prod::s_vjp(0.0, 0.0, 0.0).1,
        sqrt_prod::t_vjp(0.0, 0.0, 0.0).1,
    );
    if s != (0.0, 0.0) || t != (0.0, 0.0) {
        fail(format!("sqrt_prod: static {s:?}, tape {t:?} with seed 0"));
    }
    let g = sqrt_prod::s_grad(0.0, 0.0).1;
    if !(g.0.is_nan() && g.1.is_nan()) {
        fail(format!(
            "sqrt_prod: static gradient {g:?} with seed 1, want NaN"
        ));
    }
    let x = t1(&[0.0, 4.0]);
    let (s, t) = (sqrt_tensor::s_vjp(&x, 0.0).1, sqrt_tensor::t_vjp(&x, 0.0).1);
    if s.as_slice() != [0.0, 0.0] || t.as_slice() != [0.0, 0.0] {
        fail(format!("sqrt tensor: static {s:?}, tape {t:?} with seed 0"));
    }
    finish();
}

// (c) Domain edges: sqrt'(0) = +inf and ln'(0) = +inf (PyTorch's values), scalar and
// tensor; `powf` with a zero base is pinned in `tests/edge_points.rs`.
#[test]
fn domain_edges_follow_pytorch() {
    sqrt_s::run(0.0).expect(&[INF]);
    ln_s::run(0.0).expect(&[INF]);
    sqrt_tensor::run(&t1(&[0.0, 4.0])).expect(&[INF, 0.25]);
    ln_tensor::run(&t1(&[0.0, 2.0])).expect(&[INF, 0.5]);
    // Outside the domain the value is NaN; the gradient is the formula's, as in
    // PyTorch: 1 / (2 NaN) = NaN for sqrt, but 1 / x = -1 for ln at -1.
    sqrt_s::run(-1.0).expect(&[f64::NAN]);
    ln_s::run(-1.0).expect(&[-1.0]);
    finish();
}
