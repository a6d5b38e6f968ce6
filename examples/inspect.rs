//! Seeing what the macro built, for the seed function of tutorial 004
//! `f(x1, x2) = (1 + sin x2) / (x2 + e^x1) + x1 x2`. With the `inspect` feature the
//! macro also emits `f_graph_dot()` (its forward and adjoint graph, Graphviz DOT) and
//! `f_adjoint_source()` (the code it generated, pretty-printed). This example writes
//! both to target/plots/, next to the tape's DOT export of the same function, and
//! renders each graph to SVG when Graphviz's `dot` is installed. A one-layer tensor
//! loss gets the same treatment.
//!
//! Run it with `cargo run --example inspect --features inspect`.

#[path = "common/mod.rs"]
mod common;

use adjoint::prelude::*;
use adjoint::tape::Tape;
use std::path::Path;
use std::process::Command;

/// The seed function.
#[differentiable]
pub fn f(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

/// A tensor function: one tanh layer and a squared-error loss, differentiated with
/// respect to the weights only.
#[differentiable(wrt(w, b))]
pub fn layer_loss(w: &Tensor, b: &Tensor, x: &Tensor, target: &Tensor) -> f64 {
    let y = (x.matmul(w) + b).tanh();
    (y - target).powi(2).mean()
}

/// The tape's graph of the same function at `(1.5, 0.5)`, leaves named `x1` and `x2`.
pub fn tape_dot() -> String {
    let tape: Tape = Tape::new();
    let x1 = tape.var(1.5).named("x1");
    let x2 = tape.var(0.5).named("x2");
    let y = ((x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2).named("f");
    tape.to_dot(&[y])
}

/// Renders `dot_file` to SVG beside it; `None` when Graphviz is not installed.
fn render(dot_file: &Path) -> Option<std::path::PathBuf> {
    let svg = dot_file.with_extension("svg");
    let status = Command::new("dot")
        .arg("-Tsvg")
        .arg(dot_file)
        .arg("-o")
        .arg(&svg)
        .status()
        .ok()?;
    status.success().then_some(svg)
}

fn main() {
    let dir = common::plots_dir();
    let files = [
        ("seed_static_graph.dot", f_graph_dot().to_string()),
        ("seed_tape_graph.dot", tape_dot()),
        ("seed_adjoint_source.rs", f_adjoint_source().to_string()),
        ("layer_static_graph.dot", layer_loss_graph_dot().to_string()),
        (
            "layer_adjoint_source.rs",
            layer_loss_adjoint_source().to_string(),
        ),
    ];
    println!("The code #[differentiable] emitted for f:\n");
    println!("{}", f_adjoint_source());
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("cannot write to target/plots");
        println!("wrote {}", path.display());
        if name.ends_with(".dot") {
            match render(&path) {
                Some(svg) => println!("rendered {}", svg.display()),
                None => {
                    println!("  (Graphviz `dot` not found: install graphviz to render it to SVG)")
                }
            }
        }
    }
}
