//! The pipeline behind `#[differentiable]`, as a normal library so that tests and
//! benchmarks can call it on `proc_macro2` tokens (a proc-macro crate can export
//! nothing but macros). `ad-macros` is a thin wrapper around [`expand`].
//!
//! The stages, each on `proc_macro2`/`syn` types:
//!
//! ```text
//! args    #[differentiable(wrt(..), tape)]        -> args::Args
//! parse   syn::ItemFn signature                   -> parse::Signature
//! lower   syn::Block                              -> ir::Func (typed SSA, regions)
//! adjoint primal ir::Func + rules (one table)     -> primal + reverse sweep
//! simplify                                        -> folded, CSE'd, dead code removed
//! emit    ir::Func                                -> NAME_grad, NAME_vjp
//! tape    (#[differentiable(tape)])               -> the same signatures on the tape
//! fallback (on error)                             -> compile_error! + fn + stubs
//! ```
#![warn(missing_docs)]

pub mod adjoint;
pub mod args;
pub mod ctxt;
pub mod emit;
pub mod fallback;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod rules;
pub mod simplify;
pub mod tape;

use crate::ctxt::Ctxt;
use crate::emit::Which;
use crate::ir::Ty;
use proc_macro2::TokenStream;
use quote::quote;

/// Expands `#[differentiable(args)] item`: the function unchanged, then `NAME_grad`
/// (for a float result) and `NAME_vjp`. Never panics on user input: every problem
/// becomes a `compile_error!` spanned on the offending code.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[differentiable] applies to a function (`fn`)",
            );
            return fallback::expand(&item, None, err);
        }
    };
    let cx = Ctxt::new();
    let args = syn::parse2::<args::Args>(args).unwrap_or_else(|e| {
        cx.syn_error(e);
        args::Args::default()
    });
    let sig = parse::parse(&cx, &item_fn, &args);
    let companions = match &sig {
        Some(sig) if args.tape => tape::expand(sig, &item_fn.block),
        Some(sig) => static_path(&cx, sig, &item_fn.block),
        None => TokenStream::new(),
    };
    match cx.check() {
        Ok(()) => quote!(#item #companions),
        Err(err) => fallback::expand(&item, sig.as_ref(), err),
    }
}

/// The static expansion: lower, differentiate, simplify, emit, once per companion.
fn static_path(cx: &Ctxt, sig: &parse::Signature, block: &syn::Block) -> TokenStream {
    for p in &sig.params {
        if matches!(p.kind, Ty::Tensor(_)) {
            cx.error_spanned_by(&p.ty, format!(
                "tensor parameter `{}` is not supported by the static path of #[differentiable] yet; use #[differentiable(tape)]",
                p.ident
            ));
        }
    }
    if matches!(sig.ret_kind, Ty::Tensor(_)) {
        cx.error_spanned_by(&sig.ret, "a tensor result is not supported by the static path of #[differentiable] yet; use #[differentiable(tape)]");
    }
    if cx.has_errors() {
        return TokenStream::new();
    }
    let primal = lower::lower(cx, sig, block);
    if cx.has_errors() {
        return TokenStream::new();
    }
    let mut out = TokenStream::new();
    if matches!(sig.ret_kind, Ty::Float(_)) {
        let grad = simplify::run(&adjoint::build(&primal, sig, adjoint::Seed::One));
        out.extend(emit::emit(&grad, sig, Which::Grad));
    }
    let vjp = simplify::run(&adjoint::build(&primal, sig, adjoint::Seed::Param));
    out.extend(emit::emit(&vjp, sig, Which::Vjp));
    out
}

/// The IR of a function, for tests and inspection: the primal as lowered, then the
/// simplified gradient (seed 1). `Err` with the messages when the function is rejected.
pub fn ir(args: TokenStream, item: TokenStream) -> Result<(String, String), String> {
    let item_fn: syn::ItemFn = syn::parse2(item).map_err(|e| e.to_string())?;
    let cx = Ctxt::new();
    let args = match syn::parse2::<args::Args>(args) {
        Ok(a) => a,
        Err(e) => {
            cx.syn_error(e);
            args::Args::default()
        }
    };
    let result = parse::parse(&cx, &item_fn, &args).map(|sig| {
        let primal = lower::lower(&cx, &sig, &item_fn.block);
        let grad = simplify::run(&adjoint::build(&primal, &sig, adjoint::Seed::One));
        (primal.to_string(), grad.to_string())
    });
    match cx.check() {
        Ok(()) => result.ok_or_else(|| "no signature".to_string()),
        Err(e) => Err(e
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")),
    }
}
