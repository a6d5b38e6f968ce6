//! The tensor operations against naive reference loops, in `f32` and `f64`.

use ad_runtime::{Float, Tensor};

/// Element `flat` of the broadcast result of shape `out`, read from an
/// operand of shape `shape` by explicit index arithmetic.
fn read_broadcast<T: Copy>(x: &[T], shape: &[usize], out: &[usize], flat: usize) -> T {
    let mut rem = flat;
    let mut coords = vec![0; out.len()];
    for d in (0..out.len()).rev() {
        coords[d] = rem % out[d];
        rem /= out[d];
    }
    let pad = out.len() - shape.len();
    let off = shape.iter().enumerate().fold(0, |off, (d, &n)| {
        off * n + if n == 1 { 0 } else { coords[pad + d] }
    });
    x[off]
}

fn naive_binary<T: Float>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    out: &[usize],
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let n: usize = out.iter().product();
    (0..n)
        .map(|i| {
            f(
                read_broadcast(a.as_slice(), a.shape(), out, i),
                read_broadcast(b.as_slice(), b.shape(), out, i),
            )
        })
        .collect()
}

type BinaryFn<T> = fn(T, T) -> T;
/// A function's name, its result, its input, and the scalar reference.
type UnaryCase<T> = (&'static str, Tensor<T>, Tensor<T>, fn(T) -> T);

fn sample<T: Float>(shape: &[usize], seed: u64) -> Tensor<T> {
    // Away from 0 so that division is well conditioned.
    Tensor::<T>::rand(shape, seed).map(|x| x + T::from_f64(0.5))
}

/// Every operator in every ownership pair equals the naive loop.
fn check_pair<T: Float>(sa: &[usize], sb: &[usize], out: &[usize]) {
    let (a, b) = (sample::<T>(sa, 1), sample::<T>(sb, 2));
    let ops: [(&str, BinaryFn<T>); 4] = [
        ("add", |x, y| x + y),
        ("sub", |x, y| x - y),
        ("mul", |x, y| x * y),
        ("div", |x, y| x / y),
    ];
    for (name, f) in ops {
        let want = naive_binary(&a, &b, out, f);
        let got = [
            match name {
                "add" => a.clone() + b.clone(),
                "sub" => a.clone() - b.clone(),
                "mul" => a.clone() * b.clone(),
                _ => a.clone() / b.clone(),
            },
            match name {
                "add" => a.clone() + &b,
                "sub" => a.clone() - &b,
                "mul" => a.clone() * &b,
                _ => a.clone() / &b,
            },
            match name {
                "add" => &a + b.clone(),
                "sub" => &a - b.clone(),
                "mul" => &a * b.clone(),
                _ => &a / b.clone(),
            },
            match name {
                "add" => &a + &b,
                "sub" => &a - &b,
                "mul" => &a * &b,
                _ => &a / &b,
            },
            match name {
                "add" => a.try_add(&b).unwrap(),
                "sub" => a.try_sub(&b).unwrap(),
                "mul" => a.try_mul(&b).unwrap(),
                _ => a.try_div(&b).unwrap(),
            },
        ];
        for (pair, t) in got.iter().enumerate() {
            assert_eq!(t.shape(), out, "{name} {sa:?} {sb:?} pair {pair}");
            assert_eq!(
                t.as_slice(),
                &want[..],
                "{name} {sa:?} {sb:?} pair {pair} ({})",
                T::NAME
            );
        }
    }
}

fn every_pair_kind<T: Float>() {
    check_pair::<T>(&[3, 4], &[3, 4], &[3, 4]); // same shape
    check_pair::<T>(&[3, 4], &[4], &[3, 4]); // row vector
    check_pair::<T>(&[4], &[3, 4], &[3, 4]);
    check_pair::<T>(&[3, 4], &[3, 1], &[3, 4]); // column
    check_pair::<T>(&[3, 1], &[3, 4], &[3, 4]);
    check_pair::<T>(&[1, 4], &[3, 1], &[3, 4]); // outer
    check_pair::<T>(&[3, 4], &[], &[3, 4]); // 0-d scalar tensor
    check_pair::<T>(&[], &[3, 4], &[3, 4]);
    check_pair::<T>(&[3, 4], &[1, 1], &[3, 4]);
    check_pair::<T>(&[], &[], &[]);
    check_pair::<T>(&[2, 3, 4], &[3, 4], &[2, 3, 4]); // 3-d
    check_pair::<T>(&[2, 3, 4], &[2, 1, 4], &[2, 3, 4]);
    check_pair::<T>(&[2, 1, 4], &[3, 1], &[2, 3, 4]);
    check_pair::<T>(&[2, 3, 1], &[1, 1, 4], &[2, 3, 4]);
    check_pair::<T>(&[5], &[1], &[5]);
}

#[test]
fn broadcasting_every_shape_pair_kind_f64() {
    every_pair_kind::<f64>();
}

#[test]
fn broadcasting_every_shape_pair_kind_f32() {
    every_pair_kind::<f32>();
}

fn scalar_operands<T>()
where
    T: Float
        + std::ops::Add<Tensor<T>, Output = Tensor<T>>
        + for<'a> std::ops::Sub<&'a Tensor<T>, Output = Tensor<T>>
        + std::ops::Mul<Tensor<T>, Output = Tensor<T>>
        + for<'a> std::ops::Div<&'a Tensor<T>, Output = Tensor<T>>,
{
    let a = sample::<T>(&[2, 3], 3);
    let s = T::from_f64(1.5);
    let each = |f: &dyn Fn(T) -> T| a.as_slice().iter().map(|&x| f(x)).collect::<Vec<_>>();
    assert_eq!((&a + s).as_slice(), &each(&|x| x + s)[..]);
    assert_eq!((a.clone() - s).as_slice(), &each(&|x| x - s)[..]);
    assert_eq!((&a * s).as_slice(), &each(&|x| x * s)[..]);
    assert_eq!((a.clone() / s).as_slice(), &each(&|x| x / s)[..]);
    assert_eq!((s + a.clone()).as_slice(), &each(&|x| s + x)[..]);
    assert_eq!((s - &a).as_slice(), &each(&|x| s - x)[..]);
    assert_eq!((s * a.clone()).as_slice(), &each(&|x| s * x)[..]);
    assert_eq!((s / &a).as_slice(), &each(&|x| s / x)[..]);
    assert_eq!((-&a).as_slice(), &each(&|x| -x)[..]);
    assert_eq!((-a.clone()).as_slice(), a.neg().as_slice());
}

#[test]
fn scalars_on_either_side() {
    scalar_operands::<f64>();
    scalar_operands::<f32>();
    // Concrete scalars on the left, as users write them.
    let t = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]);
    assert_eq!((1.0 - &t).as_slice(), &[0.0, -1.0]);
    assert_eq!((2.0 / t).as_slice(), &[2.0, 1.0]);
    let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    assert_eq!((3.0f32 * &t + 1.0).as_slice(), &[4.0, 7.0]);
}

fn unary_functions<T: Float>() {
    let x = Tensor::<T>::from_vec(
        [-2.5, -0.9, -0.3, 0.0, 0.2, 0.7, 1.6]
            .iter()
            .map(|&v| T::from_f64(v))
            .collect(),
        &[7],
    );
    let pos = x.abs() + T::from_f64(0.1);
    let unit = x.map(|v| v / T::from_f64(3.0));
    let cases: Vec<UnaryCase<T>> = vec![
        ("exp", x.exp(), x.clone(), |v| v.exp()),
        ("exp2", x.exp2(), x.clone(), |v| v.exp2()),
        ("ln", pos.ln(), pos.clone(), |v| v.ln()),
        ("log2", pos.log2(), pos.clone(), |v| v.log2()),
        ("log10", pos.log10(), pos.clone(), |v| v.log10()),
        ("sin", x.sin(), x.clone(), |v| v.sin()),
        ("cos", x.cos(), x.clone(), |v| v.cos()),
        ("tan", x.tan(), x.clone(), |v| v.tan()),
        ("asin", unit.asin(), unit.clone(), |v| v.asin()),
        ("acos", unit.acos(), unit.clone(), |v| v.acos()),
        ("atan", x.atan(), x.clone(), |v| v.atan()),
        ("sinh", x.sinh(), x.clone(), |v| v.sinh()),
        ("cosh", x.cosh(), x.clone(), |v| v.cosh()),
        ("tanh", x.tanh(), x.clone(), |v| v.tanh()),
        ("sqrt", pos.sqrt(), pos.clone(), |v| v.sqrt()),
        ("cbrt", x.cbrt(), x.clone(), |v| v.cbrt()),
        ("abs", x.abs(), x.clone(), |v| v.abs()),
        ("recip", pos.recip(), pos.clone(), |v| v.recip()),
        ("neg", x.neg(), x.clone(), |v| -v),
        ("relu", x.relu(), x.clone(), |v| {
            if v > T::zero() {
                v
            } else {
                T::zero()
            }
        }),
        ("sigmoid", x.sigmoid(), x.clone(), |v| {
            T::one() / (T::one() + (-v).exp())
        }),
        ("softplus", x.softplus(), x.clone(), |v| {
            (T::one() + v.exp()).ln()
        }),
        ("powi", x.powi(3), x.clone(), |v| v * v * v),
        ("powf", pos.powf(T::from_f64(1.5)), pos.clone(), |v| {
            v.powf(T::from_f64(1.5))
        }),
        (
            "clamp",
            x.clamp(T::from_f64(-0.5), T::from_f64(0.5)),
            x.clone(),
            |v| v.max(T::from_f64(-0.5)).min(T::from_f64(0.5)),
        ),
        ("detach", x.detach(), x.clone(), |v| v),
    ];
    let tol = T::from_f64(if T::NAME == "f32" { 1e-5 } else { 1e-13 });
    for (name, got, input, f) in cases {
        assert_eq!(got.shape(), input.shape(), "{name}");
        for (g, &i) in got.as_slice().iter().zip(input.as_slice()) {
            let want = f(i);
            assert!(
                (*g - want).abs() <= tol * (T::one() + want.abs()),
                "{name}({i}) = {g}, want {want}"
            );
        }
    }
}

#[test]
fn elementwise_functions_match_std() {
    unary_functions::<f64>();
    unary_functions::<f32>();
}

fn reductions<T: Float>() {
    let x = sample::<T>(&[2, 3, 4], 4) - T::from_f64(1.0);
    let v = x.as_slice();
    let tol = T::from_f64(if T::NAME == "f32" { 1e-5 } else { 1e-13 });
    let close = |a: T, b: T| (a - b).abs() <= tol * (T::one() + b.abs());
    let naive_sum = v.iter().fold(T::zero(), |s, &e| s + e);
    assert!(close(x.sum(), naive_sum));
    assert!(close(x.mean(), naive_sum / T::from_f64(24.0)));
    assert!(close(
        x.norm(),
        v.iter().fold(T::zero(), |s, &e| s + e * e).sqrt()
    ));
    assert_eq!(x.max(), v.iter().fold(T::neg_infinity(), |m, &e| m.max(e)));
    assert_eq!(x.min(), v.iter().fold(T::infinity(), |m, &e| m.min(e)));
    let at = |i: usize, j: usize, k: usize| v[(i * 3 + j) * 4 + k];
    for axis in 0..3 {
        let s = x.sum_axis(axis);
        let m = x.mean_axis(axis);
        let mx = x.max_axis(axis);
        let mn = x.min_axis(axis);
        let dims = [2, 3, 4];
        let mut rest: Vec<usize> = dims.to_vec();
        rest.remove(axis);
        assert_eq!(s.shape(), &rest[..]);
        let mut flat = 0;
        for p in 0..rest[0] {
            for q in 0..rest[1] {
                let items: Vec<T> = (0..dims[axis])
                    .map(|r| match axis {
                        0 => at(r, p, q),
                        1 => at(p, r, q),
                        _ => at(p, q, r),
                    })
                    .collect();
                let sum = items.iter().fold(T::zero(), |a, &b| a + b);
                assert!(close(s.as_slice()[flat], sum), "sum_axis({axis})");
                assert!(
                    close(m.as_slice()[flat], sum / T::from_usize(dims[axis])),
                    "mean_axis({axis})"
                );
                assert_eq!(
                    mx.as_slice()[flat],
                    items.iter().fold(T::neg_infinity(), |a, &b| a.max(b))
                );
                assert_eq!(
                    mn.as_slice()[flat],
                    items.iter().fold(T::infinity(), |a, &b| a.min(b))
                );
                flat += 1;
            }
        }
    }
    // A 1-d tensor reduces to 0-d.
    assert_eq!(Tensor::<T>::ones(&[5]).sum_axis(0).shape(), &[] as &[usize]);
}

#[test]
fn reductions_match_naive_loops() {
    reductions::<f64>();
    reductions::<f32>();
}

#[test]
fn sum_to_shape_is_the_adjoint_of_broadcast_to() {
    // <broadcast_to(u), g> = <u, sum_to_shape(g)> for every operand shape u.
    let g = Tensor::<f64>::randn(&[2, 3, 4], 5);
    for shape in [
        &[2, 3, 4][..],
        &[3, 4],
        &[4],
        &[1],
        &[],
        &[2, 1, 4],
        &[3, 1],
        &[2, 3, 1],
        &[1, 1, 1],
    ] {
        let u = Tensor::<f64>::randn(shape, 6);
        let lhs = (u.broadcast_to(g.shape()) * &g).sum();
        let reduced = g.sum_to_shape(shape);
        assert_eq!(reduced.shape(), shape);
        let rhs = (&u * &reduced).sum();
        assert!((lhs - rhs).abs() < 1e-12, "{shape:?}: {lhs} vs {rhs}");
    }
}

fn naive_matmul<T: Float>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    let mut c = vec![T::zero(); m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
            }
        }
    }
    c
}

fn assert_close<T: Float>(got: &[T], want: &[T], what: &str) {
    let tol = T::from_f64(if T::NAME == "f32" { 1e-4 } else { 1e-12 });
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (T::one() + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn products<T: Float>() {
    let (m, k, n) = (5, 7, 3);
    let a = Tensor::<T>::randn(&[m, k], 7);
    let b = Tensor::<T>::randn(&[k, n], 8);
    let x = Tensor::<T>::randn(&[k], 9);
    let y = Tensor::<T>::randn(&[m], 10);
    let want = naive_matmul(a.as_slice(), b.as_slice(), m, k, n);
    assert_close(a.matmul(&b).as_slice(), &want, "matmul");
    assert_eq!(a.matmul(&b).shape(), &[m, n]);
    assert_close(
        a.matmul(&x).as_slice(),
        &naive_matmul(a.as_slice(), x.as_slice(), m, k, 1),
        "mat-vec",
    );
    assert_eq!(a.matmul(&x).shape(), &[m]);
    assert_close(
        x.matmul(&b).as_slice(),
        &naive_matmul(x.as_slice(), b.as_slice(), 1, k, n),
        "vec-mat",
    );
    assert_eq!(x.matmul(&b).shape(), &[n]);
    // Transposed forms agree with materialized transposes.
    assert_close(a.matmul_t(&b.t()).as_slice(), &want, "matmul_t");
    assert_close(a.t().t_matmul(&b).as_slice(), &want, "t_matmul");
    assert_close(
        y.t_matmul(&a).as_slice(),
        a.t().matmul(&y).as_slice(),
        "t_matmul 1-d",
    );
    // gemm_into: acc ← 2·aᵀ·y + 3·acc, and the outer product.
    let mut acc = Tensor::<T>::ones(&[k]);
    acc.gemm_into(T::from_f64(2.0), &a, true, &y, false, T::from_f64(3.0));
    let want_acc = a.t().matmul(&y) * T::from_f64(2.0) + T::from_f64(3.0);
    assert_close(acc.as_slice(), want_acc.as_slice(), "gemm_into");
    let outer = y.outer(&x);
    assert_close(
        outer.as_slice(),
        &naive_matmul(y.as_slice(), x.as_slice(), m, 1, k),
        "outer",
    );
    let dot = x.dot(&x);
    assert_close(
        &[dot],
        &[x.as_slice().iter().fold(T::zero(), |s, &v| s + v * v)],
        "dot",
    );
    // t and reshape.
    let at = a.t();
    assert_eq!(at.shape(), &[k, m]);
    assert_eq!(at.as_slice()[3 * m + 2], a.as_slice()[2 * k + 3]);
    assert_eq!(x.t(), x);
    let r = a.reshape(&[k, m]);
    assert_eq!((r.shape(), r.as_slice()), (&[k, m][..], a.as_slice()));
    assert_eq!(a.clone().into_reshape(&[m * k]).shape(), &[m * k]);
}

#[test]
fn products_match_naive_loops() {
    products::<f64>();
    products::<f32>();
}

#[test]
fn every_try_form_names_the_operation_and_both_shapes() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[4]);
    let checks = [
        (a.try_add(&b).unwrap_err(), "add", vec![2, 3], vec![4]),
        (a.try_sub(&b).unwrap_err(), "sub", vec![2, 3], vec![4]),
        (a.try_mul(&b).unwrap_err(), "mul", vec![2, 3], vec![4]),
        (a.try_div(&b).unwrap_err(), "div", vec![2, 3], vec![4]),
        (
            a.try_matmul(&a).unwrap_err(),
            "matmul",
            vec![2, 3],
            vec![2, 3],
        ),
        (
            a.try_matmul_t(&b).unwrap_err(),
            "matmul_t",
            vec![2, 3],
            vec![4],
        ),
        (
            a.try_t_matmul(&b).unwrap_err(),
            "t_matmul",
            vec![2, 3],
            vec![4],
        ),
        (
            a.try_dot(&b).map(|_| ()).unwrap_err(),
            "dot",
            vec![2, 3],
            vec![4],
        ),
        (
            b.try_dot(&Tensor::zeros(&[3])).map(|_| ()).unwrap_err(),
            "dot",
            vec![4],
            vec![3],
        ),
        (
            a.try_reshape(&[4]).unwrap_err(),
            "reshape",
            vec![2, 3],
            vec![4],
        ),
        (
            a.try_sum_axis(2).unwrap_err(),
            "sum_axis",
            vec![2, 3],
            vec![],
        ),
        (
            a.try_mean_axis(5).unwrap_err(),
            "mean_axis",
            vec![2, 3],
            vec![],
        ),
        (
            a.try_max_axis(2).unwrap_err(),
            "max_axis",
            vec![2, 3],
            vec![],
        ),
        (
            a.try_sum_to_shape(&[2]).unwrap_err(),
            "sum_to_shape",
            vec![2, 3],
            vec![2],
        ),
        (
            a.try_broadcast_to(&[3, 3]).unwrap_err(),
            "broadcast_to",
            vec![2, 3],
            vec![3, 3],
        ),
        (
            a.try_zip_map(&b, |x, _| x).unwrap_err(),
            "zip_map",
            vec![2, 3],
            vec![4],
        ),
        (
            Tensor::<f64>::zeros(&[1, 2, 3]).try_matmul(&a).unwrap_err(),
            "matmul",
            vec![1, 2, 3],
            vec![2, 3],
        ),
    ];
    for (err, op, lhs, rhs) in checks {
        assert_eq!((err.op, &err.lhs, &err.rhs), (op, &lhs, &rhs), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(op)
                && msg.contains(&format!("{lhs:?}"))
                && msg.contains(&format!("{rhs:?}")),
            "{msg}"
        );
    }
    let mut out = Tensor::<f64>::zeros(&[3, 3]);
    let err = out
        .try_gemm_into(1.0, &a, false, &a, true, 0.0)
        .unwrap_err();
    assert_eq!(
        (err.op, err.lhs, err.rhs),
        ("gemm_into", vec![2, 2], vec![3, 3])
    );
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4]")]
fn operators_panic_with_both_shapes() {
    let _ = Tensor::<f64>::zeros(&[2, 3]) + Tensor::zeros(&[4]);
}

#[test]
#[should_panic(expected = "div: shapes [3] and [2, 2]")]
fn reference_operators_panic_with_both_shapes() {
    let _ = &Tensor::<f32>::zeros(&[3]) / &Tensor::zeros(&[2, 2]);
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [2]: inner dimensions differ: 3 against 2")]
fn matmul_panics_with_both_shapes() {
    let _ = Tensor::<f64>::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2]));
}

#[test]
#[should_panic(
    expected = "sum_axis: shapes [2, 3] and []: axis 2 is out of range for a 2-d tensor"
)]
fn sum_axis_past_the_last_axis_panics() {
    let _ = Tensor::<f64>::zeros(&[2, 3]).sum_axis(2);
}

#[test]
fn panics_point_at_the_caller() {
    use std::sync::Mutex;
    static FILES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Some(loc) = info.location() {
            FILES.lock().unwrap().push(loc.file().to_string());
        }
    }));
    let result = std::panic::catch_unwind(|| Tensor::<f64>::zeros(&[2]) * Tensor::zeros(&[3]));
    std::panic::set_hook(previous);
    assert!(result.is_err());
    // Other tests may panic meanwhile, but all of them from this file too.
    let files = FILES.lock().unwrap();
    assert!(
        !files.is_empty() && files.iter().all(|f| f.ends_with("tensor_ops.rs")),
        "{files:?}"
    );
}
