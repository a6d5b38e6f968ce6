//! The constructs that neither the one IR nor the tape takes, reported on their spans
//! before either runs, so that they get one message whatever the route.

use crate::ctxt::Ctxt;
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::Expr;

/// Reports `unsafe` blocks, `async` blocks and closures, `.await`, and items other
/// than `const` (`fn`, `struct`, ...) inside the body.
pub fn check(cx: &Ctxt, block: &syn::Block) {
    Checker { cx }.visit_block(block);
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
            // A `const` is a value the body reads (both paths take it).
            syn::Item::Const(_) => return,
            syn::Item::Fn(f) => &f.sig.fn_token as &dyn ToTokens,
            other => other as &dyn ToTokens,
        };
        self.cx.error_spanned_by(
            what.to_token_stream(),
            format!("{NEITHER} items inside the function other than `const`; move the item out of the function"),
        );
    }
}
