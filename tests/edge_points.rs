//! The derivative conventions at the points where an operation is not
//! differentiable, or where its usual formula divides by zero: `hypot(0, 0)`, the
//! norm of a zero tensor, `powi(0, 0)`, `powf` with a zero base, `clamp` of NaN,
//! `max`/`min` with a NaN operand, the kinks of `relu`, `abs`, `clamp`, ties of
//! `max`/`min`/`maximum`/`minimum` and of `max_axis`/`min_axis`, and the jumps of
//! `signum`, `floor`, `ceil`, `round`, `trunc` (gradient 0).
//!
//! Each body is compiled twice, with `#[differentiable(static)]` and with
//! `#[differentiable(tape)]`, and run at the exact edge point. Both paths must give
//! the same bits (NaN counting as equal to NaN) and the value documented next to
//! the rule in `ad-macros-core/src/rules.rs` and `ad-runtime/src/tape/rules.rs`.
//! Where the function is differentiable at the point (a zero base with exponent 2,
//! say), central finite differences check the documented value as well.

#![allow(dead_code)] // the primals are used only through their companions

use adjoint::check::{gradcheck, Flat, Tolerance};
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

fn t2(v: &[f64], rows: usize) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[rows, v.len() / rows])
}

pair! {
    hypot2 (x: f64, y: f64) -> f64 { x.hypot(y) }
    hypot_const (x: f64) -> f64 { x.hypot(0.0) * 3.0 }
    hypot_chain (x: f64, y: f64) -> f64 { (x * 2.0).hypot(y - 1.0) + x }
    norm_t (x: &Tensor) -> f64 { x.norm() }
    norm_chain (x: &Tensor) -> f64 { x.norm() * 2.0 + x.sum() }
    powi_rt (x: f64, n: i32) -> f64 { x.powi(n) }
    powi_lit0 (x: f64) -> f64 { x.powi(0) }
    powi_lit1 (x: f64) -> f64 { x.powi(1) }
    powi_t (x: &Tensor, n: i32) -> f64 { x.powi(n).sum() }
    powi_t_lit0 (x: &Tensor) -> f64 { x.powi(0).sum() }
    powf2 (x: f64, p: f64) -> f64 { x.powf(p) }
    powf_lit0 (x: f64) -> f64 { x.powf(0.0) }
    powf_lit2 (x: f64) -> f64 { x.powf(2.0) }
    powf_lit_half (x: f64) -> f64 { x.powf(0.5) }
    #[wrt(p)] powf_base (b: f64, p: f64) -> f64 { b.powf(p) }
    powf_t (x: &Tensor, p: f64) -> f64 { x.powf(p).sum() }
    powf_t_lit0 (x: &Tensor) -> f64 { x.powf(0.0).sum() }
    clamp_c (x: f64) -> f64 { x.clamp(-1.0, 1.0) }
    clamp_t (x: &Tensor) -> f64 { x.clamp(-1.0, 1.0).sum() }
    relu_s (x: f64) -> f64 { x.relu() }
    abs_s (x: f64) -> f64 { x.abs() }
    relu_t (x: &Tensor) -> f64 { x.relu().sum() }
    abs_t (x: &Tensor) -> f64 { x.abs().sum() }
    max2 (x: f64, y: f64) -> f64 { x.max(y) }
    min2 (x: f64, y: f64) -> f64 { x.min(y) }
    max_all (x: &Tensor) -> f64 { x.max() }
    min_all (x: &Tensor) -> f64 { x.min() }
    hypot32 (x: f32, y: f32) -> f32 { x.hypot(y) }
    hypot_t (a: &Tensor, b: &Tensor) -> f64 { a.hypot(b).sum() }
    maximum_t (a: &Tensor, b: &Tensor) -> f64 { a.maximum(b).sum() }
    minimum_t (a: &Tensor, b: &Tensor) -> f64 { a.minimum(b).sum() }
    max_axis1 (x: &Tensor) -> f64 { (x.max_axis(1) * 2.0).sum() }
    min_axis0 (x: &Tensor) -> f64 { x.min_axis(0).sum() }
    ln_max_axis (x: &Tensor) -> f64 { x.ln().max_axis(0).sum() }
    jumps_s (x: f64) -> f64 { x.floor() + x.ceil() + x.round() + x.trunc() + x.signum() + x }
    jumps_t (x: &Tensor) -> f64 { (x.floor() + x.ceil() + x.round() + x.trunc() + x.signum()).sum() }
    jump_inf (x: f64) -> f64 { x.floor() * f64::INFINITY + x }
    jumps32 (x: f32) -> f32 { x.round() * 2.0 + x.signum() }
    powf32 (x: f32, p: f32) -> f32 { x.powf(p) }
}

// `hypot(0, 0)`: both partials are 0, a subgradient, as for the norm of a zero
// vector. (PyTorch's `grad * x / hypot(x, y)` gives NaN there; we follow its norm.)
#[test]
fn hypot_at_the_origin_has_gradient_zero() {
    hypot2::run(0.0, 0.0).expect(&[0.0, 0.0]);
    hypot2::run(-0.0, 0.0).expect(&[0.0, 0.0]);
    hypot_const::run(0.0).expect(&[0.0]);
    // (2x, y - 1) = (0, 0) at x = 0, y = 1: the hypot contributes nothing, `+ x` gives 1.
    hypot_chain::run(0.0, 1.0).expect(&[1.0, 0.0]);
    hypot32::run(0.0, 0.0).expect(&[0.0, 0.0]);
    // Away from the origin: (x, y) / r.
    hypot2::run(3.0, -4.0).expect(&[0.6, -0.8]);
    hypot2::run(0.0, 2.0).expect(&[0.0, 1.0]);
    finish();
}

// The norm of a zero tensor has gradient 0 (PyTorch masks it).
#[test]
fn norm_of_a_zero_tensor_has_gradient_zero() {
    let z = t1(&[0.0, 0.0, 0.0]);
    norm_t::run(&z).expect(&[0.0, 0.0, 0.0]);
    norm_chain::run(&z).expect(&[1.0, 1.0, 1.0]);
    norm_t::run(&t1(&[0.0, -2.0, 0.0])).expect(&[0.0, -1.0, 0.0]);
    finish();
}

// d x^n = n x^(n-1), and exactly 0 for n = 0 (so 0 at x = 0, where 0 x^-1 would
// be NaN): PyTorch's `pow` backward masks the exponent 0.
#[test]
fn powi_with_exponent_zero_has_gradient_zero() {
    powi_rt::run(0.0, 0).expect(&[0.0]);
    powi_rt::run(-0.0, 0).expect(&[0.0]);
    powi_rt::run(2.0, 0).expect(&[0.0]);
    powi_lit0::run(0.0).expect(&[0.0]);
    powi_t::run(&t1(&[0.0, 2.0]), 0).expect(&[0.0, 0.0]);
    powi_t_lit0::run(&t1(&[0.0, -1.0])).expect(&[0.0, 0.0]);
    // The other exponents at 0 follow the formula.
    powi_rt::run(0.0, 1).expect(&[1.0]);
    powi_lit1::run(0.0).expect(&[1.0]);
    powi_rt::run(0.0, 2).expect(&[0.0]);
    powi_rt::run(0.0, -1).expect(&[f64::NEG_INFINITY]);
    powi_t::run(&t1(&[0.0, 2.0]), 3).expect(&[0.0, 12.0]);
    finish();
}

// y = x^p: dy/dx = p x^(p-1), and 0 where p = 0; dy/dp = y ln x, and 0 where x = 0
// and p >= 0 (PyTorch's masks). At x = 0, p < 0, dy/dp = inf * -inf = -inf.
#[test]
fn powf_with_a_zero_base() {
    powf2::run(0.0, 0.0).expect(&[0.0, 0.0]);
    powf2::run(0.0, 2.0).expect(&[0.0, 0.0]);
    powf2::run(0.0, 1.0).expect(&[1.0, 0.0]);
    powf2::run(0.0, 0.5).expect(&[f64::INFINITY, 0.0]);
    powf2::run(0.0, -1.0).expect(&[f64::NEG_INFINITY, f64::NEG_INFINITY]);
    powf2::run(2.0, 0.0).expect(&[0.0, std::f64::consts::LN_2]);
    powf32::run(0.0, 0.0).expect(&[0.0, 0.0]);
    powf32::run(0.0, -1.0).expect(&[f64::NEG_INFINITY, f64::NEG_INFINITY]);
    powf_lit0::run(0.0).expect(&[0.0]);
    powf_lit2::run(0.0).expect(&[0.0]);
    powf_lit_half::run(0.0).expect(&[f64::INFINITY]);
    powf_base::run(0.0, 0.0).expect(&[0.0]);
    powf_base::run(0.0, 3.0).expect(&[0.0]);
    powf_base::run(0.0, -2.0).expect(&[f64::NEG_INFINITY]);
    let x = t1(&[0.0, 0.0, 2.0]);
    powf_t::run(&x, 0.0).expect(&[0.0, 0.0, 0.0, std::f64::consts::LN_2]);
    powf_t::run(&x, 2.0).expect(&[0.0, 0.0, 4.0, 4.0 * std::f64::consts::LN_2]);
    powf_t_lit0::run(&x).expect(&[0.0, 0.0, 0.0]);
    // Where the function is differentiable at a zero base, the value is its derivative.
    let f = |v: &[f64]| powf2::s(v[0], v[1]);
    let g = |v: &[f64]| powf2::s_grad(v[0], v[1]).1.flat();
    if let Err(report) = gradcheck(f, g, &[0.0, 2.0], tol()) {
        panic!("powf at (0, 2): {report}");
    }
    let f = |v: &[f64]| powf_base::s(0.0, v[0]);
    let g = |v: &[f64]| powf_base::s_grad(0.0, v[0]).1.flat();
    if let Err(report) = gradcheck(f, g, &[3.0], tol()) {
        panic!("0^p at p = 3: {report}");
    }
    finish();
}

/// Differentiable bounds exist on the static path only (the tape's `clamp` takes
/// constant bounds), so this one checks the static path alone.
mod clamp_bounds {
    use super::*;

    #[differentiable(static)]
    pub fn s(x: f64, lo: f64, hi: f64) -> f64 {
        x.clamp(lo, hi)
    }

    pub fn run(x: f64, lo: f64, hi: f64) -> Outcome {
        let (v, g) = s_grad(x, lo, hi);
        let g = g.flat();
        Outcome {
            name: "clamp_bounds",
            primal: s(x, lo, hi),
            paths: [(v, g.clone()), (v, g)],
        }
    }
}

// clamp passes NaN through in the value (as `f64::clamp`), and gives NaN input no
// gradient: x, lo and hi all get 0, as PyTorch's `clamp` backward does (no
// comparison with NaN holds). On the closed interval the gradient goes to x.
#[test]
fn clamp_of_nan_and_at_the_bounds() {
    clamp_c::run(f64::NAN).expect(&[0.0]);
    clamp_bounds::run(f64::NAN, -1.0, 1.0).expect(&[0.0, 0.0, 0.0]);
    clamp_t::run(&t1(&[f64::NAN, 0.5, 2.0])).expect(&[0.0, 1.0, 0.0]);
    // The closed interval: at a bound the gradient goes to x, not to the bound.
    clamp_c::run(-1.0).expect(&[1.0]);
    clamp_c::run(1.0).expect(&[1.0]);
    clamp_bounds::run(-1.0, -1.0, 1.0).expect(&[1.0, 0.0, 0.0]);
    clamp_bounds::run(1.0, -1.0, 1.0).expect(&[1.0, 0.0, 0.0]);
    clamp_bounds::run(2.0, -1.0, 1.0).expect(&[0.0, 0.0, 1.0]);
    clamp_bounds::run(-2.0, -1.0, 1.0).expect(&[0.0, 1.0, 0.0]);
    clamp_t::run(&t1(&[-1.0, 1.0, -1.5])).expect(&[1.0, 1.0, 0.0]);
    finish();
}

// relu'(0) = 0 and abs'(0) = 0, for +0 and -0, scalar and tensor.
#[test]
fn relu_and_abs_at_zero() {
    relu_s::run(0.0).expect(&[0.0]);
    relu_s::run(-0.0).expect(&[0.0]);
    abs_s::run(0.0).expect(&[0.0]);
    abs_s::run(-0.0).expect(&[0.0]);
    relu_t::run(&t1(&[0.0, -0.0, 1.0, -1.0])).expect(&[0.0, 0.0, 1.0, 0.0]);
    abs_t::run(&t1(&[0.0, -0.0, 1.0, -1.0])).expect(&[0.0, 0.0, 1.0, -1.0]);
    finish();
}

// max/min: the gradient goes to the operand whose value is the result; a tie splits
// it evenly. A NaN operand loses (`f64::max` returns the other operand); two NaNs
// split the gradient like a tie.
#[test]
fn max_and_min_ties_and_nan() {
    max2::run(1.0, 1.0).expect(&[0.5, 0.5]);
    min2::run(1.0, 1.0).expect(&[0.5, 0.5]);
    max2::run(0.0, -0.0).expect(&[0.5, 0.5]);
    max2::run(2.0, 1.0).expect(&[1.0, 0.0]);
    min2::run(2.0, 1.0).expect(&[0.0, 1.0]);
    max2::run(1.0, f64::NAN).expect(&[1.0, 0.0]);
    max2::run(f64::NAN, 1.0).expect(&[0.0, 1.0]);
    min2::run(1.0, f64::NAN).expect(&[1.0, 0.0]);
    min2::run(f64::NAN, 1.0).expect(&[0.0, 1.0]);
    max2::run(f64::NAN, f64::NAN).expect(&[0.5, 0.5]);
    // Full reductions: the tied extremes share the gradient.
    max_all::run(&t1(&[1.0, 3.0, 3.0, -2.0])).expect(&[0.0, 0.5, 0.5, 0.0]);
    min_all::run(&t1(&[-2.0, 3.0, -2.0, -2.0])).expect(&[1.0 / 3.0, 0.0, 1.0 / 3.0, 1.0 / 3.0]);
    finish();
}

// hypot of tensors at the origin: 0, as the scalar rule.
#[test]
fn tensor_hypot_at_the_origin() {
    hypot_t::run(&t1(&[0.0, 3.0]), &t1(&[0.0, 4.0])).expect(&[0.0, 0.6, 0.0, 0.8]);
    finish();
}

// maximum/minimum of tensors: ties split 0.5 / 0.5, a NaN element loses, as the
// scalar max/min; with broadcasting, the shares are summed onto the smaller operand.
// max_axis/min_axis: the tied elements of a line share its gradient, NaNs are skipped
// (as by the value) and get 0.
#[test]
fn tensor_extrema_ties_and_nan() {
    maximum_t::run(&t1(&[1.0, 2.0, f64::NAN]), &t1(&[1.0, 5.0, 0.0]))
        .expect(&[0.5, 0.0, 0.0, 0.5, 1.0, 1.0]);
    minimum_t::run(
        &t2(&[1.0, 2.0, 3.0, 3.0, 2.0, 1.0], 2),
        &t1(&[2.0, 2.0, 2.0]),
    )
    .expect(&[1.0, 0.5, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0]);
    max_axis1::run(&t2(&[1.0, 3.0, 3.0, f64::NAN, 2.0, 0.0], 2))
        .expect(&[0.0, 1.0, 1.0, 0.0, 2.0, 0.0]);
    // Columns [1, 4, 1] (a tie) and [4, 4, 0]; then three equal elements.
    min_axis0::run(&t2(&[1.0, 4.0, 4.0, 4.0, 1.0, 0.0], 3)).expect(&[0.5, 0.0, 0.0, 0.0, 0.5, 1.0]);
    min_axis0::run(&t2(&[2.0, 2.0, 2.0], 3)).expect(&[1.0 / 3.0; 3]);
    // ln(0) = -inf is not the maximum: its element gets exactly 0, not 0 * inf.
    ln_max_axis::run(&t1(&[0.0, 2.0])).expect(&[0.0, 0.5]);
    finish();
}

// signum, floor, ceil, round, trunc: gradient 0 everywhere, at the jumps too, and
// even from an infinite adjoint.
#[test]
fn rounding_jumps_give_zero() {
    for x in [
        2.0,
        -2.0,
        0.5,
        -0.5,
        1.5,
        0.0,
        -0.0,
        0.3,
        f64::INFINITY,
        f64::NAN,
    ] {
        jumps_s::run(x).expect(&[1.0]);
        jump_inf::run(x).expect(&[1.0]);
    }
    jumps_t::run(&t1(&[2.0, -0.5, 0.0, -0.0, 2.5])).expect(&[0.0; 5]);
    jumps32::run(0.5).expect(&[0.0]);
    jumps32::run(-0.0).expect(&[0.0]);
    finish();
}
