//! The one-IR static path on code written with local buffers and loops, the way
//! numerical Rust is written: `vec![..]`, `[x; N]` and array literals written element
//! by element (`b[i] = ..`, `b[i] += ..`) in nested loops, read back later, loops over
//! slices with `enumerate`, `rev` and `step_by`, branches inside loops. Every function
//! is `#[differentiable(static)]` (a fall back to the tape would not compile) and is
//! checked against central finite differences, and against its tape twin where the
//! tape takes the body.

#![allow(dead_code)]
#![allow(
    clippy::needless_range_loop,
    clippy::assign_op_pattern,
    clippy::manual_memcpy,
    clippy::ptr_arg,
    clippy::clone_on_copy,
    // local `Vec`s are under test, where an array would do
    clippy::useless_vec
)]

use adjoint::check::{gradcheck, Tolerance};
use adjoint::prelude::*;

/// `name` on the static path (`static`: a fall back would not compile) and `tape`, its
/// twin on the tape, from one body.
macro_rules! twins {
    ($name:ident / $tape:ident ($($p:ident : $t:ty),*) -> $r:ty $body:block) => {
        #[differentiable(static)]
        fn $name($($p: $t),*) -> $r $body

        #[differentiable(tape)]
        fn $tape($($p: $t),*) -> $r $body
    };
}

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
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

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

fn point(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.3 + 0.17 * i as f64 - 0.05 * (i * i) as f64)
        .collect()
}

// A local buffer written in one loop and read in another (GMM's `xcentered`).
#[differentiable(static)]
fn centered_sq(x: &[f64], mu: &[f64]) -> f64 {
    let d = x.len();
    let mut c = vec![0.0; d];
    for j in 0..d {
        c[j] = x[j] - mu[j];
    }
    let mut s = 0.0;
    for j in 0..d {
        s += c[j] * c[j] * (j as f64 + 1.0);
    }
    s
}

#[test]
fn buffer_written_then_read() {
    let (x, mu) = (point(5), vec![0.1, -0.2, 0.4, 0.0, 1.5]);
    let (v, (gx, gmu)) = centered_sq_grad(&x, &mu);
    assert_eq!(v.to_bits(), centered_sq(&x, &mu).to_bits());
    assert_close(&gx, &fd(|x| centered_sq(x, &mu), &x), "dx");
    assert_close(&gmu, &fd(|m| centered_sq(&x, m), &mu), "dmu");
}

// Compound writes in nested loops, a lower-triangular product (GMM's `Qtimesx`).
#[differentiable(static)]
fn tri_times(l: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    let mut out = vec![0.0; d];
    let mut k = 0;
    for i in 0..d {
        out[i] = l[k] * x[i];
        k += 1;
        for j in 0..i {
            out[i] += l[k] * x[j];
            k += 1;
        }
    }
    let mut s = 0.0;
    for i in 0..d {
        s += out[i].sin() * out[i];
    }
    s
}

#[test]
fn nested_compound_writes() {
    let x = point(4);
    let l: Vec<f64> = (0..10).map(|i| 0.2 + 0.1 * i as f64).collect();
    let (v, (gl, gx)) = tri_times_grad(&l, &x);
    assert_eq!(v.to_bits(), tri_times(&l, &x).to_bits());
    assert_close(&gl, &fd(|l| tri_times(l, &x), &l), "dl");
    assert_close(&gx, &fd(|x| tri_times(&l, x), &x), "dx");
}

// A buffer overwritten every iteration of an outer loop, and read in a nonlinear way
// (its reads must be saved, not recomputed from the final contents).
#[differentiable(static)]
fn overwritten(x: &[f64]) -> f64 {
    let mut b = [0.0f64; 3];
    let mut s = 0.0;
    for k in 0..4 {
        for j in 0..3 {
            b[j] = x[j] * (k as f64 + 1.0) + b[j].sin();
        }
        s += b[0] * b[1] - b[2].exp();
    }
    s
}

#[test]
fn overwritten_buffer_is_saved() {
    let x = vec![0.3, -0.4, 0.2];
    let (_, g) = overwritten_grad(&x);
    assert_close(&g, &fd(overwritten, &x), "dx");
}

// An array literal, element updates, and a `-=`/`*=`/`/=`.
#[differentiable(static)]
fn literal(a: f64, b: f64) -> f64 {
    let mut p = [a, b, a * b];
    p[0] -= b;
    p[1] *= a;
    p[2] /= 1.0 + a * a;
    p[0] * p[1] + p[2]
}

#[differentiable(tape)]
fn literal_tape(a: f64, b: f64) -> f64 {
    let p0 = a - b;
    let p1 = b * a;
    let p2 = a * b / (1.0 + a * a);
    p0 * p1 + p2
}

#[test]
fn array_literal_elements() {
    for (a, b) in [(0.5, 1.5), (-1.2, 0.3)] {
        let (v, (ga, gb)) = literal_grad(a, b);
        let (tv, (ta, tb)) = literal_tape_grad(a, b);
        assert!((v - tv).abs() < 1e-12);
        assert_close(&[ga, gb], &[ta, tb], "vs tape");
        let f = |x: &[f64]| literal(x[0], x[1]);
        assert_close(&[ga, gb], &fd(f, &[a, b]), "vs fd");
    }
}

// `for (i, v) in x.iter().enumerate()`, `for &v in x`, `.rev()` and `step_by`.
#[differentiable(static)]
fn walks(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().enumerate() {
        s += v * v * (i as f64);
    }
    for &v in x {
        s += v.cos();
    }
    let mut p = 1.0;
    for i in (0..x.len()).rev() {
        p = p * 0.5 + x[i];
    }
    for i in (1..x.len()).step_by(2) {
        s += x[i] * x[i - 1];
    }
    for i in (0..=x.len() - 1).rev().step_by(3) {
        s += x[i].exp();
    }
    s + p
}

#[differentiable(tape)]
fn walks_tape(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i] * x[i] * (i as f64);
    }
    for i in 0..x.len() {
        s += x[i].cos();
    }
    let mut p = 1.0;
    for i in (0..x.len()).rev() {
        p = p * 0.5 + x[i];
    }
    for i in (1..x.len()).step_by(2) {
        s += x[i] * x[i - 1];
    }
    for i in (0..=x.len() - 1).rev().step_by(3) {
        s += x[i].exp();
    }
    s + p
}

#[test]
fn loop_headers() {
    for n in [1, 2, 5, 8] {
        let x = point(n);
        let (v, g) = walks_grad(&x);
        let (tv, tg) = walks_tape_grad(&x);
        assert!((v - tv).abs() < 1e-12 * (1.0 + v.abs()));
        assert_close(&g, &tg, "vs tape");
        assert_close(&g, &fd(walks, &x), "vs fd");
    }
}

// A branch inside a loop, on data: its condition and its values are per iteration.
#[differentiable(static)]
fn branchy(x: &[f64], t: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let v = x[i] * t;
        if v > 0.2 {
            s += v.ln() * v;
        } else {
            s -= v.exp();
        }
    }
    s
}

#[differentiable(tape)]
fn branchy_tape(x: &[f64], t: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let v = x[i] * t;
        if v > 0.2 {
            s += v.ln() * v;
        } else {
            s -= v.exp();
        }
    }
    s
}

#[test]
fn branch_in_loop() {
    let x = vec![0.5, -0.3, 1.2, 0.1, 0.9];
    let t = 1.1;
    let (v, (gx, gt)) = branchy_grad(&x, t);
    let (tv, (tx, tt)) = branchy_tape_grad(&x, t);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "dx vs tape");
    assert!((gt - tt).abs() < 1e-9);
    assert_close(&gx, &fd(|x| branchy(x, t), &x), "dx vs fd");
    let r = gradcheck(
        |p: &[f64]| branchy(&x, p[0]),
        |p: &[f64]| vec![branchy_grad(&x, p[0]).1 .1],
        &[t],
        tol(),
    );
    assert!(r.is_ok(), "{r:?}");
}

// A product carried through a loop, an integer counter carried beside it, and the
// `_vjp` seed scaling everything.
#[differentiable(static)]
fn carried(x: &[f64]) -> f64 {
    let mut p = 1.0;
    let mut k = 0;
    for i in 0..x.len() {
        if i % 2 == 0 {
            k += 1;
        }
        p *= x[i] + k as f64;
    }
    p
}

#[test]
fn carried_product_and_counter() {
    let x = point(6);
    let (v, g) = carried_grad(&x);
    assert_close(&g, &fd(carried, &x), "dx");
    let (vv, gv) = carried_vjp(&x, 2.5);
    assert_eq!(v.to_bits(), vv.to_bits());
    let scaled: Vec<f64> = g.iter().map(|g| 2.5 * g).collect();
    assert_close(&gv, &scaled, "vjp is linear in the seed");
}

// Arrays as parameters: the gradient is an array.
#[differentiable(static)]
fn arr(x: [f64; 3], y: &[f64; 3]) -> f64 {
    let mut s = 0.0;
    for i in 0..3 {
        s += x[i] * y[i] * y[i];
    }
    s
}

#[test]
fn array_parameters() {
    let (x, y) = ([0.5, -1.0, 2.0], [1.5, 0.25, -0.5]);
    let (_, (gx, gy)) = arr_grad(x, &y);
    let gx: [f64; 3] = gx;
    let gy: [f64; 3] = gy;
    assert_close(&gx, &fd(|v| arr([v[0], v[1], v[2]], &y), &x), "dx");
    assert_close(&gy, &fd(|v| arr(x, &[v[0], v[1], v[2]]), &y), "dy");
}

// Slice helpers called with local buffers and sub-slices, inside loops: the shape of
// ADBench's GMM objective.
#[differentiable]
fn sqnorm(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

#[differentiable]
fn logsumexp(v: &[f64]) -> f64 {
    let mut m = v[0];
    for i in 1..v.len() {
        m = m.max(v[i]);
    }
    let mut s = 0.0;
    for i in 0..v.len() {
        s += (v[i] - m).exp();
    }
    s.ln() + m
}

#[differentiable(static)]
fn mixture(alphas: &[f64], means: &[f64], x: &[f64]) -> f64 {
    let k = alphas.len();
    let d = x.len() / 2;
    let mut main = vec![0.0; k];
    let mut xc = vec![0.0; d];
    let mut total = 0.0;
    for i in 0..2 {
        for c in 0..k {
            for j in 0..d {
                xc[j] = x[i * d + j] - means[c * d + j];
            }
            main[c] = alphas[c] - 0.5 * sqnorm(&xc) + sqnorm(&means[c * d..(c + 1) * d]);
        }
        total += logsumexp(&main);
    }
    total - 2.0 * logsumexp(alphas)
}

#[test]
fn slice_helpers_in_loops() {
    let alphas = vec![0.2, -0.4, 0.9];
    let means = point(6);
    let x = vec![0.5, 0.1, -0.3, 0.8];
    let (v, (ga, gm, gx)) = mixture_grad(&alphas, &means, &x);
    assert_eq!(v.to_bits(), mixture(&alphas, &means, &x).to_bits());
    assert_close(&ga, &fd(|a| mixture(a, &means, &x), &alphas), "dalphas");
    assert_close(&gm, &fd(|m| mixture(&alphas, m, &x), &means), "dmeans");
    assert_close(&gx, &fd(|x| mixture(&alphas, &means, x), &x), "dx");
}

// Debug statements run in the forward sweep and change nothing else.
#[differentiable(static)]
fn chatty(x: &[f64], t: f64) -> f64 {
    let mut s = 0.0;
    let mut b = vec![0.0; x.len()];
    for i in 0..x.len() {
        b[i] = x[i] * t;
        debug_assert!(b[i].is_finite(), "b[{}] = {}", i, b[i]);
        s += b[i].sin();
    }
    assert!(s.is_finite());
    assert_eq!(b.len(), x.len());
    if s > 1e300 {
        println!("s = {s}, t = {t}, b = {:?}", b);
        eprintln!("{}", s);
    }
    s * t
}

#[test]
fn debug_statements_change_nothing() {
    let (x, t) = (point(4), 0.7);
    let (v, (gx, gt)) = chatty_grad(&x, t);
    assert_eq!(v.to_bits(), chatty(&x, t).to_bits());
    assert_close(&gx, &fd(|x| chatty(x, t), &x), "dx");
    assert_close(&[gt], &fd(|p| chatty(&x, p[0]), &[t]), "dt");
}

#[differentiable(static)]
fn checked(x: f64) -> f64 {
    assert!(x > 0.0, "x must be positive, got {x}");
    x.ln()
}

#[test]
#[should_panic(expected = "x must be positive, got -1")]
fn an_assert_in_the_body_runs_in_the_gradient() {
    let _ = checked_grad(-1.0);
}

// A debug statement naming a `Vec` parameter does not move it (found by the tester).
#[differentiable(static)]
fn vec_param(v: Vec<f64>, x: f64) -> f64 {
    assert!(v.len() == 2);
    v[1] * x.sin()
}

#[test]
fn debug_statement_borrows_a_vec_parameter() {
    let (y, (gv, gx)) = vec_param_grad(vec![0.5, 2.0], 0.3);
    assert_eq!(y.to_bits(), vec_param(vec![0.5, 2.0], 0.3).to_bits());
    assert_close(&gv, &[0.0, 0.3f64.sin()], "dv");
    assert_close(&[gx], &[2.0 * 0.3f64.cos()], "dx");
}

// A tensor read inside a loop (found by the tester: its contribution was dropped on
// the one IR, which now leaves such loops to the statement-level path).
// It takes the tape today (with the warning), so the gradient is the tape's.
#[allow(deprecated, clippy::useless_vec)]
#[differentiable(wrt(x, w))]
fn tensor_in_loop(x: f64, w: Tensor) -> f64 {
    let mut b = vec![0.25f64; 2];
    for i in 0..2 {
        b[i] += w.max();
    }
    x * b[0] + b[1].sin()
}

#[test]
fn a_tensor_read_in_a_loop_gets_its_gradient() {
    let w = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]);
    let (_, (gx, gw)) = tensor_in_loop_grad(1.5, w.clone());
    let b = 0.25 + 2.0;
    assert!((gx - b).abs() < 1e-12);
    // d/dmax = x + cos(b), all on the maximum's element.
    let want = [0.0, 0.0, 1.5 + f64::cos(b)];
    assert_close(gw.as_slice(), &want, "dw");
}

// Vector results: `_vjp` takes a seed of the result's type.
#[differentiable(static)]
fn residual(p: &[f64], t: f64) -> [f64; 2] {
    let r0 = p[0] * t.sin() - p[1];
    let r1 = (p[0] - p[1] * t).powi(2);
    [r0, r1 * r0]
}

#[differentiable(static)]
fn scaled(x: &[f64], s: f64) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for i in 0..x.len() {
        out[i] = x[i].exp() * s;
        if i > 0 {
            out[i] += out[i - 1];
        }
    }
    out
}

#[test]
fn vector_results_take_a_seed_of_their_type() {
    let (p, t) = (vec![0.7, -0.4], 1.3);
    let seed = [0.6, -1.7];
    let (r, (gp, gt)) = residual_vjp(&p, t, seed);
    assert_eq!(r, residual(&p, t));
    let dot = |p: &[f64], t: f64| {
        let r = residual(p, t);
        seed[0] * r[0] + seed[1] * r[1]
    };
    assert_close(&gp, &fd(|p| dot(p, t), &p), "dp");
    assert_close(&[gt], &fd(|q| dot(&p, q[0]), &[t]), "dt");

    let x = point(4);
    let seed = vec![1.0, -0.5, 0.25, 2.0];
    let (y, (gx, gs)) = scaled_vjp(&x, 0.8, seed.clone());
    assert_eq!(y, scaled(&x, 0.8));
    let dot = |x: &[f64], s: f64| {
        scaled(x, s)
            .iter()
            .zip(&seed)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    assert_close(&gx, &fd(|x| dot(x, 0.8), &x), "dx");
    assert_close(&[gs], &fd(|s| dot(&x, s[0]), &[0.8]), "ds");
}

#[test]
#[should_panic(expected = "the seed of `scaled_vjp` has 2 elements, its result 4")]
fn a_seed_of_the_wrong_length_is_named() {
    let _ = scaled_vjp(&point(4), 0.8, vec![1.0, 2.0]);
}

// Iterator chains and closures, inlined into loops (each checked against its tape
// twin and central differences).
macro_rules! chain_twins {
    ($($name:ident $grad:ident / $tape:ident $tgrad:ident ($($p:ident : $t:ty),*) $body:block)*) => {
        $(
            #[differentiable(static)]
            fn $name($($p: $t),*) -> f64 $body
            #[differentiable(tape)]
            fn $tape($($p: $t),*) -> f64 $body
        )*
        #[test]
        fn iterator_chains_agree_with_the_tape_and_differences() {
            let x = point(6);
            let y: Vec<f64> = x.iter().map(|v| 0.5 - v).collect();
            $(
                let (v, g) = $grad(&x, &y);
                let (tv, tg) = $tgrad(&x, &y);
                assert!((v - tv).abs() <= 1e-12 * (1.0 + v.abs()), "{}: {v} vs {tv}", stringify!($name));
                assert_close(&g.0, &tg.0, concat!(stringify!($name), " dx vs tape"));
                assert_close(&g.1, &tg.1, concat!(stringify!($name), " dy vs tape"));
                assert_close(&g.0, &fd(|x| $name(x, &y), &x), concat!(stringify!($name), " dx vs fd"));
                assert_close(&g.1, &fd(|y| $name(&x, y), &y), concat!(stringify!($name), " dy vs fd"));
            )*
        }
    };
}

chain_twins! {
    dot dot_grad / dot_t dot_t_grad (x: &[f64], y: &[f64]) {
        x.iter().zip(y.iter()).map(|(a, b)| a * b).sum::<f64>() + x.iter().sum::<f64>()
    }
    folds folds_grad / folds_t folds_t_grad (x: &[f64], y: &[f64]) {
        let sq = |t: f64| t * t;
        let s = x.iter().fold(0.0, |acc, v| acc + sq(*v).sin());
        let p: f64 = y.iter().map(|v| 1.0 + 0.1 * v).product();
        s * p
    }
    windows windows_grad / windows_t windows_t_grad (x: &[f64], y: &[f64]) {
        let w: f64 = x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum();
        let c: f64 = y.chunks(4).map(|c| c[0] * c.len() as f64).sum();
        w + c
    }
    adaptors adaptors_grad / adaptors_t adaptors_t_grad (x: &[f64], y: &[f64]) {
        let mut s = 0.0;
        for (i, v) in x.iter().enumerate().skip(1) {
            s += v * (i as f64);
        }
        for (a, b) in x.iter().zip(y.iter().skip(2)) {
            s += (a - b).exp();
        }
        let r: f64 = x.iter().rev().take(3).map(|v| v.cos()).sum();
        let t: f64 = (0..x.len()).step_by(2).map(|i| x[i] * y[i]).sum();
        s + r + t
    }
}

// `match` on integers and `bool`s, as `if` chains; tuple lets.
#[differentiable(static, wrt(x))]
fn matching(x: &[f64], mode: u8, flip: bool) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        let v = match i % 4 {
            0 => x[i] * x[i],
            1 | 2 => x[i].sin(),
            k if k > 2 => x[i] * k as f64,
            _ => 0.0,
        };
        s += v;
    }
    let (a, b) = (s * 2.0, s.exp());
    let m = match mode {
        0 => a * a,
        1..=3 => b.sin(),
        _ => 3.0 * a,
    };
    match flip {
        true => -m,
        false => m,
    }
}

#[test]
fn match_arms_and_tuple_lets() {
    let x = vec![0.3, -0.2, 0.5, 0.1, 0.05];
    for mode in [0, 2, 7] {
        for flip in [false, true] {
            let (v, g) = matching_grad(&x, mode, flip);
            assert_eq!(v.to_bits(), matching(&x, mode, flip).to_bits());
            assert_close(&g, &fd(|x| matching(x, mode, flip), &x), "dx");
        }
    }
}

// Buffer methods: `fill`, `swap`, `copy_from_slice`, copies by `to_vec`/`clone`.
#[differentiable(static)]
fn shuffled(x: &[f64], t: f64) -> f64 {
    let mut a = x.to_vec();
    let mut h = vec![0.0; x.len()];
    a.swap(0, 2);
    h.fill(t * t);
    let mut s = 0.0;
    for _ in 0..3 {
        for i in 0..h.len() {
            h[i] = (h[i] * a[i]).sin() + t;
        }
        let c = h.clone();
        a.copy_from_slice(&c);
        s += a[1] * a[0];
    }
    s
}

#[test]
fn buffer_methods() {
    let (x, t) = (vec![0.4, -0.7, 1.1], 0.6);
    let (v, (gx, gt)) = shuffled_grad(&x, t);
    assert_eq!(v.to_bits(), shuffled(&x, t).to_bits());
    assert_close(&gx, &fd(|x| shuffled(x, t), &x), "dx");
    assert_close(&[gt], &fd(|p| shuffled(&x, p[0]), &[t]), "dt");
}

// A call with a tensor result and a temporary `Vec` argument (found by the tester,
// seed 23: the one IR passed the `Vec` again to `_vjp` after moving it). The forward
// call gets a copy; the one in a branch stays on the tape.
#[differentiable]
fn scaled_tensor(w: &Tensor, v: Vec<f64>) -> Tensor {
    w * (v[0] * v[1])
}

#[differentiable(static)]
fn uses_scaled_tensor(x: f64, w: &Tensor) -> f64 {
    let t: Tensor = scaled_tensor(w, [x, x.sin()].to_vec());
    t.sum()
}

#[test]
fn tensor_result_call_with_a_vec_argument() {
    let w = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]);
    let (v, (gx, gw)) = uses_scaled_tensor_grad(0.7, &w);
    assert!((v - uses_scaled_tensor(0.7, &w)).abs() < 1e-12);
    assert_close(&[gx], &fd(|p| uses_scaled_tensor(p[0], &w), &[0.7]), "dx");
    let s = 0.7 * 0.7f64.sin();
    assert_close(gw.as_slice(), &[s, s, s], "dw");
    for x in [0.7, -0.4] {
        let (v, (gx, gw)) = scaled_in_branch_grad(x, &w);
        assert_eq!(v.to_bits(), scaled_in_branch(x, &w).to_bits());
        assert_close(
            &[gx],
            &fd(|p| scaled_in_branch(p[0], &w), &[x]),
            "dx in a branch",
        );
        let (tv, (tx, tw)) = scaled_in_branch_tape_grad(x, &w);
        assert_close(&[tv], &[v], "value vs tape");
        assert_close(&[gx], &[tx], "dx vs tape");
        assert_close(gw.as_slice(), tw.as_slice(), "dw vs tape");
    }
}

#[allow(deprecated)] // the temporary in a branch takes the tape
#[differentiable]
fn scaled_in_branch(x: f64, w: &Tensor) -> f64 {
    let t: Tensor = if x > 0.0 {
        scaled_tensor(w, vec![x, x * x])
    } else {
        w * x
    };
    t.sum()
}

#[differentiable(tape)]
fn scaled_in_branch_tape(x: f64, w: &Tensor) -> f64 {
    let t: Tensor = if x > 0.0 {
        scaled_tensor(w, vec![x, x * x])
    } else {
        w * x
    };
    t.sum()
}

// A buffer made inside a branch and read by loops there: the reverse reads it in the
// reversed branch (found by the tester, seed 23: the other branch's stand-in for it
// was not a buffer).
#[allow(clippy::useless_vec)] // the `Vec` is the case under test
#[differentiable(static)]
fn buffer_in_branch(x: f64, t: f64) -> f64 {
    let mut s = x * t;
    if s > 0.0 {
        let mut b = vec![x, s];
        let mut a = [t, x];
        for i in 0..2 {
            b[i] += s.sin() * a[i];
            a[i] = b[i] * t;
        }
        s = b.windows(2).map(|w| w[0] * w[1]).sum::<f64>() + a[0] * a[1];
    }
    s
}

#[test]
fn buffers_made_in_a_branch() {
    for (x, t) in [(0.7, 1.3), (-0.4, 0.9)] {
        let (v, (gx, gt)) = buffer_in_branch_grad(x, t);
        assert_eq!(v.to_bits(), buffer_in_branch(x, t).to_bits());
        let f = |p: &[f64]| buffer_in_branch(p[0], p[1]);
        assert_close(&[gx, gt], &fd(f, &[x, t]), "dx, dt");
    }
}

/// Σ vᵢ³ / 3, a helper taking a slice.
#[differentiable]
fn helper_sq(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i] * v[i] / 3.0;
    }
    s
}

// The reverse of a loop restores a buffer that each iteration overwrites whole before
// reading it (a snapshot per iteration, not one save per read): the reads here are
// nonlinear and in a nested loop, so a snapshot restored at the wrong iteration, or the
// final contents read instead, gives a wrong gradient. `li` is an induction variable
// (never saved, walked back in the reverse): off by one, it reads the wrong weight.
macro_rules! restore_twins {
    ($($name:ident $grad:ident / $tape:ident $tgrad:ident ($($p:ident : $t:ty),*) $body:block)*) => {
        $(
            #[differentiable(static)]
            fn $name($($p: $t),*) -> f64 $body
            #[differentiable(tape)]
            fn $tape($($p: $t),*) -> f64 $body
        )*
    };
}

restore_twins! {
    snapshot snapshot_grad / snapshot_tape snapshot_tape_grad (x: &[f64], mu: &[f64], w: &[f64]) {
        let d = x.len();
        let mut c = vec![0.0; d];
        let mut s = 0.0;
        for k in 0..mu.len() {
            for j in 0..d {
                c[j] = x[j] * (k as f64 + 1.0) - mu[k];
            }
            let mut li = k;
            for i in 0..d {
                for j in i + 1..d {
                    s += w[li] * c[i].sin() * c[j];
                    li += 1;
                }
            }
            s += c[0].exp() * mu[k];
        }
        s
    }

    // A store after the reads in the same iteration: the reads must be saved (a
    // snapshot at the end of the iteration holds the new value).
    stored_after stored_after_grad / stored_after_tape stored_after_tape_grad (x: &[f64], mu: &[f64]) {
        let d = x.len();
        let mut c = vec![0.0; d];
        let mut s = 0.0;
        for k in 0..mu.len() {
            for j in 0..d {
                c[j] = x[j] - mu[k];
            }
            for i in 0..d {
                s += c[i].sin() * c[(i + 1) % d];
            }
            c[0] = c[1] * c[1];
            s += c[0].cos();
        }
        s
    }

    // A store in the loop that reads (the reads of `c[i]` come before the write of
    // `c[i + 1]` of the same inner loop): saved too.
    stored_in_loop stored_in_loop_grad / stored_in_loop_tape stored_in_loop_tape_grad (x: &[f64], mu: &[f64]) {
        let d = x.len();
        let mut c = vec![0.0; d];
        let mut s = 0.0;
        for k in 0..mu.len() {
            for j in 0..d {
                c[j] = x[j] * mu[k];
            }
            for i in 0..d - 1 {
                s += c[i].sin();
                c[i + 1] = c[i + 1] * c[i];
            }
        }
        s
    }

    // A buffer made inside the loop (a new one each iteration, never restored), read
    // in an inner loop and passed to a helper.
    made_inside made_inside_grad / made_inside_tape made_inside_tape_grad (x: &[f64], mu: &[f64]) {
        let d = x.len();
        let mut s = 0.0;
        for k in 0..mu.len() {
            let mut c = vec![0.0; d];
            for j in 0..d {
                c[j] = x[j] * mu[k];
            }
            for i in 0..d {
                for j in i..d {
                    s += c[i].sin() * c[j];
                }
            }
            s += helper_sq(&c) * mu[k];
        }
        s
    }

    // Compound updates `b[i] += c` / `-=`, whose adjoint passes through `b[i]`
    // unchanged: with `c` read from the same buffer (at `i` itself when `k == 0`), the
    // loaded value read again, and a read of the buffer between the load and the store.
    compound compound_grad / compound_tape compound_tape_grad (x: &[f64], w: &[f64]) {
        let d = x.len();
        let mut b = vec![0.0; d];
        for j in 0..d {
            b[j] = x[j] * w[j];
        }
        let mut s = 0.0;
        for k in 0..3 {
            for i in 0..d {
                let j = (i + k) % d;
                let bj = b[j];
                b[i] += bj * w[k];
                b[j] -= 0.5 * x[i].sin();
                let t = b[i];
                b[i] = t * t - b[(i + 1) % d];
                b[j] = b[j] + w[i] * b[(j + 1) % d];
                s += b[i].tanh();
            }
        }
        s
    }

    // Induction variables stepping by an outer value, down as well as up, and a
    // buffer only partly overwritten per iteration (no snapshot: its reads are saved).
    strides strides_grad / strides_tape strides_tape_grad (x: &[f64], w: &[f64], m: usize) {
        let d = x.len();
        let mut b = vec![0.0; d + 1];
        let mut s = 0.0;
        let mut up = 0;
        let mut down = w.len() - 1;
        for k in 0..m {
            b[k % d] = x[k % d] * w[up];
            for i in 0..d {
                s += (b[i] * w[down]).tanh() * w[up];
                up += m;
                down -= 1;
            }
            up += m - 1;
        }
        s + up as f64
    }
}

#[test]
fn snapshots_and_induction_variables() {
    let x = point(4);
    let mu = vec![0.2, -0.3, 0.7];
    let w: Vec<f64> = (0..12).map(|i| 0.1 * i as f64 - 0.4).collect();
    let (v, (gx, gmu, gw)) = snapshot_grad(&x, &mu, &w);
    let (tv, (tx, tmu, tw)) = snapshot_tape_grad(&x, &mu, &w);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "snapshot dx vs tape");
    assert_close(&gmu, &tmu, "snapshot dmu vs tape");
    assert_close(&gw, &tw, "snapshot dw vs tape");
    assert_close(&gx, &fd(|x| snapshot(x, &mu, &w), &x), "snapshot dx");
    assert_close(&gmu, &fd(|m| snapshot(&x, m, &w), &mu), "snapshot dmu");
    assert_close(&gw, &fd(|w| snapshot(&x, &mu, w), &w), "snapshot dw");

    let (v, (gx, gmu)) = stored_after_grad(&x, &mu);
    let (tv, (tx, tmu)) = stored_after_tape_grad(&x, &mu);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "stored_after dx vs tape");
    assert_close(&gmu, &tmu, "stored_after dmu vs tape");
    assert_close(&gx, &fd(|x| stored_after(x, &mu), &x), "stored_after dx");
    assert_close(&gmu, &fd(|m| stored_after(&x, m), &mu), "stored_after dmu");

    let (v, (gx, gmu)) = stored_in_loop_grad(&x, &mu);
    let (tv, (tx, tmu)) = stored_in_loop_tape_grad(&x, &mu);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "stored_in_loop dx vs tape");
    assert_close(&gmu, &tmu, "stored_in_loop dmu vs tape");
    assert_close(
        &gx,
        &fd(|x| stored_in_loop(x, &mu), &x),
        "stored_in_loop dx",
    );
    assert_close(
        &gmu,
        &fd(|m| stored_in_loop(&x, m), &mu),
        "stored_in_loop dmu",
    );

    let (v, (gx, gmu)) = made_inside_grad(&x, &mu);
    let (tv, (tx, tmu)) = made_inside_tape_grad(&x, &mu);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "made_inside dx vs tape");
    assert_close(&gmu, &tmu, "made_inside dmu vs tape");
    assert_close(&gx, &fd(|x| made_inside(x, &mu), &x), "made_inside dx");
    assert_close(&gmu, &fd(|m| made_inside(&x, m), &mu), "made_inside dmu");

    let w5: Vec<f64> = (0..5).map(|i| 0.4 - 0.15 * i as f64).collect();
    let (v, (gx, gw)) = compound_grad(&x, &w5[..4]);
    let (tv, (tx, tw)) = compound_tape_grad(&x, &w5[..4]);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "compound dx vs tape");
    assert_close(&gw, &tw, "compound dw vs tape");
    assert_close(&gx, &fd(|x| compound(x, &w5[..4]), &x), "compound dx");
    assert_close(&gw, &fd(|w| compound(&x, w), &w5[..4]), "compound dw");

    let w: Vec<f64> = (0..60).map(|i| 0.03 * i as f64 - 0.9).collect();
    let (v, (gx, gw)) = strides_grad(&x, &w, 3);
    let (tv, (tx, tw)) = strides_tape_grad(&x, &w, 3);
    assert!((v - tv).abs() < 1e-12);
    assert_close(&gx, &tx, "strides dx vs tape");
    assert_close(&gw, &tw, "strides dw vs tape");
    assert_close(&gx, &fd(|x| strides(x, &w, 3), &x), "strides dx");
    assert_close(&gw, &fd(|w| strides(&x, w, 3), &w), "strides dw");
}

// A loop whose carried value starts from an outer value that the body also reads (the
// random-program tester, seed 7731): both adjoints reach `x`. The free value's adjoint
// used to overwrite the carried value's contribution.
#[differentiable(static)]
fn carried_from_read(x: f64, n: usize) -> f64 {
    let mut acc = x;
    for _ in 0..n {
        acc = acc * 0.5 + x.sin();
    }
    acc
}

#[differentiable(tape)]
fn carried_from_read_tape(x: f64, n: usize) -> f64 {
    let mut acc = x;
    for _ in 0..n {
        acc = acc * 0.5 + x.sin();
    }
    acc
}

#[test]
fn a_carried_value_starting_from_a_value_the_body_reads() {
    for n in 0..4 {
        let x = 0.7;
        let (v, g) = carried_from_read_grad(x, n);
        let (tv, tg) = carried_from_read_tape_grad(x, n);
        assert_eq!(v.to_bits(), tv.to_bits());
        assert_close(&[g], &[tg], "vs tape");
        assert_close(&[g], &fd(|x| carried_from_read(x[0], n), &[x]), "vs fd");
    }
}

// A `[c; N]` buffer written element by element in a body with an early `return`
// (found by the tester with `ADJOINT_DIFF_ARRAY_BUFFERS=1`, seed 10: the router sent
// it to the statement-level path, which rejected `b[i] -=` and advised removing a
// `static` that was not there). The one IR takes it now.
twins! {
    repeat_buffer_early_return / repeat_buffer_early_return_t (x: f64, y: f64) -> f64 {
        let mut b = [(-0.5f64); 2];
        for i in 0..2 {
            b[i] -= (x * y + 0.2).powf(0.7) * (i as f64 + 1.0);
        }
        if b[0] > 0.0 {
            return x;
        }
        b[1] * y
    }
}

#[test]
fn repeat_array_buffer_with_an_early_return() {
    let (x, y) = (0.6, 1.1);
    let (v, (gx, gy)) = repeat_buffer_early_return_grad(x, y);
    assert_eq!(v.to_bits(), repeat_buffer_early_return(x, y).to_bits());
    let f = |p: &[f64]| repeat_buffer_early_return(p[0], p[1]);
    assert_close(&[gx, gy], &fd(f, &[x, y]), "dx, dy");
    let (_, (tx, ty)) = repeat_buffer_early_return_t_grad(x, y);
    assert_close(&[gx, gy], &[tx, ty], "vs tape");
}

// A loop-carried value that starts as a parameter the body also reads (found by the
// tester, seed 4242: the adjoint of the start value was dropped, the gradient of `x`
// lacked `a^2`).
twins! {
    carried_from_a_read_param / carried_from_a_read_param_t (a: f64, x: f64) -> f64 {
        let mut y = x;
        for _ in 0..2 {
            y = y * a + x;
        }
        y
    }
}

// The tester's program, as found.
twins! {
    carried_from_a_read_param_found / carried_from_a_read_param_found_t (x0: f64, x1: f64) -> f64 {
        let a1 = [x0, x1.detach(), x0.sin().cos()];
        let mut x0 = x1;
        for (i2, &_e3) in a1.iter().enumerate() {
            x0 *= (a1[i2]).tanh();
            x0 += (0.3f64 / 1.5f64) - (a1[0] * x1);
        }
        a1.iter().sum::<f64>() + x0
    }
}

#[test]
fn a_carried_value_starting_from_a_parameter_the_body_reads() {
    let (a, x) = (0.7, -0.4);
    let (v, (ga, gx)) = carried_from_a_read_param_grad(a, x);
    assert_eq!(v.to_bits(), carried_from_a_read_param(a, x).to_bits());
    assert_close(&[ga, gx], &[2.0 * a * x + x, a * a + a + 1.0], "exact");
    let f = |p: &[f64]| carried_from_a_read_param(p[0], p[1]);
    assert_close(&[ga, gx], &fd(f, &[a, x]), "finite differences");
    let (_, (ta, tx)) = carried_from_a_read_param_t_grad(a, x);
    assert_close(&[ga, gx], &[ta, tx], "tape");

    let (x0, x1) = (0.02390589502183671, -1.1520166202058728);
    let (v, (g0, g1)) = carried_from_a_read_param_found_grad(x0, x1);
    assert_eq!(
        v.to_bits(),
        carried_from_a_read_param_found(x0, x1).to_bits()
    );
    let (_, (t0, t1)) = carried_from_a_read_param_found_t_grad(x0, x1);
    assert_close(&[g0, g1], &[t0, t1], "tape");
    assert_close(
        &[g1],
        &[-0.04210677873419301],
        "the tester's finite differences",
    );
}

// `const` items inside the body: a float, a loop bound and an array, read as constants.
twins! {
    with_consts / with_consts_tape (x: &[f64]) -> f64 {
        const SCALE: f64 = 0.5;
        const TERMS: usize = 3;
        const W: [f64; 3] = [1.0, -2.0, 0.25];
        let mut s = 0.0;
        for k in 0..TERMS {
            s += W[k] * (SCALE * x[k]).sin();
        }
        s * SCALE
    }
}

#[test]
fn const_items_are_constants() {
    let x = point(4);
    let (v, g) = with_consts_grad(&x);
    assert_eq!(v.to_bits(), with_consts(&x).to_bits());
    assert_close(&g, &fd(with_consts, &x), "vs finite differences");
    let (tv, tg) = with_consts_tape_grad(&x);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
    // The fourth element is past `TERMS`: no gradient.
    assert_eq!(g[3], 0.0);
}

// Sub-slices outside call arguments: bound to a name, walked by iterator chains and
// `for`, a view of a view, `windows` of a view, a buffer copied from a sub-slice.
twins! {
    views / views_tape (x: &[f64]) -> f64 {
        let n = x.len();
        let mid = &x[1..n - 1];
        let mut s = 0.0;
        for i in 0..mid.len() {
            s += mid[i] * x[i];
        }
        let tail: f64 = x[2..].iter().map(|v| *v * *v).sum();
        for v in &x[..=1] {
            s += v.sin();
        }
        let inner = &mid[1..];
        s += inner[0] * inner[inner.len() - 1];
        for w in mid.windows(2) {
            s += w[0] * w[1];
        }
        let mut h = vec![0.0; 2];
        h.copy_from_slice(&x[n - 2..]);
        let hv = &h[1..];
        s + tail + hv[0].exp()
    }
}

#[test]
fn sub_slices_as_values() {
    let x = point(6);
    let (v, g) = views_grad(&x);
    assert_eq!(v.to_bits(), views(&x).to_bits());
    assert_close(&g, &fd(views, &x), "vs finite differences");
    let (tv, tg) = views_tape_grad(&x);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// `first`, `last` and `get` with `unwrap`, `copied`, `unwrap_or`, read as indexing.
#[differentiable(static)]
fn ends(x: &[f64]) -> f64 {
    let a = *x.first().unwrap();
    let b = x.last().copied().unwrap();
    let mut s = a * b;
    for i in 0..x.len() + 2 {
        s += x.get(i).copied().unwrap_or(0.5) * (i as f64 + 1.0);
        s += x.get(i / 2).unwrap().sin();
    }
    s + x.last().copied().unwrap_or(3.0) * x.first().cloned().expect("not empty")
}

// The tape's `Option<Var>` has no float default: the same function with `if`s.
#[differentiable(tape)]
fn ends_tape(x: &[f64]) -> f64 {
    let n = x.len();
    let mut s = x[0] * x[n - 1];
    for i in 0..n + 2 {
        s += if i < n { x[i] } else { 0.5 } * (i as f64 + 1.0);
        s += x[i / 2].sin();
    }
    s + x[n - 1] * x[0]
}

#[test]
fn first_last_and_get() {
    let x = point(5);
    let (v, g) = ends_grad(&x);
    assert_eq!(v.to_bits(), ends(&x).to_bits());
    assert_close(&g, &fd(ends, &x), "vs finite differences");
    let (tv, tg) = ends_tape_grad(&x);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// A field-less enum parameter is a constant; `match` on it is an `if` chain.
#[derive(Clone, Copy)]
enum Kind {
    Square,
    Sine,
    Scaled,
}

twins! {
    by_kind / by_kind_tape (x: &[f64], kind: Kind, idx: &Vec<usize>) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() {
            s += match kind {
                Kind::Square => x[i] * x[i],
                Kind::Sine => x[i].sin(),
                Kind::Scaled => 3.0 * x[i],
            };
        }
        s * (idx.len() as f64)
    }
}

#[test]
fn match_on_an_enum_parameter() {
    let x = point(4);
    let idx = vec![0, 2];
    for kind in [Kind::Square, Kind::Sine, Kind::Scaled] {
        let (v, g) = by_kind_grad(&x, kind, &idx);
        assert_eq!(v.to_bits(), by_kind(&x, kind, &idx).to_bits());
        assert_close(
            &g,
            &fd(|x| by_kind(x, kind, &idx), &x),
            "vs finite differences",
        );
        let (tv, tg) = by_kind_tape_grad(&x, kind, &idx);
        assert_close(&[tv], &[v], "value vs tape");
        assert_close(&g, &tg, "vs tape");
    }
}

// Constant parameters of other types: an index slice read inside a loop (a gather, as
// bundle adjustment indexes cameras), a configuration struct's fields, a method of a
// constant, each an expression of constants that needs no derivative.
pub struct Cfg {
    scale: f64,
    at: usize,
}

impl Cfg {
    fn twice(&self, k: usize) -> usize {
        2 * k
    }
}

twins! {
    gathered / gathered_tape (x: &[f64], idx: &[usize], cfg: &Cfg) -> f64 {
        let mut s = 0.0;
        for k in 0..idx.len() {
            let j = idx[k];
            s += x[j] * x[idx[(k + 1) % idx.len()]] * cfg.scale;
        }
        s + x[cfg.at].powi(2) + x[cfg.twice(1)].sin()
    }
}

#[test]
fn constant_parameters_index_and_scale() {
    let x = point(5);
    let idx = [3usize, 0, 4, 4, 1];
    let cfg = Cfg { scale: 1.5, at: 2 };
    let (v, g) = gathered_grad(&x, &idx, &cfg);
    assert_eq!(v.to_bits(), gathered(&x, &idx, &cfg).to_bits());
    assert_close(
        &g,
        &fd(|x| gathered(x, &idx, &cfg), &x),
        "vs finite differences",
    );
    let (tv, tg) = gathered_tape_grad(&x, &idx, &cfg);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// A constant struct passed on to a callee, and one of its float fields bound to a
// typed local and passed as a float (GradBench's hand model, issue 12): the callee
// gets no gradient for the struct, and the field's gradient is dropped.
#[differentiable]
fn scaled_at(x: &[f64], cfg: &Cfg, w: f64) -> f64 {
    w * x[cfg.at] * cfg.scale
}

#[differentiable(static)]
fn passes_cfg(x: &[f64], cfg: &Cfg) -> f64 {
    let w: f64 = cfg.scale;
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i].sin() * scaled_at(x, cfg, w);
    }
    s
}

// `is_empty` of a slice parameter, a local buffer and a sub-slice: `len() == 0`.
twins! {
    empty_or_not / empty_or_not_tape (x: &[f64], y: &[f64]) -> f64 {
        let b = vec![x[0]; 2];
        let mut s = if y.is_empty() { x[1].sin() } else { x[1] * y[0] };
        if !b.is_empty() && x[2..3].is_empty() {
            s += 1.0;
        }
        if !x[3..].is_empty() {
            s += x[0] * x[3];
        }
        s
    }
}

// The tape takes neither a struct argument of a call nor a float local bound to a
// constant: its twin has the callee inlined.
#[differentiable(tape)]
fn passes_cfg_tape(x: &[f64], cfg: &Cfg) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += x[i].sin() * (cfg.scale * x[cfg.at] * cfg.scale);
    }
    s
}

#[test]
fn constant_structs_and_their_fields_pass_to_calls() {
    let x = point(4);
    let cfg = Cfg { scale: 1.5, at: 2 };
    // s = Σ sin(xᵢ) · scale² · x_at
    let (v, g) = passes_cfg_grad(&x, &cfg);
    assert_eq!(v.to_bits(), passes_cfg(&x, &cfg).to_bits());
    assert_close(
        &g,
        &fd(|x| passes_cfg(x, &cfg), &x),
        "vs finite differences",
    );
    let (tv, tg) = passes_cfg_tape_grad(&x, &cfg);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

#[test]
fn is_empty_is_a_length_of_zero() {
    let x = point(4);
    for y in [vec![], vec![0.7]] {
        // s = sin x₁ (y empty) or x₁ y₀, plus x₀ x₃
        let (v, (gx, gy)) = empty_or_not_grad(&x, &y);
        assert_eq!(v.to_bits(), empty_or_not(&x, &y).to_bits());
        assert_close(&gx, &fd(|x| empty_or_not(x, &y), &x), "dx vs differences");
        assert_close(&gy, &fd(|y| empty_or_not(&x, y), &y), "dy vs differences");
        let (tv, (tgx, tgy)) = empty_or_not_tape_grad(&x, &y);
        assert_close(&[tv], &[v], "value vs tape");
        assert_close(&gx, &tgx, "dx vs tape");
        assert_close(&gy, &tgy, "dy vs tape");
    }
}

/// A plain function without a `_vjp` (as `lgamma` of a size in GMM's log-Wishart
/// prior): called with constant arguments only, it needs no derivative.
fn log_factorial(n: f64) -> f64 {
    (1..=n as usize).map(|k| (k as f64).ln()).sum()
}

#[differentiable(static)]
fn with_plain_call(x: &[f64], n: usize) -> f64 {
    let m = n + 1;
    let mut s = x[0] * log_factorial(0.5 * m as f64);
    for i in 0..x.len() {
        s += x[i].sin() * log_factorial(i as f64);
    }
    s
}

// The tape chains every call through `_vjp`, unless the call is named in `inline(..)`.
#[differentiable(inline(log_factorial))]
fn with_plain_call_tape(x: &[f64], n: usize) -> f64 {
    let m = n + 1;
    let mut s = x[0] * log_factorial(0.5 * m as f64);
    for i in 0..x.len() {
        s += x[i].sin() * log_factorial(i as f64);
    }
    s
}

#[test]
fn plain_calls_of_constants() {
    let x = point(5);
    let (v, g) = with_plain_call_grad(&x, 7);
    assert_eq!(v.to_bits(), with_plain_call(&x, 7).to_bits());
    assert_close(
        &g,
        &fd(|x| with_plain_call(x, 7), &x),
        "vs finite differences",
    );
    let (tv, tg) = with_plain_call_tape_grad(&x, 7);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// `Vec::new()` / `Vec::with_capacity(n)` and `push`: in a loop, in a branch inside it,
// read back by index, by `len`, and by iterator chains while it grows and after.
twins! {
    pushed / pushed_tape (x: &[f64], t: f64) -> f64 {
        let mut acc = Vec::with_capacity(x.len());
        let mut big: Vec<f64> = Vec::new();
        let mut s = 0.0;
        for i in 0..x.len() {
            s += x[i];
            acc.push(s * s);
            if x[i] > t {
                big.push(x[i] * t);
            }
            // The sum so far, while `acc` grows.
            s += 0.1 * acc.iter().sum::<f64>() / acc.len() as f64;
        }
        let mut total = acc[0] * acc[acc.len() - 1];
        for v in &big {
            total += v.sin();
        }
        total + acc.iter().map(|a| a.sqrt()).sum::<f64>() + big.len() as f64
    }
}

#[test]
fn vecs_that_grow() {
    let x = vec![0.3, 1.2, -0.4, 0.9, 0.5];
    for t in [0.4, 0.0, 2.0] {
        let (v, (g, gt)) = pushed_grad(&x, t);
        assert_eq!(v.to_bits(), pushed(&x, t).to_bits());
        assert_close(&g, &fd(|x| pushed(x, t), &x), "dx vs finite differences");
        let dt = fd(|p| pushed(&x, p[0]), &[t]);
        assert_close(&[gt], &dt, "dt vs finite differences");
        let (tv, (tg, tgt)) = pushed_tape_grad(&x, t);
        assert_close(&[tv], &[v], "value vs tape");
        assert_close(&g, &tg, "dx vs tape");
        assert_close(&[gt], &[tgt], "dt vs tape");
    }
}

// A vector result built by `push`, and a grown `Vec` passed to a helper.
#[differentiable(static)]
fn cumulative(x: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut s = 0.0;
    for v in x {
        s += v * v;
        out.push(s.sqrt());
    }
    out
}

twins! {
    grown_to_helper / grown_to_helper_tape (x: &[f64]) -> f64 {
        let mut sq = Vec::with_capacity(x.len());
        for v in x.iter().rev() {
            sq.push(v.sin());
        }
        centered_sq(&sq, x) + sq.len() as f64
    }
}

#[test]
fn grown_vecs_as_results_and_arguments() {
    let x = point(4);
    let seed = vec![0.5, -1.0, 2.0, 0.25];
    let (y, gx) = cumulative_vjp(&x, seed.clone());
    assert_eq!(y, cumulative(&x));
    let dot = |x: &[f64]| {
        cumulative(x)
            .iter()
            .zip(&seed)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    assert_close(&gx, &fd(dot, &x), "vector result vs finite differences");

    let (v, g) = grown_to_helper_grad(&x);
    assert_eq!(v.to_bits(), grown_to_helper(&x).to_bits());
    assert_close(&g, &fd(grown_to_helper, &x), "vs finite differences");
    let (tv, tg) = grown_to_helper_tape_grad(&x);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// A call with a tensor result and slice or `Vec` parameters passed on: the reverse
// sweep calls `_vjp` again with the same memory (a `Vec` passed by value is copied).
#[differentiable]
fn weighted_rows(w: &Tensor, c: &[f64], v: Vec<f64>) -> Tensor {
    w * (c[0] * v[1] + c[1].sin())
}

twins! {
    uses_weighted_rows / uses_weighted_rows_tape (w: &Tensor, c: &[f64], v: Vec<f64>) -> f64 {
        let t: Tensor = weighted_rows(w, c, v);
        (t.clone() * t).sum()
    }
}

#[test]
fn tensor_result_calls_with_slice_parameters() {
    let w = Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]);
    let (c, v) = (vec![0.3, -0.8], vec![1.1, 0.6]);
    let (val, (gw, gc, gv)) = uses_weighted_rows_grad(&w, &c, v.clone());
    assert_eq!(
        val.to_bits(),
        uses_weighted_rows(&w, &c, v.clone()).to_bits()
    );
    let (tval, (tgw, tgc, tgv)) = uses_weighted_rows_tape_grad(&w, &c, v.clone());
    assert_close(&[tval], &[val], "value vs tape");
    assert_close(gw.as_slice(), tgw.as_slice(), "dw vs tape");
    assert_close(&gc, &tgc, "dc vs tape");
    assert_close(&gv, &tgv, "dv vs tape");
    assert_close(
        &gc,
        &fd(|c| uses_weighted_rows(&w, c, v.clone()), &c),
        "dc vs finite differences",
    );
    assert_close(
        &gv,
        &fd(|v| uses_weighted_rows(&w, &c, v.to_vec()), &v),
        "dv vs finite differences",
    );
    let wv = w.to_vec();
    let gw_fd = fd(
        |x| uses_weighted_rows(&Tensor::from_vec(x.to_vec(), &[3]), &c, v.clone()),
        &wv,
    );
    assert_close(gw.as_slice(), &gw_fd, "dw vs finite differences");
}

// `clone` of a local array and of an array parameter is an array copy (found by the
// tester, seed 4242: it took the tape, and a value in error after it made the body
// look invalid, so the function was rejected).
twins! {
    array_clones / array_clones_tape (p: [f64; 3], x: f64) -> f64 {
        let a = [x.tanh(), x * x];
        let mut c = a.clone();
        c[0] += p[2];
        let mut q = p.clone();
        q[1] *= x;
        c.iter().sum::<f64>() * a[1]
            + q.iter()
                .zip(c.windows(1))
                .map(|(u, w)| u * w[0])
                .sum::<f64>()
    }
}

#[test]
fn clones_of_arrays() {
    let (p, x) = ([0.3, -0.7, 1.1], 0.6);
    let (v, (gp, gx)) = array_clones_grad(p, x);
    assert_eq!(v.to_bits(), array_clones(p, x).to_bits());
    let (tv, (tp, tx)) = array_clones_tape_grad(p, x);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&gp, &tp, "dp vs tape");
    assert_close(&[gx], &[tx], "dx vs tape");
    let fp = fd(|q| array_clones([q[0], q[1], q[2]], x), &p);
    assert_close(&gp, &fp, "dp vs finite differences");
    assert_close(
        &[gx],
        &fd(|y| array_clones(p, y[0]), &[x]),
        "dx vs finite differences",
    );
}

// Reborrows (`&*b`, `*v`) and integer casts of indices (`ik as usize`).
macro_rules! reborrow_twins {
    ($name:ident, $($attr:tt)*) => {
        #[differentiable($($attr)*)]
        fn $name(x: &[f64], k: i32) -> f64 {
            let mut b = vec![0.0; 3];
            for i in 0..3 {
                b[i] = x[i] * x[i + 1];
            }
            let r = &*b;
            let mut s = 0.0;
            for ik in 0..k {
                s += r[ik as usize % 3] * x[(ik as usize) % x.len()];
            }
            for v in r.iter() {
                s += (*v).sin();
            }
            s + centered_sq(&*b, &x[1..4])
        }
    };
}
reborrow_twins!(reborrows, static);
reborrow_twins!(reborrows_tape, tape);

#[test]
fn reborrows_and_index_casts() {
    let x = point(5);
    let (v, g) = reborrows_grad(&x, 7);
    assert_eq!(v.to_bits(), reborrows(&x, 7).to_bits());
    assert_close(&g, &fd(|x| reborrows(x, 7), &x), "vs finite differences");
    let (tv, tg) = reborrows_tape_grad(&x, 7);
    assert_close(&[tv], &[v], "value vs tape");
    assert_close(&g, &tg, "vs tape");
}

// A buffer filled whole at the start of each iteration from values the reverse still
// has (`c[j] = x[j] - mu[k]`, GMM's `xcentered`) is filled again in the reverse
// instead of being saved; the three fills after it must not be: each reads or leaves
// something the reverse no longer has, and a refill would differentiate at the wrong
// values.
twins! {
    refilled / refilled_t (x: &[f64], mu: &[f64]) -> f64 {
        let d = x.len();
        let mut c = vec![0.0; d];
        let mut s = 0.0;
        for k in 0..mu.len() {
            for j in 0..d {
                c[j] = x[j] * (k as f64 + 1.0) - mu[k];
            }
            for j in 0..d {
                s += c[j].sin() * c[(j + 1) % d];
            }
            s += sqnorm(&c) * mu[k];
        }
        s
    }
}

// The fill reads a buffer that is overwritten after the loop.
#[differentiable(static)]
fn refill_source_overwritten(x: &[f64], mu: &[f64]) -> f64 {
    let d = x.len();
    let mut src = vec![0.0; d];
    for j in 0..d {
        src[j] = x[j] * 2.0;
    }
    let mut c = vec![0.0; d];
    let mut s = 0.0;
    for k in 0..mu.len() {
        for j in 0..d {
            c[j] = src[j] - mu[k];
        }
        for j in 0..d {
            s += c[j].sin() * c[j];
        }
    }
    for j in 0..d {
        src[j] = 0.0;
    }
    s + src[0]
}

// The fill reads a buffer written earlier in the same iteration.
#[differentiable(static)]
fn refill_source_per_iteration(x: &[f64], mu: &[f64]) -> f64 {
    let d = x.len();
    let mut w = vec![0.0; d];
    let mut c = vec![0.0; d];
    let mut s = 0.0;
    for k in 0..mu.len() {
        for j in 0..d {
            w[j] = x[j] * mu[k];
        }
        for j in 0..d {
            c[j] = w[j].sin();
        }
        for j in 0..d {
            s += c[j] * c[j] * w[j];
        }
    }
    s
}

// The filled buffer is written again after the fill.
#[differentiable(static)]
fn refill_then_updated(x: &[f64], mu: &[f64]) -> f64 {
    let d = x.len();
    let mut c = vec![0.0; d];
    let mut s = 0.0;
    for k in 0..mu.len() {
        for j in 0..d {
            c[j] = x[j] - mu[k];
        }
        c[0] += mu[k] * x[1];
        for j in 0..d {
            s += c[j].sin() * c[j];
        }
    }
    s
}

#[test]
fn buffers_filled_again_in_the_reverse() {
    let (x, mu) = (point(4), vec![0.3, -0.7, 1.1]);
    let (v, (gx, gm)) = refilled_grad(&x, &mu);
    assert_eq!(v.to_bits(), refilled(&x, &mu).to_bits());
    assert_close(&gx, &fd(|x| refilled(x, &mu), &x), "refilled dx");
    assert_close(&gm, &fd(|m| refilled(&x, m), &mu), "refilled dmu");
    let (_, (tx, tm)) = refilled_t_grad(&x, &mu);
    assert_close(&gx, &tx, "refilled dx against the tape");
    assert_close(&gm, &tm, "refilled dmu against the tape");

    type F = fn(&[f64], &[f64]) -> f64;
    type G = fn(&[f64], &[f64]) -> (f64, (Vec<f64>, Vec<f64>));
    let cases: [(&str, F, G); 3] = [
        (
            "source overwritten",
            refill_source_overwritten,
            refill_source_overwritten_grad,
        ),
        (
            "source per iteration",
            refill_source_per_iteration,
            refill_source_per_iteration_grad,
        ),
        ("updated", refill_then_updated, refill_then_updated_grad),
    ];
    for (what, f, g) in cases {
        let (v, (gx, gm)) = g(&x, &mu);
        assert_eq!(v.to_bits(), f(&x, &mu).to_bits(), "{what}");
        assert_close(&gx, &fd(|x| f(x, &mu), &x), &format!("{what} dx"));
        assert_close(&gm, &fd(|m| f(&x, m), &mu), &format!("{what} dmu"));
    }
}

// Counters that inner loops step (`li` of GMM's triangle) are walked back through
// every loop around them, not saved per iteration: carried through two loops and read
// after them, and restarted per outer iteration with a step of 2. A counter walked
// back one step off reads the wrong element of `l`.
twins! {
    counters / counters_t (l: &[f64], x: &[f64]) -> f64 {
        let d = x.len();
        let mut s = 0.0;
        let mut li = 0;
        for k in 0..2 {
            for i in 0..d {
                for j in i + 1..d {
                    s += l[li] * x[i] * x[j] * (k as f64 + 1.0);
                    li += 1;
                }
            }
        }
        s * l[li - 1]
    }
}

twins! {
    counters_step / counters_step_t (l: &[f64], x: &[f64]) -> f64 {
        let d = x.len();
        let mut s = 0.0;
        for k in 0..2 {
            let mut li = k;
            for i in 0..d {
                for j in i..d {
                    s += (l[li] * x[j]).sin() * x[i];
                    li += 2;
                }
            }
        }
        s
    }
}

#[test]
fn counters_walked_back_through_loops() {
    let x = point(4);
    let l: Vec<f64> = (0..20).map(|i| 0.3 - 0.07 * i as f64).collect();
    let l12 = &l[..12];
    let (v, (gl, gx)) = counters_grad(l12, &x);
    assert_eq!(v.to_bits(), counters(l12, &x).to_bits());
    assert_close(&gl, &fd(|l| counters(l, &x), l12), "counters dl");
    assert_close(&gx, &fd(|x| counters(l12, x), &x), "counters dx");
    let (_, (tl, tx)) = counters_t_grad(l12, &x);
    assert_close(&gl, &tl, "counters dl against the tape");
    assert_close(&gx, &tx, "counters dx against the tape");

    let (v, (gl, gx)) = counters_step_grad(&l, &x);
    assert_eq!(v.to_bits(), counters_step(&l, &x).to_bits());
    assert_close(&gl, &fd(|l| counters_step(l, &x), &l), "step dl");
    assert_close(&gx, &fd(|x| counters_step(&l, x), &x), "step dx");
    let (_, (tl, tx)) = counters_step_t_grad(&l, &x);
    assert_close(&gl, &tl, "step dl against the tape");
    assert_close(&gx, &tx, "step dx against the tape");
}

// A forward loop that only computes scalars, whose reverse only adds into adjoint
// memory, runs in one loop with its reverse (Rosenbrock's value pass), with the
// elements `g[i]` and `g[i + 1]` in registers. Checked on empty and one-trip loops,
// an inclusive range, and a third element (`g[i + 2]`) that is left in memory.
twins! {
    chain / chain_t (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() - 1 {
            s += (1.0 - x[i]).powi(2) + 3.0 * (x[i + 1] - x[i] * x[i]).powi(2);
        }
        s
    }
}

twins! {
    chain_inclusive / chain_inclusive_t (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..=x.len() - 2 {
            s += (1.0 - x[i]).powi(2) + x[i] * x[i + 1] * 0.5;
        }
        s
    }
}

twins! {
    chain_three / chain_three_t (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() - 2 {
            s += x[i] * x[i + 1] * x[i + 2] + (x[i + 1] - x[i]).powi(2);
        }
        s
    }
}

// Loops that must not run with their reverse: the forward loop's result is read by
// the reverse of what follows it; the reversed loop carries an adjoint that changes;
// the memory the forward loop reads is written again before the reversed loop.
twins! {
    chain_read_after / chain_read_after_t (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() - 1 {
            s += x[i] * x[i + 1];
        }
        s.sin() * x[0]
    }
}

twins! {
    chain_product / chain_product_t (x: &[f64]) -> f64 {
        let mut p = 1.0;
        for i in 0..x.len() - 1 {
            p = p * 0.5 + x[i] * x[i + 1];
        }
        p
    }
}

twins! {
    chain_rewritten / chain_rewritten_t (x: &[f64]) -> f64 {
        let n = x.len();
        let mut b = vec![0.0; n];
        for i in 0..n {
            b[i] = x[i] * 2.0;
        }
        let mut s = 0.0;
        for i in 0..n - 1 {
            s += b[i] * b[i + 1];
        }
        for i in 0..n {
            b[i] = x[i].sin();
        }
        let mut t = 0.0;
        for i in 0..n {
            t += b[i] * x[i];
        }
        s + t
    }
}

#[test]
fn forward_loops_run_with_their_reverse() {
    type F = fn(&[f64]) -> f64;
    type G = fn(&[f64]) -> (f64, Vec<f64>);
    let cases: [(&str, F, G, G, usize); 6] = [
        ("chain", chain, chain_grad, chain_t_grad, 2),
        (
            "inclusive",
            chain_inclusive,
            chain_inclusive_grad,
            chain_inclusive_t_grad,
            // Never empty: one trip at the shortest length.
            3,
        ),
        (
            "three",
            chain_three,
            chain_three_grad,
            chain_three_t_grad,
            3,
        ),
        (
            "read after",
            chain_read_after,
            chain_read_after_grad,
            chain_read_after_t_grad,
            2,
        ),
        (
            "product",
            chain_product,
            chain_product_grad,
            chain_product_t_grad,
            2,
        ),
        (
            "rewritten",
            chain_rewritten,
            chain_rewritten_grad,
            chain_rewritten_t_grad,
            2,
        ),
    ];
    for (what, f, g, t, shortest) in cases {
        // The shortest input gives an empty loop (one trip for the inclusive range),
        // the next one trip (two).
        for n in [shortest - 1, shortest, 7] {
            let x = point(n);
            let (v, gx) = g(&x);
            assert_eq!(v.to_bits(), f(&x).to_bits(), "{what}, n = {n}");
            assert_close(&gx, &fd(f, &x), &format!("{what}, n = {n}"));
            assert_close(&gx, &t(&x).1, &format!("{what} against the tape, n = {n}"));
        }
    }
}

// A load that every iteration makes of one element of memory the loop does not write
// is made once before the loop (GMM's `xcentered[i]` in the triangle); not where the
// loop writes that memory, and not at all where the loop has no iterations (the
// element may not exist then: `x[k]` with `k == x.len()` below when `m == 0`).
twins! {
    hoisted / hoisted_t (x: &[f64], m: usize) -> f64 {
        let d = x.len();
        let mut c = vec![0.0; d];
        for j in 0..d {
            c[j] = x[j] * x[j];
        }
        let mut s = 0.0;
        for i in 0..d {
            for j in i + 1..d {
                s += (c[i] * x[j]).sin();
            }
        }
        let k = d - m;
        for j in 0..m {
            s += x[k] * x[j];
        }
        s
    }
}

twins! {
    hoist_written / hoist_written_t (x: &[f64]) -> f64 {
        let d = x.len();
        let mut c = vec![1.0; d];
        let mut s = 0.0;
        for i in 0..d {
            for j in 0..d {
                s += c[i] * x[j];
                c[i] += x[j] * x[i];
            }
        }
        s
    }
}

#[test]
fn loads_made_once_before_their_loop() {
    let x = point(5);
    for m in [0, 1, 3] {
        let (v, g) = hoisted_grad(&x, m);
        assert_eq!(v.to_bits(), hoisted(&x, m).to_bits(), "m = {m}");
        assert_close(&g, &fd(|x| hoisted(x, m), &x), &format!("hoisted, m = {m}"));
        let tape = hoisted_t_grad(&x, m).1;
        assert_close(&g, &tape, &format!("hoisted against the tape, m = {m}"));
    }
    let (v, g) = hoist_written_grad(&x);
    assert_eq!(v.to_bits(), hoist_written(&x).to_bits());
    assert_close(&g, &fd(hoist_written, &x), "written");
    assert_close(&g, &hoist_written_t_grad(&x).1, "written against the tape");
}

// Two forward loops over one range, each with its reverse: each runs with one
// reversed loop (the nearest forward loop not already taken).
#[differentiable(static)]
fn chain_two(x: &[f64], out: &mut f64) -> f64 {
    let m = x.len() - 1;
    let mut s = 0.0;
    for i in 0..m {
        s += x[i] * x[i + 1];
    }
    let mut t = 0.0;
    for i in 0..m {
        t += (x[i] - x[i + 1]).powi(2);
    }
    *out = t;
    s
}

// The tape takes no `&mut` parameter: its twin returns the seeded sum.
#[differentiable(tape)]
fn chain_two_t(x: &[f64], seed_out: f64, seed: f64) -> f64 {
    let m = x.len() - 1;
    let mut s = 0.0;
    for i in 0..m {
        s += x[i] * x[i + 1];
    }
    let mut t = 0.0;
    for i in 0..m {
        t += (x[i] - x[i + 1]).powi(2);
    }
    seed * s + seed_out * t
}

#[test]
fn two_forward_loops_each_with_its_reverse() {
    let x = point(6);
    let (seed_out, seed) = (0.7, -1.3);
    let mut out = 0.0;
    let (v, (gx, _)) = chain_two_vjp(&x, &mut out, seed_out, seed);
    let mut o = 0.0;
    assert_eq!(v.to_bits(), chain_two(&x, &mut o).to_bits());
    assert_eq!(out.to_bits(), o.to_bits());
    let f = |x: &[f64]| {
        let mut o = 0.0;
        let v = chain_two(x, &mut o);
        seed * v + seed_out * o
    };
    assert_close(&gx, &fd(f, &x), "dx");
    let (_, (tx, _, _)) = chain_two_t_grad(&x, seed_out, seed);
    assert_close(&gx, &tx, "dx against the tape");
}

// `enumerate` after `rev`, `step_by` and `skip`: the count is that of the walk.
twins! {
    counted_walks / counted_walks_tape (x: &[f64]) -> f64 {
        let mut s = 0.0;
        for (i, v) in x.iter().rev().enumerate() {
            s += v * (i as f64 + 1.0);
        }
        let a: f64 = x.iter().step_by(2).enumerate().map(|(i, v)| v.sin() * i as f64).sum();
        let b: f64 = x
            .iter()
            .rev()
            .step_by(2)
            .enumerate()
            .map(|(i, v)| v * v * (i as f64 + 0.5))
            .sum();
        let c: f64 = x.iter().skip(1).rev().enumerate().map(|(i, v)| v * i as f64).sum();
        s + a + b + c
    }
}

#[test]
fn enumerate_counts_the_walk() {
    for n in [5, 6] {
        let x = point(n);
        let (v, g) = counted_walks_grad(&x);
        assert_eq!(v.to_bits(), counted_walks(&x).to_bits());
        assert_close(&g, &fd(counted_walks, &x), "vs finite differences");
        let (tv, tg) = counted_walks_tape_grad(&x);
        assert_close(&[tv], &[v], "value vs tape");
        assert_close(&g, &tg, "vs tape");
    }
}

// The reverse of a triangle (GMM's `Qtimesx`) reads the adjoint of `q[j]` from memory,
// so each product's contribution has a strong-zero guard. The inner reversed loop also
// runs as a copy without the guards, where its partials (`l[li]`, `x[i]`) are finite;
// where one is infinite while its adjoint is 0 (`q[j]` unread: `j >= keep`), the
// guarded copy must run and give 0, not `0 * inf = NaN`.
twins! {
    tri_kept / tri_kept_t (l: &[f64], x: &[f64], keep: usize) -> f64 {
        let d = x.len();
        let mut q = vec![0.0; d];
        for i in 0..d {
            q[i] = x[i];
        }
        let mut li = 0;
        for i in 0..d {
            for j in i + 1..d {
                q[j] += l[li] * x[i];
                li += 1;
            }
        }
        let mut s = 0.0;
        for j in 0..keep {
            s += q[j].sin() * q[j];
        }
        s
    }
}

/// `tri_kept`'s gradient at `(l, x, keep)` against the tape's, and against central
/// differences in the finite entries (an infinite one is read only by unread `q[j]`,
/// so its gradient is 0, which the tape gives).
fn check_tri_kept(l: &[f64], x: &[f64], keep: usize, what: &str) {
    let (v, (gl, gx)) = tri_kept_grad(l, x, keep);
    assert_eq!(v.to_bits(), tri_kept(l, x, keep).to_bits(), "{what}: value");
    assert!(v.is_finite(), "{what}: value {v}");
    let (_, (tl, tx)) = tri_kept_t_grad(l, x, keep);
    assert_close(&gl, &tl, &format!("{what}: dl against the tape"));
    assert_close(&gx, &tx, &format!("{what}: dx against the tape"));
    let finite = |v: &[f64], g: &[f64], fd: Vec<f64>, name: &str| {
        for (i, ((a, g), f)) in v.iter().zip(g).zip(fd).enumerate() {
            if a.is_finite() {
                assert_close(&[*g], &[f], &format!("{what}: {name}[{i}]"));
            } else {
                assert_eq!(*g, 0.0, "{what}: {name}[{i}] of an unread infinity");
            }
        }
    };
    finite(l, &gl, fd(|l| tri_kept(l, x, keep), l), "dl");
    finite(x, &gx, fd(|x| tri_kept(l, x, keep), x), "dx");
}

#[test]
fn unguarded_triangle_copy_only_where_partials_are_finite() {
    let x = point(4);
    let l: Vec<f64> = (0..6).map(|i| 0.2 + 0.1 * i as f64).collect();
    // Finite partials: the guard-free copy.
    check_tri_kept(&l, &x, 4, "finite");
    check_tri_kept(&l, &x, 2, "finite, q[2..] unread");
    // `l[2]` feeds only `q[3]`, unread: its product with `x[0]` meets a zero adjoint.
    let mut l_inf = l.clone();
    l_inf[2] = f64::INFINITY;
    check_tri_kept(&l_inf, &x, 3, "l[2] infinite");
    // `x[2]` feeds `q[2]` and `q[3]`, both unread: `l[5] * x[2]` meets a zero adjoint.
    let mut x_inf = x.clone();
    x_inf[2] = f64::INFINITY;
    check_tri_kept(&l, &x_inf, 2, "x[2] infinite");
    let mut x_nan = x.clone();
    x_nan[3] = f64::NAN;
    check_tri_kept(&l, &x_nan, 3, "x[3] NaN");
}

// A guard in a reversed inner loop whose partial simplifies to a constant (`1 / 0.8`):
// the loop is written once, without it (the differential tester's `p224` once
// expanded to an `if` with no condition here).
twins! {
    const_partial / const_partial_t (x: &[f64]) -> f64 {
        let mut b = [1.0f64; 3];
        for i in 0..3 {
            b[i] += x[i];
        }
        for k in 0..2 {
            for j in 0..b.len() {
                b[j] = b[j] + (b[1] / 0.8f64) * ((k + j) as f64 * 0.5 + 0.3);
            }
        }
        b[0] * b[2].sin()
    }
}

#[test]
fn guard_with_a_constant_partial_in_a_reversed_inner_loop() {
    let x = point(3);
    let (v, g) = const_partial_grad(&x);
    assert_eq!(v.to_bits(), const_partial(&x).to_bits());
    assert_close(&g, &fd(const_partial, &x), "dx");
    assert_close(&g, &const_partial_t_grad(&x).1, "dx against the tape");
}

// Values that reach the result only through `detach` get no adjoint: the maximum of a
// stabilised LogSumExp is not reversed and nothing is saved for it. The result is
// invariant to the detached maximum, so finite differences agree too.
twins! {
    lse_detached / lse_detached_t (x: &[f64]) -> f64 {
        let mut a = x[0];
        for i in 1..x.len() {
            a = a.max(x[i]);
        }
        let a = a.detach();
        let mut sum = 0.0;
        for i in 0..x.len() {
            sum += (x[i] - a).exp();
        }
        a + sum.ln()
    }
}

#[test]
fn a_loop_that_only_feeds_a_detach_is_not_reversed() {
    let x = point(6);
    let (v, g) = lse_detached_grad(&x);
    assert_eq!(v.to_bits(), lse_detached(&x).to_bits());
    assert_close(&g, &fd(lse_detached, &x), "dx");
    assert_close(&g, &lse_detached_t_grad(&x).1, "dx against the tape");
}

// One buffer, some of whose elements and a view of which are read only through
// `detach` while others are read directly, and a loop result used both ways: the
// stores into it stay reversed, the detached reads give nothing.
twins! {
    partly_detached / partly_detached_t (x: &[f64]) -> f64 {
        let n = x.len();
        let mut b = vec![0.0; n];
        for i in 0..n {
            b[i] = x[i] * x[i] + 0.5 * x[(i + 1) % n];
        }
        let v = &b[1..];
        let mut m = 0.0;
        for i in 0..v.len() {
            m += v[i].sin();
        }
        let t = b[0].detach() * m.detach();
        let mut s = m;
        for i in 0..n {
            s += b[i] * t * (i as f64 + 1.0);
        }
        s
    }
}

#[test]
fn detached_reads_of_a_buffer_keep_its_other_reads() {
    let x = point(5);
    let (v, g) = partly_detached_grad(&x);
    assert_eq!(v.to_bits(), partly_detached(&x).to_bits());
    let (tv, tg) = partly_detached_t_grad(&x);
    assert_eq!(v.to_bits(), tv.to_bits());
    assert_close(&g, &tg, "dx against the tape");
    // With t held at its value, the rest is differentiable by differences.
    let parts = |p: &[f64]| {
        let n = p.len();
        let b: Vec<f64> = (0..n).map(|i| p[i] * p[i] + 0.5 * p[(i + 1) % n]).collect();
        let m: f64 = b[1..].iter().map(|e| e.sin()).sum();
        (b, m)
    };
    let t = {
        let (b, m) = parts(&x);
        b[0] * m
    };
    let held = |p: &[f64]| {
        let (b, m) = parts(p);
        m + b
            .iter()
            .enumerate()
            .map(|(i, bi)| bi * t * (i as f64 + 1.0))
            .sum::<f64>()
    };
    assert_close(&g, &fd(held, &x), "dx against differences with t held");
}

// Loops that reserve room on their stacks before they start (`push_reserved`): a
// triangular inner loop whose trip count changes with the outer index, an inclusive
// stepped range, a reversed one, and a loop whose pushes sit beside an inner loop's.
// A miscounted reservation would panic; the gradients are checked as usual.
twins! {
    reserved_shapes / reserved_shapes_t (x: &[f64]) -> f64 {
        let n = x.len();
        let mut s = 0.0;
        for i in 0..n {
            let mut p = 1.0;
            for j in i..n {
                p = p * x[j] + 0.1;
            }
            let mut q = p;
            for j in (0..=i).step_by(2) {
                q = q.sin() * x[j];
            }
            s = s * 0.5 + q * p;
        }
        for k in (1..n).rev() {
            s = s * x[k].cos() + x[k - 1];
        }
        s
    }
}

#[test]
fn reserved_pushes_in_triangular_stepped_and_reversed_loops() {
    for n in [1, 2, 5, 8] {
        let x: Vec<f64> = point(n).iter().map(|v| 0.4 + 0.3 * v.sin()).collect();
        let (v, g) = reserved_shapes_grad(&x);
        assert_eq!(v.to_bits(), reserved_shapes(&x).to_bits());
        assert_close(&g, &fd(reserved_shapes, &x), &format!("dx, n = {n}"));
        assert_close(
            &g,
            &reserved_shapes_t_grad(&x).1,
            &format!("dx against the tape, n = {n}"),
        );
    }
}
