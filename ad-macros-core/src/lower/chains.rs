//! Iterator chains over slices, buffers and ranges, lowered to loops: the chain is
//! a [`Stream`] (a range of positions and a function giving the items at a
//! position), adaptors transform it, and a terminal (`sum`, `product`, `fold`, or a
//! `for` over it) becomes an [`Op::For`] whose body computes the items, with the
//! closures inlined.
//!
//! Before/after, for `x.iter().zip(y.iter()).map(|(a, b)| a * b).sum::<f64>()`:
//!
//! ```text
//! %2 = len %0; %3 = len %1; %4 = min %2 %3
//! for %5 in 0..%4 carry %6 = 0.0 {
//!   %7 = %0[%5]; %8 = %1[%5]; %9 = %7 * %8; %10 = %6 + %9
//!   yield %10
//! }
//! ```

use super::{Lower, Slot};
use crate::ir::{BinOp, Id, Op, Region, Ty};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Pat};

/// The items of a stream at one position (inside the loop body being built).
pub(super) type Items = Box<dyn Fn(&mut Lower<'_>, Id) -> Vec<Id>>;

/// A sequence of items: positions `lo..hi` (walked backwards when `rev`, stepped by
/// `step`), and the items at each position.
pub(super) struct Stream {
    pub lo: Id,
    pub hi: Id,
    pub step: Option<Id>,
    pub rev: bool,
    pub items: Items,
}

/// The methods that make an expression a chain rather than a plain loop header.
const ADAPTORS: &[&str] = &[
    "zip",
    "map",
    "skip",
    "take",
    "windows",
    "chunks",
    "copied",
    "cloned",
    "into_iter",
    "sum",
    "product",
    "fold",
];

/// Whether `e` uses an iterator adaptor (so a `for` over it is lowered as a stream).
pub(super) fn is_chain(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) => {
            ADAPTORS.contains(&m.method.to_string().as_str())
                || is_chain(&m.receiver)
                // A `for` header counts `enumerate` only over a plain walk.
                || (m.method == "enumerate" && walks_otherwise(&m.receiver))
        }
        Expr::Paren(p) => is_chain(&p.expr),
        _ => false,
    }
}

/// Whether an iterator is reversed or stepped somewhere (`rev`, `step_by`).
fn walks_otherwise(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) => {
            m.method == "rev" || m.method == "step_by" || walks_otherwise(&m.receiver)
        }
        Expr::Paren(p) => walks_otherwise(&p.expr),
        _ => false,
    }
}

impl Lower<'_> {
    pub(super) fn int_lit(&mut self, v: usize, span: Span) -> Id {
        let lit = proc_macro2::Literal::usize_unsuffixed(v);
        self.opaque(quote::quote!(#lit), Ty::Int, span)
    }

    fn int_bin(&mut self, op: BinOp, a: Id, b: Id, span: Span) -> Id {
        self.push(Op::Binary(op, a, b), Ty::Int, span)
    }

    /// `::core::cmp::min(a, b)` on integers.
    fn int_min(&mut self, a: Id, b: Id, span: Span) -> Id {
        let idx = self.func.paths.len() as u32;
        self.func.paths.push(syn::parse_quote!(::core::cmp::min));
        self.func.arg_refs.push(vec![false, false]);
        self.push(
            Op::Call {
                path: idx,
                args: vec![a, b],
                vjp: false,
            },
            Ty::Int,
            span,
        )
    }

    fn is_zero(&self, id: Id) -> bool {
        self.func.int_literal(id) == Some(0)
    }

    /// `i + off`, without the addition when `off` is the literal 0.
    fn offset(&mut self, i: Id, off: Id, span: Span) -> Id {
        if self.is_zero(off) {
            i
        } else {
            self.int_bin(BinOp::Add, i, off, span)
        }
    }

    /// The stream an expression denotes, or `None` (with an error reported).
    pub(super) fn stream(&mut self, e: &Expr) -> Option<Stream> {
        let span = e.span();
        match e {
            Expr::Paren(p) => self.stream(&p.expr),
            Expr::Group(g) => self.stream(&g.expr),
            Expr::Range(r) => {
                let (Some(a), Some(b)) = (&r.start, &r.end) else {
                    self.not_yet(r, "a range in an iterator chain needs both ends on the static path of #[differentiable]");
                    return None;
                };
                let lo = self.expr(a, Some(Ty::Int));
                let mut hi = self.expr(b, Some(Ty::Int));
                if matches!(r.limits, syn::RangeLimits::Closed(_)) {
                    let one = self.int_lit(1, span);
                    hi = self.int_bin(BinOp::Add, hi, one, span);
                }
                Some(Stream {
                    lo,
                    hi,
                    step: None,
                    rev: false,
                    items: Box::new(|_, i| vec![i]),
                })
            }
            Expr::Reference(r) if r.mutability.is_none() => self.stream(&r.expr),
            Expr::MethodCall(m) => self.adaptor(m),
            _ => self.memory_stream(e),
        }
    }

    /// The elements of a slice or buffer.
    fn memory_stream(&mut self, e: &Expr) -> Option<Stream> {
        let x = self.expr(e, None);
        if !self.func.node(x).ty.is_memory() {
            if !self.refused(x) {
                self.not_yet(e, "an iterator chain on the static path of #[differentiable] walks a range, a slice, a `Vec` or an array of floats");
            }
            return None;
        }
        let span = e.span();
        let lo = self.int_lit(0, span);
        let hi = self.len_of(x, span);
        Some(Stream {
            lo,
            hi,
            step: None,
            rev: false,
            items: Box::new(move |lw, i| vec![lw.load(x, i, span)]),
        })
    }

    fn adaptor(&mut self, m: &syn::ExprMethodCall) -> Option<Stream> {
        let name = m.method.to_string();
        let span = m.method.span();
        let plain = |s: &Stream| s.step.is_none() && !s.rev;
        match (name.as_str(), m.args.len()) {
            ("iter" | "into_iter" | "copied" | "cloned", 0) => self.stream(&m.receiver),
            ("map", 1) => {
                let closure = self.closure_arg(&m.args[0], 1)?;
                let mut s = self.stream(&m.receiver)?;
                let prev = s.items;
                s.items = Box::new(move |lw, i| {
                    let vals = prev(lw, i);
                    vec![lw.inline_closure(&closure, &[vals])]
                });
                Some(s)
            }
            ("zip", 1) => {
                let a = self.stream(&m.receiver)?;
                let b = self.stream(&m.args[0])?;
                if !plain(&a) || !plain(&b) {
                    self.not_yet(&m.method, "`zip` of a reversed or stepped iterator is not supported by the static path of #[differentiable] yet");
                    return None;
                }
                let na = self.int_bin(BinOp::Sub, a.hi, a.lo, span);
                let nb = self.int_bin(BinOp::Sub, b.hi, b.lo, span);
                let hi = self.int_min(na, nb, span);
                let lo = self.int_lit(0, span);
                let (la, lb, ia, ib) = (a.lo, b.lo, a.items, b.items);
                Some(Stream {
                    lo,
                    hi,
                    step: None,
                    rev: false,
                    items: Box::new(move |lw, i| {
                        let pa = lw.offset(i, la, span);
                        let pb = lw.offset(i, lb, span);
                        let mut v = ia(lw, pa);
                        let w = ib(lw, pb);
                        // A pair: the tuple pattern of a closure or `for` splits it.
                        v.extend(w);
                        v
                    }),
                })
            }
            ("enumerate", 0) => {
                let mut s = self.stream(&m.receiver)?;
                // The count of position `i`: how many positions the walk made before it,
                // from `lo` up or from `hi - 1` down, in steps.
                let (lo, hi, step, rev, prev) = (s.lo, s.hi, s.step, s.rev, s.items);
                s.items = Box::new(move |lw, i| {
                    let from = if rev {
                        let one = lw.int_lit(1, span);
                        let last = lw.int_bin(BinOp::Sub, hi, one, span);
                        lw.int_bin(BinOp::Sub, last, i, span)
                    } else if lw.is_zero(lo) {
                        i
                    } else {
                        lw.int_bin(BinOp::Sub, i, lo, span)
                    };
                    let k = match step {
                        Some(st) => lw.int_bin(BinOp::Div, from, st, span),
                        None => from,
                    };
                    let mut v = vec![k];
                    v.extend(prev(lw, i));
                    v
                });
                Some(s)
            }
            ("rev", 0) => {
                let mut s = self.stream(&m.receiver)?;
                if s.step.is_some() {
                    self.not_yet(&m.method, "`rev` after `step_by` is not supported by the static path of #[differentiable] yet");
                    return None;
                }
                s.rev = !s.rev;
                Some(s)
            }
            ("skip" | "take", 1) => {
                let mut s = self.stream(&m.receiver)?;
                if s.step.is_some() {
                    self.not_yet(&m.method, format!("`{name}` after `step_by` is not supported by the static path of #[differentiable] yet"));
                    return None;
                }
                // m = min(k, hi - lo) positions, from the end walked first.
                let k = self.expr(&m.args[0], Some(Ty::Int));
                let n = self.int_bin(BinOp::Sub, s.hi, s.lo, span);
                let m = self.int_min(k, n, span);
                match (name == "skip", s.rev) {
                    (true, false) => s.lo = self.int_bin(BinOp::Add, s.lo, m, span),
                    (false, false) => s.hi = self.int_bin(BinOp::Add, s.lo, m, span),
                    (true, true) => s.hi = self.int_bin(BinOp::Sub, s.hi, m, span),
                    (false, true) => s.lo = self.int_bin(BinOp::Sub, s.hi, m, span),
                }
                Some(s)
            }
            ("step_by", 1) => {
                let mut s = self.stream(&m.receiver)?;
                if s.step.is_some() {
                    self.not_yet(
                        &m.method,
                        "`step_by` twice is not supported by the static path of #[differentiable]",
                    );
                    return None;
                }
                s.step = Some(self.expr(&m.args[0], Some(Ty::Int)));
                Some(s)
            }
            ("windows" | "chunks", 1) => {
                let x = self.expr(&m.receiver, None);
                if !self.func.node(x).ty.is_memory() {
                    if !self.refused(x) {
                        self.error(&m.receiver, format!("`{name}` on the static path of #[differentiable] is of a slice, `Vec` or array of floats"));
                    }
                    return None;
                }
                let w = self.expr(&m.args[0], Some(Ty::Int));
                let len = self.len_of(x, span);
                let one = self.int_lit(1, span);
                let lo = self.int_lit(0, span);
                let windows = name == "windows";
                let hi = if windows {
                    // len + 1 - min(w, len + 1) windows
                    let l1 = self.int_bin(BinOp::Add, len, one, span);
                    let m = self.int_min(w, l1, span);
                    self.int_bin(BinOp::Sub, l1, m, span)
                } else {
                    // (len + w - 1) / w chunks
                    let a = self.int_bin(BinOp::Add, len, w, span);
                    let b = self.int_bin(BinOp::Sub, a, one, span);
                    self.int_bin(BinOp::Div, b, w, span)
                };
                Some(Stream {
                    lo,
                    hi,
                    step: None,
                    rev: false,
                    items: Box::new(move |lw, i| {
                        let (start, end) = if windows {
                            (i, lw.int_bin(BinOp::Add, i, w, span))
                        } else {
                            let s = lw.int_bin(BinOp::Mul, i, w, span);
                            let e = lw.int_bin(BinOp::Add, s, w, span);
                            (s, lw.int_min(e, len, span))
                        };
                        vec![lw.view(x, start, Some(end), span)]
                    }),
                })
            }
            _ => {
                self.not_yet(&m.method, format!("the iterator method `{name}` is not supported by the static path of #[differentiable] yet; write the loop out"));
                None
            }
        }
    }

    /// A closure argument taking `arity` parameters, owned (it is inlined where the
    /// loop body is built).
    fn closure_arg(&mut self, e: &Expr, arity: usize) -> Option<syn::ExprClosure> {
        let e = match e {
            Expr::Paren(p) => &*p.expr,
            e => e,
        };
        match e {
            Expr::Closure(c) if c.inputs.len() == arity => {
                let mut names = Vec::new();
                super::assigned_in_expr(&c.body, &mut names);
                if let Some(n) = names.iter().find(|n| self.lookup(n).is_some()) {
                    self.not_yet(c, format!("this closure assigns `{n}`; the static path of #[differentiable] inlines closures that only compute a value"));
                    return None;
                }
                Some(c.clone())
            }
            other => {
                self.error(other, format!("an iterator adaptor here takes a closure of {arity} parameter(s) on the static path of #[differentiable]"));
                None
            }
        }
    }

    /// The value of closure `c` applied to `args` (each argument one or several values:
    /// a pair binds a tuple pattern), inlined.
    pub(super) fn inline_closure(&mut self, c: &syn::ExprClosure, args: &[Vec<Id>]) -> Id {
        let scope = self.env.len();
        for (pat, vals) in c.inputs.iter().zip(args) {
            self.bind_values(pat, vals);
        }
        let expect = match &c.output {
            syn::ReturnType::Type(_, t) => crate::parse::classify(t).map(|(k, _)| k),
            syn::ReturnType::Default => None,
        };
        let v = self.expr(&c.body, expect);
        self.env.truncate(scope);
        v
    }

    /// Binds a pattern to values: a name (or `&name`, `_`, `name: T`) to one value, a
    /// tuple pattern to as many.
    pub(super) fn bind_values(&mut self, pat: &Pat, vals: &[Id]) {
        match pat {
            Pat::Reference(r) => self.bind_values(&r.pat, vals),
            Pat::Paren(p) => self.bind_values(&p.pat, vals),
            Pat::Type(t) => self.bind_values(&t.pat, vals),
            Pat::Tuple(t) if t.elems.len() == vals.len() => {
                for (p, &v) in t.elems.iter().zip(vals) {
                    self.bind_values(p, &[v]);
                }
            }
            Pat::Tuple(t) if t.elems.len() == 2 && vals.len() > 2 => {
                // `(i, (a, b))` after `zip(..).enumerate()`: the first value, then the rest.
                self.bind_values(&t.elems[0], &vals[..1]);
                self.bind_values(&t.elems[1], &vals[1..]);
            }
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() && vals.len() == 1 => {
                let name = pi.ident.to_string();
                self.func.nodes[vals[0].idx()]
                    .hint
                    .get_or_insert_with(|| name.clone());
                self.env.push(Slot {
                    name,
                    id: Some(vals[0]),
                    closure: None,
                });
            }
            Pat::Wild(_) => {}
            other => {
                self.error(other, "this pattern does not match the items of the iterator on the static path of #[differentiable]");
            }
        }
    }

    /// A terminal of a chain: `sum`, `product` or `fold`, as a loop carrying the
    /// accumulator. `None` when `m` is not a chain terminal.
    pub(super) fn chain_terminal(
        &mut self,
        m: &syn::ExprMethodCall,
        expect: Option<Ty>,
    ) -> Option<Id> {
        let name = m.method.to_string();
        let (is_fold, arity) = match name.as_str() {
            "sum" | "product" => (false, 0),
            "fold" => (true, 2),
            _ => return None,
        };
        if m.args.len() != arity || !is_chain_or_memory(&m.receiver) {
            return None;
        }
        let span = m.method.span();
        let turbofish = m.turbofish.as_ref().and_then(|t| match t.args.first() {
            Some(syn::GenericArgument::Type(t)) => crate::parse::classify(t).map(|(k, _)| k),
            _ => None,
        });
        let ft = turbofish
            .or(expect)
            .and_then(Ty::float)
            .unwrap_or(self.sig.float);
        let (init, closure) = if is_fold {
            let init = self.expr(&m.args[0], Some(Ty::Float(ft)));
            let Some(c) = self.closure_arg(&m.args[1], 2) else {
                return Some(self.push(Op::Error, Ty::Float(ft), span));
            };
            (init, Some(c))
        } else {
            let v = if name == "sum" { 0.0 } else { 1.0 };
            (self.push(Op::Const(v), Ty::Float(ft), span), None)
        };
        let Some(s) = self.stream(&m.receiver) else {
            return Some(self.push(Op::Error, Ty::Float(ft), span));
        };
        let init_ty = self.func.node(init).ty;
        let index = self.push_arg(0, Ty::Int, span);
        let acc = self.push_arg(1, init_ty, span);
        self.regions.push(Vec::new());
        let items = (s.items)(self, index);
        let next = match &closure {
            Some(c) => self.inline_closure(c, &[vec![acc], items]),
            None => {
                let op = if name == "sum" {
                    BinOp::Add
                } else {
                    BinOp::Mul
                };
                match items.as_slice() {
                    [v] => self.push(Op::Binary(op, acc, *v), init_ty, span),
                    _ => {
                        self.cx.not_yet_at(
                            span,
                            format!("`{name}` of pairs; `map` them to one value first"),
                        );
                        acc
                    }
                }
            }
        };
        let nodes = self.regions.pop().unwrap_or_default();
        let body = Region {
            args: vec![index, acc],
            nodes,
            yields: vec![next],
        };
        let node = self.push(
            Op::For {
                lo: s.lo,
                hi: s.hi,
                inclusive: false,
                step: s.step,
                rev: s.rev,
                back: false,
                inits: vec![init],
                body,
                exit: None,
                trips: None,
            },
            Ty::Tuple,
            span,
        );
        Some(self.push(Op::Proj(node, 0), init_ty, span))
    }
}

/// Whether a terminal's receiver is a chain (`x.iter()..`) rather than, say, a
/// tensor (`t.sum()`).
fn is_chain_or_memory(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) => {
            let n = m.method.to_string();
            matches!(
                n.as_str(),
                "iter"
                    | "into_iter"
                    | "zip"
                    | "map"
                    | "enumerate"
                    | "rev"
                    | "skip"
                    | "take"
                    | "step_by"
                    | "windows"
                    | "chunks"
                    | "copied"
                    | "cloned"
                    // Adaptors the chains do not take: reported on their name.
                    | "filter"
                    | "filter_map"
                    | "flat_map"
                    | "flatten"
                    | "chain"
                    | "scan"
                    | "take_while"
                    | "skip_while"
                    | "map_while"
                    | "inspect"
                    | "peekable"
                    | "cycle"
            )
        }
        Expr::Paren(p) => is_chain_or_memory(&p.expr),
        Expr::Range(_) => true,
        _ => false,
    }
}
