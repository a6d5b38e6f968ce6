//! Seeing what the macro built (the `inspect` feature): beside `NAME_grad` and
//! `NAME_vjp`, `#[differentiable]` also emits
//!
//! ```text
//! pub fn NAME_graph_dot() -> &'static str       // forward + adjoint graph, Graphviz DOT
//! pub fn NAME_adjoint_source() -> &'static str  // the emitted companions, pretty-printed
//! ```
//!
//! The graph is the IR of the gradient (seed 1) after simplification: the primal nodes
//! in a "forward" cluster, the reverse sweep in an "adjoint" cluster, parameters named
//! as in the signature, and one sink per output (`NAME` and `dNAME/dPARAM`). Only the
//! nodes the outputs depend on are drawn. A function that runs on the tape (forced by
//! `tape`, or routed there) gets a one-node graph saying so and why; its source is the
//! tape expansion.

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::ir::{Func, Id, Op, Origin, Ty};
use crate::parse::Signature;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::fmt::Write;

/// Appends `NAME_graph_dot` and `NAME_adjoint_source` to the `companions` already
/// emitted for `item`.
pub fn expand(
    sig: Option<&Signature>,
    item: &syn::ItemFn,
    args: &Args,
    companions: TokenStream,
) -> TokenStream {
    let Some(sig) = sig else {
        return companions;
    };
    let dot = graph_dot(sig, item, args);
    let source = pretty(&companions);
    let vis = &sig.vis;
    let dot_fn = format_ident!("{}_graph_dot", sig.ident);
    let source_fn = format_ident!("{}_adjoint_source", sig.ident);
    let dot_doc = format!(
        "The forward and adjoint graph that `#[differentiable]` built for [`{}`], in Graphviz DOT.",
        sig.ident
    );
    let source_doc = format!(
        "The code that `#[differentiable]` emitted beside [`{}`], pretty-printed.",
        sig.ident
    );
    quote! {
        #companions
        #[doc = #dot_doc]
        #[allow(dead_code)]
        #vis fn #dot_fn() -> &'static str {
            #dot
        }
        #[doc = #source_doc]
        #[allow(dead_code)]
        #vis fn #source_fn() -> &'static str {
            #source
        }
    }
}

/// The emitted code as formatted Rust; the raw tokens if they do not parse as a file.
fn pretty(tokens: &TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}

/// The DOT text of the function's gradient IR, or a placeholder when the static path
/// does not take it.
fn graph_dot(sig: &Signature, item: &syn::ItemFn, args: &Args) -> String {
    let name = sig.ident.to_string();
    if let Some(why) = crate::tape_reason(sig, args, &item.block) {
        return placeholder(
            &name,
            &format!("{why}: the graph is recorded at run time (Tape::to_dot)"),
        );
    }
    // A private sink: the real expansion has already reported (or not) every error.
    let cx = Ctxt::new();
    let primal = crate::lower::lower(&cx, sig, &item.block);
    let ok = !cx.has_errors();
    let _ = cx.check();
    if !ok {
        return placeholder(&name, "not taken by the static path");
    }
    let grad = crate::simplify::run(&crate::adjoint::build(
        &primal,
        sig,
        crate::adjoint::Seed::One,
    ));
    to_dot(&grad, sig)
}

fn placeholder(name: &str, why: &str) -> String {
    format!(
        "digraph {} {{\n  note [shape=note, label=\"{}\"];\n}}\n",
        quote_id(name),
        escape(why)
    )
}

/// Renders `func` (a gradient: outputs are the value, then one gradient per
/// differentiated parameter) as a DOT digraph.
pub fn to_dot(func: &Func, sig: &Signature) -> String {
    let live = live_nodes(func);
    let mut out = String::new();
    let name = sig.ident.to_string();
    let _ = writeln!(out, "digraph {} {{", quote_id(&name));
    let _ = writeln!(out, "  rankdir=LR;");
    let _ = writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11];");
    for (cluster, origin, title, color) in [
        ("cluster_forward", Origin::Primal, "forward", "#dbe9f6"),
        (
            "cluster_adjoint",
            Origin::Adjoint,
            "adjoint (reverse sweep)",
            "#fde2cf",
        ),
    ] {
        let _ = writeln!(out, "  subgraph {cluster} {{");
        let _ = writeln!(
            out,
            "    label=\"{title}\"; style=filled; color=\"{color}\";"
        );
        for (idx, node) in func.nodes.iter().enumerate() {
            if !live[idx] || node.origin != origin || matches!(node.op, Op::Param(_)) {
                continue;
            }
            let label = escape(&label(func, sig, Id(idx as u32)));
            if matches!(node.op, Op::Const(_) | Op::Opaque(_)) {
                let _ = writeln!(out, "    n{idx} [label=\"{label}\", shape=plaintext];");
            } else if node.ty == Ty::Opaque {
                // Bookkeeping the emitted code needs (a shape, a count): small and grey.
                let _ = writeln!(
                    out,
                    "    n{idx} [label=\"{label}\", shape=plaintext, fontsize=9, fontcolor=gray40];"
                );
            } else {
                let _ = writeln!(
                    out,
                    "    n{idx} [label=\"{label}\", shape=box, style=\"rounded,filled\", fillcolor=white];"
                );
            }
        }
        let _ = writeln!(out, "  }}");
    }
    // Parameters are the leaves, named as in the signature.
    for (idx, node) in func.nodes.iter().enumerate() {
        if let (true, Op::Param(p)) = (live[idx], &node.op) {
            let pname = param_name(sig, *p);
            let _ = writeln!(
                out,
                "  n{idx} [label=\"{}\", shape=ellipse, style=filled, fillcolor=\"#c7e9c0\"];",
                escape(&pname)
            );
        }
    }
    for (idx, node) in func.nodes.iter().enumerate() {
        if !live[idx] {
            continue;
        }
        for a in node.op.operands() {
            let style = if node.origin == Origin::Adjoint {
                " [color=\"#d95f0e\"]"
            } else {
                ""
            };
            let _ = writeln!(out, "  n{} -> n{idx}{style};", a.0);
        }
    }
    // Sinks: the value, then d NAME / d PARAM for each differentiated parameter.
    let mut sinks = vec![name.clone()];
    sinks.extend(
        sig.diff_params()
            .map(|(_, p)| format!("d{name}/d{}", p.ident)),
    );
    for (k, (id, label)) in func.outputs.iter().zip(&sinks).enumerate() {
        let fill = if k == 0 { "#fdd0a2" } else { "#fdae6b" };
        let _ = writeln!(
            out,
            "  out{k} [label=\"{}\", shape=doubleoctagon, style=filled, fillcolor=\"{fill}\"];",
            escape(label)
        );
        let _ = writeln!(out, "  n{} -> out{k};", id.0);
    }
    out.push_str("}\n");
    out
}

/// Which nodes the outputs depend on (structured nodes keep their regions alive).
fn live_nodes(func: &Func) -> Vec<bool> {
    let mut live = vec![false; func.nodes.len()];
    let mut stack: Vec<Id> = func.outputs.clone();
    while let Some(id) = stack.pop() {
        if id.idx() >= live.len() || live[id.idx()] {
            continue;
        }
        live[id.idx()] = true;
        let op = &func.node(id).op;
        stack.extend(op.operands());
        if let Op::If { then, else_, .. } = op {
            stack.extend(then.nodes.iter().chain(&else_.nodes));
        }
    }
    live
}

fn param_name(sig: &Signature, p: u32) -> String {
    sig.params
        .get(p as usize)
        .map_or_else(|| format!("param {p}"), |p| p.ident.to_string())
}

/// A short label for a node: its operation, without operand ids (the edges show them).
fn label(func: &Func, sig: &Signature, id: Id) -> String {
    let node = func.node(id);
    let op = match &node.op {
        Op::Param(p) => param_name(sig, *p),
        Op::Seed => "seed".to_string(),
        Op::Const(v) => format!("{v}"),
        Op::Opaque(i) => func
            .opaque
            .get(*i as usize)
            .map_or_else(|| "const".to_string(), |t| t.to_string()),
        Op::Neg(_) => "neg".to_string(),
        Op::Binary(b, _, _) => b.symbol().to_string(),
        Op::Math(m, _) => m.name().to_string(),
        Op::Detach(_) => "detach".to_string(),
        Op::Call { path, .. } => {
            let p = func.paths.get(*path as usize);
            p.map_or_else(|| "call".to_string(), |p| quote!(#p).to_string())
        }
        Op::CallGrad { index, .. } => format!("∂call/∂arg{index}"),
        Op::Proj(_, k) => format!(".{k}"),
        // A loop: its body is drawn with the other nodes; the reverse sweep's loop
        // walks the same indices backwards.
        Op::For { back, exit, .. } => match (back, exit.is_some()) {
            (false, false) => "for".to_string(),
            (false, true) => "loop (exit)".to_string(),
            (true, _) => "for (reversed)".to_string(),
        },
        Op::If { .. } => "if".to_string(),
        Op::Push(k, _) => format!("push s{k}"),
        Op::Pop(k) => format!("pop s{k}"),
        // Any other operation (new ones included): its variant name and the names
        // inside it (`Reduce(Mean, Id(3))` -> "reduce mean"), without ids.
        other => describe(&format!("{other:?}")),
    };
    match &node.hint {
        _ if matches!(node.op, Op::Const(_) | Op::Opaque(_)) => op,
        Some(hint) if !matches!(node.op, Op::Param(_)) => format!("{op}\n{hint}: {}", node.ty),
        _ => format!("{op}\n{}", node.ty),
    }
}

/// Lower-cased words of a `Debug` rendering: the variant, then any capitalised names
/// in it other than `Id`.
fn describe(debug: &str) -> String {
    let mut words = debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty());
    let mut out = words.next().unwrap_or("op").to_lowercase();
    for w in words {
        if w != "Id" && w.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push(' ');
            out.push_str(&w.to_lowercase());
        }
    }
    out
}

fn quote_id(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_inspect(item: TokenStream) -> String {
        crate::expand(TokenStream::new(), item).to_string()
    }

    #[test]
    fn describes_unknown_ops_without_ids() {
        assert_eq!(describe("Reduce(Mean, Id(3))"), "reduce mean");
        assert_eq!(describe("MatMul(Id(1), Id(2))"), "matmul");
    }

    #[test]
    fn emits_dot_and_source() {
        let out = expand_inspect(quote! {
            fn f(x1: f64, x2: f64) -> f64 {
                (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
            }
        });
        assert!(out.contains("f_graph_dot"), "{out}");
        assert!(out.contains("f_adjoint_source"), "{out}");
    }

    #[test]
    fn dot_names_parameters_and_outputs() {
        let item: syn::ItemFn = syn::parse2(quote! {
            fn f(x1: f64, x2: f64) -> f64 {
                (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
            }
        })
        .unwrap();
        let cx = Ctxt::new();
        let args = Args::default();
        let sig = crate::parse::parse(&cx, &item, &args).unwrap();
        cx.check().unwrap();
        let dot = graph_dot(&sig, &item, &args);
        for needle in [
            "label=\"x1\"",
            "label=\"x2\"",
            "df/dx1",
            "df/dx2",
            "sin",
            "cluster_adjoint",
        ] {
            assert!(dot.contains(needle), "{needle} missing from\n{dot}");
        }
    }
}
