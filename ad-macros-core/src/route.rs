//! Which expansion a function takes: the static path or the dynamic tape.
//!
//! The decision is one syntactic pass over the signature and the body, made before
//! anything is lowered, so it is deterministic and does not depend on the static
//! path's error messages. The rule, in order:
//!
//! 1. `#[differentiable(tape)]` takes the tape; `#[differentiable(static)]` takes the
//!    static path, where every construct of the list below is a compile error on its
//!    span (the static path's own message).
//! 2. Otherwise the function takes the tape when its signature or body contains one of
//!    the constructs of [`Construct`] (the first one found, in source order, is kept
//!    for the warning that the caller emits, [`crate::warn::tape_warning`], and for
//!    tests), and the static path when it contains none.
//!
//! Everything else (tensor parameters and tensor operations included) goes to the
//! static path, which reports what it cannot take as a compile error. Constructs that
//! neither path can take are reported by [`check`] before either runs.
//!
//! When the static path learns a construct (loops and slices are issue 6's static
//! half), its entry leaves [`Construct`] and the crate docs' list.

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::ir::Ty;
use crate::parse::Signature;
use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Pat, Stmt};

/// The expansion chosen for a function.
#[derive(Clone, Copy, Debug)]
pub enum Route {
    /// The static path (lower, adjoint, simplify, emit).
    Static,
    /// The dynamic tape, with the reason.
    Tape(Reason),
}

/// Why a function takes the tape.
#[derive(Clone, Copy, Debug)]
pub enum Reason {
    /// `#[differentiable(tape)]`.
    Forced,
    /// The first construct the static path does not take, and where it is.
    Construct(Construct, Span),
}

impl Reason {
    /// The construct that sent the function to the tape without being asked (no
    /// `tape` option, no `inline(..)`), and where it is: what the tape warning names.
    pub fn unasked(self) -> Option<(Construct, Span)> {
        match self {
            Reason::Construct(c, span) if c != Construct::Inline => Some((c, span)),
            _ => None,
        }
    }
}

/// The constructs that send a function to the tape automatically: the static path
/// does not take them today, the tape does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Construct {
    /// `inline(f)`: a call that runs as written on tape values.
    Inline,
    /// A closure `|x| ..`.
    Closure,
    /// A labeled loop, `break 'a` or `continue 'a`, or a labeled block.
    Label,
    /// A `for` over something else than a range (`a..b`, `a..=b`, `(a..b).rev()`) or a
    /// slice parameter (`s.iter()`, `&s`, `s.iter().enumerate()`), another use of an
    /// iterator than `s.iter().sum()`, or a sub-slice `&s[a..b]`.
    Iterator,
    /// A call of another function, or indexing something else than a slice parameter,
    /// in a body with tensors and loops, indexing, an early `return` or a slice
    /// parameter (the statement-level static path types every call as a float and
    /// indexes only slices).
    TensorControl,
    /// `match`, `if let`, `while let` or `let .. else`.
    Match,
    /// A macro call in the body (`vec![..]`, `assert!(..)`, `println!(..)`).
    Macro,
    /// A `let` whose pattern is not one name (`let (a, b) = ..`), or a tuple value.
    Tuple,
    /// Field access (`p.0`, `s.x`).
    Field,
    /// A local `Vec` (a `Vec<..>` annotation or a `Vec::..` call).
    LocalVec,
    /// A call of an associated function of an integer type (`usize::min(i, n)`):
    /// a call with a non-float result.
    IntCall,
    /// A local array (`let p = [a, b];`) used otherwise than element by element with
    /// literal indices (`p[0]`), as `p.len()` or as a call argument; or an array
    /// literal elsewhere than in such a `let` or as a call argument; or `[c; N]`.
    LocalArray,
    /// An `if`, a block or a loop inside an `if` or `while` condition, in a body with
    /// loops, indexing, an early exit or a slice parameter (the statement-level static
    /// path takes conditions without control flow only).
    ConditionFlow,
}

impl Construct {
    /// How the crate docs name the construct.
    pub fn describe(self) -> &'static str {
        match self {
            Construct::Inline => "a call of a function named in `inline(..)`",
            Construct::Closure => "a closure",
            Construct::Label => "a loop label",
            Construct::Iterator => {
                "an iterator other than a range or a slice parameter's `iter()`, or a sub-slice"
            }
            Construct::TensorControl => {
                "a call of another function, or indexing something else than a slice parameter, in a body with tensors and loops"
            }
            Construct::Match => "`match`, `if let`, `while let` or `let .. else`",
            Construct::Macro => "a macro call",
            Construct::Tuple => "a tuple or a destructuring `let`",
            Construct::Field => "field access",
            Construct::LocalVec => "a local `Vec`",
            Construct::IntCall => "a call of an integer type's function",
            Construct::LocalArray => {
                "a local array indexed at run time or used whole, an array literal that is not a call argument or a `let`, or `[c; N]`"
            }
            Construct::ConditionFlow => {
                "an `if`, block or loop inside an `if`/`while` condition, in a body with loops, indexing, early exits or a slice parameter"
            }
        }
    }
}

/// Chooses the expansion of a function whose signature parsed.
pub fn route(sig: &Signature, args: &Args, block: &syn::Block) -> Route {
    if args.tape {
        return Route::Tape(Reason::Forced);
    }
    if args.static_.is_some() {
        return Route::Static;
    }
    if let Some(f) = args.inline.first() {
        return Route::Tape(Reason::Construct(Construct::Inline, f.span()));
    }
    let mut finder = Finder {
        slices: sig
            .params
            .iter()
            .filter(|p| matches!(p.kind, Ty::Slice(_)))
            .map(|p| p.ident.to_string())
            .collect(),
        ..Finder::default()
    };
    visit_body(block, &mut finder);
    if let Some((c, span)) = finder.found {
        return Route::Tape(Reason::Construct(c, span));
    }
    // Loops and slices take the statement-level static path, which takes tensors but
    // not calls or tensor indexing among them.
    let slice = sig.params.iter().find(|p| matches!(p.kind, Ty::Slice(_)));
    let control = finder.control.or_else(|| slice.map(|p| p.ty.span()));
    let tensors = finder.tensor
        || matches!(sig.ret_kind, Ty::Tensor(_))
        || sig.params.iter().any(|p| matches!(p.kind, Ty::Tensor(_)));
    if let (Some(_), true, Some(span)) = (control, tensors, finder.tensor_control) {
        return Route::Tape(Reason::Construct(Construct::TensorControl, span));
    }
    if let (Some(_), Some(span)) = (control, finder.condition_flow) {
        return Route::Tape(Reason::Construct(Construct::ConditionFlow, span));
    }
    Route::Static
}

/// Finds the first construct of [`Construct`] in source order.
#[derive(Default)]
struct Finder {
    found: Option<(Construct, Span)>,
    /// The first loop, `break`, `continue`, early `return` or indexing.
    control: Option<Span>,
    /// Whether the body names `Tensor`.
    tensor: bool,
    /// The first call of a function other than `Tensor::..` or indexing of something
    /// else than a slice parameter: what the static path does not take among tensors.
    tensor_control: Option<Span>,
    /// The names of the slice parameters.
    slices: Vec<String>,
    /// The names bound by `let NAME = [..];` so far.
    arrays: Vec<String>,
    /// The first control flow inside an `if` or `while` condition.
    condition_flow: Option<Span>,
}

impl Finder {
    fn hit(&mut self, c: Construct, tokens: impl ToTokens) {
        if self.found.is_none() {
            self.found = Some((c, first_span(tokens)));
        }
    }

    /// A call argument the static path passes whole: a local array, an array literal,
    /// or a sub-slice `&s[a..b]` of a slice parameter.
    fn whole_arg_peek(&self, a: &Expr) -> bool {
        let (inner, by_ref) = match strip(a) {
            Expr::Reference(r) => (strip(&r.expr), true),
            e => (e, false),
        };
        match inner {
            Expr::Array(_) => true,
            _ if names(inner, &self.arrays) => true,
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && matches!(
                        m.method.to_string().as_str(),
                        "clone" | "to_vec" | "to_owned"
                    )
                    && names(&m.receiver, &self.slices) =>
            {
                true
            }
            Expr::Index(ix) if by_ref && names(&ix.expr, &self.slices) => matches!(
                strip(&ix.index),
                Expr::Range(r) if !matches!(r.limits, syn::RangeLimits::Closed(_))
            ),
            _ => false,
        }
    }

    /// Visits a call argument: the parts of one the static path passes whole (the
    /// elements of an array literal, the bounds of a sub-slice), or all of it.
    fn visit_arg(&mut self, a: &Expr) {
        if !self.whole_arg_peek(a) {
            return self.visit_expr(a);
        }
        let inner = match strip(a) {
            Expr::Reference(r) => strip(&r.expr),
            e => e,
        };
        match inner {
            Expr::Array(arr) => arr.elems.iter().for_each(|e| self.visit_expr(e)),
            Expr::Index(ix) => {
                if let Expr::Range(r) = strip(&ix.index) {
                    r.start
                        .iter()
                        .chain(&r.end)
                        .for_each(|e| self.visit_expr(e));
                }
            }
            _ => {}
        }
    }

    /// Notes control flow inside the condition `cond` of an `if` or `while`.
    fn condition(&mut self, cond: &Expr) {
        if self.condition_flow.is_none() {
            let mut scan = FlowScan(None);
            scan.visit_expr(cond);
            self.condition_flow = scan.0;
        }
    }

    fn control(&mut self, tokens: impl ToTokens) {
        if self.control.is_none() {
            self.control = Some(first_span(tokens));
        }
    }

    /// A `for` the static path takes: over a range or a slice's elements. Visits the
    /// parts of the iterator expression that are ordinary expressions.
    fn for_iter(&mut self, pat: &'_ Pat, e: &'_ Expr) -> bool {
        let e = strip(e);
        let (inner, rev) = match e {
            Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                (strip(&m.receiver), true)
            }
            _ => (e, false),
        };
        if let Expr::Range(r) = inner {
            let (Some(lo), Some(hi)) = (&r.start, &r.end) else {
                return false;
            };
            if !matches!(pat, Pat::Ident(_) | Pat::Wild(_)) {
                return false;
            }
            self.visit_expr(lo);
            self.visit_expr(hi);
            return true;
        }
        if rev {
            return false;
        }
        let (inner, enumerate) = match inner {
            Expr::MethodCall(m) if m.method == "enumerate" && m.args.is_empty() => {
                (strip(&m.receiver), true)
            }
            _ => (inner, false),
        };
        let base = match inner {
            Expr::MethodCall(m) if m.method == "iter" && m.args.is_empty() => strip(&m.receiver),
            Expr::Reference(r) if !enumerate => strip(&r.expr),
            other if !enumerate => other,
            _ => return false,
        };
        let one = |p: &Pat| match p {
            Pat::Ident(_) | Pat::Wild(_) => true,
            Pat::Reference(r) => matches!(&*r.pat, Pat::Ident(_) | Pat::Wild(_)),
            _ => false,
        };
        let pat_ok = if enumerate {
            matches!(pat, Pat::Tuple(t) if t.elems.len() == 2 && t.elems.iter().all(one))
        } else {
            one(pat)
        };
        pat_ok
            && matches!(base, Expr::Path(p) if p.path.get_ident().is_some_and(|i| self.slices.iter().any(|s| i == s)))
    }
}

/// Whether `e` is one of the names in `list`.
fn names(e: &Expr, list: &[String]) -> bool {
    matches!(strip(e), Expr::Path(p) if p.path.get_ident().is_some_and(|i| list.iter().any(|s| i == s)))
}

fn first_span(tokens: impl ToTokens) -> Span {
    tokens
        .into_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        e => e,
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.found.is_some() {
            return;
        }
        match e {
            Expr::Closure(c) => self.hit(Construct::Closure, c.or1_token),
            Expr::ForLoop(f) => {
                self.control(f.for_token);
                if f.label.is_some() {
                    self.hit(Construct::Label, &f.label);
                }
                if !self.for_iter(&f.pat, &f.expr) {
                    self.hit(Construct::Iterator, &f.expr);
                }
                self.visit_block(&f.body);
                return;
            }
            Expr::If(i) => self.condition(&i.cond),
            Expr::While(w) => {
                self.condition(&w.cond);
                self.control(w.while_token);
                if w.label.is_some() {
                    self.hit(Construct::Label, &w.label);
                }
            }
            Expr::Loop(l) => {
                self.control(l.loop_token);
                if l.label.is_some() {
                    self.hit(Construct::Label, &l.label);
                }
            }
            Expr::Block(b) if b.label.is_some() => self.hit(Construct::Label, &b.label),
            Expr::Break(b) => {
                self.control(b.break_token);
                if b.label.is_some() {
                    self.hit(Construct::Label, &b.label);
                }
            }
            Expr::Continue(c) => {
                self.control(c.continue_token);
                if c.label.is_some() {
                    self.hit(Construct::Label, &c.label);
                }
            }
            Expr::Return(r) => self.control(r.return_token),
            Expr::Index(i) if names(&i.expr, &self.arrays) => {
                let literal = matches!(
                    strip(&i.index),
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(_),
                        ..
                    })
                );
                if !literal {
                    self.hit(Construct::LocalArray, i);
                }
                self.control(i);
                return;
            }
            Expr::MethodCall(m)
                if m.method == "len" && m.args.is_empty() && names(&m.receiver, &self.arrays) =>
            {
                return;
            }
            Expr::Path(_) if names(e, &self.arrays) => self.hit(Construct::LocalArray, e),
            // A slice parameter's own methods (`x.last()`, `x.get(i)`, `x.clone()[0]`,
            // `x.first()`): the static path reads slices through `x[i]`, `x.len()`,
            // `x.iter()` and calls only.
            Expr::MethodCall(m)
                if names(&m.receiver, &self.slices)
                    && !matches!(m.method.to_string().as_str(), "len" | "is_empty" | "iter") =>
            {
                self.hit(Construct::Iterator, &m.method)
            }
            Expr::Array(a) => self.hit(Construct::LocalArray, a),
            // `[c; N]`: the statement-level path has no repeat arrays (found by the
            // tester with array buffers on: `b[i] -= e` on one was a compile error).
            Expr::Repeat(r) => self.hit(Construct::LocalArray, r),
            // Shapes and other array arguments of methods (`t.reshape(&[2, 3])`).
            Expr::MethodCall(m) if m.args.iter().any(|a| matches!(strip(a), Expr::Array(_)) || matches!(strip(a), Expr::Reference(r) if matches!(strip(&r.expr), Expr::Array(_)))) => {
                self.visit_expr(&m.receiver);
                for a in &m.args {
                    match strip(a) {
                        Expr::Array(arr) => arr.elems.iter().for_each(|e| self.visit_expr(e)),
                        Expr::Reference(r) => match strip(&r.expr) {
                            Expr::Array(arr) => arr.elems.iter().for_each(|e| self.visit_expr(e)),
                            e => self.visit_expr(e),
                        },
                        e => self.visit_expr(e),
                    }
                }
                return;
            }
            Expr::Index(i) if matches!(strip(&i.index), Expr::Range(_)) => {
                self.hit(Construct::Iterator, i)
            }
            Expr::Index(i) => {
                self.control(i);
                let slice = matches!(strip(&i.expr), Expr::Path(p) if p.path.get_ident().is_some_and(|id| self.slices.iter().any(|s| id == s)));
                if !slice && self.tensor_control.is_none() {
                    self.tensor_control = Some(first_span(i));
                }
            }
            Expr::MethodCall(m) if m.method == "sum" && m.args.is_empty() => {
                // `s.iter().sum()`: a summing loop on the static path.
                if let Expr::MethodCall(it) = strip(&m.receiver) {
                    if it.method == "iter" && it.args.is_empty() {
                        self.control(&it.method);
                        self.visit_expr(&it.receiver);
                        return;
                    }
                }
            }
            Expr::MethodCall(m)
                if matches!(
                    m.method.to_string().as_str(),
                    "iter" | "into_iter" | "iter_mut" | "zip" | "enumerate" | "fold"
                ) =>
            {
                self.hit(Construct::Iterator, &m.method)
            }
            Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor") => {
                self.tensor = true
            }
            Expr::Match(m) => self.hit(Construct::Match, m.match_token),
            Expr::Let(l) => self.hit(Construct::Match, l.let_token),
            Expr::Macro(m) => self.hit(Construct::Macro, &m.mac.path),
            Expr::Tuple(t) if !t.elems.is_empty() => self.hit(Construct::Tuple, t),
            Expr::Field(f) => self.hit(Construct::Field, f),
            Expr::Call(c) => {
                let tensor_ctor = matches!(&*c.func, Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor"));
                if !tensor_ctor && self.tensor_control.is_none() {
                    self.tensor_control = Some(first_span(&c.func));
                }
                if tensor_ctor {
                    // The statement-level path takes tensor constructors; the
                    // straight-line one does not. Shapes: `Tensor::zeros(&[2, 3])`.
                    self.control(c);
                    self.visit_expr(&c.func);
                    c.args.iter().for_each(|a| self.visit_arg(a));
                    return;
                }
                if c.args.iter().any(|a| self.whole_arg_peek(a)) {
                    // The static path lifts this call into its own statement, which
                    // needs the statement-level path.
                    self.control(c);
                    self.visit_expr(&c.func);
                    c.args.iter().for_each(|a| self.visit_arg(a));
                    return;
                }
                if let Expr::Path(p) = &*c.func {
                    let segs = &p.path.segments;
                    if segs.len() >= 2 {
                        let ty = segs[segs.len() - 2].ident.to_string();
                        if ty == "Vec" {
                            self.hit(Construct::LocalVec, p);
                        } else if crate::parse::is_int_type(&ty) {
                            self.hit(Construct::IntCall, p);
                        }
                    }
                }
            }
            _ => {}
        }
        visit::visit_expr(self, e);
    }

    fn visit_stmt_macro(&mut self, m: &'ast syn::StmtMacro) {
        self.hit(Construct::Macro, &m.mac.path);
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let pat = match &local.pat {
            Pat::Type(pt) => {
                if is_vec_type(&pt.ty) {
                    self.hit(Construct::LocalVec, &pt.ty);
                }
                if pt
                    .ty
                    .to_token_stream()
                    .into_iter()
                    .any(|t| t.to_string() == "Tensor")
                {
                    self.tensor = true;
                }
                &*pt.pat
            }
            pat => pat,
        };
        if !matches!(pat, Pat::Ident(pi) if pi.subpat.is_none()) {
            self.hit(Construct::Tuple, pat);
        }
        if let Some(init) = &local.init {
            if let Some((else_token, _)) = &init.diverge {
                self.hit(Construct::Match, else_token);
            }
            // `let p = [a, b];`: a local array, one scalar per element on the static path.
            if let (Pat::Ident(pi), Expr::Array(arr)) = (pat, strip(&init.expr)) {
                if pi.subpat.is_none() && init.diverge.is_none() {
                    self.control(arr);
                    arr.elems.iter().for_each(|e| self.visit_expr(e));
                    self.arrays.push(pi.ident.to_string());
                    return;
                }
            }
        }
        // A `let` that rebinds a local array's name ends it.
        if let Pat::Ident(pi) = pat {
            let name = pi.ident.to_string();
            if let Some(init) = &local.init {
                self.visit_expr(&init.expr);
            }
            self.arrays.retain(|a| *a != name);
            return;
        }
        visit::visit_local(self, local);
    }

    // Items are not part of the body's evaluation; [`check`] reports them.
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn is_vec_type(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Vec"),
        syn::Type::Reference(r) => is_vec_type(&r.elem),
        _ => false,
    }
}

/// Reports the constructs that neither path takes, on their spans: `unsafe` blocks,
/// `async` blocks and closures, `.await`, and items (`fn`, `struct`, ...) inside the
/// body. Runs before either expansion, so these get one message whatever the route.
pub fn check(cx: &Ctxt, block: &syn::Block) {
    let mut checker = Checker { cx };
    checker.visit_block(block);
}

struct Checker<'a> {
    cx: &'a Ctxt,
}

const NEITHER: &str = "neither the static path nor the tape of #[differentiable] can take";

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::Unsafe(u) => self.cx.error_spanned_by(
                u.unsafe_token,
                format!("{NEITHER} `unsafe` code; move it into a function the body calls, with a `_vjp` beside it"),
            ),
            Expr::Async(a) => self.cx.error_spanned_by(
                a.async_token,
                format!("{NEITHER} `async` blocks; differentiate a synchronous function and call it from async code"),
            ),
            Expr::Closure(c) if c.asyncness.is_some() => self.cx.error_spanned_by(
                c.asyncness,
                format!("{NEITHER} `async` closures; use a plain closure"),
            ),
            Expr::Await(a) => self.cx.error_spanned_by(
                a.await_token,
                format!("{NEITHER} `.await`; differentiate a synchronous function and call it from async code"),
            ),
            _ => {}
        }
        visit::visit_expr(self, e);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        let what = match item {
            syn::Item::Fn(f) => &f.sig.fn_token as &dyn ToTokens,
            other => other as &dyn ToTokens,
        };
        self.cx.error_spanned_by(
            what.to_token_stream(),
            format!("{NEITHER} items inside the function; move the item out of the function"),
        );
    }
}

/// Visits every statement of a function body, treating a `return e` that is the last
/// statement as its value `e`: that one `return` is the tail value, not an early exit.
pub(crate) fn visit_body<'ast, V: Visit<'ast>>(block: &'ast syn::Block, v: &mut V) {
    let n = block.stmts.len();
    for (i, stmt) in block.stmts.iter().enumerate() {
        match stmt {
            Stmt::Expr(Expr::Return(r), _) if i + 1 == n => {
                if let Some(e) = &r.expr {
                    v.visit_expr(e);
                }
            }
            stmt => v.visit_stmt(stmt),
        }
    }
}

/// The first `if`, block, loop or exit inside an expression (a condition).
struct FlowScan(Option<Span>);

impl<'ast> Visit<'ast> for FlowScan {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.0.is_none()
            && matches!(
                e,
                Expr::If(_)
                    | Expr::Block(_)
                    | Expr::Loop(_)
                    | Expr::ForLoop(_)
                    | Expr::While(_)
                    | Expr::Return(_)
                    | Expr::Break(_)
                    | Expr::Continue(_)
            )
        {
            self.0 = Some(e.span());
        }
        syn::visit::visit_expr(self, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(args: &str, item: &str) -> Route {
        let item: syn::ItemFn = syn::parse_str(item).unwrap();
        let args: Args = syn::parse_str(args).unwrap();
        let cx = Ctxt::new();
        let sig = crate::parse::parse(&cx, &item, &args);
        cx.check().unwrap();
        route(&sig.unwrap(), &args, &item.block)
    }

    fn construct(args: &str, item: &str) -> Option<Construct> {
        match route_of(args, item) {
            Route::Tape(Reason::Construct(c, _)) => Some(c),
            _ => None,
        }
    }

    #[test]
    fn straight_line_bodies_are_static() {
        let f = "fn f(x: f64, y: f64) -> f64 { let a = x * y; let b = if a > 0.0 { a.sin() } else { a }; return b * 2.0; }";
        assert!(matches!(route_of("", f), Route::Static));
        let t = "fn f(a: &Tensor, b: Tensor) -> f64 { (a.matmul(&b) * 2.0).relu().sum() }";
        assert!(matches!(route_of("", t), Route::Static));
    }

    #[test]
    fn loops_slices_and_early_exits_are_static() {
        for f in [
            "fn f(x: &[f64]) -> f64 { let mut s = 0.0; for i in 0..x.len() { s += x[i] } s }",
            "fn f(x: [f64; 3], v: Vec<f64>) -> f64 { x.iter().sum::<f64>() + v[0] }",
            "fn f(x: f64) -> f64 { let mut y = x; while y < 1.0 { y = y * 2.0 } y }",
            "fn f(x: f64) -> f64 { if x > 0.0 { return x; } x * 2.0 }",
            "fn f(x: &[f64]) -> f64 { let mut s = 0.0; for (i, &v) in x.iter().enumerate() { if v < 0.0 { continue; } s += v; if s > 9.0 { break; } } s }",
            "fn f(a: &Tensor) -> Tensor { let mut b = a * 2.0; while b.norm() < 1000.0 { b = b * 2.0; } if b.sum() > 0.0 { b } else { b * 100.0 } }",
            "fn f(x: f64) -> Tensor { let mut t = Tensor::ones(&[2]); while t.sum() < x { t = t * 2.0 } t }",
            "fn f(x: &[f64], t: &Tensor) -> f64 { x[0] * t.sum() }",
            // Calls with slice and array arguments (issue 10): sub-slices, array
            // literals and local arrays used element by element.
            "fn f(x: &[f64], b: f64) -> f64 { h(&x[1..], b) + h(&x[..2], b) + h(&x[1..3], b) }",
            "fn f(x: f64, y: f64) -> f64 { e([x, y, x * y]) + e(&[y, x, 1.0]) }",
            "fn f(x: f64, y: f64) -> f64 { let mut p = [x, y]; p[1] += x; e(p) + p[0] * p.len() as f64 }",
        ] {
            assert!(matches!(route_of("", f), Route::Static), "{f}");
        }
    }

    #[test]
    fn options_decide_first() {
        let f = "fn f(x: f64) -> f64 { for _ in 0..3 {} x }";
        assert!(matches!(route_of("static", f), Route::Static));
        let forced = route_of("tape", "fn f(x: f64) -> f64 { x }");
        assert!(matches!(forced, Route::Tape(Reason::Forced)));
    }

    #[test]
    fn tape_constructs_are_found() {
        let cases = [
            (
                "fn f(x: &[f64], t: &Tensor) -> f64 { x[0] * g(t) }",
                Construct::TensorControl,
            ),
            (
                "fn f(x: f64, t: &Tensor) -> f64 { let mut s = x; for i in 0..2 { s += t[i] } s }",
                Construct::TensorControl,
            ),
            (
                "fn f(x: f64) -> f64 { let g = |t: f64| t; g(x) }",
                Construct::Closure,
            ),
            (
                "fn f(x: f64) -> f64 { let mut y = x; 'a: loop { y = y * 2.0; break 'a; } y }",
                Construct::Label,
            ),
            (
                "fn f(x: &[f64]) -> f64 { let mut s = 0.0; for (a, b) in x.iter().zip(x.iter()) { s += a * b } s }",
                Construct::Iterator,
            ),
            (
                "fn f(x: &[f64]) -> f64 { let mut s = 0.0; for i in (0..4).step_by(2) { s += x[i] } s }",
                Construct::Iterator,
            ),
            (
                "fn f(x: f64, n: u8) -> f64 { match n { 0 => x, _ => 1.0 } }",
                Construct::Match,
            ),
            (
                "fn f(x: f64) -> f64 { let v = vec![x]; x }",
                Construct::Macro,
            ),
            (
                "fn f(x: f64) -> f64 { let (a, b) = (x, x); a * b }",
                Construct::Tuple,
            ),
            (
                "fn f(x: f64) -> f64 { let v: Vec<f64> = Vec::new(); x }",
                Construct::LocalVec,
            ),
            (
                "fn f(x: f64, n: usize) -> f64 { x.powi(usize::min(n, 3) as i32) }",
                Construct::IntCall,
            ),
            (
                "fn f(x: f64, i: usize) -> f64 { let p = [x, x]; p[i] }",
                Construct::LocalArray,
            ),
            (
                "fn f(x: f64) -> f64 { let p = [x, x]; let q = p; q[0] }",
                Construct::LocalArray,
            ),
            (
                "fn f(x: f64) -> f64 { [x, x][0] }",
                Construct::LocalArray,
            ),
            (
                "fn f(x: &[f64]) -> f64 { let s = &x[1..]; s[0] }",
                Construct::Iterator,
            ),
            (
                "fn f(x: f64) -> f64 { let mut s = x; while (if s > 0.5 { s } else { x }) < 2.0 { s = s * 2.0 } s }",
                Construct::ConditionFlow,
            ),
            (
                "fn f(x: &[f64]) -> f64 { if (if x[0] > 0.5 { x[0] } else { x[1] }) < 2.0 { x[0] } else { x[1] } }",
                Construct::ConditionFlow,
            ),
        ];
        for (f, c) in cases {
            assert_eq!(construct("", f), Some(c), "{f}");
        }
        assert_eq!(
            construct("inline(sq)", "fn f(x: f64) -> f64 { sq(x) }"),
            Some(Construct::Inline)
        );
    }

    #[test]
    fn neither_path_constructs_are_errors() {
        let item: syn::ItemFn =
            syn::parse_str("fn f(x: f64) -> f64 { fn g() {} unsafe { x } }").unwrap();
        let cx = Ctxt::new();
        check(&cx, &item.block);
        let err = cx.check().unwrap_err();
        assert_eq!(err.into_iter().count(), 2);
    }
}
