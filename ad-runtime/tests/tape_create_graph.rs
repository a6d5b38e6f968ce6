//! Gradients of gradients on the tape (`Tape::grad_graph`, PyTorch's
//! `create_graph=True`): second derivatives of every class of operation
//! against central finite differences of the first gradient, Hessians,
//! Hessian-vector products, accumulation, `no_grad`, custom operations.

use ad_runtime::tape::{Function, Tape, TapeError, Value, Var};
use ad_runtime::Tensor;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// A function of some inputs (scalars or tensors) to a scalar, on a tape.
type F = dyn for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>;

/// Leaves for the inputs `xs` on `tape`.
fn leaves<'t>(tape: &'t Tape, xs: &[Value]) -> Vec<Var<'t>> {
    xs.iter().map(|x| tape.leaf(x.clone(), true)).collect()
}

/// The inputs with the flat parameter `k` moved by `h`.
fn moved(xs: &[Value], k: usize, h: f64) -> Vec<Value> {
    let mut out = xs.to_vec();
    let mut k = k;
    for v in out.iter_mut() {
        if k < v.len() {
            *v = match v {
                Value::Scalar(s) => Value::Scalar(*s + h),
                Value::Tensor(t) => {
                    let mut t = t.clone();
                    t.as_mut_slice()[k] += h;
                    Value::Tensor(t)
                }
            };
            return out;
        }
        k -= v.len();
    }
    panic!("no parameter {k}")
}

/// The first gradient by the backward pass, flat.
fn grad_flat(f: &F, xs: &[Value]) -> Vec<f64> {
    let tape = Tape::new();
    let vs = leaves(&tape, xs);
    let y = f(&tape, &vs);
    tape.grad(y, &vs)
        .iter()
        .flat_map(|g| g.as_slice().to_vec())
        .collect()
}

/// The gradient by `grad_graph` as flat scalar `Var`s (elements selected).
fn flat_vars<'t>(g: &[Var<'t>]) -> Vec<Var<'t>> {
    g.iter()
        .flat_map(|v| {
            if v.is_scalar() {
                vec![*v]
            } else {
                (0..v.tensor().len()).map(|e| v.select(e)).collect()
            }
        })
        .collect()
}

/// The Hessian by differentiating the recorded gradient, row by row.
fn hessian(f: &F, xs: &[Value]) -> Vec<Vec<f64>> {
    let tape = Tape::new();
    let vs = leaves(&tape, xs);
    let y = f(&tape, &vs);
    let g = tape.grad_graph(y, &vs);
    // The recorded gradient has the first gradient's values.
    let first: Vec<f64> = g
        .iter()
        .flat_map(|v| v.tensor().as_slice().to_vec())
        .collect();
    let want = grad_flat(f, xs);
    for (a, b) in first.iter().zip(&want) {
        assert!(close(*a, *b, 1e-12), "first gradient {first:?} vs {want:?}");
    }
    flat_vars(&g)
        .into_iter()
        .map(|gi| {
            if !gi.requires_grad() {
                return vec![0.0; want.len()];
            }
            tape.grad(gi, &vs)
                .iter()
                .flat_map(|h| h.as_slice().to_vec())
                .collect()
        })
        .collect()
}

/// The Hessian by central differences of the first gradient.
fn hessian_fd(f: &F, xs: &[Value]) -> Vec<Vec<f64>> {
    let n: usize = xs.iter().map(Value::len).sum();
    let h = 1e-5;
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|k| {
            let p = grad_flat(f, &moved(xs, k, h));
            let m = grad_flat(f, &moved(xs, k, -h));
            p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect()
        })
        .collect();
    (0..n)
        .map(|i| (0..n).map(|k| cols[k][i]).collect())
        .collect()
}

/// The recorded Hessian matches finite differences and is symmetric.
#[track_caller]
fn check_hessian(what: &str, f: &F, xs: &[Value]) -> Vec<Vec<f64>> {
    let h = hessian(f, xs);
    let fd = hessian_fd(f, xs);
    for (i, (row, frow)) in h.iter().zip(&fd).enumerate() {
        for (k, (a, b)) in row.iter().zip(frow).enumerate() {
            assert!(
                close(*a, *b, 1e-6),
                "{what}: H[{i}][{k}] = {a}, finite differences {b}"
            );
            assert!(
                close(*a, h[k][i], 1e-10),
                "{what}: H[{i}][{k}] = {a} but H[{k}][{i}] = {}",
                h[k][i]
            );
        }
    }
    h
}

fn t(data: &[f64], shape: &[usize]) -> Value {
    Value::Tensor(Tensor::from_vec(data.to_vec(), shape))
}

fn s(x: f64) -> Value {
    Value::Scalar(x)
}

#[test]
fn scalar_float_methods_twice() {
    let f: &F = &|_, v| {
        let (x, y) = (v[0], v[1]);
        let a = x.exp() + x.exp2() + x.ln() + x.log2() + x.log10() + x.sin() * y.cos();
        let b = x.tan() + (x * 0.4).asin() + (y * 0.3).acos() + x.atan() + x.sinh() * y.cosh();
        let c = (x * y).tanh() + x.sqrt() + y.cbrt() + x.recip() + (x * y).sigmoid();
        let d = (x - y).softplus() + x.powi(3) + y.powi(-2) + x.powf(2.5) + x.powf(y);
        let e = x.atan2(y) + x.hypot(y) + (x * y).abs() * x + (x - 0.5).relu() * y;
        a + b + c + d + e
    };
    check_hessian("float methods", f, &[s(1.3), s(0.8)]);
}

#[test]
fn scalar_arithmetic_with_constants_on_either_side() {
    let f: &F = &|tape, v| {
        let (x, y) = (v[0], v[1]);
        (2.0 - x) * (x / 3.0)
            + 3.0 / (x * y)
            + (x - 1.0) * y
            + (0.5 + y) * x * x
            + tape.constant(2.0).powf(x * y)
            + x.powf(3.0) * y.max(0.2) * x.min(5.0)
            + (x * y).clamp(-1.0, 5.0) * x
    };
    check_hessian("arithmetic", f, &[s(0.9), s(1.7)]);
}

#[test]
fn tensor_elementwise_with_broadcasting() {
    let f: &F = &|tape, v| {
        let (a, row, col) = (v[0], v[1], v[2]);
        let u = (a * row).sin() + (a / col).exp() + a.powf(row) - col.powi(2) * a;
        let w = a.hypot(row) * a.atan2(col) + (a - row).tanh() * (a + col).sqrt();
        let c = tape.constant_tensor(Tensor::from_vec(vec![0.5, -1.0, 2.0], &[3]));
        ((u + w) * c).sum() + (a * a * 0.5).mean()
    };
    check_hessian(
        "elementwise",
        f,
        &[
            t(&[0.3, 0.9, 1.4, 0.7, 1.1, 0.5], &[2, 3]),
            t(&[0.8, 1.2, 0.6], &[3]),
            t(&[1.3, 0.7], &[2, 1]),
        ],
    );
}

#[test]
fn matmul_dot_and_layout() {
    let f: &F = &|tape, v| {
        let (w, x, b) = (v[0], v[1], v[2]);
        let h = (w.matmul(x) + b).tanh(); // [2,3]·[3] -> [2]
        let m = w.t().matmul(w); // [3,3]
        let q = x.matmul(m).dot(x); // [3]·[3,3] -> [3], · [3]
        let r = w.reshape(&[3, 2]).matmul(h).sum();
        let st = tape.stack(&[h, b * h]).sum_axis(0);
        h.dot(h) + q * 0.1 + r + (st * st).sum() + w.select(4) * x.select(0)
    };
    check_hessian(
        "matmul",
        f,
        &[
            t(&[0.3, -0.5, 0.8, 0.1, 0.4, -0.2], &[2, 3]),
            t(&[0.7, -0.3, 0.5], &[3]),
            t(&[0.2, -0.1], &[2]),
        ],
    );
}

#[test]
fn reductions_twice() {
    let f: &F = &|_, v| {
        let x = v[0];
        let y = x * x.sin();
        y.sum_axis(0).norm() * y.mean_axis(1).sum()
            + (y.max_axis(1) * y.min_axis(0).sum()).sum()
            + y.max_all() * y.min_all()
            + x.norm()
            + x.broadcast_to(&[2, 2, 3]).sum_axis(0).powi(2).sum()
            + x.sum() * x.mean()
            + y.sum_axis(1).sum_axis(0) * y.mean_axis(0).mean_axis(0)
            + y.max_axis(1).max_axis(0) * y.min_axis(0).min_axis(0)
    };
    check_hessian(
        "reductions",
        f,
        &[t(&[0.3, 0.9, 1.4, 0.7, 1.1, 0.5], &[2, 3])],
    );
}

#[test]
fn mixed_scalar_and_tensor() {
    let f: &F = &|tape, v| {
        let (s, x) = (v[0], v[1]);
        let y = x * s + s.sin();
        (y * y).sum() * s + y.norm() * s.exp() + tape.stack(&[s, s * s, y.select(1)]).dot(x)
    };
    check_hessian("mixed", f, &[s(0.6), t(&[0.4, -0.8, 1.2], &[3])]);
}

/// `f(x, y) = x² y + y³ - 2 x y`: H = [[2y, 2x - 2], [2x - 2, 6y]], exactly.
#[test]
fn hessian_of_a_small_function_is_exact_and_symmetric() {
    let f: &F = &|_, v| v[0] * v[0] * v[1] + v[1].powi(3) - v[0] * v[1] * 2.0;
    let h = check_hessian("small", f, &[s(1.5), s(-0.5)]);
    assert_eq!(h, vec![vec![-1.0, 1.0], vec![1.0, -3.0]]);
}

/// Rosenbrock on a tensor: `H v` by one more backward pass over `<∇f, v>`,
/// against the explicit Hessian and against differences of the gradient along `v`.
#[test]
fn hessian_vector_products() {
    let f: &F = &|_, v| {
        let x = v[0].reshape(&[4]);
        let mut acc = None;
        for i in 0..3 {
            let (a, b) = (x.select(i), x.select(i + 1));
            let term = (b - a * a).powi(2) * 100.0 + (1.0 - a).powi(2);
            acc = Some(match acc {
                None => term,
                Some(s) => s + term,
            });
        }
        acc.unwrap()
    };
    let x0 = [-1.2, 1.0, 0.8, 1.1];
    let v = [0.3, -1.0, 0.5, 2.0];
    let xs = [t(&x0, &[4])];
    let tape = Tape::new();
    let xv = tape.tensor(Tensor::from_vec(x0.to_vec(), &[4]));
    let y = f(&tape, &[xv]);
    let g = tape.grad_graph(y, &[xv])[0];
    let hv = tape.grad(g.dot(Tensor::from_vec(v.to_vec(), &[4])), &[xv])[0].clone();
    // The same product with the direction as a variable seed: `Jᵀ v` of the gradient.
    let vv = tape.tensor(Tensor::from_vec(v.to_vec(), &[4]));
    let hv2 = tape.grad_graph_with(g, vv, &[xv]).unwrap()[0];
    let hmat = hessian(f, &xs);
    let h = 1e-6;
    let plus: Vec<f64> = x0.iter().zip(&v).map(|(x, d)| x + h * d).collect();
    let minus: Vec<f64> = x0.iter().zip(&v).map(|(x, d)| x - h * d).collect();
    let gp = grad_flat(f, &[t(&plus, &[4])]);
    let gm = grad_flat(f, &[t(&minus, &[4])]);
    for (i, row) in hmat.iter().enumerate() {
        let want: f64 = row.iter().zip(&v).map(|(h, d)| h * d).sum();
        let fd = (gp[i] - gm[i]) / (2.0 * h);
        assert!(close(hv.as_slice()[i], want, 1e-12), "{hv:?} vs H v {want}");
        assert!(close(hv2.tensor().as_slice()[i], want, 1e-12));
        assert!(close(want, fd, 1e-6), "H v {want} vs differences {fd}");
    }
    // The seed's own gradient: d<Hv, 1>/dv = H 1 (H is symmetric).
    let dv = tape.grad(hv2.sum(), &[vv])[0].clone();
    for (row, got) in hmat.iter().zip(dv.as_slice()) {
        let want: f64 = row.iter().sum();
        assert!(close(*got, want, 1e-12));
    }
}

/// Third derivatives by recording the second: d³/dx³ of `x⁴ sin x`.
#[test]
fn third_order() {
    let tape: Tape = Tape::new();
    let x0: f64 = 0.7;
    let x = tape.var(x0);
    let y = x.powi(4) * x.sin();
    let d1 = tape.grad_graph(y, &[x])[0];
    let d2 = tape.grad_graph(d1, &[x])[0];
    let d3 = tape.grad(d2, &[x])[0].item();
    let (s, c) = x0.sin_cos();
    let want = 24.0 * x0 * s + 36.0 * x0 * x0 * c - 12.0 * x0.powi(3) * s - x0.powi(4) * c;
    assert!(close(d3, want, 1e-12), "{d3} vs {want}");
}

/// `loss = f + |∇f|²` accumulates `∇f + 2 H ∇f` into the leaves' gradients;
/// `grad_graph` itself touches no accumulated gradient, and a second backward
/// pass adds as much again.
#[test]
fn gradients_accumulate_through_the_recorded_gradient() {
    fn loss(tape: &Tape, x0: f64, y0: f64, record: bool) -> (Var<'_>, (Var<'_>, Var<'_>)) {
        let x = tape.var(x0);
        let y = tape.var(y0);
        let f = (x * y).sin() + x * x * y;
        if record {
            let g = tape.grad_graph(f, &[x, y]);
            assert!(x.grad().is_none() && y.grad().is_none());
            (f + g[0] * g[0] + g[1] * g[1], (x, y))
        } else {
            let g = tape.grad(f, &[x, y]);
            let n2 = g[0].item().powi(2) + g[1].item().powi(2);
            (f + n2, (x, y))
        }
    }
    let tape = Tape::new();
    let (l, (x, y)) = loss(&tape, 0.8, -0.4, true);
    l.backward();
    let (gx, gy) = (x.grad_scalar(), y.grad_scalar());
    let value = |a: f64, b: f64| {
        let tape = Tape::new();
        loss(&tape, a, b, false).0.item()
    };
    let h = 1e-6;
    let fx = (value(0.8 + h, -0.4) - value(0.8 - h, -0.4)) / (2.0 * h);
    let fy = (value(0.8, -0.4 + h) - value(0.8, -0.4 - h)) / (2.0 * h);
    assert!(
        close(gx, fx, 1e-7) && close(gy, fy, 1e-7),
        "({gx}, {gy}) vs ({fx}, {fy})"
    );
    l.backward();
    assert!(close(x.grad_scalar(), 2.0 * gx, 1e-14));
    assert!(close(y.grad_scalar(), 2.0 * gy, 1e-14));
}

/// What is computed under `no_grad` is a constant to the second pass too; a
/// `grad_graph` under `no_grad` gives the values and records nothing.
#[test]
fn no_grad_inside() {
    let tape: Tape = Tape::new();
    let x = tape.var(1.5);
    let c = tape.no_grad(|| x * x);
    let f = x * c + x.powi(3);
    let g = tape.grad_graph(f, &[x])[0];
    assert_eq!(g.item(), 2.25 + 3.0 * 2.25);
    // d/dx (c + 3 x²) = 6 x: nothing through c.
    assert_eq!(tape.grad(g, &[x])[0].item(), 9.0);
    let before = tape.len();
    let g2 = tape.no_grad(|| tape.grad_graph(f, &[x])[0]);
    assert_eq!(g2.item(), g.item());
    assert!(!g2.requires_grad());
    assert!(tape.len() > before);
    assert_eq!(
        tape.try_grad_graph(g2, &[x]).unwrap_err(),
        TapeError::NoGradient
    );
}

/// Linear functions have constant gradients; unused inputs get constant zeros;
/// an intermediate result can be an input.
#[test]
fn constant_gradients_unused_inputs_and_intermediates() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let s = tape.var(3.0);
    let u = tape.var(4.0);
    let m = x * s;
    let y = (m * 2.0).sum() + s;
    let g = tape.grad_graph(y, &[x, s, u, m]);
    assert_eq!(g[0].tensor().as_slice(), &[6.0, 6.0]);
    assert_eq!(g[1].item(), 2.0 * 3.0 + 1.0);
    assert_eq!(g[2].item(), 0.0);
    assert!(!g[2].requires_grad());
    assert_eq!(g[3].tensor().as_slice(), &[2.0, 2.0]);
    assert!(!g[3].requires_grad());
    // dy/dx = 2 s depends on s only.
    let d = tape.grad(g[0].sum(), &[x, s]);
    assert_eq!(d[0].as_slice(), &[0.0, 0.0]);
    assert_eq!(d[1].item(), 4.0);
}

#[test]
fn errors_of_the_seed_and_the_result() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let y = x * x;
    assert_eq!(
        tape.try_grad_graph(y, &[x]).unwrap_err(),
        TapeError::NonScalarResult { shape: vec![2] }
    );
    assert_eq!(
        tape.grad_graph_with(y, 1.0, &[x]).unwrap_err(),
        TapeError::SeedShape {
            expected: vec![2],
            got: vec![]
        }
    );
    let c = tape.constant(2.0);
    assert_eq!(
        tape.try_grad_graph(c * 3.0, &[x]).unwrap_err(),
        TapeError::NoGradient
    );
}

/// A closure of `apply_fn` computes on Values: differentiating through it
/// twice is an error naming it; once is fine, and so is a graph where it is
/// not on the way to the wanted input.
#[test]
fn an_operation_that_cannot_be_differentiated_twice_says_so() {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let z = tape.var(1.0);
    let xv = x.item();
    let sq = tape.apply_fn("Square", &[x], xv * xv, move |g: &Value| {
        vec![Value::Scalar(2.0 * xv * g.item())]
    });
    let y = sq * z + z.sin();
    let err = tape.try_grad_graph(y, &[x]).unwrap_err();
    assert_eq!(
        err,
        TapeError::OnceDifferentiable {
            name: "SquareBackward".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("SquareBackward") && msg.contains("backward_graph"),
        "{msg}"
    );
    // Only z is wanted: the custom node is not on its way.
    let gz = tape.grad_graph(y, &[z])[0];
    assert!(close(gz.item(), 4.0 + 1f64.cos(), 1e-15));
    assert!(close(tape.grad(gz, &[z])[0].item(), -(1f64.sin()), 1e-15));
    assert_eq!(tape.grad(y, &[x])[0].item(), 4.0);
}

/// `e^(a x)` with a backward written with `Var` methods: twice differentiable.
struct ScaledExp;

impl Function<f64> for ScaledExp {
    fn name(&self) -> &str {
        "ScaledExp"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        Value::Scalar((inputs[0].item() * inputs[1].item()).exp())
    }
    fn backward(&self, inputs: &[Value], output: &Value, g: &Value) -> Vec<Option<Value>> {
        let (a, x, y, g) = (inputs[0].item(), inputs[1].item(), output.item(), g.item());
        vec![
            Some(Value::Scalar(g * y * x)),
            Some(Value::Scalar(g * y * a)),
        ]
    }
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t>],
        output: Var<'t>,
        g: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        Some(vec![
            Some(g * output * inputs[1]),
            Some(g * output * inputs[0]),
        ])
    }
}

#[test]
fn a_function_with_backward_graph_is_differentiated_twice() {
    let f: &F = &|tape, v| tape.apply(ScaledExp, &[v[0], v[1]]) * v[0];
    check_hessian("custom", f, &[s(0.7), s(-0.4)]);
}

/// A `backward_graph` that clears the graph would drop the nodes the walk
/// reads: it panics, and the tape is usable afterwards.
struct Clears;

impl Function<f64> for Clears {
    fn name(&self) -> &str {
        "Clears"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        inputs[0].clone()
    }
    fn backward(&self, _: &[Value], _: &Value, g: &Value) -> Vec<Option<Value>> {
        vec![Some(g.clone())]
    }
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t>],
        _: Var<'t>,
        g: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        inputs[0].tape().clear_graph();
        Some(vec![Some(g)])
    }
}

#[test]
fn clear_graph_inside_backward_graph_panics() {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let y = tape.apply(Clears, &[x]) * x;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tape.grad_graph(y, &[x])));
    let err = r.expect_err("clear_graph must panic");
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(
        msg.contains("clear_graph was called during a backward pass"),
        "{msg}"
    );
    let g = tape.grad_graph(x * x, &[x])[0];
    assert_eq!(g.item(), 4.0);
    tape.clear_graph();
    assert_eq!(tape.len(), 1);
}

/// At the conventions' points (a zero adjoint through an infinite partial,
/// `pow` with a zero base or exponent, `hypot` and `norm` at the origin, ties
/// of `max`), the recorded gradient has the bits of the backward pass.
#[test]
fn edge_points_give_the_bits_of_the_backward_pass() {
    type G = for<'t> fn(&'t Tape, Var<'t>, Var<'t>) -> Var<'t>;
    let cases: [(&str, f64, f64, G); 8] = [
        ("sqrt cut off by min", 0.0, 1.0, |_, x, _| {
            x.sqrt().min(-1.0) + x
        }),
        ("pow at (0, 0)", 0.0, 0.0, |_, x, z| x.powf(z)),
        ("pow at (0, 2)", 0.0, 2.0, |_, x, z| x.powf(z) + x.powf(2.0)),
        ("pow at (0, -1)", 0.0, -1.0, |_, x, z| x.powf(z)),
        ("hypot at the origin", 0.0, 0.0, |_, x, z| x.hypot(z)),
        ("norm of zeros", 0.0, 0.0, |t, x, z| t.stack(&[x, z]).norm()),
        ("max tie", 1.5, 1.5, |_, x, z| x.max(z) * x),
        ("abs and relu at 0", 0.0, 0.0, |_, x, z| x.abs() + z.relu()),
    ];
    for (what, a, b, f) in cases {
        let tape: Tape = Tape::new();
        let (x, z) = (tape.var(a), tape.var(b));
        let y = f(&tape, x, z);
        let want = tape.grad(y, &[x, z]);
        let got = tape.grad_graph(y, &[x, z]);
        for (w, g) in want.iter().zip(&got) {
            let (w, g) = (w.item(), g.item());
            assert!(
                w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan()),
                "{what}: {g} vs {w}"
            );
        }
    }
    // Where the second derivative exists, it is there: d²/dx² x^2 at 0 is 2.
    let tape: Tape = Tape::new();
    let (x, z) = (tape.var(0.0), tape.var(2.0));
    let g = tape.grad_graph(x.powf(z), &[x])[0];
    assert_eq!(tape.grad(g, &[x])[0].item(), 2.0);
}
