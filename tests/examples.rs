//! Every example's printed result, asserted by calling the example's own functions
//! (each example file is included as a module; its `main` is unused here).

#![allow(dead_code)]
// Each example that plots includes examples/common/mod.rs as its own module.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/control_flow.rs"]
mod control_flow;
#[path = "../examples/custom_gradient.rs"]
mod custom_gradient;
#[path = "../examples/descent_detach.rs"]
mod descent_detach;
#[path = "../examples/dynamic_graph.rs"]
mod dynamic_graph;
#[path = "../examples/gradient_penalty.rs"]
mod gradient_penalty;
#[path = "../examples/graph_mechanics.rs"]
mod graph_mechanics;
#[path = "../examples/plot_exercise.rs"]
mod plot_exercise;
#[path = "../examples/plot_sin.rs"]
mod plot_sin;
#[path = "../examples/profiler.rs"]
mod profiler;
#[path = "../examples/relu_neuron.rs"]
mod relu_neuron;
#[path = "../examples/seed_function.rs"]
mod seed_function;
#[path = "../examples/shared_weight.rs"]
mod shared_weight;
#[path = "../examples/train.rs"]
mod train;
#[path = "../examples/tutorial_means.rs"]
mod tutorial_means;
#[path = "../examples/vjp_seeds.rs"]
mod vjp_seeds;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn relu_neuron_dw_3_db_1() {
    // a = relu(x w + b) at x = 3, w = 2, b = 1: da/dw = x = 3, da/db = 1.
    assert_eq!(relu_neuron::static_grads(), (7.0, (3.0, 1.0)));
    let (v, dw, db, names) = relu_neuron::tape_grads();
    assert_eq!((v, dw, db), (7.0, 3.0, 1.0));
    assert_eq!(
        names,
        [
            "ClampBackward",
            "AddBackward",
            "MulBackward",
            "AccumulateGrad"
        ]
    );
}

#[test]
fn shared_weight_32() {
    // da/dw = 2 u1 x + 3 u2^2 x = 8 + 24 at x = 2, w = 1.
    assert_eq!(shared_weight::static_grad(), (12.0, 32.0));
    assert_eq!(shared_weight::tape_grad(), (12.0, 32.0));
}

#[test]
fn tutorial_means_4_5_3_13_5_42_6667() {
    let results = tutorial_means::results();
    let want = [
        (27.0, 4.5, 4),
        (18.0, 3.0, 4),
        (54.0, 13.5, 4),
        (288.0, 128.0 / 3.0, 9),
    ];
    assert_eq!(results.len(), want.len());
    for ((what, value, grad), (v, g, n)) in results.iter().zip(want) {
        assert!(close(*value, v, 1e-12), "{what}: {value}");
        assert_eq!(grad.len(), n, "{what}");
        assert!(
            grad.as_slice().iter().all(|&x| close(x, g, 1e-12)),
            "{what}: {grad:?}"
        );
    }
    assert_eq!(format!("{:.4}", results[3].2.as_slice()[0]), "42.6667");
}

#[test]
fn vjp_seeds_match_the_tutorials() {
    let results = vjp_seeds::results();
    let want: Vec<Vec<f64>> = vec![
        vec![0.0, 4.0, 8.0, 12.0],
        vec![6.0, 12.0],
        vec![6.0, 120.0],
        vec![2.0],
        vec![200.0],
        vec![2222.0],
        vec![2.0, 22.0, 222.0, 2222.0],
        vec![2222.0],
        vec![1.0, 1.0],
        vec![100.0, 100.0],
        vec![1111.0, 1111.0],
        vec![1.0, 1.0, 11.0, 11.0, 111.0, 111.0, 1111.0, 1111.0],
        vec![26.0, 1240.0],
        vec![4.0],
        vec![16.0, 32.0, 48.0],
        vec![16.0, 16.0, 16.0],
    ];
    assert_eq!(results.len(), want.len());
    for ((what, got), want) in results.iter().zip(&want) {
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn descent_with_and_without_detach() {
    let third = 1.0 / 3.0;
    for (a, b) in [
        descent_detach::descend(descent_detach::loss_grad),
        descent_detach::descend_on_tape(false),
    ] {
        assert!(close(a, third, 1e-6) && close(b, -third, 1e-6), "{a} {b}");
    }
    for (a, b) in [
        descent_detach::descend(descent_detach::loss_detached_grad),
        descent_detach::descend_on_tape(true),
    ] {
        assert!(close(a, 1.0, 1e-6) && b.abs() < 1e-6, "{a} {b}");
    }
}

#[test]
fn control_flow_gradient_is_f_over_a() {
    for a in [-0.4315, 0.4315, 3.0, -250.0, 1e-3] {
        let (y, g, ratio) = control_flow::gradient(a);
        assert_eq!(y, control_flow::f(a));
        assert_eq!(g, ratio, "a = {a}");
        assert_eq!(control_flow::f_grad(a), (y, g), "a = {a}");
    }
    // The tutorial's draw: 12 doublings of 2a, then the 100x branch.
    assert_eq!(control_flow::gradient(-0.4315).1, 409600.0);
}

#[test]
fn custom_gradients() {
    let (y, dw) = custom_gradient::static_result();
    assert!(close(y, 1.4f64.exp() + 1.0, 1e-12), "{y}");
    // x e^{w x} from the hand-written exp VJP, plus x from the straight-through round.
    assert!(close(dw, 2.0 * 1.4f64.exp() + 2.0, 1e-12), "{dw}");
    let (s, g, names) = custom_gradient::tape_result();
    assert!(close(s, 1.0 + 0.5f64.exp() + 2f64.exp(), 1e-12));
    assert_eq!(g, vec![0.0, 0.5f64.exp(), 2f64.exp()]);
    assert_eq!(
        names,
        [
            "SumBackward",
            "MyExpBackward",
            "MyReluBackward",
            "AccumulateGrad"
        ]
    );
}

#[test]
fn profiler_table_counts_the_tutorial_ops() {
    let (out, grad, prof) = profiler::profile();
    assert_eq!(out, 288.0);
    assert!(close(grad, 128.0 / 3.0, 1e-12));
    let count = |name: &str| prof.row(name).map_or(0, |r| r.forward_count);
    assert_eq!(
        (count("mul"), count("add"), count("powi"), count("mean")),
        (2, 1, 1, 1)
    );
    let table = prof.to_string();
    assert!(table.contains("Name") && table.contains("mul"), "{table}");
}

#[test]
fn seed_function_all_ways_agree() {
    let (x1, x2) = (1.5, 0.5);
    let (y, (d1, d2)) = seed_function::f_grad(x1, x2);
    assert_eq!(y, seed_function::f(x1, x2));
    let (h1, h2) = seed_function::by_hand(x1, x2);
    assert!(close(d1, h1, 1e-14) && close(d2, h2, 1e-14));
    assert!(close(d2, 1.6165488003791768, 1e-14), "{d2}");
    let (ty, t1, t2) = seed_function::tape_grad(x1, x2);
    assert!(close(ty, y, 1e-15) && close(t1, d1, 1e-14) && close(t2, d2, 1e-14));
    let (fwd, central) = seed_function::finite_differences(x1, x2, 1e-4);
    assert!((fwd - d2).abs() < 1e-4 && (central - d2).abs() < 1e-8);
    let (_, (g1, g2, gc)) = seed_function::g_grad(x1, x2, 1.0);
    assert_eq!(
        [g1, g2, gc].map(|v| format!("{v:.4}")),
        ["0.7328", "0.1165", "0.2007"]
    );
    assert_eq!(seed_function::detach_grad(false), vec![3.0, 3.0]);
    assert_eq!(seed_function::detach_grad(true), vec![2.0, 2.0]);
    assert_eq!(seed_function::no_grad_result(), (4.0, false));
}

#[test]
fn graph_mechanics() {
    let (s, names, g) = graph_mechanics::abs_sum();
    assert_eq!(s, 10.0);
    assert_eq!(names, ["SumBackward", "AbsBackward", "AccumulateGrad"]);
    assert_eq!(g, vec![1.0, -1.0, 1.0, -1.0]);
    let (q, g, dot) = graph_mechanics::norm();
    assert_eq!(q, 3.0);
    assert!(close(g[0], 1.0 / 3.0, 1e-15) && close(g[1], 2.0 / 3.0, 1e-15));
    assert!(
        dot.starts_with("digraph") && dot.contains('x') && dot.contains("NormBackward"),
        "{dot}"
    );
    let leaves = graph_mechanics::leaves();
    assert_eq!(
        leaves,
        (
            true,
            false,
            None,
            "AddBackward".into(),
            "MulBackward".into(),
            true,
            false,
            2.0
        )
    );
    let (loss, shapes, dot) = graph_mechanics::mlp();
    assert!(loss > 0.0 && loss.is_finite());
    assert_eq!(shapes, vec![vec![20, 10], vec![20], vec![5, 20], vec![5]]);
    for name in [
        "w1",
        "b1",
        "w2",
        "b2",
        "loss",
        "TanhBackward",
        "MatmulBackward",
    ] {
        assert!(dot.contains(name), "{name} missing from\n{dot}");
    }
}

#[test]
fn dynamic_graph_loss_decreases() {
    let (losses, shape) = dynamic_graph::train(3);
    assert_eq!(shape, vec![64, 10]);
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
}

#[test]
fn plotted_derivatives_match() {
    let s = plot_sin::samples(201);
    assert!(plot_sin::max_error(&s) < 1e-15);
    let s = plot_exercise::samples(200);
    assert_eq!(s.len(), 401);
    assert!(plot_exercise::max_rel_error(&s) < 1e-12);
}

/// The training loss on the tape, to check the static gradient `train` uses.
#[adjoint::differentiable(tape, wrt(w1, b1, w2, b2))]
fn loss_on_tape(
    w1: &adjoint::Tensor,
    b1: &adjoint::Tensor,
    w2: &adjoint::Tensor,
    b2: &adjoint::Tensor,
    x: &adjoint::Tensor,
    y: &adjoint::Tensor,
) -> f64 {
    let h = (x.matmul(w1) + b1).tanh();
    let z = h.matmul(w2) + b2;
    z.exp().sum_axis(1).ln().mean() - (y * &z).sum_axis(1).mean()
}

#[test]
fn train_loss_static_gradient_matches_the_tape() {
    use adjoint::Tensor;
    let data = train::Digits::load();
    let idx: Vec<usize> = (0..24).map(|i| i * 7).collect();
    let (x, y) = data.batch(&idx);
    let w1 = Tensor::randn(&[64, 32], 1) * 0.125;
    let b1 = Tensor::randn(&[32], 2) * 0.1;
    let w2 = Tensor::randn(&[32, 10], 3) * 0.2;
    let b2 = Tensor::randn(&[10], 4) * 0.1;
    let (l, g) = train::loss_grad(&w1, &b1, &w2, &b2, &x, &y);
    let (lt, gt) = loss_on_tape_grad(&w1, &b1, &w2, &b2, &x, &y);
    assert!(close(l, lt, 1e-12), "{l} {lt}");
    for (a, b) in [(&g.0, &gt.0), (&g.1, &gt.1), (&g.2, &gt.2), (&g.3, &gt.3)] {
        assert_eq!(a.shape(), b.shape());
        for (p, q) in a.as_slice().iter().zip(b.as_slice()) {
            assert!(close(*p, *q, 1e-10), "{p} {q}");
        }
    }
}

#[test]
fn train_reaches_90_percent() {
    // Fewer epochs than the example's 30 (tests run unoptimised); 8 are enough.
    let trained = train::train(8, |_, _| {});
    assert_eq!(trained.epochs.len(), 8);
    assert!(trained.epochs[7].loss < trained.epochs[0].loss);
    assert!(trained.test_accuracy > 0.9, "{}", trained.test_accuracy);
}

#[test]
fn gradient_penalty_matches_finite_differences_and_descends() {
    let params = gradient_penalty::initial_params();
    let err = gradient_penalty::check(&params);
    assert!(err < 1e-6, "{err}");
    let trace = gradient_penalty::descend(30, 0.05);
    let (first, last) = (trace[0], trace[trace.len() - 1]);
    assert!(
        last.0 < first.0 && last.1 < first.1,
        "{first:?} -> {last:?}"
    );
}
