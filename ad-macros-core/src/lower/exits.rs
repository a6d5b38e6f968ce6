//! `break`, `continue` and early `return` as flags, before lowering: the one IR has
//! loops that stop when a carried `bool` turns false ([`crate::ir::Op::For`]'s `exit`),
//! and no other jumps.
//!
//! Each exit sets a flag (`break` of loop `L`: `brk_L = true`; `continue`: `cont_L`;
//! `return e`: `ret = true; val = e`); the statements after one that may set a flag
//! run under `if !(flags) { .. }`; a loop whose body may set a flag that concerns it
//! starts its body with `if flags { break; }`, which lowering reads as the loop's exit
//! condition. Labels become flags too, so `break 'outer` needs nothing more. Before and
//! after, for a loop body:
//!
//! ```text
//! for i in 0..n {                      let mut brk_0 = false;
//!     if x[i] < 0.0 { break; }         for i in 0..n {
//!     s += x[i];                           if brk_0 { break; }
//! }                                        if x[i] < 0.0 { brk_0 = true; }
//!                                          if !(brk_0) { s += x[i]; }
//!                                      }
//! ```
//!
//! Exits are taken where they are statements (of blocks, `if` branches, `match` arms and
//! loop bodies); one inside an expression with a value (`let y = if c { return a } else
//! { b };`) is an error on its span.

use crate::ctxt::Ctxt;
use proc_macro2::Span;
use quote::{format_ident, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Block, Expr, Ident, Stmt};

/// The body with its exits turned into flags, or `None` when it has none besides a
/// trailing `return e`. `ret` is the function's result type.
pub(super) fn desugar(
    block: &Block,
    ret: &syn::Type,
    placeholder: Option<Expr>,
) -> Option<Result<Block, Ctxt>> {
    if !has_exit(block) {
        return None;
    }
    let mut d = Desugar {
        loops: Vec::new(),
        next: 0,
        returns: false,
        placeholder: placeholder.clone(),
        values: Vec::new(),
        errors: Ctxt::new(),
    };
    let stmts = d.stmts(&block.stmts, true);
    if d.errors.has_errors() {
        return Some(Err(d.errors));
    }
    let _ = d.errors.check();
    let mut out = Vec::new();
    if d.returns || !d.values.is_empty() {
        let span = block.span();
        let p = placeholder?;
        if d.returns {
            out.push(syn::parse_quote_spanned!(span=> let mut __adjoint_return: bool = false;));
            out.push(syn::parse_quote_spanned!(span=> let mut __adjoint_value: #ret = #p;));
        }
        for v in &d.values {
            out.push(syn::parse_quote_spanned!(span=> let mut #v: #ret = #p;));
        }
    }
    out.extend(stmts.0);
    Some(Ok(Block {
        brace_token: block.brace_token,
        stmts: out,
    }))
}

/// Whether the body has a `break`, `continue` or `return` (outside closures) other
/// than a `return` as its last statement.
fn has_exit(block: &Block) -> bool {
    struct Find(bool);
    impl<'ast> Visit<'ast> for Find {
        fn visit_expr_break(&mut self, _: &'ast syn::ExprBreak) {
            self.0 = true;
        }
        fn visit_expr_continue(&mut self, _: &'ast syn::ExprContinue) {
            self.0 = true;
        }
        fn visit_expr_return(&mut self, _: &'ast syn::ExprReturn) {
            self.0 = true;
        }
        fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut f = Find(false);
    let n = block.stmts.len();
    for (i, s) in block.stmts.iter().enumerate() {
        match s {
            Stmt::Expr(Expr::Return(r), _) if i + 1 == n => {
                if let Some(e) = &r.expr {
                    f.visit_expr(e);
                }
            }
            s => f.visit_stmt(s),
        }
    }
    f.0
}

struct Loop {
    label: Option<String>,
    /// The variable that `break value` sets (a `loop` that is the body's tail).
    value: Option<Ident>,
    brk: Ident,
    cont: Ident,
    /// Whether a `break` / `continue` of this loop was seen.
    breaks: bool,
    continues: bool,
}

struct Desugar {
    loops: Vec<Loop>,
    next: usize,
    /// Whether an early `return` was seen.
    returns: bool,
    /// A value of the result's type that stands in until an early `return` or a
    /// `break` with a value sets the real one (none for vector results).
    placeholder: Option<Expr>,
    /// The variables that hold the values of `loop`s that are the body's tail.
    values: Vec<Ident>,
    errors: Ctxt,
}

/// The flags a statement may set, which guard what follows it.
type Flags = Vec<Ident>;

fn union(into: &mut Flags, more: Flags) {
    for f in more {
        if !into.contains(&f) {
            into.push(f);
        }
    }
}

fn any(flags: &Flags, span: Span) -> Expr {
    syn::parse_quote_spanned!(span=> (#(#flags)||*))
}

impl Desugar {
    fn error(&mut self, span: Span, msg: &str) {
        self.errors.error_at(span, msg);
    }

    /// An exit that the tape takes as written.
    fn not_yet(&mut self, span: Span, msg: &str) {
        self.errors.not_yet_at(span, msg);
    }

    /// A statement list. `valued`: the list ends with the function's result (the body,
    /// or a branch of an `if` that is the body's tail), where `return e` is `e`.
    fn stmts(&mut self, stmts: &[Stmt], valued: bool) -> (Vec<Stmt>, Flags) {
        let mut out = Vec::new();
        let mut set = Flags::new();
        for (k, s) in stmts.iter().enumerate() {
            let last = k + 1 == stmts.len();
            let (new, flags, diverges) = self.stmt(s, valued && last, valued);
            out.extend(new);
            union(&mut set, flags.clone());
            if diverges {
                break;
            }
            let rest = &stmts[k + 1..];
            if flags.is_empty() || rest.is_empty() {
                continue;
            }
            let span = s.span();
            let (inner, more) = self.stmts(rest, valued);
            union(&mut set, more);
            let cond = any(&flags, span);
            if valued {
                // Only `return` reaches the body's own statements: its value stands
                // in for the rest.
                out.push(Stmt::Expr(
                    syn::parse_quote_spanned!(span=> if !#cond { #(#inner)* } else { __adjoint_value }),
                    None,
                ));
            } else {
                out.push(Stmt::Expr(
                    syn::parse_quote_spanned!(span=> if !#cond { #(#inner)* }),
                    None,
                ));
            }
            break;
        }
        (out, set)
    }

    /// One statement: its replacement, the flags it may set, and whether it always
    /// exits (what follows it is dead). `tail`: its value is the function's result.
    fn stmt(&mut self, s: &Stmt, tail: bool, valued: bool) -> (Vec<Stmt>, Flags, bool) {
        let (e, semi) = match s {
            Stmt::Expr(e, semi) => (e, *semi),
            other => {
                self.no_exit_inside(other);
                return (vec![other.clone()], Flags::new(), false);
            }
        };
        let span = e.span();
        match e {
            Expr::Break(b) => {
                let label = b.label.as_ref().map(|l| l.ident.to_string());
                let Some(l) = self.target(label.as_deref(), span) else {
                    return (vec![], Flags::new(), true);
                };
                self.loops[l].breaks = true;
                let f = self.loops[l].brk.clone();
                let mut out: Vec<Stmt> = Vec::new();
                if let Some(v) = &b.expr {
                    self.no_exit_inside_expr(v);
                    match self.loops[l].value.clone() {
                        Some(var) => out.push(syn::parse_quote_spanned!(span=> #var = #v;)),
                        None => {
                            self.not_yet(span, "`break` with a value is supported by the static path of #[differentiable] in a `loop` that is the body's last expression; assign the value to a variable before the `break`");
                            return (vec![], Flags::new(), true);
                        }
                    }
                }
                out.push(syn::parse_quote_spanned!(span=> #f = true;));
                (out, vec![f], true)
            }
            Expr::Continue(c) => {
                let label = c.label.as_ref().map(|l| l.ident.to_string());
                match self.target(label.as_deref(), span) {
                    Some(l) => {
                        self.loops[l].continues = true;
                        let f = self.loops[l].cont.clone();
                        (
                            vec![syn::parse_quote_spanned!(span=> #f = true;)],
                            vec![f],
                            true,
                        )
                    }
                    None => (vec![], Flags::new(), true),
                }
            }
            Expr::Return(r) => {
                let Some(v) = &r.expr else {
                    self.error(span, "`return` without a value in a #[differentiable] function; return the float result");
                    return (vec![], Flags::new(), true);
                };
                self.no_exit_inside_expr(v);
                if valued {
                    return (vec![Stmt::Expr((**v).clone(), None)], Flags::new(), true);
                }
                if self.placeholder.is_none() {
                    self.error(span, "an early `return` is supported by the static path of #[differentiable] in functions with a float or tensor result; make the value that of an `if`/`else`");
                    return (vec![], Flags::new(), true);
                }
                self.returns = true;
                let f = format_ident!("__adjoint_return", span = span);
                let out = vec![
                    syn::parse_quote_spanned!(span=> #f = true;),
                    syn::parse_quote_spanned!(span=> __adjoint_value = #v;),
                ];
                (out, vec![f], true)
            }
            Expr::If(i) => {
                let (new, flags) = self.if_(i, tail);
                (vec![Stmt::Expr(Expr::If(new), semi)], flags, false)
            }
            Expr::Block(b) if b.label.is_none() => {
                let (stmts, flags) = self.stmts(&b.block.stmts, tail);
                let mut nb = b.clone();
                nb.block.stmts = stmts;
                (vec![Stmt::Expr(Expr::Block(nb), semi)], flags, false)
            }
            Expr::Match(m) if !tail => {
                let mut nm = m.clone();
                let mut set = Flags::new();
                self.no_exit_inside_expr(&m.expr);
                for arm in &mut nm.arms {
                    if let Some((_, g)) = &arm.guard {
                        self.no_exit_inside_expr(g);
                    }
                    let stmts = match &*arm.body {
                        Expr::Block(b) if b.label.is_none() => b.block.stmts.clone(),
                        e => vec![Stmt::Expr(e.clone(), Some(Default::default()))],
                    };
                    let (stmts, flags) = self.stmts(&stmts, false);
                    union(&mut set, flags);
                    *arm.body = syn::parse_quote_spanned!(span=> { #(#stmts)* });
                }
                (vec![Stmt::Expr(Expr::Match(nm), semi)], set, false)
            }
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) => self.loop_(e, tail),
            e => {
                self.no_exit_inside_expr(e);
                (vec![s.clone()], Flags::new(), false)
            }
        }
    }

    fn if_(&mut self, i: &syn::ExprIf, tail: bool) -> (syn::ExprIf, Flags) {
        self.no_exit_inside_expr(&i.cond);
        let mut out = i.clone();
        let (stmts, mut set) = self.stmts(&i.then_branch.stmts, tail);
        out.then_branch.stmts = stmts;
        if let Some((e, else_)) = &i.else_branch {
            let new_else: Expr = match &**else_ {
                Expr::If(inner) => {
                    let (ni, flags) = self.if_(inner, tail);
                    union(&mut set, flags);
                    Expr::If(ni)
                }
                Expr::Block(b) => {
                    let (stmts, flags) = self.stmts(&b.block.stmts, tail);
                    union(&mut set, flags);
                    let mut nb = b.clone();
                    nb.block.stmts = stmts;
                    Expr::Block(nb)
                }
                other => other.clone(),
            };
            out.else_branch = Some((*e, Box::new(new_else)));
        }
        (out, set)
    }

    /// A loop: its body rewritten, the flags it declares before it, and the flags of
    /// outer loops or the function that its body may set.
    fn loop_(&mut self, e: &Expr, tail: bool) -> (Vec<Stmt>, Flags, bool) {
        let span = e.span();
        let (label, body) = match e {
            Expr::ForLoop(f) => (&f.label, &f.body),
            Expr::While(w) => (&w.label, &w.body),
            Expr::Loop(l) => (&l.label, &l.body),
            _ => return (vec![], Flags::new(), false),
        };
        match e {
            Expr::ForLoop(f) => self.no_exit_inside_expr(&f.expr),
            Expr::While(w) => self.no_exit_inside_expr(&w.cond),
            _ => {}
        }
        let n = self.next;
        self.next += 1;
        // The body's last expression is a `loop`: its value is that of its `break`.
        let value = (tail && matches!(e, Expr::Loop(_)) && self.placeholder.is_some())
            .then(|| format_ident!("__adjoint_loop_value_{}", n, span = span));
        if let Some(v) = &value {
            self.values.push(v.clone());
        }
        self.loops.push(Loop {
            value: value.clone(),
            label: label.as_ref().map(|l| l.name.ident.to_string()),
            brk: format_ident!("__adjoint_break_{}", n, span = span),
            cont: format_ident!("__adjoint_continue_{}", n, span = span),
            breaks: false,
            continues: false,
        });
        let (stmts, flags) = self.stmts(&body.stmts, false);
        let Some(l) = self.loops.pop() else {
            return (vec![], Flags::new(), false);
        };
        // The flags that concern an outer loop or the function leave the loop.
        let outer: Flags = flags
            .into_iter()
            .filter(|f| *f != l.brk && *f != l.cont)
            .collect();
        let mut new_body = Vec::new();
        let mut stop = outer.clone();
        if l.breaks {
            stop.insert(0, l.brk.clone());
        }
        if !stop.is_empty() {
            let cond = any(&stop, span);
            new_body.push(syn::parse_quote_spanned!(span=> if #cond { break; }));
        }
        if l.continues {
            let c = &l.cont;
            new_body.push(syn::parse_quote_spanned!(span=> let mut #c: bool = false;));
        }
        new_body.extend(stmts);
        let block = quote_spanned!(span=> { #(#new_body)* });
        let new_loop: Expr = match e {
            Expr::ForLoop(f) => {
                let (pat, iter) = (&f.pat, &f.expr);
                syn::parse_quote_spanned!(span=> for #pat in #iter #block)
            }
            Expr::While(w) => {
                let cond = &w.cond;
                syn::parse_quote_spanned!(span=> while #cond #block)
            }
            _ => syn::parse_quote_spanned!(span=> loop #block),
        };
        let mut out = Vec::new();
        if l.breaks {
            let b = &l.brk;
            out.push(syn::parse_quote_spanned!(span=> let mut #b: bool = false;));
        }
        match &value {
            Some(v) => {
                out.push(Stmt::Expr(new_loop, Some(Default::default())));
                // A `return` inside it (the only flag that leaves the body's tail).
                let tail: Expr = match outer.first() {
                    Some(ret) => {
                        syn::parse_quote_spanned!(span=> if #ret { __adjoint_value } else { #v })
                    }
                    None => syn::parse_quote_spanned!(span=> #v),
                };
                out.push(Stmt::Expr(tail, None));
            }
            None => out.push(Stmt::Expr(new_loop, None)),
        }
        (out, outer, false)
    }

    /// The loop a `break`/`continue` with this label (or none) leaves.
    fn target(&mut self, label: Option<&str>, span: Span) -> Option<usize> {
        let found = match label {
            None => self.loops.len().checked_sub(1),
            Some(l) => self
                .loops
                .iter()
                .rposition(|x| x.label.as_deref() == Some(l.trim_start_matches('\''))),
        };
        if found.is_none() {
            self.error(span, "this `break`/`continue` has no loop to leave");
        }
        found
    }

    fn no_exit_inside(&mut self, s: &Stmt) {
        let mut f = Inside::default();
        f.visit_stmt(s);
        if let Some(span) = f.found {
            self.not_yet(span, "an exit inside an expression is not supported by the static path of #[differentiable]; write it as a statement of its own (`if c { return x; }`, `if c { break; }`)");
        }
    }

    fn no_exit_inside_expr(&mut self, e: &Expr) {
        self.no_exit_inside(&Stmt::Expr(e.clone(), Some(Default::default())));
    }
}

/// Finds an exit that leaves the expression (not one of a loop inside it, not inside
/// a closure).
#[derive(Default)]
struct Inside {
    depth: usize,
    found: Option<Span>,
}

impl<'ast> Visit<'ast> for Inside {
    fn visit_expr_break(&mut self, b: &'ast syn::ExprBreak) {
        if self.depth == 0 || b.label.is_some() {
            self.found.get_or_insert(b.span());
        }
    }
    fn visit_expr_continue(&mut self, c: &'ast syn::ExprContinue) {
        if self.depth == 0 || c.label.is_some() {
            self.found.get_or_insert(c.span());
        }
    }
    fn visit_expr_return(&mut self, r: &'ast syn::ExprReturn) {
        self.found.get_or_insert(r.span());
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        self.depth += 1;
        self.visit_block(&f.body);
        self.depth -= 1;
    }
    fn visit_expr_while(&mut self, w: &'ast syn::ExprWhile) {
        self.visit_expr(&w.cond);
        self.depth += 1;
        self.visit_block(&w.body);
        self.depth -= 1;
    }
    fn visit_expr_loop(&mut self, l: &'ast syn::ExprLoop) {
        self.depth += 1;
        self.visit_block(&l.body);
        self.depth -= 1;
    }
}
