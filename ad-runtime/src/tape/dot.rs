//! Export of a result's backward graph to Graphviz DOT, in the manner of
//! torchviz's `make_dot`.

use super::graph::REQUIRES_GRAD;
use super::rules::Op;
use super::{Tape, Var};
use crate::float::Float;
use std::fmt::Write;

impl<T: Float> Tape<T> {
    /// The backward graph of `outputs` in Graphviz DOT: leaves that require a
    /// gradient are light-blue boxes with the user's name and the shape, each
    /// operation is a grey node named like PyTorch's (`MulBackward`), outputs
    /// are green, and an edge runs from each input to the operation that uses it.
    /// Constants are not drawn.
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// let tape: Tape = Tape::new();
    /// let x = tape.var(1.5).named("x1");
    /// let y = x.exp() * 2.0;
    /// let dot = tape.to_dot(&[y]);
    /// assert!(dot.contains("x1"));
    /// assert!(dot.contains("ExpBackward"));
    /// assert!(dot.starts_with("digraph"));
    /// ```
    pub fn to_dot(&self, outputs: &[Var<'_, T>]) -> String {
        // The arena stays borrowed throughout: nothing here is user code, as
        // custom operations' names were stored when they were recorded.
        let g = self.g();
        let mut seen = vec![false; g.nodes.len()];
        let mut stack: Vec<u32> = Vec::new();
        for v in outputs {
            assert!(std::ptr::eq(v.tape, self), "to_dot: a Var of another tape");
            v.node(&g);
            if g.nodes[v.idx() as usize].flags & REQUIRES_GRAD != 0 {
                stack.push(v.idx());
            }
        }
        let mut edges = Vec::new();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i as usize], true) {
                continue;
            }
            for p in g.inputs(i) {
                if g.nodes[p as usize].flags & REQUIRES_GRAD != 0 {
                    edges.push((p, i));
                    stack.push(p);
                }
            }
        }
        let shape = |i: u32| {
            let s = g.shape(i);
            let inner: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            if s.len() == 1 {
                format!("({},)", inner[0])
            } else {
                format!("({})", inner.join(", "))
            }
        };
        let mut out = String::new();
        out.push_str("digraph {\n");
        out.push_str("    graph [size=\"12,12\"]\n");
        out.push_str("    node [align=left fontname=monospace fontsize=10 height=0.2 ranksep=0.1 shape=box style=filled]\n");
        for (i, &s) in seen.iter().enumerate() {
            if !s {
                continue;
            }
            let i = i as u32;
            let n = g.nodes[i as usize];
            let is_output = outputs.iter().any(|v| v.idx() == i);
            let name = g.name(i).map(|s| format!("{s}\n")).unwrap_or_default();
            let (label, color) = if n.op == Op::Leaf {
                (format!("{name}{}", shape(i)), "lightblue")
            } else if is_output {
                (
                    format!("{name}{}\n{}", shape(i), g.op_name(i)),
                    "darkolivegreen1",
                )
            } else {
                (format!("{name}{}", g.op_name(i)), "lightgrey")
            };
            let label = label.replace('"', "\\\"").replace('\n', "\\n");
            let _ = writeln!(out, "    n{i} [label=\"{label}\" fillcolor={color}]");
        }
        edges.sort_unstable();
        edges.dedup();
        for (a, b) in edges {
            let _ = writeln!(out, "    n{a} -> n{b}");
        }
        out.push_str("}\n");
        out
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// [`Tape::to_dot`] of this one result.
    pub fn to_dot(&self) -> String {
        self.tape.to_dot(&[*self])
    }
}
