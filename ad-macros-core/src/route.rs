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
//!    for documentation and tests), and the static path when it contains none.
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

/// The constructs that send a function to the tape automatically: the static path
/// does not take them today, the tape does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Construct {
    /// A `&[f64]`, `Vec<f64>` or `[f64; N]` parameter (or `&Vec`, `&[f64; N]`).
    SliceParam,
    /// `inline(f)`: a call that runs as written on tape values.
    Inline,
    /// A closure `|x| ..`.
    Closure,
    /// A `for`, `while` or `loop`, or `break`/`continue`.
    Loop,
    /// `return` anywhere but as the last statement of the body.
    EarlyReturn,
    /// `match`, `if let`, `while let` or `let .. else`.
    Match,
    /// Indexing `a[i]`.
    Index,
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
}

impl Construct {
    /// How the crate docs name the construct.
    pub fn describe(self) -> &'static str {
        match self {
            Construct::SliceParam => "a slice, `Vec` or array parameter",
            Construct::Inline => "a call of a function named in `inline(..)`",
            Construct::Closure => "a closure",
            Construct::Loop => "a loop (`for`, `while`, `loop`, `break`, `continue`)",
            Construct::EarlyReturn => "an early `return`",
            Construct::Match => "`match`, `if let`, `while let` or `let .. else`",
            Construct::Index => "indexing",
            Construct::Macro => "a macro call",
            Construct::Tuple => "a tuple or a destructuring `let`",
            Construct::Field => "field access",
            Construct::LocalVec => "a local `Vec`",
            Construct::IntCall => "a call of an integer type's function",
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
    if let Some(p) = sig.params.iter().find(|p| matches!(p.kind, Ty::Slice(_))) {
        return Route::Tape(Reason::Construct(Construct::SliceParam, p.ty.span()));
    }
    if let Some(f) = args.inline.first() {
        return Route::Tape(Reason::Construct(Construct::Inline, f.span()));
    }
    let mut finder = Finder { found: None };
    let n = block.stmts.len();
    for (i, stmt) in block.stmts.iter().enumerate() {
        match stmt {
            // A `return` as the last statement is the static path's tail value.
            Stmt::Expr(Expr::Return(r), _) if i + 1 == n => {
                if let Some(e) = &r.expr {
                    finder.visit_expr(e);
                }
            }
            stmt => finder.visit_stmt(stmt),
        }
        if let Some((c, span)) = finder.found {
            return Route::Tape(Reason::Construct(c, span));
        }
    }
    Route::Static
}

/// Finds the first construct of [`Construct`] in source order.
struct Finder {
    found: Option<(Construct, Span)>,
}

impl Finder {
    fn hit(&mut self, c: Construct, tokens: impl ToTokens) {
        if self.found.is_none() {
            let span = tokens
                .into_token_stream()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            self.found = Some((c, span));
        }
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.found.is_some() {
            return;
        }
        match e {
            Expr::Closure(c) => self.hit(Construct::Closure, c.or1_token),
            Expr::ForLoop(f) => self.hit(Construct::Loop, f.for_token),
            Expr::While(w) => self.hit(Construct::Loop, w.while_token),
            Expr::Loop(l) => self.hit(Construct::Loop, l.loop_token),
            Expr::Break(b) => self.hit(Construct::Loop, b.break_token),
            Expr::Continue(c) => self.hit(Construct::Loop, c.continue_token),
            Expr::Return(r) => self.hit(Construct::EarlyReturn, r.return_token),
            Expr::Match(m) => self.hit(Construct::Match, m.match_token),
            Expr::Let(l) => self.hit(Construct::Match, l.let_token),
            Expr::Index(i) => self.hit(Construct::Index, i),
            Expr::Macro(m) => self.hit(Construct::Macro, &m.mac.path),
            Expr::Tuple(t) if !t.elems.is_empty() => self.hit(Construct::Tuple, t),
            Expr::Field(f) => self.hit(Construct::Field, f),
            Expr::Call(c) => {
                if let Expr::Path(p) = &*c.func {
                    let segs = &p.path.segments;
                    if segs.len() >= 2 {
                        let ty = segs[segs.len() - 2].ident.to_string();
                        if ty == "Vec" {
                            self.hit(Construct::LocalVec, p);
                        } else if is_int_type(&ty) {
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
        }
        visit::visit_local(self, local);
    }

    // Items are not part of the body's evaluation; [`check`] reports them.
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn is_int_type(name: &str) -> bool {
    matches!(
        name,
        "i8" | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
    )
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
    fn options_decide_first() {
        let f = "fn f(x: f64) -> f64 { for _ in 0..3 {} x }";
        assert!(matches!(route_of("static", f), Route::Static));
        let forced = route_of("tape", "fn f(x: f64) -> f64 { x }");
        assert!(matches!(forced, Route::Tape(Reason::Forced)));
    }

    #[test]
    fn tape_constructs_are_found() {
        let cases = [
            ("fn f(x: &[f64]) -> f64 { 0.0 }", Construct::SliceParam),
            ("fn f(x: [f64; 3]) -> f64 { 0.0 }", Construct::SliceParam),
            (
                "fn f(x: f64) -> f64 { let g = |t: f64| t; g(x) }",
                Construct::Closure,
            ),
            (
                "fn f(x: f64) -> f64 { let mut y = x; while y < 1.0 { y = y * 2.0 } y }",
                Construct::Loop,
            ),
            (
                "fn f(x: f64) -> f64 { if x > 0.0 { return x; } x * 2.0 }",
                Construct::EarlyReturn,
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
