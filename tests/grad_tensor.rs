//! Every tensor rule of the static path, in f64: against central finite differences
//! and against the `#[differentiable(tape)]` expansion of the same body, with the
//! `_grad` value bit-identical to the primal's. Inputs are away from kinks.

#![allow(dead_code)] // some primals are used only through their companions

use adjoint::check::{gradcheck, vjpcheck, Flat, Tolerance};
use adjoint::prelude::*;

/// An input of a case: a tensor of a shape, or a scalar.
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
            let n = i.len();
            let chunk = &flat[at..at + n];
            at += n;
            match i {
                Input::T(t) => Input::T(Tensor::from_vec(chunk.to_vec(), t.shape())),
                Input::S(_) => Input::S(chunk[0]),
            }
        })
        .collect()
}

macro_rules! make {
    ([$($d:expr),*], $seed:expr) => {
        // Uniform on [0.5, 1.5): away from the kinks of abs/relu and the poles of ln.
        Input::T(Tensor::rand(&[$($d),*], $seed) + 0.5)
    };
    (, $seed:expr) => {
        Input::S(0.35 + 0.1 * ($seed as f64))
    };
}

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

/// Each body twice: `$s` on the static path, `$t` on the tape; then one test per
/// case that builds the inputs, and checks values and gradients.
macro_rules! twins {
    ($($(#[$m:meta])* $s:ident ($($p:ident : $ty:ty $(= [$($d:expr),*])?),+) $body:block)*) => {
        $(
            mod $s {
                use super::*;

                #[differentiable]
                fn f($($p: $ty),+) -> f64 $body

                #[differentiable(tape)]
                fn t($($p: $ty),+) -> f64 $body

                $(#[$m])*
                #[test]
                fn matches_finite_differences_and_the_tape() {
                    let mut seed = 0u64;
                    let inputs = vec![$({ seed += 1; make!($([$($d),*])?, seed) }),+];
                    let call = |inputs: &[Input]| {
                        let mut it = inputs.iter();
                        $(let $p: $ty = Take::take(it.next().unwrap());)+
                        (f($($p),+), f_grad($($p),+), t_grad($($p),+), f_vjp($($p,)+ -1.5))
                    };
                    check(stringify!($s), &inputs, call);
                }
            }
        )*
    };
}

/// The checks of one case; `call` gives the primal, `_grad`, the tape's `_grad` and
/// `_vjp` with seed -1.5.
#[track_caller]
fn check<G: Flat<f64>, H: Flat<f64>, V: Flat<f64>>(
    name: &str,
    inputs: &[Input],
    call: impl Fn(&[Input]) -> (f64, (f64, G), (f64, H), (f64, V)),
) {
    let (value, (gvalue, grad), (tvalue, tgrad), (vvalue, vgrad)) = call(inputs);
    assert_eq!(
        gvalue.to_bits(),
        value.to_bits(),
        "{name}: _grad's value is the primal's"
    );
    assert_eq!(
        vvalue.to_bits(),
        value.to_bits(),
        "{name}: _vjp's value is the primal's"
    );
    assert!(
        close(value, tvalue),
        "{name}: tape value {tvalue} vs {value}"
    );
    let (g, tg, vg) = (grad.flat(), tgrad.flat(), vgrad.flat());
    assert_eq!(
        g.len(),
        flat(inputs).len(),
        "{name}: one gradient entry per input"
    );
    for (k, ((a, b), c)) in g.iter().zip(&tg).zip(&vg).enumerate() {
        assert!(close(*a, *b), "{name}: entry {k}: static {a} vs tape {b}");
        assert!(
            close(-1.5 * a, *c),
            "{name}: entry {k}: vjp {c} vs -1.5 * {a}"
        );
    }
    let x0 = flat(inputs);
    let f = |x: &[f64]| call(&unflat(inputs, x)).0;
    let grad = |x: &[f64]| call(&unflat(inputs, x)).1 .1.flat();
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

twins! {
    // [m,n] + [n]: d b = Σ_rows dy
    bcast_row (a: &Tensor = [3, 4], b: &Tensor = [4]) { ((&(a * 1.0) + b) * a).sum() }
    // [m,n] - [m,1]: d b = -Σ_cols dy
    bcast_col (a: &Tensor = [3, 4], b: &Tensor = [3, 1]) { ((a - b) * (a + b)).mean() }
    // [1,n] * [m,1]: both operands are broadcast
    bcast_both (a: &Tensor = [1, 4], b: &Tensor = [3, 1]) { (a * b).sin().sum() + (a + b).tanh().sum() }
    // scalar * tensor and tensor / scalar: d s = Σ dy ∘ x (a scalar gradient)
    scalar_mix (s: f64, x: &Tensor = [2, 3]) { (s * x + x / s - 2.0 * x * s).powi(2).sum() }
    // scalar on either side of every operator
    scalar_sides (x: &Tensor = [5], s: f64) { (1.0 / (x * x + 1.0) + x / 2.0 - s + (s - x) * 3.0).sum() * s }
    // d e^x = e^x, d ln x = 1/x, d sin = cos, d cos = -sin, d tanh = 1 - tanh^2
    unary_a (x: &Tensor = [2, 3]) { (x.exp() + x.ln() * x.sin() - x.cos() + x.tanh()).sum() }
    // d sqrt = 1/(2 sqrt), |x|' = sign x, relu' = [x > 0], sigmoid' = s(1 - s), softplus' = sigmoid
    unary_b (x: &Tensor = [2, 3]) {
        let y = x - 1.0;
        (x.sqrt() + y.abs() * y.relu() + y.sigmoid() + y.softplus() * 2.0).sum()
    }
    // d 1/x = -1/x^2, d -x = -dx, and the inverse and hyperbolic functions
    unary_c (x: &Tensor = [4]) {
        let y = x * 0.5;
        (x.recip() - (-x).exp() + y.asin() + y.acos() * 2.0 + y.atan() + x.sinh() + x.cosh()).sum()
    }
    // the remaining elementwise functions: tan exp2 log2 log10 cbrt
    unary_d (x: &Tensor = [4]) {
        (x.tan() + x.exp2() + x.log2() * x.log10() + x.cbrt()).sum()
    }
    // d x^n = n x^(n-1), d x^p = p x^(p-1) (+ x^p ln x dp), clamp passes dy inside [lo, hi]
    powers (x: &Tensor = [5], p: f64) {
        x.powi(3).sum() + x.powf(p).sum() + x.powf(1.5).mean() + (x * 2.0 - 2.0).clamp(-0.9, 0.9).sum()
    }
    // C = A B, [m,k]·[k,n]: dA = dC Bᵀ, dB = Aᵀ dC
    matmul_mm (a: &Tensor = [2, 3], b: &Tensor = [3, 4]) { a.matmul(b).tanh().sum() }
    // [m,k]·[k]: dA = dc ⊗ v, dv = Aᵀ dc
    matmul_mv (a: &Tensor = [2, 3], v: &Tensor = [3]) { a.matmul(v).powi(2).sum() }
    // [k]·[k,n]: dv = B dc, dB = v ⊗ dc
    matmul_vm (v: &Tensor = [3], b: &Tensor = [3, 4]) { v.matmul(b).sin().sum() }
    // d (u·v) = v du + u dv
    dot (u: &Tensor = [4], v: &Tensor = [4]) { u.dot(v) * u.sum() }
    // d Aᵀ = (dA)ᵀ
    transpose (a: &Tensor = [2, 3], b: &Tensor = [2, 4], c: &Tensor = [3, 2]) { a.t().matmul(b).sum() + (a.t() * c).exp().sum() }
    // reshape moves no element; the gradient takes the operand's shape back
    reshape (a: &Tensor = [2, 3], w: &Tensor = [2, 2]) { a.reshape(&[3, 2]).matmul(w).powi(2).sum() }
    // d ‖x‖ = x / ‖x‖
    norm (x: &Tensor = [5]) { x.norm() * 2.0 + (x * x.norm()).sum() }
    // sum_axis/mean_axis: the gradient is repeated along the axis (and / n)
    axes (a: &Tensor = [3, 4]) { a.sum_axis(0).powi(2).sum() + a.mean_axis(1).exp().sum() }
    // max/min of all elements: dy goes to the extreme element
    extremes (a: &Tensor = [6]) { a.max() * 3.0 + a.min() + (a * a.max()).sum() }
    // scalar locals and scalar functions of tensor reductions
    scalar_locals (x: &Tensor = [3], s: f64) {
        let k = s.exp();
        let y = x * k + s;
        (y.sum() * s).sin() + y.mean()
    }
    // mutation, shadowing and compound assignment on tensors
    reassign (x: &Tensor = [2, 2], b: &Tensor = [2]) {
        let mut h = x.matmul(x);
        h += b;
        h *= 0.5;
        let h = h.tanh();
        (h - b).sigmoid().sum()
    }
}

// ----- tensor results, by-value parameters, branches, calls -----------------------

/// A layer with a tensor result: `_vjp` takes a tensor seed.
#[differentiable]
fn layer(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).tanh()
}

#[differentiable(tape)]
fn layer_t(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).tanh()
}

#[test]
fn tensor_result_vjp_matches_the_tape_and_finite_differences() {
    let x = Tensor::randn(&[3, 4], 1);
    let w = Tensor::randn(&[4, 2], 2) * 0.5;
    let b = Tensor::randn(&[2], 3);
    let seed = Tensor::randn(&[3, 2], 4);
    let (y, (dx, dw, db)) = layer_vjp(&x, &w, &b, seed.clone());
    assert_eq!(
        y,
        layer(&x, &w, &b),
        "the value is the primal's, bit for bit"
    );
    assert_eq!(
        (dx.shape(), dw.shape(), db.shape()),
        (&[3, 4][..], &[4, 2][..], &[2][..])
    );
    let (ty, tg) = layer_t_vjp(&x, &w, &b, seed.clone());
    for (a, t) in [(&y, &ty), (&dx, &tg.0), (&dw, &tg.1), (&db, &tg.2)] {
        for (p, q) in a.as_slice().iter().zip(t.as_slice()) {
            assert!(close(*p, *q), "static {p} vs tape {q}");
        }
    }
    let sizes = [x.len(), w.len(), b.len()];
    let split = |v: &[f64]| {
        let (a, rest) = v.split_at(sizes[0]);
        let (c, d) = rest.split_at(sizes[1]);
        (
            Tensor::from_vec(a.to_vec(), x.shape()),
            Tensor::from_vec(c.to_vec(), w.shape()),
            Tensor::from_vec(d.to_vec(), b.shape()),
        )
    };
    let x0: Vec<f64> = [x.as_slice(), w.as_slice(), b.as_slice()].concat();
    let f = |v: &[f64]| {
        let (x, w, b) = split(v);
        layer(&x, &w, &b)
    };
    let vjp = |v: &[f64]| {
        let (x, w, b) = split(v);
        layer_vjp(&x, &w, &b, seed.clone()).1
    };
    vjpcheck(f, vjp, &x0, seed.as_slice(), tol()).unwrap();
}

/// By-value tensor parameters are consumed: their buffers may be reused.
#[differentiable]
fn owned_params(x: Tensor, w: Tensor, s: f64) -> f64 {
    let y = x.matmul(&w) * s;
    (y.sigmoid() * w.sum()).sum()
}

#[differentiable(tape)]
fn owned_params_t(x: Tensor, w: Tensor, s: f64) -> f64 {
    let y = x.matmul(&w) * s;
    (y.sigmoid() * w.sum()).sum()
}

#[test]
fn by_value_tensor_parameters() {
    let x = Tensor::randn(&[2, 3], 5);
    let w = Tensor::randn(&[3, 2], 6);
    let (v, (dx, dw, ds)) = owned_params_grad(x.clone(), w.clone(), 0.7);
    assert_eq!(
        v.to_bits(),
        owned_params(x.clone(), w.clone(), 0.7).to_bits()
    );
    let (tv, (tdx, tdw, tds)) = owned_params_t_grad(x.clone(), w.clone(), 0.7);
    assert!(close(v, tv) && close(ds, tds));
    for (a, b) in dx
        .as_slice()
        .iter()
        .chain(dw.as_slice())
        .zip(tdx.as_slice().iter().chain(tdw.as_slice()))
    {
        assert!(close(*a, *b), "{a} vs {b}");
    }
}

/// Tensors flow through `if`/`else` on a scalar condition.
#[differentiable]
fn branchy(x: &Tensor, s: f64) -> f64 {
    let y = if s > 0.0 { x * s } else { x.exp() + s };
    let z = if y.sum() > 1.0 { y.tanh() } else { y * 2.0 };
    z.sum()
}

#[differentiable(tape)]
fn branchy_t(x: &Tensor, s: f64) -> f64 {
    let y = if s > 0.0 { x * s } else { x.exp() + s };
    let z = if y.sum() > 1.0 { y.tanh() } else { y * 2.0 };
    z.sum()
}

#[test]
fn tensors_in_branches() {
    let x = Tensor::from_vec(vec![0.1, -0.3, 0.25], &[3]);
    for s in [0.8, -0.4, 0.01] {
        let (v, (dx, ds)) = branchy_grad(&x, s);
        let (tv, (tdx, tds)) = branchy_t_grad(&x, s);
        assert_eq!(v.to_bits(), branchy(&x, s).to_bits());
        assert!(close(v, tv) && close(ds, tds), "s = {s}: {ds} vs {tds}");
        for (a, b) in dx.as_slice().iter().zip(tdx.as_slice()) {
            assert!(close(*a, *b), "s = {s}: {a} vs {b}");
        }
    }
}

/// Calls of other differentiable functions: a tensor result needs its type named
/// (`let h: Tensor = ..`), and so does a scalar result of a call with tensor
/// arguments.
#[differentiable]
fn two_layers(x: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor) -> f64 {
    let h: Tensor = layer(x, w1, b1);
    let o: Tensor = layer(&h, w2, b1);
    let e: f64 = energy(&h);
    o.powi(2).mean() + e
}

/// A scalar function of a tensor, called above.
#[differentiable]
fn energy(h: &Tensor) -> f64 {
    (h * h).sum() * 0.5
}

/// `two_layers` written out in one body.
#[differentiable]
fn two_layers_inline(x: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor) -> f64 {
    let h = (x.matmul(w1) + b1).tanh();
    let o = (h.matmul(w2) + b1).tanh();
    o.powi(2).mean() + (&h * &h).sum() * 0.5
}

#[test]
fn calls_chain_through_vjp() {
    let x = Tensor::randn(&[3, 4], 7);
    let w1 = Tensor::randn(&[4, 2], 8) * 0.5;
    let b1 = Tensor::randn(&[2], 9);
    let w2 = Tensor::randn(&[2, 2], 10);
    let (v, g) = two_layers_grad(&x, &w1, &b1, &w2);
    let (iv, ig) = two_layers_inline_grad(&x, &w1, &b1, &w2);
    assert_eq!(v.to_bits(), two_layers(&x, &w1, &b1, &w2).to_bits());
    assert!(close(v, iv));
    for (a, b) in g.flat().iter().zip(ig.flat()) {
        assert!(close(*a, b), "{a} vs {b}");
    }
}

/// `wrt` and `detach`: constants get no gradient and cost no adjoint work.
#[differentiable(wrt(w))]
fn partial(x: &Tensor, w: &Tensor) -> f64 {
    let scale = w.norm().detach();
    (x.matmul(w) / scale).sum()
}

#[test]
fn wrt_and_detach() {
    let x = Tensor::randn(&[2, 3], 11);
    let w = Tensor::randn(&[3, 2], 12);
    let dw = partial_grad(&x, &w).1;
    // d/dw Σ (x w) / c with c constant = xᵀ 1 / c
    let want = x.t().matmul(&Tensor::ones(&[2, 2])) / w.norm();
    for (a, b) in dw.as_slice().iter().zip(want.as_slice()) {
        assert!(close(*a, *b), "{a} vs {b}");
    }
}

/// `max` of all elements splits the gradient evenly between tied elements, as
/// PyTorch does; so does `min`.
#[differentiable]
fn tied(x: &Tensor) -> f64 {
    x.max() * 2.0 + x.min()
}

#[test]
fn ties_split_the_gradient() {
    let x = Tensor::from_vec(vec![1.0, 3.0, -2.0, 3.0, -2.0, -2.0], &[6]);
    let (_, dx) = tied_grad(&x);
    let third = 1.0 / 3.0;
    assert_eq!(dx.as_slice(), &[0.0, 1.0, third, 1.0, third, third]);
}

/// A network in f32 and its f64 twin: the gradients agree to f32 precision.
#[differentiable]
fn net32(
    x: &Tensor<f32>,
    w1: &Tensor<f32>,
    b1: &Tensor<f32>,
    w2: &Tensor<f32>,
    y: &Tensor<f32>,
) -> f32 {
    let h = (x.matmul(w1) + b1).tanh();
    (h.matmul(w2) - y).powi(2).mean()
}

#[differentiable]
fn net64(x: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor, y: &Tensor) -> f64 {
    let h = (x.matmul(w1) + b1).tanh();
    (h.matmul(w2) - y).powi(2).mean()
}

/// The gradients of `net32`/`net64`.
type Grads<T> = (Tensor<T>, Tensor<T>, Tensor<T>, Tensor<T>, Tensor<T>);

#[test]
fn f32_network_tracks_its_f64_twin() {
    let x = Tensor::<f64>::randn(&[8, 5], 13);
    let w1 = Tensor::<f64>::randn(&[5, 4], 14) * 0.4;
    let b1 = Tensor::<f64>::randn(&[4], 15) * 0.1;
    let w2 = Tensor::<f64>::randn(&[4, 3], 16) * 0.5;
    let y = Tensor::<f64>::randn(&[8, 3], 17);
    let single = |t: &Tensor| {
        Tensor::<f32>::from_vec(t.as_slice().iter().map(|&v| v as f32).collect(), t.shape())
    };
    let (l64, g64) = net64_grad(&x, &w1, &b1, &w2, &y);
    let (l32, g32) = net32_grad(
        &single(&x),
        &single(&w1),
        &single(&b1),
        &single(&w2),
        &single(&y),
    );
    assert!((l64 - l32 as f64).abs() < 1e-5 * (1.0 + l64.abs()));
    let flat64 = |g: &Grads<f64>| [&g.0, &g.1, &g.2, &g.3].map(|t| t.to_vec()).concat();
    let flat32 = |g: &Grads<f32>| [&g.0, &g.1, &g.2, &g.3].map(|t| t.to_vec()).concat();
    let (a, b) = (flat64(&g64), flat32(&g32));
    assert_eq!(a.len(), b.len());
    for (p, q) in a.iter().zip(b) {
        assert!((p - q as f64).abs() < 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
    }
}

// Found by the random-program tester: the reverse sweep of this chain fused five
// tensors into one pass, for which the runtime has no kernel (`ew5` did not exist):
// a compile error. Every pass is now held to the kernels' arity.
#[differentiable]
fn five_leaves(w1: &Tensor) -> f64 {
    let u2 = (0.3 * w1) - (w1 / (w1.softplus() + 0.1));
    u2.sum()
}

#[differentiable(tape)]
fn five_leaves_tape(w1: &Tensor) -> f64 {
    let u2 = (0.3 * w1) - (w1 / (w1.softplus() + 0.1));
    u2.sum()
}

#[test]
fn a_chain_of_five_tensors_is_split_into_passes() {
    let w = Tensor::from_vec(vec![0.1, -0.7, 1.3, 0.4], &[2, 2]);
    let (v, g) = five_leaves_grad(&w);
    let (tv, tg) = five_leaves_tape_grad(&w);
    assert!((v - tv).abs() < 1e-12);
    for (a, b) in g.as_slice().iter().zip(tg.as_slice()) {
        assert!((a - b).abs() < 1e-12, "{g:?} vs {tg:?}");
    }
    adjoint::check::gradcheck_tensor(
        five_leaves,
        |w: &Tensor| five_leaves_grad(w).1,
        &w,
        adjoint::check::Tolerance::default(),
    )
    .unwrap();
}
