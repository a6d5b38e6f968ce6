//! Forward mode (`NAME_jvp`) and forward over reverse (`NAME_hvp`) on the static path:
//! each `_jvp` against central differences of the function along the tangent and
//! against `_vjp` by `<u, J v> = <J^T u, v>`; each `_hvp` against central differences
//! of `_grad` along `v`, its gradient against `_grad`'s.

#![allow(dead_code, clippy::needless_range_loop, clippy::ptr_arg)]

use adjoint::prelude::*;

/// `sum_i a[i] b[i]`
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `x + t v`
fn along(x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(a, b)| a + t * b).collect()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "{what}: got {got}, want {want}"
    );
}

fn close_all(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(*g, *w, tol, &format!("{what}[{i}]"));
    }
}

/// A deterministic vector in [-1, 1).
fn vector(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// The central difference of a vector function along `v`.
fn fd_dir(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], v: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    let (a, b) = (f(&along(x, v, h)), f(&along(x, v, -h)));
    a.iter().zip(&b).map(|(p, m)| (p - m) / (2.0 * h)).collect()
}

#[differentiable(order = 2)]
fn seed(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

#[test]
fn seed_function_jvp_and_hvp() {
    let (x1, x2) = (1.5, 0.5);
    let (d1, d2) = (0.3, -0.7);
    let (y, dy) = seed_jvp(x1, x2, d1, d2);
    assert_eq!(y, seed(x1, x2));
    let h = 1e-6;
    let fd = (seed(x1 + h * d1, x2 + h * d2) - seed(x1 - h * d1, x2 - h * d2)) / (2.0 * h);
    close(dy, fd, 1e-7, "jvp vs differences");
    let (_, (g1, g2)) = seed_grad(x1, x2);
    close(dy, g1 * d1 + g2 * d2, 1e-12, "jvp vs grad");
    let (y2, (h1g, h2g), (hv1, hv2)) = seed_hvp(x1, x2, d1, d2);
    assert_eq!(y2, y);
    assert_eq!((h1g, h2g), (g1, g2));
    let g = |a: f64, b: f64| {
        let (_, (p, q)) = seed_grad(a, b);
        [p, q]
    };
    let (p, m) = (g(x1 + h * d1, x2 + h * d2), g(x1 - h * d1, x2 - h * d2));
    close(hv1, (p[0] - m[0]) / (2.0 * h), 1e-6, "hvp[0]");
    close(hv2, (p[1] - m[1]) / (2.0 * h), 1e-6, "hvp[1]");
}

#[differentiable(order = 2)]
fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        s += 100.0 * a * a + b * b;
    }
    s
}

#[test]
fn rosenbrock_jvp_and_hvp() {
    let x = vector(12, 1);
    let v = vector(12, 2);
    let (y, dy) = rosenbrock_jvp(&x, &v);
    assert_eq!(y, rosenbrock(&x));
    let fd = fd_dir(|x| vec![rosenbrock(x)], &x, &v)[0];
    close(dy, fd, 1e-6, "jvp vs differences");
    let (_, g) = rosenbrock_grad(&x);
    close(dy, dot(&g, &v), 1e-12, "<grad, v>");
    let (y2, g2, hv) = rosenbrock_hvp(&x, &v);
    assert_eq!(y2, y);
    close_all(&g2, &g, 1e-14, "hvp's gradient");
    let want = fd_dir(|x| rosenbrock_grad(x).1, &x, &v);
    close_all(&hv, &want, 1e-5, "hvp vs differences of grad");
}

/// Branches, a local buffer written element by element, a loop that carries values.
#[differentiable(static, order = 2)]
fn buffers(x: &[f64], w: f64) -> f64 {
    let n = x.len();
    let mut b = vec![0.0; n];
    for i in 0..n {
        b[i] = if x[i] > 0.0 {
            x[i].sqrt() * w
        } else {
            (x[i] * w).exp()
        };
    }
    let mut acc = 1.0;
    let mut m: f64 = 0.0;
    for i in 0..n {
        acc = acc * 0.5 + b[i].sin();
        m = m.max(b[i]);
    }
    acc * m + w.tanh()
}

#[test]
fn buffers_jvp_and_hvp() {
    let x = vec![0.7, -0.3, 1.9, 0.2, -1.1];
    let w = 0.8;
    let dx = vector(5, 3);
    let dw = 0.4;
    let (y, dy) = buffers_jvp(&x, w, &dx, dw);
    assert_eq!(y, buffers(&x, w));
    let mut xw = x.clone();
    xw.push(w);
    let mut v = dx.clone();
    v.push(dw);
    let f = |z: &[f64]| vec![buffers(&z[..5], z[5])];
    close(dy, fd_dir(f, &xw, &v)[0], 1e-6, "jvp vs differences");
    let (_, (gx, gw)) = buffers_grad(&x, w);
    close(dy, dot(&gx, &dx) + gw * dw, 1e-12, "<grad, v>");
    let (_, (hgx, hgw), (hx, hw)) = buffers_hvp(&x, w, &dx, dw);
    close_all(&hgx, &gx, 1e-14, "hvp's gradient");
    close(hgw, gw, 1e-14, "hvp's gradient (w)");
    let g = |z: &[f64]| {
        let (_, (mut gx, gw)) = buffers_grad(&z[..5], z[5]);
        gx.push(gw);
        gx
    };
    let want = fd_dir(g, &xw, &v);
    let mut got = hx.clone();
    got.push(hw);
    close_all(&got, &want, 1e-5, "hvp vs differences of grad");
}

#[differentiable]
fn helper(a: f64, b: f64) -> f64 {
    a * b.cos() + (a * a).ln()
}

/// A call: chained through `helper_jvp`.
#[differentiable]
fn calls(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        s += helper(x[i] + 2.0, s * 0.1);
    }
    s
}

#[test]
fn calls_chain_through_the_callee_jvp() {
    let x = vec![0.3, -0.5, 1.2, 0.8];
    let v = vector(4, 4);
    let (y, dy) = calls_jvp(&x, &v);
    assert_eq!(y, calls(&x));
    close(
        dy,
        fd_dir(|x| vec![calls(x)], &x, &v)[0],
        1e-6,
        "jvp vs differences",
    );
    let (_, g) = calls_grad(&x);
    close(dy, dot(&g, &v), 1e-12, "<grad, v>");
}

/// A vector result: `<u, J v> = <J^T u, v>`.
#[differentiable(static)]
fn residuals(x: &[f64], s: f64) -> Vec<f64> {
    let mut r = vec![0.0; x.len()];
    for i in 0..x.len() {
        let prev = if i == 0 { s } else { x[i - 1] };
        r[i] = x[i] * prev - s.powi(2) + (x[i] * s).sin();
    }
    r
}

#[test]
fn vector_result_jvp_is_the_transpose_of_vjp() {
    let x = vector(6, 5);
    let s = 0.6;
    let dx = vector(6, 6);
    let ds = -0.25;
    let u = vector(6, 7);
    let (r, dr) = residuals_jvp(&x, s, &dx, ds);
    assert_eq!(r, residuals(&x, s));
    let mut xs = x.clone();
    xs.push(s);
    let mut v = dx.clone();
    v.push(ds);
    let want = fd_dir(|z| residuals(&z[..6], z[6]), &xs, &v);
    close_all(&dr, &want, 1e-6, "jvp vs differences");
    let (_, (gx, gs)) = residuals_vjp(&x, s, u.clone());
    close(
        dot(&u, &dr),
        dot(&gx, &dx) + gs * ds,
        1e-12,
        "<u, J v> = <J^T u, v>",
    );
}

/// Tensors: a matrix product, elementwise chains with broadcasting, reductions.
#[differentiable(order = 2)]
fn layer(w: &Tensor, x: &Tensor, b: f64) -> f64 {
    let h = (w.matmul(x) + b).tanh();
    (&h * &h).sum() + h.max() + x.norm()
}

#[test]
fn tensor_jvp_and_hvp() {
    let w = Tensor::from_vec(vector(6, 8), &[2, 3]);
    let x = Tensor::from_vec(vector(3, 9), &[3]);
    let dw = Tensor::from_vec(vector(6, 10), &[2, 3]);
    let dx = Tensor::from_vec(vector(3, 11), &[3]);
    let db = 0.3;
    let (y, dy) = layer_jvp(&w, &x, 0.1, &dw, &dx, db);
    assert_eq!(y, layer(&w, &x, 0.1));
    let (_, (gw, gx, gb)) = layer_grad(&w, &x, 0.1);
    let want = dot(gw.as_slice(), dw.as_slice()) + dot(gx.as_slice(), dx.as_slice()) + gb * db;
    close(dy, want, 1e-12, "<grad, v>");
    let h = 1e-6;
    let at = |t: f64| {
        let w2 = Tensor::from_vec(along(w.as_slice(), dw.as_slice(), t), &[2, 3]);
        let x2 = Tensor::from_vec(along(x.as_slice(), dx.as_slice(), t), &[3]);
        (w2, x2, 0.1 + t * db)
    };
    let ((wp, xp, bp), (wm, xm, bm)) = (at(h), at(-h));
    close(
        dy,
        (layer(&wp, &xp, bp) - layer(&wm, &xm, bm)) / (2.0 * h),
        1e-6,
        "jvp vs differences",
    );
    let (_, _, (hw, hx, hb)) = layer_hvp(&w, &x, 0.1, &dw, &dx, db);
    let (_, (gwp, gxp, gbp)) = layer_grad(&wp, &xp, bp);
    let (_, (gwm, gxm, gbm)) = layer_grad(&wm, &xm, bm);
    let diff = |p: &Tensor, m: &Tensor| -> Vec<f64> {
        p.as_slice()
            .iter()
            .zip(m.as_slice())
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect()
    };
    close_all(hw.as_slice(), &diff(&gwp, &gwm), 1e-5, "hvp (w)");
    close_all(hx.as_slice(), &diff(&gxp, &gxm), 1e-5, "hvp (x)");
    close(hb, (gbp - gbm) / (2.0 * h), 1e-5, "hvp (b)");
}

/// Three outputs of five inputs (reverse mode: one `_vjp` per output).
#[differentiable(static)]
fn wide(x: &[f64]) -> Vec<f64> {
    let mut r = vec![0.0; 3];
    for i in 0..x.len() {
        r[i % 3] += x[i].sin() * x[(i + 1) % x.len()];
    }
    r
}

/// Four outputs of two inputs (forward mode: one `_jvp` per input).
#[differentiable(static)]
fn tall(x: [f64; 2]) -> [f64; 4] {
    [x[0] * x[1], x[0].exp(), (x[1] * x[1]).ln(), x[0] / x[1]]
}

/// The Jacobian by central differences, row-major.
fn fd_jacobian(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let cols: Vec<Vec<f64>> = (0..x.len())
        .map(|j| {
            let mut e = vec![0.0; x.len()];
            e[j] = 1.0;
            fd_dir(&f, x, &e)
        })
        .collect();
    (0..cols[0].len())
        .map(|i| cols.iter().map(|c| c[i]).collect())
        .collect()
}

#[test]
fn jacobians_by_either_mode_match_differences() {
    let x = vector(5, 12);
    let (y, j) = wide_jacobian(&x);
    assert_eq!(y, wide(&x));
    let want = fd_jacobian(wide, &x);
    assert_eq!((j.len(), j[0].len()), (3, 5));
    for (row, w) in j.iter().zip(&want) {
        close_all(row, w, 1e-6, "wide (reverse)");
    }
    let x2 = [0.7, 1.3];
    let (y, j) = tall_jacobian(x2);
    assert_eq!(y, tall(x2));
    let want = fd_jacobian(|x| tall([x[0], x[1]]).to_vec(), &x2);
    assert_eq!((j.len(), j[0].len()), (4, 2));
    for (row, w) in j.iter().zip(&want) {
        close_all(row, w, 1e-6, "tall (forward)");
    }
}

#[test]
fn hessians_are_symmetric_and_match_differences_of_the_gradient() {
    let x = vector(7, 13);
    let (y, g, h) = rosenbrock_hessian(&x);
    assert_eq!(y, rosenbrock(&x));
    assert_eq!(g, rosenbrock_grad(&x).1);
    let want = fd_jacobian(|x| rosenbrock_grad(x).1, &x);
    for i in 0..7 {
        close_all(&h[i], &want[i], 1e-5, "rosenbrock's Hessian");
        for j in 0..7 {
            close(h[i][j], h[j][i], 1e-12, &format!("symmetric at ({i}, {j})"));
        }
    }
    let w = Tensor::from_vec(vector(6, 14), &[2, 3]);
    let x = Tensor::from_vec(vector(3, 15), &[3]);
    let (_, _, ht) = tensor_energy_hessian(&w, &x);
    assert_eq!(ht.shape(), &[6, 6]);
    let flat = |t: &[f64]| Tensor::from_vec(t.to_vec(), &[2, 3]);
    let want = fd_jacobian(
        |p| tensor_energy_grad(&flat(p), &x).1.to_vec(),
        w.as_slice(),
    );
    for i in 0..6 {
        close_all(
            &ht.as_slice()[i * 6..(i + 1) * 6],
            &want[i],
            1e-5,
            "tensor Hessian",
        );
    }
}

#[differentiable(order = 2, wrt(w))]
fn tensor_energy(w: &Tensor, x: &Tensor) -> f64 {
    (w.matmul(x)).tanh().sum() + (w * w).sum() * 0.1
}

/// A body the static path does not take (`filter`) runs on the tape; `order = 2` gives
/// it `_hvp` by the tape's double backward.
#[differentiable(order = 2)]
#[allow(deprecated)]
fn on_tape(x: &[f64], w: f64) -> f64 {
    let big: f64 = x
        .iter()
        .copied()
        .filter(|e| *e > -10.0)
        .map(|e| (e * w).sin())
        .sum();
    big * w + x[0] * x[1] * x[1]
}

#[differentiable(tape, order = 2)]
fn tape_tensor(w: &Tensor, s: f64) -> f64 {
    (w * s).tanh().sum() + w.norm() * s
}

#[test]
fn hvp_on_the_tape_matches_differences_of_the_gradient() {
    let x = vector(4, 16);
    let (w, dx, dw) = (0.7, vector(4, 17), -0.3);
    let (y, (gx, gw), (hx, hw)) = on_tape_hvp(&x, w, &dx, dw);
    assert_eq!(y, on_tape(&x, w));
    let (_, (gx2, gw2)) = on_tape_grad(&x, w);
    close_all(&gx, &gx2, 1e-14, "gradient");
    close(gw, gw2, 1e-14, "gradient (w)");
    let mut xw = x.clone();
    xw.push(w);
    let mut v = dx.clone();
    v.push(dw);
    let g = |z: &[f64]| {
        let (_, (mut gx, gw)) = on_tape_grad(&z[..4], z[4]);
        gx.push(gw);
        gx
    };
    let want = fd_dir(g, &xw, &v);
    let mut got = hx.clone();
    got.push(hw);
    close_all(&got, &want, 1e-5, "tape hvp vs differences of grad");
    // The tensor leaf and the scalar one.
    let t = Tensor::from_vec(vector(6, 18), &[2, 3]);
    let dt = Tensor::from_vec(vector(6, 19), &[2, 3]);
    let (_, _, (ht, hs)) = tape_tensor_hvp(&t, 0.4, &dt, 0.5);
    let h = 1e-6;
    let at = |e: f64| {
        let t2 = Tensor::from_vec(along(t.as_slice(), dt.as_slice(), e), &[2, 3]);
        tape_tensor_grad(&t2, 0.4 + e * 0.5).1
    };
    let ((gp, sp), (gm, sm)) = (at(h), at(-h));
    let want: Vec<f64> = gp
        .as_slice()
        .iter()
        .zip(gm.as_slice())
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    close_all(ht.as_slice(), &want, 1e-5, "tape hvp (tensor)");
    close(hs, (sp - sm) / (2.0 * h), 1e-5, "tape hvp (scalar)");
}

#[test]
#[should_panic(expected = "`rosenbrock_jvp`: the tangent `dx` has 2 elements where `x` has 12")]
fn a_tangent_of_the_wrong_length_is_named() {
    let x = vector(12, 20);
    let _ = rosenbrock_jvp(&x, &[1.0, 2.0]);
}

#[test]
#[should_panic(expected = "`layer_hvp`: the tangent `vw` has shape [3, 2] where `w` has [2, 3]")]
fn a_tangent_of_the_wrong_shape_is_named() {
    let w = Tensor::from_vec(vector(6, 21), &[2, 3]);
    let x = Tensor::from_vec(vector(3, 22), &[3]);
    let bad = Tensor::zeros(&[3, 2]);
    let _ = layer_hvp(&w, &x, 0.1, &bad, &x, 0.0);
}
