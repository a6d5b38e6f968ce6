//! The `inspect` feature: `NAME_graph_dot()` and `NAME_adjoint_source()`.
//! Run with `cargo test --features inspect --test inspect`.
#![cfg(feature = "inspect")]

use adjoint::prelude::*;

#[differentiable]
fn seed(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

#[differentiable(wrt(w))]
fn neuron(x: f64, w: f64, b: f64) -> f64 {
    (x * w + b).relu()
}

#[differentiable(tape)]
fn on_tape(x: f64) -> f64 {
    x.sin() * x
}

#[test]
fn graph_names_the_parameters_and_outputs() {
    let dot = seed_graph_dot();
    assert!(dot.starts_with("digraph"), "{dot}");
    for needle in [
        "label=\"x1\"",
        "label=\"x2\"",
        "dseed/dx1",
        "dseed/dx2",
        "sin",
        "exp",
        "cluster_forward",
        "cluster_adjoint",
    ] {
        assert!(dot.contains(needle), "{needle} missing from\n{dot}");
    }
    assert_eq!(seed(1.5, 0.5), seed_grad(1.5, 0.5).0);
    // Only `w` is differentiated: one gradient sink.
    assert_eq!(neuron(3.0, 2.0, 1.0), 7.0);
    assert_eq!(neuron_grad(3.0, 2.0, 1.0).1, 3.0);
    let dot = neuron_graph_dot();
    assert!(
        dot.contains("dneuron/dw") && !dot.contains("dneuron/db"),
        "{dot}"
    );
}

#[test]
fn source_is_the_emitted_rust() {
    let src = seed_adjoint_source();
    assert!(src.contains("fn seed_grad"), "{src}");
    assert!(src.contains("fn seed_vjp"), "{src}");
    assert!(src.contains("fn "), "{src}");
    // Pretty-printed: one statement per line.
    assert!(src.lines().count() > 5, "{src}");
}

#[test]
fn tape_functions_say_where_their_graph_is() {
    assert_eq!(on_tape(1.0), 1f64.sin());
    assert!(on_tape_graph_dot().contains("recorded at run time"));
    assert!(on_tape_adjoint_source().contains("fn on_tape_grad"));
    assert_eq!(on_tape_grad(1.0).1, 1f64.sin() + 1f64.cos());
}

#[differentiable]
fn looped(x: f64, n: usize) -> f64 {
    let mut y = x;
    for _ in 0..n {
        y = y.sin();
    }
    y
}

#[test]
fn looped_functions_show_the_loop_and_its_reverse() {
    // The one IR draws a loop like any node: the forward `for`, the reversed one, and
    // the stack that carries the overwritten value between them.
    let dot = looped_graph_dot();
    for needle in [r#"label="for\n"#, r#"label="for (reversed)\n"#, "pop s"] {
        assert!(dot.contains(needle), "{needle} not in {dot}");
    }
    assert!(looped_adjoint_source().contains("fn looped_vjp"));
    assert_eq!(looped(0.5, 1), looped_grad(0.5, 1).0);
    assert_eq!(looped_grad(0.5, 1).1, 0.5f64.cos());
}

#[differentiable(wrt(w))]
fn layer(w: &Tensor, x: &Tensor) -> f64 {
    x.matmul(w).tanh().sum()
}

#[test]
fn tensor_graphs_show_the_tensor_ops() {
    let dot = layer_graph_dot();
    for needle in [
        "label=\"w\"",
        "label=\"x\"",
        "matmul",
        "tanh",
        "dlayer/dw",
        "Tensor<f64>",
    ] {
        assert!(dot.contains(needle), "{needle} missing from\n{dot}");
    }
    let (w, x) = (Tensor::ones(&[2, 1]), Tensor::ones(&[1, 2]));
    assert_eq!(layer(&w, &x), layer_grad(&w, &x).0);
}

#[allow(deprecated)] // it takes the tape on purpose: the closure assigns `s`
#[differentiable]
fn with_closure(x: f64) -> f64 {
    let mut s = x;
    let mut add = |v: f64| s += v * v;
    add(x);
    s
}

// A closure that only computes a value is inlined: the graph is the static one.
#[differentiable]
fn with_pure_closure(x: f64) -> f64 {
    let sq = |v: f64| v * v;
    sq(x) + x
}

#[test]
fn routed_functions_name_the_reason() {
    let dot = with_closure_graph_dot();
    assert!(
        dot.contains("on the tape here: this closure assigns `s`"),
        "{dot}"
    );
    assert_eq!(with_closure(3.0), 12.0);
    assert_eq!(with_closure_grad(3.0), (12.0, 7.0));
    let dot = with_pure_closure_graph_dot();
    assert!(!dot.contains("on the tape"), "{dot}");
    assert!(dot.contains("dwith_pure_closure/dx"), "{dot}");
    assert_eq!(with_pure_closure(3.0), 12.0);
    assert_eq!(with_pure_closure_grad(3.0), (12.0, 7.0));
}
