//! The random-program tester: hundreds of generated `#[differentiable]` programs, each
//! differentiated three ways, which must agree.
//!
//! The programs are written by `tests/differential/gen.rs` (run by the root package's
//! `build.rs`) into `OUT_DIR` and included here, so they cost one compile. Each program
//! is a root function `f` of scalars, tensors, slices, `Vec`s, arrays and a trip count,
//! often calling helpers two levels deep (`f -> h1 -> h2`), and every function is
//! emitted as `#[differentiable]` (default routing), `#[differentiable(tape)]` (calling
//! the tape twins of its callees) and a plain reference (see the generator's docs).
//! What the generated bodies cover (the summary this test prints counts the programs
//! that use each, under `features`):
//!
//! - scalars: `+ - * /`, unary `-`, `sin cos tan asin acos atan atan2 sinh cosh tanh exp
//!   exp2 ln log10 log2 sqrt cbrt powi powf recip abs hypot min max clamp mul_add relu
//!   sigmoid softplus`, `detach`, `i as f64`;
//! - tensors (`&Tensor` and by-value `Tensor` parameters, shapes `[m, n]`, `[n, m]`,
//!   `[m]`, `[n]` with `m, n` in 2..=3): `+ - * /` between tensors with broadcasting
//!   (`[n]`, `[1, n]`, `[m, 1]` against `[m, n]`) and with scalars on either side,
//!   unary `-`, the elementwise functions (`sin cos tan asin acos atan sinh cosh tanh
//!   exp exp2 ln log10 log2 sqrt cbrt powi powf recip abs relu sigmoid softplus clamp`),
//!   `matmul` (2-d·2-d, 2-d·1-d, 1-d·2-d, outer products), `dot`, `t`, `reshape`, `sum`,
//!   `mean`, `norm`, `max`, `min`, `sum_axis`, `mean_axis`, `detach`;
//! - `let` chains, `let mut`, shadowing (of parameters too), assignment and compound
//!   assignment (`+= -= *= /=` on scalars, `+= -= *=` on tensors);
//! - `if`/`else` statements and expressions (also inside conditions), `for` over ranges
//!   (`0..k`, `0..n`, `0..v.len()`, `(..).rev()`) and over `v.iter()`, `while` with a
//!   data-dependent condition, loop-carried scalars and tensors, `break`, `continue`,
//!   early `return` (also from inside loops);
//! - `&[f64]`, `Vec<f64>` and `[f64; N]` parameters, indexed by constants and loop
//!   indices; a `usize` trip count;
//! - local `Vec` buffers (`vec![c; n]`, `vec![e1, e2]`) written element by element
//!   (`b[i] = e`, `+= -= *=`, at `i`, `i + 1`, `n - 1 - i`) in (nested) loops,
//!   `swap`, `fill`, `copy_from_slice` and element-loop copies, read back by index,
//!   `len()` and iterators;
//! - iterator chains over sequences: `iter().sum()`, `map`, `zip`, `enumerate`,
//!   `fold`, `rev`, `windows(2)`, `chunks(k)`, `skip`, `take`, `step_by`, `product`,
//!   and `for (i, &e) in v.iter().enumerate()` loops;
//! - `to_vec`, `clone` and `&*` of sequences, tuples (`let (a, b) = (..)`, `p.0`),
//!   `match` on an integer, closures defined and called in the body, and
//!   `assert!`/`debug_assert!` statements that always hold;
//! - `wrt` subsets on the root; calls of generated helpers two levels deep
//!   (`f -> h1 -> h2`, and `f -> h2`), with scalar, tensor and by-value tensor
//!   parameters, scalar and tensor results, inside expressions and in `let`s, in loops
//!   and branches; each twin calls its callees' twins of the same kind.
//!
//! Constructs that expose a known bug are generated only under a switch, read by the
//! build script (see `build.rs`): `ADJOINT_DIFF_SLICE_CALLS` (helpers with slice, `Vec`
//! and array parameters, array literals), `ADJOINT_DIFF_WRT_CALLS` (helpers with
//! `wrt`), `ADJOINT_DIFF_MIXED_TENSOR_CALLS` (helpers with tensor and scalar
//! parameters), `ADJOINT_DIFF_LOOP_BROADCAST` (broadcasting `+=`/`-=` in bodies with
//! loops), `ADJOINT_DIFF_TAPE_CONSTS` (constant expressions such as `0.0f64.max(x)`),
//! `ADJOINT_DIFF_TENSOR_CONST` (`Tensor::ones` in bodies) and `ADJOINT_DIFF_DEAD_NAN`
//! (unused values with a NaN derivative in branches and loops), and
//! `ADJOINT_DIFF_ARRAY_BUFFERS` (local arrays as buffers). Off by default:
//! `ADJOINT_DIFF_VALUE_CONSTS` (constant `match` arms and tuple elements) and
//! `ADJOINT_DIFF_VECTOR_RESULTS` (`-> [f64; 2]` roots, checked through `f_vjp` with a
//! random seed of the program's own against central differences of the seed's dot
//! product with the result, without a tape twin: the tape has no vector seed; the one
//! IR, the only path for a vector result, does not take every generated body yet).
//!
//! For each program the test draws inputs uniformly in [-1.2, 1.2] from a seed of its
//! own and runs the reference once: the inputs are kept only when every kink and
//! condition is at least `MARGIN` (relative) away from flipping and the value is finite
//! and below 1e6; otherwise it redraws, up to `DRAWS` times, and then discards the
//! program (counted, and at most a tenth may be). The finite-difference evaluations
//! must take the same decisions as the base point (the reference hashes them), else
//! the inputs are redrawn too. Then, with `g` the default-routed gradient, `t` the tape
//! gradient and `n` a central difference of the reference:
//!
//! - the value of `f_grad` is `f`'s, bit for bit (or, when the default routing took
//!   the tape, the tape's), `f_vjp`'s is `f_grad`'s, and the tape's is within 1e-10
//!   relative of `f`'s;
//! - `|g - t| <= 1e-6 max(|g|, |t|) + 1e-9 (1 + max |g|)` per entry;
//! - `f_vjp` with seed -1.5 gives `-1.5 g` within 1e-10 relative;
//! - `|g - n| <= 1e-5 (1 + |n|)` per entry, for at least one of the steps `1e-6` and
//!   `1e-4` (the first is limited by round-off, the second by truncation; a wrong
//!   gradient misses both);
//! - forward mode: `f_jvp` along random tangents `v` of the program's own gives the
//!   value of `f` (or `f_grad`'s) and the tangent `<g, v>` within `1e-7 (1 + sum |g_i
//!   v_i|)`: `<u, J v> = <J^T u, v>` with `u = 1`;
//! - forward over reverse, on the roots without callees (generated with `order = 2`):
//!   `f_hvp` gives `f_grad`'s value and gradient, and `H v` agrees with the tape's double
//!   backward (`f_t_hvp`) as `g` with `t` above, and is within `1e-5 (1 + |n|)` of
//!   central differences `n` of `f_grad` along `v` (at one of the two steps whose
//!   perturbed runs take the base point's decisions), except in programs with `detach`,
//!   whose second derivative treats the detached values as constants (PyTorch's and
//!   JAX's semantics) while differences of the gradient see them move.
//!
//! A mismatch prints the program's source, the inputs and the three answers, and the
//! test fails naming every mismatching program. `ADJOINT_DIFF_SEED` and
//! `ADJOINT_DIFF_COUNT` (read by the build script) generate another set;
//! `ADJOINT_DIFF_ONLY=p17` runs one program of the set, and `ADJOINT_DIFF_VERBOSE=1`
//! also prints the programs that were discarded.

use adjoint::check::Flat;
use adjoint::prelude::*;
use adjoint::Tensor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A gradient of a program on flat inputs: the value and the flattened gradient.
pub type Grad = fn(&[f64]) -> (f64, Vec<f64>);

/// One generated program, as the generated table describes it.
pub struct Program {
    /// `pN`, the module it lives in.
    pub name: &'static str,
    /// The `#[differentiable]` functions, as written (the tape twins are the same).
    pub source: &'static str,
    /// For each flat input, whether `f` differentiates it.
    pub wrt: &'static [bool],
    /// The constructs and operations the program uses.
    pub features: &'static [&'static str],
    /// `f` on flat inputs.
    pub run: fn(&[f64]) -> f64,
    /// The reference twin (probes, frozen `detach`).
    pub reference: fn(&[f64]) -> f64,
    /// `f_grad`, the gradient flattened.
    pub grad_default: Grad,
    /// `f_t_grad`; `None` for a vector result (the tape has no vector seed).
    pub grad_tape: Option<Grad>,
    /// `f_vjp` with a seed.
    pub vjp_default: fn(&[f64], f64) -> (f64, Vec<f64>),
    /// `f_jvp` along tangents laid out as the flat inputs (those of the entries `f`
    /// does not differentiate are not read).
    pub jvp_default: fn(&[f64], &[f64]) -> (f64, f64),
    /// `f_hvp` along tangents laid out as the flat inputs: the value, the gradient and
    /// H v, flattened; for the roots with `order = 2` (those without callees).
    pub hvp_default: Option<Hvp>,
    /// `f_t_hvp`, the tape's double backward, for the same roots.
    pub hvp_tape: Option<Hvp>,
}

/// A Hessian-vector product on flat inputs and tangents: the value, the flattened
/// gradient and H v.
pub type Hvp = fn(&[f64], &[f64]) -> (f64, Vec<f64>, Vec<f64>);

include!(concat!(env!("OUT_DIR"), "/differential_programs.rs"));

/// The smallest relative distance to a kink or a flipping condition that inputs keep.
const MARGIN: f64 = 1e-3;
/// How many input draws a program gets before it is discarded.
const DRAWS: usize = 40;
/// The central-difference steps.
const STEPS: [f64; 2] = [1e-6, 1e-4];

/// What the reference reports: margins, a trace of decisions, values of `detach`.
mod probe {
    use adjoint::Tensor;
    use std::borrow::Borrow;
    use std::cell::RefCell;

    #[derive(Default)]
    struct State {
        replay: bool,
        margin: f64,
        trace: u64,
        scalars: Vec<f64>,
        tensors: Vec<Tensor>,
        at_s: usize,
        at_t: usize,
        out_of_sync: bool,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// Starts a base-point run: `detach` records.
    pub fn base() {
        STATE.with(|s| {
            *s.borrow_mut() = State {
                margin: f64::INFINITY,
                ..State::default()
            }
        });
    }

    /// Starts a perturbed run: `detach` replays the base point's values.
    pub fn replay() {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.replay = true;
            s.margin = f64::INFINITY;
            s.trace = 0;
            s.at_s = 0;
            s.at_t = 0;
            s.out_of_sync = false;
        });
    }

    /// The smallest margin, the decision trace, and whether the replay stayed in step.
    pub fn finish() -> (f64, u64, bool) {
        STATE.with(|s| {
            let s = s.borrow();
            let in_step = !s.out_of_sync
                && (!s.replay || (s.at_s == s.scalars.len() && s.at_t == s.tensors.len()));
            (s.margin, s.trace, in_step)
        })
    }

    fn note(distance: f64, decision: u64) {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            // NaN compares false: a NaN distance makes the margin NaN, never accepted.
            s.margin = if distance.is_nan() || s.margin.is_nan() {
                f64::NAN
            } else {
                s.margin.min(distance)
            };
            s.trace = (s.trace ^ decision.wrapping_add(0x9E37_79B9)).wrapping_mul(0x100_0000_01B3);
        });
    }

    fn rel(d: f64, a: f64, b: f64) -> f64 {
        d.abs() / 1f64.max(a.abs()).max(b.abs())
    }

    /// `a > b`.
    pub fn gt(a: f64, b: f64) -> bool {
        note(rel(a - b, a, b), (a > b) as u64);
        a > b
    }

    /// `a < b`.
    pub fn lt(a: f64, b: f64) -> bool {
        note(rel(a - b, a, b), (a < b) as u64 + 2);
        a < b
    }

    /// An argument that must stay below `limit` in magnitude (periodic and
    /// exponential functions, where a large argument amplifies rounding).
    pub fn big(x: f64, limit: f64) -> f64 {
        if !super::within(x.abs(), limit) {
            note(0.0, 0);
        }
        x
    }

    /// [`big`] for every element.
    pub fn bigt(t: impl Borrow<Tensor>, limit: f64) -> Tensor {
        let t = t.borrow();
        for &x in t.as_slice() {
            big(x, limit);
        }
        t.clone()
    }

    /// A kink at 0 (`abs`, `relu`, `cbrt`, `norm`).
    pub fn k(x: f64) -> f64 {
        note(rel(x, x, 0.0), (x > 0.0) as u64 + 4);
        x
    }

    /// `a.max(b)`.
    pub fn max(a: f64, b: f64) -> f64 {
        note(rel(a - b, a, b), (a > b) as u64 + 6);
        a.max(b)
    }

    /// `a.min(b)`.
    pub fn min(a: f64, b: f64) -> f64 {
        note(rel(a - b, a, b), (a < b) as u64 + 8);
        a.min(b)
    }

    /// `x.clamp(lo, hi)`.
    pub fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
        note(
            rel((x - lo).abs().min((x - hi).abs()), x, 0.0),
            (x < lo) as u64 + 2 * (x > hi) as u64 + 10,
        );
        x.clamp(lo, hi)
    }

    /// Elementwise kinks at 0.
    pub fn kt(t: impl Borrow<Tensor>) -> Tensor {
        let t = t.borrow();
        for &x in t.as_slice() {
            k(x);
        }
        t.clone()
    }

    /// Elementwise `clamp`.
    pub fn tclamp(t: impl Borrow<Tensor>, lo: f64, hi: f64) -> Tensor {
        let t = t.borrow();
        for &x in t.as_slice() {
            clamp(x, lo, hi);
        }
        t.clamp(lo, hi)
    }

    fn extreme(t: &Tensor, sign: f64) -> f64 {
        let v: Vec<f64> = t.as_slice().iter().map(|x| sign * x).collect();
        let (mut best, mut at) = (f64::NEG_INFINITY, 0);
        for (i, &x) in v.iter().enumerate() {
            if x > best {
                best = x;
                at = i;
            }
        }
        let second = v
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, &x)| x)
            .fold(f64::NEG_INFINITY, f64::max);
        let gap = if v.len() < 2 {
            f64::INFINITY
        } else {
            best - second
        };
        note(rel(gap, best, second), at as u64 + 16);
        sign * best
    }

    /// `t.max()`: the gap to the runner-up is the margin.
    pub fn tmax(t: &Tensor) -> f64 {
        let m = extreme(t, 1.0);
        debug_assert_eq!(m, t.max());
        t.max()
    }

    /// `t.min()`.
    pub fn tmin(t: &Tensor) -> f64 {
        extreme(t, -1.0);
        t.min()
    }

    /// `x.detach()`: recorded at the base point, replayed under perturbation.
    pub fn det(x: f64) -> f64 {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if !s.replay {
                s.scalars.push(x);
                x
            } else if let Some(&v) = s.scalars.get(s.at_s) {
                s.at_s += 1;
                v
            } else {
                s.out_of_sync = true;
                x
            }
        })
    }

    /// `t.detach()`.
    pub fn det_t(t: impl Borrow<Tensor>) -> Tensor {
        let t = t.borrow();
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if !s.replay {
                s.tensors.push(t.clone());
                t.clone()
            } else if let Some(v) = s.tensors.get(s.at_t).cloned() {
                s.at_t += 1;
                if v.shape() != t.shape() {
                    s.out_of_sync = true;
                }
                v
            } else {
                s.out_of_sync = true;
                t.clone()
            }
        })
    }
}

/// `error <= allowed`; false when either is NaN, so a NaN never passes a check.
fn within(error: f64, allowed: f64) -> bool {
    error <= allowed
}

/// SplitMix64 for the inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The outcome of one program.
enum Outcome {
    Checked,
    Discarded,
    Mismatch(String),
}

/// Central differences of the reference in the `wrt` entries, with step `h`, or `None`
/// when a perturbed run took another decision than the base point.
fn central(p: &Program, x: &[f64], trace: u64, h: f64) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    let mut y = x.to_vec();
    for (i, &active) in p.wrt.iter().enumerate() {
        if !active {
            continue;
        }
        let mut eval = |v: f64| {
            y[i] = v;
            probe::replay();
            let f = (p.reference)(&y);
            let (_, t, in_step) = probe::finish();
            (f, t == trace && in_step)
        };
        let (hi, ok_hi) = eval(x[i] + h);
        let (lo, ok_lo) = eval(x[i] - h);
        y[i] = x[i];
        if !(ok_hi && ok_lo) {
            return None;
        }
        out.push((hi - lo) / (2.0 * h));
    }
    Some(out)
}

/// Draws inputs until they are away from every kink; the inputs, the value and the
/// central differences at both steps.
fn draw(p: &Program, index: usize, why: &mut [usize; 4]) -> Option<(Vec<f64>, f64, Vec<Vec<f64>>)> {
    let mut rng =
        Rng(SEED.wrapping_mul(0x2545_F491_4F6C_DD1D)
            ^ (index as u64).wrapping_mul(0x1000_0000_01B3));
    for _ in 0..DRAWS {
        let x: Vec<f64> = p.wrt.iter().map(|_| rng.next() * 2.4 - 1.2).collect();
        probe::base();
        let Ok(f) = catch_unwind(|| (p.reference)(&x)) else {
            return None;
        };
        let (margin, trace, _) = probe::finish();
        if !within(MARGIN, margin) {
            why[0] += 1;
            continue;
        }
        if !(f.is_finite() && f.abs() < 1e6) {
            why[1] += 1;
            continue;
        }
        let fds: Option<Vec<Vec<f64>>> = STEPS.iter().map(|&h| central(p, &x, trace, h)).collect();
        if let Some(fds) = fds {
            return Some((x, f, fds));
        }
        why[2] += 1;
    }
    None
}

fn check(p: &Program, index: usize, why: &mut [usize; 4]) -> Outcome {
    let Some((x, f_ref, fds)) = draw(p, index, why) else {
        return Outcome::Discarded;
    };
    // Tangents in [-1, 1), of the program's own.
    let mut rng = Rng(SEED ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66);
    let v: Vec<f64> = p.wrt.iter().map(|_| rng.next() * 2.0 - 1.0).collect();
    let answers = catch_unwind(AssertUnwindSafe(|| {
        (
            (p.run)(&x),
            (p.grad_default)(&x),
            p.grad_tape.map(|t| t(&x)),
            (p.vjp_default)(&x, -1.5),
            (p.jvp_default)(&x, &v),
        )
    }));
    let Ok((f, (gv, g), tape, (vv, vg), (jv, jt))) = answers else {
        return Outcome::Mismatch(report(p, &x, "a companion panicked", &[], &[], &fds));
    };
    // Without a tape twin the tape's checks compare the static answer with itself.
    let has_tape = tape.is_some();
    let (tv, t) = tape.unwrap_or_else(|| (f, g.clone()));
    let mut problems = Vec::new();
    if f.to_bits() != f_ref.to_bits() {
        problems.push(format!(
            "the reference's value {f_ref:e} is not f's {f:e} (generator bug)"
        ));
    }
    // The static path computes the primal's operations in order: its value is `f`'s,
    // bit for bit. A function the default routing sent to the tape has the tape's value
    // (which may round differently, e.g. `mul_add` unfused).
    if gv.to_bits() != f.to_bits() && (!has_tape || gv.to_bits() != tv.to_bits()) {
        problems.push(format!(
            "f_grad's value {gv:e} is neither f's {f:e} nor the tape's {tv:e}"
        ));
    }
    if !within((tv - f).abs(), 1e-10 * (1.0 + f.abs())) {
        problems.push(format!("the tape's value {tv:e} is not f's {f:e}"));
    }
    if vv.to_bits() != gv.to_bits() {
        problems.push(format!("f_vjp's value {vv:e} is not f_grad's {gv:e}"));
    }
    // Forward mode: the value is the primal's (or the tape's, where the default routing
    // took it), and `<1, J v> = <J^T 1, v>`: the tangent is the gradient's inner
    // product with the tangents.
    if jv.to_bits() != f.to_bits() && jv.to_bits() != gv.to_bits() {
        problems.push(format!(
            "f_jvp's value {jv:e} is neither f's {f:e} nor f_grad's {gv:e}"
        ));
    }
    let active_v: Vec<f64> = v
        .iter()
        .zip(p.wrt)
        .filter(|(_, &a)| a)
        .map(|(v, _)| *v)
        .collect();
    if g.len() == active_v.len() {
        let dot: f64 = g.iter().zip(&active_v).map(|(a, b)| a * b).sum();
        let scale: f64 = g.iter().zip(&active_v).map(|(a, b)| (a * b).abs()).sum();
        if !within((jt - dot).abs(), 1e-7 * (1.0 + scale)) {
            problems.push(format!(
                "f_jvp's tangent {jt:e} is not <f_grad, v> = {dot:e} (v = {active_v:?})"
            ));
        }
    }
    let n = fds[0].len();
    if g.len() != n || t.len() != n || vg.len() != n {
        problems.push(format!(
            "gradient lengths: default {}, tape {}, vjp {}, inputs {n}",
            g.len(),
            t.len(),
            vg.len()
        ));
    } else {
        let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..n {
            let (a, b) = (g[j], t[j]);
            if !within(
                (a - b).abs(),
                1e-6 * a.abs().max(b.abs()) + 1e-9 * (1.0 + gmax),
            ) {
                problems.push(format!("entry {j}: default {a:e} vs tape {b:e}"));
            }
            if !within((vg[j] + 1.5 * a).abs(), 1e-10 * (1.0 + (1.5 * a).abs())) {
                problems.push(format!("entry {j}: vjp {:e} vs -1.5 * {a:e}", vg[j]));
            }
            let fd_ok = |v: f64| {
                fds.iter()
                    .any(|fd| (v - fd[j]).abs() <= 1e-5 * (1.0 + fd[j].abs()))
            };
            if !fd_ok(a) {
                problems.push(format!(
                    "entry {j}: default {a:e} vs finite differences {:e} / {:e}",
                    fds[0][j], fds[1][j]
                ));
            }
            if !fd_ok(b) {
                problems.push(format!(
                    "entry {j}: tape {b:e} vs finite differences {:e} / {:e}",
                    fds[0][j], fds[1][j]
                ));
            }
        }
    }
    if let (Some(hvp), Some(tape)) = (p.hvp_default, p.hvp_tape) {
        check_hvp(p, (hvp, tape), &x, &v, (gv, &g), &mut problems);
    }
    if problems.is_empty() {
        Outcome::Checked
    } else {
        Outcome::Mismatch(report(p, &x, &problems.join("\n  "), &g, &t, &fds))
    }
}

/// `f_hvp` at `x` along `v`: its value and gradient are `f_grad`'s, and H v matches
/// central differences of `f_grad` along `v` (at one of the steps, the perturbed runs
/// taking the base point's decisions).
fn check_hvp(
    p: &Program,
    (hvp, tape): (Hvp, Hvp),
    x: &[f64],
    v: &[f64],
    (gv, g): (f64, &[f64]),
    problems: &mut Vec<String>,
) {
    let Ok(((hy, hg, hv), (_, _, tv))) = catch_unwind(AssertUnwindSafe(|| (hvp(x, v), tape(x, v))))
    else {
        problems.push("f_hvp or f_t_hvp panicked".to_string());
        return;
    };
    // The tape's double backward, with PyTorch's semantics of `detach` inside a
    // gradient (a detached value is a constant of the second derivative too).
    if tv.len() == hv.len() {
        let hmax = hv.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        for j in 0..hv.len() {
            let (a, b) = (hv[j], tv[j]);
            if !within(
                (a - b).abs(),
                1e-6 * a.abs().max(b.abs()) + 1e-9 * (1.0 + hmax),
            ) {
                problems.push(format!("entry {j}: f_hvp's H v {a:e} vs the tape's {b:e}"));
            }
        }
    } else {
        problems.push(format!(
            "H v lengths: f_hvp {}, the tape {}",
            hv.len(),
            tv.len()
        ));
    }
    if hy.to_bits() != gv.to_bits() {
        problems.push(format!("f_hvp's value {hy:e} is not f_grad's {gv:e}"));
    }
    if hg.len() != g.len() || hv.len() != g.len() {
        problems.push(format!(
            "f_hvp's lengths: gradient {}, H v {}, f_grad's {}",
            hg.len(),
            hv.len(),
            g.len()
        ));
        return;
    }
    for j in 0..g.len() {
        if !within((hg[j] - g[j]).abs(), 1e-10 * (1.0 + g[j].abs())) {
            problems.push(format!(
                "entry {j}: f_hvp's gradient {:e} vs f_grad's {:e}",
                hg[j], g[j]
            ));
        }
    }
    // Differences of the gradient see the detached values move; the second derivative
    // does not (as in PyTorch and JAX): those programs are held against the tape only.
    if p.features.iter().any(|f| f.contains("detach")) {
        return;
    }
    probe::base();
    let _ = (p.reference)(x);
    let (_, trace, _) = probe::finish();
    let mut fds = Vec::new();
    for h in STEPS {
        let shifted = |s: f64| -> Vec<f64> {
            x.iter()
                .zip(v)
                .zip(p.wrt)
                .map(|((x, v), &a)| if a { x + s * v } else { *x })
                .collect()
        };
        let (xp, xm) = (shifted(h), shifted(-h));
        let same = [&xp, &xm].iter().all(|y| {
            probe::replay();
            let _ = (p.reference)(y);
            let (_, t, in_step) = probe::finish();
            t == trace && in_step
        });
        if !same {
            continue;
        }
        let (gp, gm) = ((p.grad_default)(&xp).1, (p.grad_default)(&xm).1);
        fds.push(
            gp.iter()
                .zip(&gm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect::<Vec<f64>>(),
        );
    }
    if fds.is_empty() {
        return;
    }
    for j in 0..g.len() {
        let ok = fds
            .iter()
            .any(|fd| (hv[j] - fd[j]).abs() <= 1e-5 * (1.0 + fd[j].abs()));
        if !ok {
            let all: Vec<f64> = fds.iter().map(|fd| fd[j]).collect();
            problems.push(format!(
                "entry {j}: f_hvp's H v {:e} vs differences of f_grad {all:?}",
                hv[j]
            ));
        }
    }
}

fn report(p: &Program, x: &[f64], what: &str, g: &[f64], t: &[f64], fds: &[Vec<f64>]) -> String {
    format!(
        "=== {} (seed {SEED}) mismatch:\n  {what}\nfeatures: {:?}\ninputs (flat): {x:?}\ndifferentiated: {:?}\n\
         default gradient: {g:?}\ntape gradient:    {t:?}\nfinite diff 1e-6: {:?}\nfinite diff 1e-4: {:?}\nsource:\n{}\n",
        p.name, p.features, p.wrt, fds[0], fds[1], p.source
    )
}

#[test]
fn random_programs_agree_three_ways() {
    let only = std::env::var("ADJOINT_DIFF_ONLY").ok();
    let verbose = std::env::var_os("ADJOINT_DIFF_VERBOSE").is_some();
    let (mut checked, mut discarded) = (0usize, Vec::new());
    // Of the checked programs, those whose `f_hvp` was checked too.
    let mut hvps = 0usize;
    let mut mismatches = Vec::new();
    let mut features: Vec<(&str, usize)> = Vec::new();
    // Rejected draws: near a kink, too large, a decision flipped under perturbation.
    let mut why = [0usize; 4];
    for (i, p) in PROGRAMS.iter().enumerate() {
        if only.as_deref().is_some_and(|o| o != p.name) {
            continue;
        }
        match check(p, i, &mut why) {
            Outcome::Checked => {
                checked += 1;
                hvps += usize::from(p.hvp_default.is_some());
                for f in p.features {
                    match features.iter_mut().find(|(n, _)| n == f) {
                        Some((_, c)) => *c += 1,
                        None => features.push((f, 1)),
                    }
                }
            }
            Outcome::Discarded => {
                if verbose {
                    println!("=== {} discarded:\n{}", p.name, p.source);
                }
                discarded.push(p.name)
            }
            Outcome::Mismatch(r) => {
                println!("{r}");
                mismatches.push(p.name);
            }
        }
    }
    features.sort();
    println!("features (programs checked that use each): {features:?}");
    println!("discarded (no input draw away from kinks): {discarded:?}");
    println!(
        "rejected input draws: {} near a kink, {} too large or not finite, {} flipped a decision under perturbation",
        why[0], why[1], why[2]
    );
    println!(
        "checked {checked} random programs (seed {SEED}; {} discarded, {} mismatching), {hvps} of them with f_hvp",
        discarded.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "mismatching programs: {mismatches:?}"
    );
    // The default set (520 programs) must check at least 500: CI's promise.
    if only.is_none() && PROGRAMS.len() >= 520 {
        assert!(checked >= 500, "only {checked} programs were checked");
    }
    let run = checked + discarded.len() + mismatches.len();
    assert!(
        discarded.len() * 10 <= run,
        "{} of {run} programs found no inputs away from kinks: the generator needs looking at",
        discarded.len()
    );
}
