//! The fused kernels against the same expression written op by op with the
//! tensor operations, in `f32` and `f64`, and their shape checks.

use ad_runtime::kernels::fused;
use ad_runtime::{Float, Tensor};

/// Deterministic values in about [-1.3, 1.3], different per `salt`.
fn input<T: Float>(shape: &[usize], salt: u64) -> Tensor<T> {
    Tensor::<T>::rand(shape, salt) * T::from_f64(2.6) - T::from_f64(1.3)
}

/// `1 - t`, which the operators spell only for concrete float types.
fn one_minus<T: Float>(t: Tensor<T>) -> Tensor<T> {
    -t + T::one()
}

#[track_caller]
fn assert_close<T: Float>(got: &Tensor<T>, want: &Tensor<T>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let tol = if T::NAME == "f32" { 1e-5 } else { 1e-13 };
    for (i, (&g, &w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what} ({}): element {i}: {g} against {w}",
            T::NAME
        );
    }
}

#[track_caller]
fn assert_close_scalar<T: Float>(got: T, want: T, what: &str) {
    let (g, w) = (got.to_f64(), want.to_f64());
    let tol = if T::NAME == "f32" { 1e-4 } else { 1e-12 };
    assert!(
        (g - w).abs() <= tol * (1.0 + w.abs()),
        "{what} ({}): {g} against {w}",
        T::NAME
    );
}

/// Shapes of every kind: empty, 0-d, 1-d, lengths around the 8 lanes, 2-d, 3-d.
const SHAPES: &[&[usize]] = &[
    &[0],
    &[],
    &[1],
    &[7],
    &[8],
    &[9],
    &[100],
    &[3, 5],
    &[64, 10],
    &[2, 3, 4],
];

fn every_form_matches_ops<T: Float>() {
    let c = T::from_f64(0.7);
    for (k, &shape) in SHAPES.iter().enumerate() {
        let s = 10 * k as u64;
        let (a, b, x, d) = (
            input::<T>(shape, s),
            input::<T>(shape, s + 1),
            input::<T>(shape, s + 2),
            input::<T>(shape, s + 3),
        );
        let what = format!("{shape:?}");

        // One operand: a·(1 - a) + c.
        let f1 = |a: T| a * (T::one() - a) + c;
        let want1 = &a * &one_minus(a.clone()) + c;
        assert_close(&fused::map1(&a, f1), &want1, &format!("map1 {what}"));
        // Two operands: tanh's dy (1 - y²).
        let f2 = |g: T, y: T| g * (T::one() - y * y);
        let want2 = &a * &one_minus(&b * &b);
        assert_close(&fused::map2(&a, &b, f2), &want2, &format!("map2 {what}"));
        // Three: sigmoid-style g·s·(1 - s) + x.
        let f3 = |g: T, s: T, x: T| g * s * (T::one() - s) + x;
        let want3 = &(&(&a * &b) * &one_minus(b.clone())) + &x;
        assert_close(
            &fused::map3(&a, &b, &x, f3),
            &want3,
            &format!("map3 {what}"),
        );
        // Four: (a - b)·x / (1 + d²) · c.
        let f4 = |a: T, b: T, x: T, d: T| (a - b) * x / (T::one() + d * d) * c;
        let want4 = &(&(&a - &b) * &x) / &(&d * &d + T::one()) * c;
        assert_close(
            &fused::map4(&a, &b, &x, &d, f4),
            &want4,
            &format!("map4 {what}"),
        );

        // `_into` overwrites whatever the output held.
        let mut out = Tensor::full(shape, T::nan());
        fused::map1_into(&mut out, &a, f1);
        assert_close(&out, &want1, &format!("map1_into {what}"));
        fused::map2_into(&mut out, &a, &b, f2);
        assert_close(&out, &want2, &format!("map2_into {what}"));
        fused::map3_into(&mut out, &a, &b, &x, f3);
        assert_close(&out, &want3, &format!("map3_into {what}"));
        fused::map4_into(&mut out, &a, &b, &x, &d, f4);
        assert_close(&out, &want4, &format!("map4_into {what}"));

        // `_inplace` consumes its first operand and keeps its buffer.
        let keep = |t: &Tensor<T>, f: &dyn Fn(Tensor<T>) -> Tensor<T>, want: &Tensor<T>, name| {
            let owned = t.clone();
            let p = owned.as_slice().as_ptr();
            let got = f(owned);
            if !got.as_slice().is_empty() {
                assert_eq!(got.as_slice().as_ptr(), p, "{name} {what}: a new buffer");
            }
            assert_close(&got, want, &format!("{name} {what}"));
        };
        keep(&a, &|a| fused::map1_inplace(a, f1), &want1, "map1_inplace");
        keep(
            &a,
            &|a| fused::map2_inplace(a, &b, f2),
            &want2,
            "map2_inplace",
        );
        keep(
            &a,
            &|a| fused::map3_inplace(a, &b, &x, f3),
            &want3,
            "map3_inplace",
        );
        keep(
            &a,
            &|a| fused::map4_inplace(a, &b, &x, &d, f4),
            &want4,
            "map4_inplace",
        );

        // `acc` adds onto what the gradient held.
        let base = input::<T>(shape, s + 4);
        let acc = |f: &dyn Fn(&mut Tensor<T>), want: &Tensor<T>, name| {
            let mut g = base.clone();
            f(&mut g);
            assert_close(&g, &(&base + want), &format!("{name} {what}"));
        };
        acc(&|g| fused::acc1(g, &a, f1), &want1, "acc1");
        acc(&|g| fused::acc2(g, &a, &b, f2), &want2, "acc2");
        acc(&|g| fused::acc3(g, &a, &b, &x, f3), &want3, "acc3");
        acc(&|g| fused::acc4(g, &a, &b, &x, &d, f4), &want4, "acc4");

        // `sum` reduces without a temporary.
        assert_close_scalar(fused::sum1(&a, f1), want1.sum(), &format!("sum1 {what}"));
        assert_close_scalar(
            fused::sum2(&a, &b, f2),
            want2.sum(),
            &format!("sum2 {what}"),
        );
        assert_close_scalar(
            fused::sum3(&a, &b, &x, f3),
            want3.sum(),
            &format!("sum3 {what}"),
        );
        assert_close_scalar(
            fused::sum4(&a, &b, &x, &d, f4),
            want4.sum(),
            &format!("sum4 {what}"),
        );
    }
}

#[test]
fn every_form_matches_ops_f32() {
    every_form_matches_ops::<f32>();
}

#[test]
fn every_form_matches_ops_f64() {
    every_form_matches_ops::<f64>();
}

/// Every way an operand's shape can broadcast to the operands' shape.
const SUM_TO: &[(&[usize], &[usize])] = &[
    (&[64, 100], &[100]),
    (&[64, 100], &[1, 100]),
    (&[64, 100], &[64, 1]),
    (&[64, 100], &[]),
    (&[64, 100], &[1]),
    (&[64, 100], &[1, 1]),
    (&[64, 100], &[64, 100]),
    (&[2, 3, 4], &[4]),
    (&[2, 3, 4], &[3, 1]),
    (&[2, 3, 4], &[2, 1, 4]),
    (&[2, 3, 4], &[1, 3, 1]),
    (&[2, 3, 4], &[2, 1, 1]),
    (&[2, 3, 4], &[3, 4]),
    (&[5], &[]),
    (&[], &[]),
    (&[0, 3], &[3]),
    (&[3, 0], &[1, 0]),
];

fn sum_to_matches_ops<T: Float>() {
    for (k, &(shape, target)) in SUM_TO.iter().enumerate() {
        let s = 100 + 10 * k as u64;
        let (a, b, x) = (
            input::<T>(shape, s),
            input::<T>(shape, s + 1),
            input::<T>(shape, s + 2),
        );
        let base = input::<T>(target, s + 3);
        let what = format!("{shape:?} onto {target:?}");

        let mut g = base.clone();
        fused::acc_sum_to(&mut g, &a);
        assert_close(
            &g,
            &(&base + &a.sum_to_shape(target)),
            &format!("acc_sum_to {what}"),
        );

        let f1 = |a: T| a * a - T::from_f64(0.25);
        let want1 = (&a * &a - T::from_f64(0.25)).sum_to_shape(target);
        let mut g = base.clone();
        fused::acc1_sum_to(&mut g, &a, f1);
        assert_close(&g, &(&base + &want1), &format!("acc1_sum_to {what}"));
        assert_close(
            &fused::map1_sum_to(&a, f1, target),
            &want1,
            &format!("map1_sum_to {what}"),
        );

        // The bias gradient of `tanh(x W + b)`: Σ dy (1 - y²) over the rows.
        let f2 = |g: T, y: T| g * (T::one() - y * y);
        let want2 = (&a * &one_minus(&b * &b)).sum_to_shape(target);
        let mut g = base.clone();
        fused::acc2_sum_to(&mut g, &a, &b, f2);
        assert_close(&g, &(&base + &want2), &format!("acc2_sum_to {what}"));
        assert_close(
            &fused::map2_sum_to(&a, &b, f2, target),
            &want2,
            &format!("map2_sum_to {what}"),
        );

        let f3 = |a: T, b: T, x: T| a * b + x;
        let want3 = (&(&a * &b) + &x).sum_to_shape(target);
        let mut g = base.clone();
        fused::acc3_sum_to(&mut g, &a, &b, &x, f3);
        assert_close(&g, &(&base + &want3), &format!("acc3_sum_to {what}"));
        assert_close(
            &fused::map3_sum_to(&a, &b, &x, f3, target),
            &want3,
            &format!("map3_sum_to {what}"),
        );
    }
}

#[test]
fn sum_to_matches_ops_f32() {
    sum_to_matches_ops::<f32>();
}

#[test]
fn sum_to_matches_ops_f64() {
    sum_to_matches_ops::<f64>();
}

fn named_kernels_match_ops<T: Float>() {
    for (k, &shape) in SHAPES.iter().enumerate() {
        let s = 500 + 10 * k as u64;
        let (dy, x, t) = (
            input::<T>(shape, s),
            input::<T>(shape, s + 1),
            input::<T>(shape, s + 2),
        );
        let what = format!("{shape:?}");
        let y = x.tanh();
        assert_close(
            &fused::tanh_backward(&dy, &y),
            &(&dy * &one_minus(&y * &y)),
            &format!("tanh_backward {what}"),
        );
        let sg = x.sigmoid();
        assert_close(
            &fused::sigmoid_backward(&dy, &sg),
            &(&(&dy * &sg) * &one_minus(sg.clone())),
            &format!("sigmoid_backward {what}"),
        );
        let mask = x.map(|v| if v > T::zero() { T::one() } else { T::zero() });
        assert_close(
            &fused::relu_backward(&dy, &x),
            &(&dy * &mask),
            &format!("relu_backward {what}"),
        );
        assert_close(
            &fused::relu_backward(&dy, &x.relu()),
            &(&dy * &mask),
            &format!("relu_backward from the output {what}"),
        );
        if !x.as_slice().is_empty() {
            let seed = T::from_f64(1.5);
            let n = T::from_usize(x.len());
            assert_close(
                &fused::mse_grad(&x, &t, seed),
                &((&x - &t) * (T::from_f64(2.0) * seed / n)),
                &format!("mse_grad {what}"),
            );
        }
    }
    // relu'(0) = 0, PyTorch's convention.
    let zero = Tensor::<T>::zeros(&[3]);
    let dy = Tensor::<T>::ones(&[3]);
    assert!(fused::relu_backward(&dy, &zero)
        .as_slice()
        .iter()
        .all(|&v| v == T::zero()));
}

#[test]
fn named_kernels_match_ops_f32() {
    named_kernels_match_ops::<f32>();
}

#[test]
fn named_kernels_match_ops_f64() {
    named_kernels_match_ops::<f64>();
}

#[test]
fn a_tanh_layer_backward_in_fused_passes_matches_ops() {
    // y = tanh(x W + b); from dy: dz = dy (1 - y²), dW = xᵀ dz, db = Σ_rows dz.
    let x = input::<f64>(&[16, 8], 1);
    let w = input::<f64>(&[8, 5], 2);
    let b = input::<f64>(&[5], 3);
    let dy = input::<f64>(&[16, 5], 4);
    let y = (x.matmul(&w) + &b).tanh();
    let dz_ops = &dy * &(1.0 - &y * &y);
    let (dw_ops, db_ops) = (x.t().matmul(&dz_ops), dz_ops.sum_axis(0));

    let dz = fused::map2_inplace(dy.clone(), &y, |g, y| g * (1.0 - y * y));
    let mut dw = Tensor::zeros(&[8, 5]);
    dw.gemm_into(1.0, &x, true, &dz, false, 0.0);
    let mut db = Tensor::zeros(&[5]);
    fused::acc_sum_to(&mut db, &dz);
    assert_close(&dw, &dw_ops, "dW");
    assert_close(&db, &db_ops, "db");
    // The same bias gradient straight from dy and y, without dz.
    assert_close(
        &fused::map2_sum_to(&dy, &y, |g, y| g * (1.0 - y * y), &[5]),
        &db_ops,
        "db fused",
    );
}

fn broadcast_inplace_matches_ops<T: Float>() {
    for (k, &(shape, small)) in SUM_TO.iter().enumerate() {
        let s = 300 + 10 * k as u64;
        let (a, b) = (input::<T>(shape, s), input::<T>(small, s + 1));
        let f = |z: T, b: T| (z + b).tanh();
        let want = (&a + &b).tanh();
        let p = a.as_slice().as_ptr();
        let got = fused::map2_broadcast_inplace(a, &b, f);
        if !got.as_slice().is_empty() {
            assert_eq!(got.as_slice().as_ptr(), p, "a new buffer");
        }
        assert_close(
            &got,
            &want,
            &format!("map2_broadcast_inplace {shape:?} {small:?}"),
        );
    }
}

#[test]
fn broadcast_inplace_matches_ops_f32() {
    broadcast_inplace_matches_ops::<f32>();
}

#[test]
fn broadcast_inplace_matches_ops_f64() {
    broadcast_inplace_matches_ops::<f64>();
}

// ----- shape mismatches ------------------------------------------------------

fn t23() -> Tensor {
    Tensor::zeros(&[2, 3])
}

fn t32() -> Tensor {
    Tensor::zeros(&[3, 2])
}

#[test]
#[should_panic(expected = "fused::map2: shapes [2, 3] and [3, 2]")]
fn map2_names_both_shapes() {
    fused::map2(&t23(), &t32(), |a, b| a + b);
}

#[test]
#[should_panic(expected = "fused::map3: shapes [2, 3] and [3, 2]")]
fn map3_names_the_mismatching_operand() {
    fused::map3(&t23(), &t23(), &t32(), |a, b, c| a + b + c);
}

#[test]
#[should_panic(expected = "fused::map4: shapes [2, 3] and [3]")]
fn map4_names_the_mismatching_operand() {
    fused::map4(&t23(), &t23(), &t23(), &Tensor::zeros(&[3]), |a, _, _, _| a);
}

#[test]
#[should_panic(expected = "fused::map1_into: shapes [3, 2] and [2, 3]")]
fn map1_into_checks_the_output() {
    fused::map1_into(&mut t32(), &t23(), |a| a);
}

#[test]
#[should_panic(expected = "fused::map2_into: shapes [2, 3] and [3, 2]")]
fn map2_into_checks_the_operands() {
    fused::map2_into(&mut t23(), &t23(), &t32(), |a, b| a * b);
}

#[test]
#[should_panic(expected = "fused::map2_inplace: shapes [2, 3] and [3, 2]")]
fn map2_inplace_checks_shapes() {
    fused::map2_inplace(t23(), &t32(), |a, b| a * b);
}

#[test]
#[should_panic(expected = "fused::acc2: shapes [3, 2] and [2, 3]")]
fn acc2_checks_the_gradient() {
    fused::acc2(&mut t32(), &t23(), &t23(), |a, b| a * b);
}

#[test]
#[should_panic(expected = "fused::sum2: shapes [2, 3] and [3, 2]")]
fn sum2_checks_shapes() {
    fused::sum2(&t23(), &t32(), |a, b| a * b);
}

#[test]
#[should_panic(expected = "fused::acc1_sum_to: shapes [2, 3] and [2]")]
fn acc_sum_to_rejects_a_target_that_does_not_broadcast() {
    fused::acc_sum_to(&mut Tensor::zeros(&[2]), &t23());
}

#[test]
#[should_panic(expected = "fused::acc2_sum_to: shapes [2, 3] and [2, 2, 3]")]
fn acc2_sum_to_rejects_a_larger_target() {
    fused::acc2_sum_to(&mut Tensor::zeros(&[2, 2, 3]), &t23(), &t23(), |a, b| a * b);
}

#[test]
#[should_panic(expected = "fused::map2_broadcast_inplace: shapes [3] and [2, 3]")]
fn map2_broadcast_inplace_does_not_grow_its_operand() {
    fused::map2_broadcast_inplace(Tensor::zeros(&[3]), &t23(), |a, b| a + b);
}

#[test]
#[should_panic(expected = "fused::map2: shapes [2, 3] and [3]")]
fn named_kernels_check_shapes() {
    fused::tanh_backward(&t23(), &Tensor::zeros(&[3]));
}

#[test]
fn mismatch_panics_point_at_the_caller() {
    // Every fused panic in this binary comes from a call in this file, so
    // whichever one the hook sees must be located here (#[track_caller]).
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        if msg.starts_with("fused::") {
            let file = info.location().map(|l| l.file().to_string());
            let _ = tx.lock().unwrap().send(file);
        }
    }));
    let r = std::panic::catch_unwind(|| fused::map2(&t23(), &t32(), |a, b| a + b));
    std::panic::set_hook(hook);
    assert!(r.is_err());
    let file = rx.recv().unwrap().unwrap();
    assert!(file.ends_with("fused.rs"), "the panic points at {file}");
    assert!(
        !file.contains("src"),
        "the panic points into the kernel: {file}"
    );
}
