//! The dynamic tape: the worked examples of the PyTorch autograd tutorials in
//! `shared/tutorials/`, the error cases, and every backward rule against
//! central finite differences.
#![allow(
    clippy::op_ref,
    clippy::nonminimal_bool,
    clippy::type_complexity,
    clippy::cloned_ref_to_slice_refs
)]

use ad_runtime::tape::{Function, Tape, TapeError, Value, Var};
use ad_runtime::Tensor;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[track_caller]
fn assert_all(t: &Tensor, expected: f64, tol: f64) {
    for &v in t.as_slice() {
        assert!(close(v, expected, tol), "{v} != {expected} in {t:?}");
    }
}

#[track_caller]
fn assert_slice(got: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(close(*g, *e, tol), "{got:?} != {expected:?}");
    }
}

// ----- tutorial 001: the blitz examples -------------------------------------

#[test]
fn tape_mean_3_x_plus_2_squared_gives_4_5() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2, 2]));
    let y = x + 2.0;
    assert!(x.grad_fn().is_none());
    assert_eq!(y.grad_fn().unwrap().name(), "AddBackward");
    let z = y * y * 3.0;
    let out = z.mean();
    assert_eq!(z.grad_fn().unwrap().name(), "MulBackward");
    assert_eq!(out.grad_fn().unwrap().name(), "MeanBackward");
    assert_eq!(out.item(), 27.0);
    out.backward();
    // d out/dx = (1/4) 6 (x + 2) = 4.5
    assert_all(&x.grad_tensor(), 4.5, 1e-12);
    assert!(y.grad().is_none() && z.grad().is_none() && out.grad().is_none());
}

#[test]
fn tape_mean_2_x_plus_2_squared_and_cubed() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2, 2]));
    let out = (2.0 * (x + 2.0).powi(2)).mean();
    assert_eq!(out.item(), 18.0);
    out.backward();
    // (1/4) 4 (x + 2) = 3
    assert_all(&x.grad_tensor(), 3.0, 1e-12);

    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2, 2]));
    let out = (2.0 * (x + 2.0).powi(3)).mean();
    out.backward();
    // (1/4) 6 (x + 2)^2 = 13.5
    assert_all(&x.grad_tensor(), 13.5, 1e-12);
}

#[test]
fn tape_mean_8_4x_plus_2_squared_gives_42_6667() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[3, 3]));
    let y = 4.0 * x + 2.0;
    let out = (8.0 * y.powi(2)).mean();
    out.backward();
    // (1/9) 16 (4x + 2) 4 = 42.6667
    assert_all(&x.grad_tensor(), 384.0 / 9.0, 1e-12);
    assert!(close(x.grad_tensor().as_slice()[0], 42.6667, 1e-5));
}

// ----- tutorial 002: vector-to-scalar, vector-to-vector, accumulation -----

#[test]
fn tape_two_x_dot_x_gives_4x() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::arange(4));
    assert!(x.grad().is_none());
    let y = 2.0 * x.dot(x);
    assert_eq!(y.item(), 28.0);
    assert_eq!(y.grad_fn().unwrap().name(), "MulBackward");
    y.backward();
    assert_slice(x.grad_tensor().as_slice(), &[0.0, 4.0, 8.0, 12.0], 0.0);
}

#[test]
fn tape_vector_seed_3x_squared() {
    for (seed, expected) in [([1.0, 1.0], [6.0, 12.0]), ([1.0, 10.0], [6.0, 120.0])] {
        let tape: Tape = Tape::new();
        let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
        let y = 3.0 * x.powf(2.0);
        assert_eq!(y.tensor().as_slice(), &[3.0, 12.0]);
        y.backward_with(Tensor::from_vec(seed.to_vec(), &[2]));
        assert_slice(x.grad_tensor().as_slice(), &expected, 1e-12);
    }
}

#[test]
fn tape_sum_with_seed_100() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let y = x.sum();
    assert_eq!(y.item(), 3.0);
    y.backward_with(100.0);
    assert_slice(x.grad_tensor().as_slice(), &[100.0, 100.0], 0.0);
    // The scalar `backward()` is the seed 1, accumulated on top.
    y.backward();
    assert_slice(x.grad_tensor().as_slice(), &[101.0, 101.0], 0.0);
}

#[test]
fn tape_stacked_squares_with_vector_seed_give_2222() {
    let tape: Tape = Tape::new();
    let x = tape.var(1.0);
    let sq = x.powi(2);
    let y = tape.stack(&[sq, sq, sq, sq]);
    assert_eq!(y.shape(), vec![4]);
    assert_eq!(y.grad_fn().unwrap().name(), "StackBackward");
    y.backward_with(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1000.0], &[4]));
    assert_eq!(x.grad_scalar(), 2222.0);

    // The same with a vector x: stack([x.sum(); 4]) gives [1111, 1111].
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let s = x.sum();
    let y = tape.stack(&[s, s, s, s]);
    y.backward_with(Tensor::from_vec(vec![1.0, 10.0, 100.0, 1000.0], &[4]));
    assert_slice(x.grad_tensor().as_slice(), &[1111.0, 1111.0], 0.0);
}

#[test]
fn tape_gradients_accumulate_across_backward_calls() {
    let tape: Tape = Tape::new();
    let x = tape.var(1.0);
    let y = x.powi(2);
    assert_eq!(y.grad_fn().unwrap().name(), "PowBackward");
    let mut seen = Vec::new();
    for v in [1.0, 10.0, 100.0, 1000.0] {
        y.backward_with(v);
        seen.push(x.grad_scalar());
    }
    assert_eq!(seen, vec![2.0, 22.0, 222.0, 2222.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    y.backward();
    assert_eq!(x.grad_scalar(), 2.0);

    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let y = x.sum();
    for v in [1.0, 10.0, 100.0, 1000.0] {
        y.backward_with(v);
    }
    assert_slice(x.grad_tensor().as_slice(), &[1111.0, 1111.0], 0.0);
    tape.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn tape_vector_to_vector_full_example() {
    // y = (3 x1^2, x1^2 + 2 x2^3, 10 x2) at (1, 2), seed (1, 10, 100): (26, 1240).
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    let (x1, x2) = (x.select(0), x.select(1));
    let y = tape.stack(&[3.0 * x1.powi(2), x1.powi(2) + 2.0 * x2.powi(3), 10.0 * x2]);
    assert_eq!(y.tensor().as_slice(), &[3.0, 17.0, 20.0]);
    y.backward_with(Tensor::from_vec(vec![1.0, 10.0, 100.0], &[3]));
    assert_slice(x.grad_tensor().as_slice(), &[26.0, 1240.0], 1e-12);
}

#[test]
fn tape_data_dependent_control_flow() {
    // b = 2a; while |b| < 1000: b *= 2; c = b if sum(b) > 0 else 100 b. Then dc/da = c/a.
    fn f<'t>(a: Var<'t>) -> Var<'t> {
        let mut b = a * 2.0;
        while b.norm() < 1000.0 {
            b *= 2.0;
        }
        if b.sum() > 0.0 {
            b
        } else {
            100.0 * b
        }
    }
    for a0 in [-0.4315, 0.7, 3.0] {
        let tape: Tape = Tape::new();
        let a = tape.var(a0);
        let d = f(a);
        d.backward();
        assert!(close(a.grad_scalar(), d.item() / a0, 1e-12));
    }
}

// ----- tutorial 000: neuron, shared weight, gradient descent ---------------

#[test]
fn tape_relu_neuron_gradients() {
    let tape: Tape = Tape::new();
    let x = tape.constant(3.0);
    let w = tape.var(2.0).named("w");
    let b = tape.var(1.0).named("b");
    let u = x * w;
    let v = u + b;
    let a = v.relu();
    assert_eq!(v.item(), 7.0);
    let g = tape.grad(a, &[w, b]);
    assert_eq!((g[0].item(), g[1].item()), (3.0, 1.0));
    // The clamp form, as in the tutorial: torch.clamp(v, min=0).
    let a2 = v.max(0.0);
    a2.backward();
    assert_eq!((w.grad_scalar(), b.grad_scalar()), (3.0, 1.0));
    assert!(x.grad().is_none());
}

#[test]
fn tape_shared_weight_gives_32() {
    let tape: Tape = Tape::new();
    let x = tape.constant(2.0);
    let w = tape.var(1.0);
    let (u1, u2) = (x * w, x * w);
    let a = u1.powi(2) + u2.powi(3);
    assert_eq!(a.item(), 12.0);
    // 2 u1 x + 3 u2^2 x = 8 + 24
    assert_eq!(tape.grad(a, &[w])[0].item(), 32.0);
}

#[test]
fn tape_gradient_descent_with_no_grad_updates() {
    let tape: Tape = Tape::new();
    let a = tape.var(0.5);
    let b = tape.var(-0.5);
    let eta = 0.1;
    for _ in 0..100 {
        let l = (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a - b).powi(2);
        let g = tape.grad(l, &[a, b]);
        tape.no_grad(|| {
            a.set_value(a.item() - eta * g[0].item());
            b.set_value(b.item() - eta * g[1].item());
        });
        tape.clear_graph();
    }
    assert_eq!(
        format!("{:.6} {:.6}", a.item(), b.item()),
        "0.333333 -0.333333"
    );
    assert_eq!(tape.len(), 2, "clear_graph keeps the tape from growing");
}

#[test]
fn tape_gradient_descent_with_detach() {
    let tape: Tape = Tape::new();
    let a = tape.var(0.5);
    let b = tape.var(-0.5);
    for _ in 0..100 {
        let l = (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a.detach() - b).powi(2);
        l.backward();
        a.set_value(a.item() - 0.1 * a.grad_scalar());
        b.set_value(b.item() - 0.1 * b.grad_scalar());
        tape.zero_grad();
        tape.clear_graph();
    }
    assert!(
        (a.item() - 1.0).abs() < 1e-6 && b.item().abs() < 1e-6,
        "{a} {b}"
    );
}

#[test]
fn tape_clear_graph_makes_old_results_stale() {
    let tape: Tape = Tape::new();
    let a = tape.var(1.0);
    let y = a * 2.0;
    tape.clear_graph();
    let z = a * 3.0; // reuses y's slot
    assert_eq!(z.item(), 3.0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.item()));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("clear_graph"), "{msg}");
    // A full clear needs no Var alive; recording then starts over.
    let mut tape: Tape = Tape::new();
    {
        let x = tape.var(2.0);
        (x * x).backward();
        assert_eq!(x.grad_scalar(), 4.0);
    }
    tape.clear();
    assert!(tape.is_empty());
}

// ----- tutorial 004: f(x1, x2) and finite differences ----------------------

#[test]
fn tape_f_x1_x2_matches_finite_differences() {
    let f = |x1: f64, x2: f64| (1.0 + x2.sin()) / (x2 + x1.exp()) + x1 * x2;
    let tape: Tape = Tape::new();
    let x1 = tape.var(1.5).named("x1");
    let x2 = tape.var(0.5).named("x2");
    let y = (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2;
    assert!(close(y.item(), f(1.5, 0.5), 1e-15));
    y.backward();
    let h = 1e-6;
    let d1 = (f(1.5 + h, 0.5) - f(1.5 - h, 0.5)) / (2.0 * h);
    let d2 = (f(1.5, 0.5 + h) - f(1.5, 0.5 - h)) / (2.0 * h);
    assert!(close(x1.grad_scalar(), d1, 1e-8));
    assert!(close(x2.grad_scalar(), d2, 1e-8));
    assert!(close(x2.grad_scalar(), 1.6165488003791768, 1e-12));

    // The torchviz variant with the constant 1 as a leaf c: grads 0.2328, 1.6165, 0.2007.
    let tape: Tape = Tape::new();
    let (x1, x2, c) = (tape.var(1.5), tape.var(0.5), tape.var(1.0));
    let y = (x2.sin() + c) / (x2 + x1.exp()) + x1 * x2;
    y.backward();
    let round4 = |v: f64| (v * 1e4).round() / 1e4;
    assert_eq!(
        [x1, x2, c].map(|v| round4(v.grad_scalar())),
        [0.2328, 1.6165, 0.2007]
    );
}

// ----- errors ----------------------------------------------------------------

fn panic_message(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
    match err.downcast::<String>() {
        Ok(s) => *s,
        Err(e) => e
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[test]
fn tape_error_backward_on_non_scalar() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[3]));
    let y = 2.0 * x;
    let err = y.try_backward().unwrap_err();
    assert_eq!(err, TapeError::NonScalarResult { shape: vec![3] });
    assert!(err
        .to_string()
        .contains("a gradient can be created implicitly only for a scalar result"));
    let msg = panic_message(|| y.backward());
    assert!(
        msg.contains("a gradient can be created implicitly only for a scalar result"),
        "{msg}"
    );
    // A one-element tensor is a scalar result.
    let z = tape.tensor(Tensor::ones(&[1])) * 3.0;
    z.backward();
}

#[test]
fn tape_error_seed_of_wrong_shape() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2, 3]));
    let y = x.sin();
    let err = y.try_backward_with(Tensor::ones(&[3, 2])).unwrap_err();
    assert_eq!(
        err,
        TapeError::SeedShape {
            expected: vec![2, 3],
            got: vec![3, 2]
        }
    );
    let msg = panic_message(|| y.backward_with(Tensor::ones(&[3])));
    assert!(msg.contains("[3]") && msg.contains("[2, 3]"), "{msg}");
    let s = x.sum();
    assert!(matches!(
        s.try_backward_with(Tensor::ones(&[2])),
        Err(TapeError::SeedShape { .. })
    ));
    assert!(x.grad().is_none(), "a failed backward changes nothing");
}

#[test]
fn tape_error_result_without_gradient() {
    let tape: Tape = Tape::new();
    let c = tape.constant(2.0);
    let y = c * 3.0;
    assert!(!y.requires_grad());
    assert_eq!(y.try_backward(), Err(TapeError::NoGradient));
    let x = tape.tensor(Tensor::ones(&[2]));
    let msg = panic_message(|| {
        let _ = x + tape.tensor(Tensor::ones(&[3]));
    });
    assert!(msg.contains("[2]") && msg.contains("[3]"), "{msg}");
}

// ----- no_grad, detach, retain_grad -----------------------------------------

#[test]
fn tape_no_grad_records_constants() {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let z = x * 3.0;
    assert!(z.requires_grad());
    let h = tape.no_grad(|| {
        assert!(!tape.is_grad_enabled());
        let inner = tape.no_grad(|| z * 2.0);
        assert!(
            !tape.is_grad_enabled(),
            "nested no_grad restores the outer state"
        );
        assert!(!inner.requires_grad());
        z * 2.0
    });
    assert!(tape.is_grad_enabled());
    assert!(!h.requires_grad() && h.is_leaf() && h.grad_fn().is_none());
    assert_eq!(h.item(), 12.0);
    // Recording resumes, and a panic inside no_grad restores it too.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tape.no_grad(|| panic!("boom"))
    }));
    assert!(tape.is_grad_enabled());
    let t = tape.tensor(Tensor::ones(&[2]));
    let u = tape.no_grad(|| t.matmul(t) + t.sum());
    assert!(!u.requires_grad());
}

#[test]
fn tape_detach_stops_the_gradient() {
    // r = sum(2x + 3 + x): dr/dx = 3; with x.detach() in the second term: 2.
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2]));
    let r = (2.0 * x + (3.0 + x)).sum();
    r.backward();
    assert_slice(x.grad_tensor().as_slice(), &[3.0, 3.0], 0.0);
    x.zero_grad();
    let d = x.detach();
    assert!(!d.requires_grad() && d.is_leaf());
    let r = (2.0 * x + (3.0 + d)).sum();
    r.backward();
    assert_slice(x.grad_tensor().as_slice(), &[2.0, 2.0], 0.0);
    assert!(!r
        .to_dot()
        .contains("(2,)\\nAddBackward\" fillcolor=lightgrey]\n    n9"));
}

#[test]
fn tape_retain_grad_keeps_intermediate_gradients() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::ones(&[2, 2]));
    let y = x + 2.0;
    y.retain_grad();
    let z = y * y * 3.0;
    let out = z.mean();
    out.backward();
    // d out/dy = 6 y / 4 = 4.5
    assert_all(&y.grad_tensor(), 4.5, 1e-12);
    assert!(z.grad().is_none());
    assert!(x.is_leaf() && !y.is_leaf());
    // Intermediate gradients through torch.autograd.grad-style calls.
    let g = tape.grad(out, &[z, y]);
    assert_all(&g[0].to_tensor(), 0.25, 1e-12);
    assert_all(&g[1].to_tensor(), 4.5, 1e-12);
}

// ----- custom operations -----------------------------------------------------

/// A custom ReLU, as tutorial 001 writes it.
struct MyRelu;

impl Function<f64> for MyRelu {
    fn name(&self) -> &str {
        "MyRelu"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        inputs[0].map(|v| v.max(0.0))
    }
    fn backward(&self, inputs: &[Value], _output: &Value, grad: &Value) -> Vec<Option<Value>> {
        vec![Some(grad.zip_map(&inputs[0], |g, x| {
            if x < 0.0 {
                0.0
            } else {
                g
            }
        }))]
    }
}

/// A custom Exp that saves its output.
struct MyExp;

impl Function<f64> for MyExp {
    fn name(&self) -> &str {
        "Exp"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        inputs[0].map(f64::exp)
    }
    fn backward(&self, _inputs: &[Value], output: &Value, grad: &Value) -> Vec<Option<Value>> {
        vec![Some(grad.zip_map(output, |g, y| g * y))]
    }
}

#[test]
fn tape_custom_relu_and_exp_functions() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![-1.0, 0.5, 2.0], &[3]));
    let r = tape.apply(MyRelu, &[x]);
    assert_eq!(r.tensor().as_slice(), &[0.0, 0.5, 2.0]);
    assert_eq!(r.grad_fn().unwrap().name(), "MyReluBackward");
    let e = tape.apply(MyExp, &[r]);
    assert_eq!(e.grad_fn().unwrap().name(), "ExpBackward");
    let loss = e.sum();
    loss.backward();
    let expected: Vec<f64> = [-1.0f64, 0.5, 2.0]
        .iter()
        .map(|&v| if v < 0.0 { 0.0 } else { v.exp() })
        .collect();
    assert_slice(x.grad_tensor().as_slice(), &expected, 1e-12);
    // The same as the built-in operations.
    let tape2: Tape = Tape::new();
    let x2 = tape2.tensor(Tensor::from_vec(vec![-1.0, 0.5, 2.0], &[3]));
    x2.relu().exp().sum().backward();
    assert_slice(
        x.grad_tensor().as_slice(),
        x2.grad_tensor().as_slice(),
        1e-15,
    );
    // Under no_grad a custom op records a constant.
    let c = tape.no_grad(|| tape.apply(MyExp, &[x]));
    assert!(!c.requires_grad());
}

#[test]
fn tape_apply_fn_records_a_vjp_closure() {
    // g(a, b) = a^2 b with a hand-written vjp, composed with taped operations.
    let tape: Tape = Tape::new();
    let a = tape.var(3.0);
    let b = tape.var(2.0);
    let (av, bv) = (a.item(), b.item());
    let g = tape.apply_fn("g", &[a, b], av * av * bv, move |gy: &Value| {
        let s = gy.item();
        vec![Value::Scalar(s * 2.0 * av * bv), Value::Scalar(s * av * av)]
    });
    assert_eq!(g.grad_fn().unwrap().name(), "gBackward");
    let y = g.sin() + a;
    y.backward();
    let c = (18.0f64).cos();
    assert!(close(a.grad_scalar(), c * 12.0 + 1.0, 1e-14));
    assert!(close(b.grad_scalar(), c * 9.0, 1e-14));
    // Wrong gradient shapes are reported with the op's name.
    let t = tape.tensor(Tensor::ones(&[2]));
    let bad = tape.apply_fn("bad", &[t], Tensor::ones(&[2]), |_| {
        vec![Value::Tensor(Tensor::ones(&[3]))]
    });
    let msg = panic_message(|| bad.sum().backward());
    assert!(
        msg.contains("bad") && msg.contains("[3]") && msg.contains("[2]"),
        "{msg}"
    );
}

// ----- inspection, DOT, profiler ----------------------------------------------

#[test]
fn tape_grad_fn_and_next_functions() {
    let tape: Tape = Tape::new();
    let x = tape.tensor(Tensor::from_vec(vec![1.0, -2.0, 3.0, -4.0], &[4]));
    let a = x.abs();
    let s = a.sum();
    assert_eq!(s.item(), 10.0);
    let f = s.grad_fn().unwrap();
    assert_eq!(f.name(), "SumBackward");
    let next = f.next_functions();
    assert_eq!(next.len(), 1);
    let abs = next[0].unwrap();
    assert_eq!(abs.name(), "AbsBackward");
    let leaf = abs.next_functions()[0].unwrap();
    assert_eq!(leaf.name(), "AccumulateGrad");
    assert!(leaf.is_accumulate_grad());
    assert_eq!(leaf.variable().index(), x.index());
    assert!(x.is_leaf() && x.requires_grad() && !a.is_leaf());
    assert_eq!(format!("{f:?}"), "<SumBackward>");
    // Constant inputs show as None, like PyTorch's (None, 0).
    let w = tape.tensor(Tensor::ones(&[4, 2]));
    let m = tape.constant_tensor(Tensor::ones(&[4])).matmul(w);
    let names: Vec<Option<String>> = m
        .grad_fn()
        .unwrap()
        .next_functions()
        .iter()
        .map(|f| f.map(|f| f.name()))
        .collect();
    assert_eq!(names, vec![None, Some("AccumulateGrad".to_string())]);
    assert_eq!(m.grad_fn().unwrap().name(), "MatmulBackward");
    let names: Vec<String> = [
        x.exp(),
        x.sin(),
        x.powf(2.0),
        x / 2.0,
        x - 1.0,
        x.relu(),
        x.norm(),
        x.mean(),
        x.reshape(&[2, 2]).t(),
    ]
    .iter()
    .map(|v| v.grad_fn().unwrap().name())
    .collect();
    assert_eq!(
        names,
        [
            "ExpBackward",
            "SinBackward",
            "PowBackward",
            "DivBackward",
            "SubBackward",
            "ReluBackward",
            "NormBackward",
            "MeanBackward",
            "TBackward"
        ]
    );
}

#[test]
fn tape_dot_export_draws_the_graph() {
    // The MLP of tutorial 000: loss = mean((tanh(w2 tanh(w1 x + b1) + b2) - target)^2).
    let tape: Tape = Tape::new();
    let w1 = tape.tensor(Tensor::rand(&[20, 10], 1)).named("w1");
    let b1 = tape.tensor(Tensor::rand(&[20], 2)).named("b1");
    let w2 = tape.tensor(Tensor::rand(&[5, 20], 3)).named("w2");
    let b2 = tape.tensor(Tensor::rand(&[5], 4)).named("b2");
    let x = Tensor::rand(&[10], 5);
    let target = Tensor::rand(&[5], 6);
    let h = (w1.matmul(&x) + b1).tanh();
    let y = (w2.matmul(h) + b2).tanh();
    let loss = (y - &target).powi(2).mean().named("loss");
    let dot = tape.to_dot(&[loss]);
    assert!(dot.starts_with("digraph {"));
    for needle in [
        "w1\\n(20, 10)",
        "b1\\n(20,)",
        "w2\\n(5, 20)",
        "b2\\n(5,)",
        "loss\\n()\\nMeanBackward",
        "MatmulBackward",
        "TanhBackward",
        "PowBackward",
        "SubBackward",
    ] {
        assert!(dot.contains(needle), "{needle} missing from\n{dot}");
    }
    assert_eq!(dot.matches("fillcolor=lightblue").count(), 4);
    assert_eq!(dot.matches("fillcolor=darkolivegreen1").count(), 1);
    // 13 nodes (4 leaves, 9 operations) and one edge per input that needs a gradient.
    assert_eq!(dot.matches(" -> ").count(), 12);
    assert_eq!(dot.matches("[label=").count(), 13);
    loss.backward();
    assert_eq!(w1.grad_tensor().shape(), &[20, 10]);
}

#[test]
fn tape_profiler_counts_and_times_operations() {
    let tape: Tape = Tape::new();
    let (_, prof) = tape.profile(|| {
        let x = tape.tensor(Tensor::ones(&[3, 3]));
        let y = x * 4.0 + 2.0;
        let z = 8.0 * y.powi(2);
        let out = z.mean();
        out.backward();
    });
    let mul = prof.row("mul").unwrap();
    assert_eq!((mul.forward_count, mul.backward_count), (2, 2));
    assert_eq!(prof.row("add").unwrap().forward_count, 1);
    assert_eq!(prof.row("powi").unwrap().backward_count, 1);
    assert_eq!(prof.row("mean").unwrap().forward_count, 1);
    assert!(prof
        .rows
        .windows(2)
        .all(|w| w[0].total_time() >= w[1].total_time()));
    let table = prof.to_string();
    assert!(
        table.starts_with("Name") && table.contains("mul") && table.contains("Total %"),
        "{table}"
    );
    // Outside the scope nothing is recorded.
    let x = tape.var(1.0);
    let (_, p2) = tape.profile(|| ());
    let _ = x.sin();
    assert!(p2.rows.is_empty());
    // Custom operations appear under their names.
    let (_, p3) = tape.profile(|| tape.apply(MyExp, &[x]).backward());
    assert_eq!(p3.row("Exp").unwrap().backward_count, 1);
}

// ----- operators and operands --------------------------------------------------

#[test]
fn tape_operators_take_every_operand_kind() {
    let tape: Tape = Tape::new();
    let x = tape.var(3.0);
    let y = tape.var(2.0);
    let r = &x * &y + 2.0 * x - x / 2.0 + 1.0 - (6.0 / y) + (1.0 - x) * y - -x;
    // 6 + 6 - 1.5 + 1 - 3 + (-2)(2) + 3 = 7.5
    assert_eq!(r.item(), 7.5);
    r.backward();
    // dr/dx = y + 2 - 1/2 - y + 1 = 2.5; dr/dy = x + 6/y^2 + (1 - x) = 3 + 1.5 - 2 = 2.5
    assert_eq!((x.grad_scalar(), y.grad_scalar()), (2.5, 2.5));
    let mut acc = tape.constant(0.0);
    for v in [x, y, x] {
        acc += v;
        acc *= 1.0;
    }
    acc -= 1.0;
    acc /= 2.0;
    assert_eq!(acc.item(), 3.5);
    assert!(x > 2.0);
    assert!(2.0 < x);
    assert!(x == 3.0);
    assert!(x > y);
    assert!(y != x);
    let s: Var = [x, y, x].into_iter().sum();
    assert_eq!(s.item(), 8.0);
    assert_eq!(tape.sum(Vec::new()).item(), 0.0);
    // Scalars and tensors mix; tensors stand on either side.
    let t = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    let v = x * &t + t.clone() * y - &t / x + t.clone();
    assert_slice(
        v.tensor().as_slice(),
        &[3.0 + 2.0 - 1.0 / 3.0 + 1.0, 6.0 + 4.0 - 2.0 / 3.0 + 2.0],
        1e-15,
    );
    x.zero_grad();
    v.sum().backward();
    assert!(close(x.grad_scalar(), 3.0 + 3.0 / 9.0, 1e-15));
    assert_eq!(x.mul_add(y, 1.0).item(), 7.0);
    assert_eq!(format!("{}", x * 2.0), "6");
}

#[test]
fn tape_f32_tape_works() {
    let tape: Tape<f32> = Tape::new();
    let x = tape.var(2.0f32);
    let y = x.powi(3) * 2.0f32 + 1.0f32 / x;
    y.backward();
    assert!((x.grad_scalar() - (24.0 - 0.25)).abs() < 1e-5);
    let t = tape.tensor(Tensor::<f32>::ones(&[2, 2]));
    (t * x).sum().backward();
    assert_eq!(t.grad_tensor().as_slice(), &[2.0f32; 4]);
}

#[test]
fn tape_mixing_tapes_panics() {
    let t1: Tape = Tape::new();
    let t2: Tape = Tape::new();
    let (a, b) = (t1.var(1.0), t2.var(2.0));
    let msg = panic_message(|| {
        let _ = a + b;
    });
    assert!(msg.contains("two different tapes"), "{msg}");
    // `Tape::grad` of another tape's output would read this tape's node at
    // that index.
    let _a3 = a * 3.0;
    let l = b * b;
    assert_eq!(l.index(), _a3.index());
    let msg = panic_message(|| {
        t1.grad(l, &[]);
    });
    assert!(msg.contains("another tape"), "{msg}");
}

#[test]
fn tape_kink_conventions_follow_pytorch() {
    let tape: Tape = Tape::new();
    let z = tape.var(0.0);
    let g = |y: Var| tape.grad(y, &[z])[0].item();
    assert_eq!(g(z.relu()), 0.0);
    assert_eq!(g(z.abs()), 0.0);
    assert_eq!(
        g(z.clamp(0.0, 1.0)),
        1.0,
        "clamp passes the gradient at its bounds"
    );
    assert_eq!(g(z.clamp(0.5, 1.0)), 0.0);
    assert_eq!(g(z.max(0.0)), 0.5, "a tie splits the gradient");
    assert_eq!(g(z.min(z)), 1.0);
    let t = tape.tensor(Tensor::from_vec(vec![1.0, 3.0, 3.0], &[3]));
    let d = tape.grad(t.max_all(), &[t]);
    assert_eq!(d[0].as_slice(), &[0.0, 0.5, 0.5]);
    assert_eq!(g(z.norm()), 0.0);
}

// ----- every backward rule against central finite differences ----------------

/// Compares the tape's gradient of `loss = sum(f(inputs) ⊙ w)` (w fixed,
/// pseudo-random) with central differences of the same function.
#[track_caller]
fn check_rule(name: &str, inputs: &[Tensor], f: impl for<'t> Fn(&[Var<'t>]) -> Var<'t>) {
    let eval = |xs: &[Tensor]| -> (f64, Vec<Tensor>) {
        let tape: Tape = Tape::new();
        let vars: Vec<Var> = xs.iter().map(|x| tape.tensor(x.clone())).collect();
        let y = f(&vars);
        let w = Tensor::rand(&y.shape(), 99).map(|v| v + 0.5);
        let loss = (y * &w).sum();
        loss.backward();
        (loss.item(), vars.iter().map(|v| v.grad_tensor()).collect())
    };
    let (_, grads) = eval(inputs);
    let h = 1e-6;
    for (k, x) in inputs.iter().enumerate() {
        assert_eq!(
            grads[k].shape(),
            x.shape(),
            "{name}: gradient shape of input {k}"
        );
        for j in 0..x.len() {
            let mut xp = inputs.to_vec();
            let mut xm = inputs.to_vec();
            xp[k].as_mut_slice()[j] += h;
            xm[k].as_mut_slice()[j] -= h;
            let num = (eval(&xp).0 - eval(&xm).0) / (2.0 * h);
            let got = grads[k].as_slice()[j];
            assert!(
                (got - num).abs() <= 1e-6 * (1.0 + num.abs()),
                "{name}: d/dx{k}[{j}] tape {got} vs finite differences {num}"
            );
        }
    }
}

fn s(v: f64) -> Tensor {
    Tensor::scalar(v)
}

#[test]
fn tape_scalar_rules_match_finite_differences() {
    let x = [s(0.6)];
    let unary: Vec<(&str, for<'t> fn(Var<'t>) -> Var<'t>)> = vec![
        ("neg", |v| -v),
        ("exp", |v| v.exp()),
        ("exp2", |v| v.exp2()),
        ("ln", |v| v.ln()),
        ("log2", |v| v.log2()),
        ("log10", |v| v.log10()),
        ("sin", |v| v.sin()),
        ("cos", |v| v.cos()),
        ("tan", |v| v.tan()),
        ("asin", |v| v.asin()),
        ("acos", |v| v.acos()),
        ("atan", |v| v.atan()),
        ("sinh", |v| v.sinh()),
        ("cosh", |v| v.cosh()),
        ("tanh", |v| v.tanh()),
        ("sqrt", |v| v.sqrt()),
        ("cbrt", |v| v.cbrt()),
        ("recip", |v| v.recip()),
        ("abs", |v| v.abs()),
        ("relu", |v| v.relu()),
        ("sigmoid", |v| v.sigmoid()),
        ("softplus", |v| v.softplus()),
        ("powi", |v| v.powi(3)),
        ("powi0", |v| v.powi(0)),
        ("powi-2", |v| v.powi(-2)),
        ("powf", |v| v.powf(2.5)),
        ("clamp", |v| v.clamp(0.0, 1.0)),
        ("rsub", |v| 2.0 - v),
        ("rdiv", |v| 2.0 / v),
        ("rpow", |v| v.tape().constant(1.7).powf(v)),
    ];
    for (name, f) in unary {
        check_rule(name, &x, |v| f(v[0]));
        if !["ln", "log2", "log10", "sqrt", "powf"].contains(&name) {
            check_rule(name, &[s(-0.3)], |v| f(v[0]).powi(1));
        }
    }
    let xy = [s(0.7), s(-1.3)];
    let binary: Vec<(&str, for<'t> fn(Var<'t>, Var<'t>) -> Var<'t>)> = vec![
        ("add", |a, b| a + b),
        ("sub", |a, b| a - b),
        ("mul", |a, b| a * b),
        ("div", |a, b| a / b),
        ("pow", |a, b| a.powf(b)),
        ("atan2", |a, b| a.atan2(b)),
        ("hypot", |a, b| a.hypot(b)),
        ("max", |a, b| a.max(b)),
        ("min", |a, b| a.min(b)),
        ("mul_add", |a, b| a.mul_add(b, a)),
    ];
    for (name, f) in binary {
        if name == "pow" {
            check_rule(name, &[s(0.7), s(1.3)], |v| f(v[0], v[1]));
        } else {
            check_rule(name, &xy, |v| f(v[0], v[1]));
            check_rule(name, &[xy[1].clone(), xy[0].clone()], |v| f(v[0], v[1]));
        }
    }
}

#[test]
fn tape_tensor_elementwise_rules_match_finite_differences() {
    let a = Tensor::from_vec(vec![0.3, 0.7, -0.4, 0.5, 0.9, -0.8], &[2, 3]);
    let pos = a.map(|v: f64| v.abs() + 0.2);
    check_rule("exp", &[a.clone()], |v| v[0].exp());
    check_rule("sin", &[a.clone()], |v| v[0].sin());
    check_rule("tanh", &[a.clone()], |v| v[0].tanh());
    check_rule("sigmoid", &[a.clone()], |v| v[0].sigmoid());
    check_rule("softplus", &[a.clone()], |v| v[0].softplus());
    check_rule("relu", &[a.clone()], |v| v[0].relu());
    check_rule("abs", &[a.clone()], |v| v[0].abs());
    check_rule("ln", &[pos.clone()], |v| v[0].ln());
    check_rule("sqrt", &[pos.clone()], |v| v[0].sqrt());
    check_rule("recip", &[pos.clone()], |v| v[0].recip());
    check_rule("powi", &[a.clone()], |v| v[0].powi(3));
    check_rule("powf", &[pos.clone()], |v| v[0].powf(1.5));
    check_rule("clamp", &[a.clone()], |v| v[0].clamp(-0.5, 0.6));
    check_rule("neg", &[a.clone()], |v| -v[0]);
    // Binary operations, same shapes and broadcast ([2,3] with [3], [2,1], and a scalar).
    let row = Tensor::from_vec(vec![0.2, -0.65, 1.1], &[3]);
    let col = Tensor::from_vec(vec![0.4, -0.9], &[2, 1]);
    for b in [
        pos.clone(),
        row.map(|v: f64| v.abs() + 0.3),
        col.map(|v: f64| v.abs() + 0.3),
        s(0.8),
    ] {
        check_rule("add", &[a.clone(), b.clone()], |v| v[0] + v[1]);
        check_rule("sub", &[b.clone(), a.clone()], |v| v[0] - v[1]);
        check_rule("mul", &[a.clone(), b.clone()], |v| v[0] * v[1]);
        check_rule("div", &[a.clone(), b.clone()], |v| v[0] / v[1]);
        check_rule("div-rev", &[b.clone(), pos.clone()], |v| v[0] / v[1]);
        check_rule("pow", &[pos.clone(), b.clone()], |v| v[0].powf(v[1]));
        check_rule("atan2", &[a.clone(), b.clone()], |v| v[0].atan2(v[1]));
        check_rule("hypot", &[a.clone(), b.clone()], |v| v[0].hypot(v[1]));
        check_rule("max", &[a.clone(), b.clone()], |v| v[0].max(v[1]));
        check_rule("min", &[a.clone(), b.clone()], |v| v[0].min(v[1]));
    }
    // Constant operands of every kind.
    check_rule("mul-const-tensor", &[a.clone()], |v| {
        v[0] * Tensor::full(&[3], 1.5)
    });
    check_rule("rsub-const", &[a.clone()], |v| 1.0 - v[0]);
    check_rule("rdiv-const", &[pos.clone()], |v| 1.0 / v[0]);
    check_rule("col-row", &[col.clone(), row.clone()], |v| {
        v[0] * v[1] + v[0]
    });
}

#[test]
fn tape_structural_rules_match_finite_differences() {
    let a = Tensor::from_vec(vec![0.3, 0.7, -0.4, 0.5, 0.9, -0.8], &[2, 3]);
    let b = Tensor::from_vec(vec![0.1, -0.2, 0.5, 0.6, -0.7, 0.3], &[3, 2]);
    let v3 = Tensor::from_vec(vec![0.4, -0.1, 0.8], &[3]);
    let v2 = Tensor::from_vec(vec![-0.3, 0.6], &[2]);
    check_rule("matmul [m,k][k,n]", &[a.clone(), b.clone()], |v| {
        v[0].matmul(v[1])
    });
    check_rule("matmul [m,k][k]", &[a.clone(), v3.clone()], |v| {
        v[0].matmul(v[1])
    });
    check_rule("matmul [k][k,n]", &[v2.clone(), a.clone()], |v| {
        v[0].matmul(v[1])
    });
    check_rule("dot", &[v3.clone(), v3.map(|x| x * 2.0 - 0.1)], |v| {
        v[0].dot(v[1])
    });
    check_rule("sum", &[a.clone()], |v| v[0].sum());
    check_rule("mean", &[a.clone()], |v| v[0].mean());
    check_rule("norm", &[a.clone()], |v| v[0].norm());
    check_rule("max_all", &[a.clone()], |v| v[0].max_all());
    check_rule("min_all", &[a.clone()], |v| v[0].min_all());
    check_rule("sum_axis 0", &[a.clone()], |v| v[0].sum_axis(0));
    check_rule("sum_axis 1", &[a.clone()], |v| v[0].sum_axis(1));
    check_rule("mean_axis 0", &[a.clone()], |v| v[0].mean_axis(0));
    check_rule("mean_axis 1", &[a.clone()], |v| v[0].mean_axis(1));
    check_rule("t", &[a.clone()], |v| v[0].t());
    check_rule("reshape", &[a.clone()], |v| v[0].reshape(&[3, 2]));
    check_rule("broadcast_to", &[v3.clone()], |v| {
        v[0].broadcast_to(&[2, 3])
    });
    check_rule("select", &[a.clone()], |v| v[0].select(4) * v[0].select(1));
    check_rule("stack", &[v3.clone(), v3.map(|x| x + 1.0)], |v| {
        v[0].tape().stack(&[v[0], v[1].sin(), v[0]])
    });
    check_rule("scalar*tensor", &[s(0.7), a.clone()], |v| {
        v[0] * v[1] + v[0].sin()
    });
    check_rule("mlp", &[a.clone(), b.clone(), v2.clone()], |v| {
        let h = (v[0].matmul(v[1]) + v[2]).tanh();
        (h - 0.5).powi(2).mean()
    });
}

/// A custom operation that calls back into its own tape from `forward`, `backward`
/// and `drop`: re-entrant paths on which the tape must not hold its arena's borrow.
struct Reentrant {
    tape: std::rc::Rc<Tape>,
    calls: std::rc::Rc<std::cell::Cell<u32>>,
}

impl Reentrant {
    fn touch(&self) {
        // Records on the tape while it is inside one of its own methods.
        let c = self.tape.constant(2.0);
        assert_eq!((c * 3.0).item(), 6.0);
        self.calls.set(self.calls.get() + 1);
    }
}

impl Function<f64> for Reentrant {
    fn name(&self) -> &str {
        "Reentrant"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        self.touch();
        inputs[0].map(|v| 3.0 * v)
    }
    fn backward(&self, _inputs: &[Value], _output: &Value, grad: &Value) -> Vec<Option<Value>> {
        self.touch();
        vec![Some(grad.map(|g| 3.0 * g))]
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        self.touch();
    }
}

#[test]
fn tape_reentrant_callbacks_are_sound() {
    let tape = std::rc::Rc::new(Tape::<f64>::new());
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let x = tape.var(1.5);
    let op = Reentrant {
        tape: tape.clone(),
        calls: calls.clone(),
    };
    let y = tape.apply(op, &[x]);
    // Closures of `no_grad` and `profile` use the tape too, nested.
    let ((), prof) = tape.profile(|| {
        let z = tape.no_grad(|| {
            let w = x * 2.0;
            tape.no_grad(|| assert!(!(w + 1.0).requires_grad()));
            w
        });
        assert!(!z.requires_grad());
        (y * y).backward();
    });
    assert!(prof.to_string().contains("mul"));
    assert_eq!(x.grad_scalar(), 2.0 * 4.5 * 3.0);
    assert_eq!(calls.get(), 2, "forward and backward called back");
    // Dropping the recorded custom operation calls back once more.
    tape.clear_graph();
    assert_eq!(calls.get(), 3);
    assert_eq!(x.item(), 1.5);
}
