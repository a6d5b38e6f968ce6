//! The pipeline behind `#[differentiable]`, as a normal library so that tests and
//! benchmarks can call it on `proc_macro2` tokens (a proc-macro crate can export
//! nothing but macros). `ad-macros` is a thin wrapper around [`expand`].
//!
//! The stages, each on `proc_macro2`/`syn` types:
//!
//! ```text
//! args    #[differentiable(wrt(..), tape)]        -> args::Args
//! parse   syn::ItemFn signature                   -> parse::Signature
//! lower   syn::Block (exits as flags first)       -> ir::Func (typed SSA, regions, memory)
//! adjoint primal ir::Func + rules (one table)     -> primal + reverse sweep
//! simplify                                        -> folded, CSE'd, dead code removed
//! tangent primal, or primal + reverse sweep       -> forward sweep (NAME_jvp; NAME_hvp)
//! emit    ir::Func                                -> NAME_grad, NAME_vjp, NAME_jvp, NAME_hvp
//! second, dense (from the companions' signatures) -> NAME_grad_vjp .. NAME_jvp_jvp,
//!                                                    NAME_jacobian, NAME_hessian
//! decide  (when lower refuses the body)           -> the tape, or lower's errors
//! tape    (#[differentiable(tape)])               -> the same signatures on the tape
//! warn    (tape taken unasked)                    -> a `deprecated` warning on the construct
//! fallback (on error)                             -> compile_error! + fn + stubs
//! ```
//!
//! # The one IR
//!
//! Every function without `tape` or `inline(..)` is lowered into the one IR
//! ([`ir`](mod@ir)): SSA values; `if`, `for`, `while` and `loop` as regions whose
//! carried values are region arguments ([`ir::Op::For`], as MLIR's `scf.for` with
//! `iter_args`; a loop that can stop early carries the `bool` that keeps it going and
//! counts its iterations); `break`, `continue` (labeled too) and early `return`
//! rewritten into flags before lowering (`lower/exits.rs`); scalars and tensors
//! carried through loops; memory for slice parameters and local buffers (`vec![x; n]`,
//! `[x; N]`, `[a, b]`: alloc, load, store, len); views `&x[a..b]` and calls that pass
//! memory; `&mut` parameters and calls that pass `&mut` (a call writes memory in
//! place, its reverse calls `_vjp` with the arguments' values copied before it);
//! iterator chains and closures, inlined; debug statements (`println!`, `assert!`,
//! ...) as forward-only effects; tuples as aggregates of values in the lowering's
//! environment, tuple results ([`ir::Op::Pack`], a tuple seed) and calls of helpers
//! with tuple, array or `Vec` results (`lower/tuples.rs`). [`adjoint`] reverses it in place: a loop becomes the
//! same range walked backwards carrying the adjoints (only the iterations that ran,
//! for one that stopped early); the adjoint of a store is a read-and-zero of the
//! adjoint memory, that of a load an accumulate; each primal value of a loop body that
//! the reverse reads is recomputed when that is cheap and valid, else pushed on a
//! stack (accumulators are never saved).
//!
//! # Which functions take the tape
//!
//! The lowering decides. `#[differentiable(tape)]` and `inline(..)` always take the
//! tape. Otherwise every body is lowered into the one IR first, and when the lowering
//! refuses it, each of its refusals is of one of two kinds ([`ctxt`]):
//!
//! - a construct that the one IR does not take *yet* and the tape does (a closure that
//!   assigns an outer variable, `match` on tuples, a macro other than `vec!` and the
//!   debug ones, `filter` and the iterator adaptors the chains do not take, field
//!   access of a value other than a tuple or a constant parameter, a call whose
//!   result it cannot type, ...);
//! - a mistake, or a construct that neither path takes (`%` on floats, a method that
//!   neither path differentiates, a value used before it is assigned, ...).
//!
//! The function takes the tape exactly when every refusal is of the first kind, and
//! rustc then warns on the first refused construct, quoting the lowering's message
//! ([`warn::tape_warning`]). Under `#[differentiable(static)]` the refusals are the
//! errors, and those of the first kind add that the tape takes the construct; no other
//! message advises the tape. A function with a vector or tuple result or `&mut` parameters, or
//! one that passes `&mut` to a call, never takes the tape (it has no vector seed, and
//! would not see the writes): its refusals are errors.
//!
//! # Calls
//!
//! A call `g(args)` chains through `g_vjp`, which returns one gradient per float,
//! tensor, slice, `Vec` or array argument of the call, in order (the contract of every
//! `#[differentiable]` function, and of a hand-written `g_vjp`). A call with a slice,
//! sub-slice (`&s[a..]`), array literal or local buffer argument passes a view of its
//! memory; its adjoint adds `g_vjp`'s gradient into the argument's adjoint memory
//! ([`ir::Op::AccMem`]). Two compile-time checks keep a call from ever giving a gradient to the wrong
//! argument: the callee's gradients must match the arguments the macro knows are
//! floats (`__private::CallGrads`; a callee with `wrt(..)` that leaves out one of them
//! is an error at the call), and an argument whose type the macro cannot see (an
//! outside `const`) must not be a float (`__private::NotFloat`). A missing `g_vjp` is
//! rustc's "cannot find function `g_vjp`", on the call: the macro sees one function
//! at a time and stable Rust has no name lookup with a fallback that it could use to
//! say more without breaking glob imports of a real `g_vjp`.
//!
//! Neither path takes `unsafe` code, `async` blocks or closures, `.await`, or items
//! inside the body other than `const` ([`lower::check`]), nor the signatures that
//! [`parse`] rejects.

#![warn(missing_docs)]

pub mod adjoint;
pub mod args;
pub mod ctxt;
pub mod dense;
pub mod emit;
pub mod fallback;
#[cfg(feature = "inspect")]
pub mod inspect;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod rules;
pub mod second;
pub mod shapes;
pub mod simplify;
pub mod tangent;
pub mod tape;
pub mod warn;

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
    let (args, sig) = front(&cx, args, &item_fn);
    let companions = match &sig {
        Some(_) if cx.has_errors() => TokenStream::new(),
        Some(sig) => match decide(sig, &args, &item_fn.block) {
            Decision::Static(out) => out,
            Decision::Tape(why) => {
                let mut out = tape::expand(sig, &args, &item_fn.block);
                out.extend(second::jvp_via_vjp(sig));
                out.extend(dense::jacobian(sig));
                // `order = 2` on the tape: `tape::expand` wrote `_hvp` (double backward).
                match second_order(sig, &args, || Ok(TokenStream::new())) {
                    Ok(more) => out.extend(more),
                    Err(e) => cx.syn_error(e),
                }
                if let Some((span, msg)) = why {
                    // The function's own lint levels (`#[allow(deprecated)]`) cover it.
                    let lints = item_fn.attrs.iter().filter(|a| warn::is_lint_level(a));
                    out.extend(quote!(#(#lints)*));
                    out.extend(warn::tape_warning(
                        &sig.ident,
                        span,
                        &format!("here: {msg}"),
                    ));
                }
                out
            }
            Decision::Rejected(e) => {
                cx.syn_error(e);
                TokenStream::new()
            }
        },
        None => TokenStream::new(),
    };
    // The `inspect` feature's hook: the graph and source of what was just built.
    #[cfg(feature = "inspect")]
    let companions = inspect::expand(sig.as_ref(), &item_fn, &args, companions);
    match cx.check() {
        Ok(()) => quote!(#item #companions),
        Err(err) => fallback::expand(&item, sig.as_ref(), err),
    }
}

/// The stages before the route is chosen: the options, the signature, and the
/// constructs neither path takes. Their errors are left in `cx`.
fn front(
    cx: &Ctxt,
    args: TokenStream,
    item_fn: &syn::ItemFn,
) -> (args::Args, Option<parse::Signature>) {
    let args = syn::parse2::<args::Args>(args).unwrap_or_else(|e| {
        cx.syn_error(e);
        args::Args::default()
    });
    let sig = parse::parse(cx, item_fn, &args);
    lower::check(cx, &item_fn.block);
    (args, sig)
}

/// Where [`expand`] sends a function whose options, signature and body passed the
/// checks that come first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The one IR takes the body.
    Static,
    /// The tape: asked for (`tape`, `inline(..)`) when `None`, else unasked, with the
    /// lowering's first refusal (what the warning quotes).
    Tape(Option<String>),
}

/// What [`expand`] does with a function once its signature parsed.
enum Decision {
    /// The one IR's companions.
    Static(TokenStream),
    /// The tape; unasked, with where and why the lowering refused the body.
    Tape(Option<(proc_macro2::Span, String)>),
    /// The errors: the lowering refused a construct that the tape does not take, or
    /// the function cannot take the tape (`static`, a vector result, `&mut`).
    Rejected(syn::Error),
}

/// Routes on the lowering's result. A function takes the tape when it asks for it, or
/// when every construct the lowering refused is one the tape takes ("not yet",
/// [`ctxt::Ctxt::not_yet_at`]) and nothing else keeps it off the tape.
fn decide(sig: &parse::Signature, args: &args::Args, block: &syn::Block) -> Decision {
    let refusal = match one_ir(sig, args, block) {
        Ok(Ok(out)) => return Decision::Static(out),
        Ok(Err(e)) => return Decision::Rejected(e),
        Err(r) => r,
    };
    // Only the one IR takes vector and tuple results: say what it does not take.
    if sig.ret_kind.is_memory() || sig.ret_kind == Ty::Tuple {
        let what = if sig.ret_kind == Ty::Tuple {
            "tuple"
        } else {
            "vector"
        };
        return Decision::Rejected(match refusal {
            Some(r) => r.reworded(|e, not_yet| {
                if not_yet {
                    format!("{e}; a function with a {what} result has no tape fallback (the tape has no {what} seed), so the body must take the static path")
                } else {
                    e.to_string()
                }
            }),
            None => syn::Error::new(
                sig.ident.span(),
                format!("a function with a {what} result cannot take the tape; remove `tape`/`inline(..)`"),
            ),
        });
    }
    // `&mut` parameters and calls that pass `&mut`: the one IR only (the tape would not
    // see the writes).
    let passed = passes_mut(block);
    if sig.has_mut() || passed.is_some() {
        return Decision::Rejected(match (refusal, sig.params.iter().find(|p| p.mutable)) {
            (Some(r), _) => r.plain(),
            (None, Some(p)) => syn::Error::new_spanned(&p.ty, "a function with `&mut` parameters cannot take the tape, which would not see the writes; remove `tape`/`inline(..)`"),
            (None, None) => syn::Error::new_spanned(
                passed,
                "a function that passes `&mut` to a call cannot take the tape, which would not see the writes; remove `tape`/`inline(..)`",
            ),
        });
    }
    match refusal {
        // The one IR is not tried when the tape is asked for.
        None => Decision::Tape(None),
        // `order = 2` needs the static path, and the tape is no way out there.
        Some(r) if args.static_.is_some() || !r.tape_takes() => Decision::Rejected(r.errors()),
        Some(r) => {
            let first = r.first();
            Decision::Tape(Some((first.span(), first.to_string())))
        }
    }
}

/// Why a function whose signature parsed runs on the tape, or `None` when it does
/// not (the one IR takes it, or it is rejected).
#[cfg(feature = "inspect")]
fn tape_reason(sig: &parse::Signature, args: &args::Args, block: &syn::Block) -> Option<String> {
    match decide(sig, args, block) {
        Decision::Tape(None) => Some("#[differentiable(tape)]".to_string()),
        Decision::Tape(Some((_, msg))) => Some(format!("on the tape here: {msg}")),
        Decision::Static(_) | Decision::Rejected(_) => None,
    }
}

/// The route [`expand`] takes for `#[differentiable(args)] item`, so that a test can
/// pin every function's route and notice when one moves. `Err` with the messages when
/// the function is rejected (its options, its signature, a construct neither path
/// takes, or the lowering's errors).
pub fn route_of(args: TokenStream, item: TokenStream) -> Result<Route, String> {
    let item_fn: syn::ItemFn = syn::parse2(item).map_err(|e| e.to_string())?;
    let cx = Ctxt::new();
    let (args, sig) = front(&cx, args, &item_fn);
    cx.check().map_err(messages)?;
    let sig = sig.ok_or_else(|| "no signature".to_string())?;
    match decide(&sig, &args, &item_fn.block) {
        Decision::Static(_) => Ok(Route::Static),
        Decision::Tape(why) => Ok(Route::Tape(why.map(|(_, msg)| msg))),
        Decision::Rejected(e) => Err(messages(e)),
    }
}

/// Which expansion [`expand`] uses for a function, for the census of the corpus:
/// `"one IR"`, `"tape"`, or `"rejected"`, with the one IR's first message when it did
/// not take the body.
pub fn expansion_of(
    args: TokenStream,
    item: TokenStream,
) -> Result<(&'static str, String), String> {
    Ok(match route_of(args, item) {
        Ok(Route::Static) => ("one IR", String::new()),
        Ok(Route::Tape(None)) => ("tape", "tape or inline(..) asked".to_string()),
        Ok(Route::Tape(Some(why))) => ("tape", why),
        Err(e) => ("rejected", e.lines().next().unwrap_or_default().to_string()),
    })
}

/// The first `&mut` argument of a call in a body (`g(&mut buf)`), if any.
fn passes_mut(block: &syn::Block) -> Option<syn::Expr> {
    struct Finder(Option<syn::Expr>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
            if self.0.is_none() {
                self.0 = c
                    .args
                    .iter()
                    .find(|a| matches!(a, syn::Expr::Reference(r) if r.mutability.is_some()))
                    .cloned();
            }
            syn::visit::visit_expr_call(self, c);
        }
    }
    let mut f = Finder(None);
    syn::visit::Visit::visit_block(&mut f, block);
    f.0
}

fn messages(e: syn::Error) -> String {
    e.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one-IR expansion: `Err` when the lowering does not take the body, with its
/// refusal (`None` when the one IR was not tried: `tape` or `inline(..)`).
/// `Ok(Err(..))` when the body lowers but a companion that `order = 2` asks for cannot
/// be built.
fn one_ir(
    sig: &parse::Signature,
    args: &args::Args,
    block: &syn::Block,
) -> Result<Result<TokenStream, syn::Error>, Option<ctxt::Refusal>> {
    if args.tape || !args.inline.is_empty() {
        return Err(None);
    }
    let scratch = Ctxt::new();
    let primal = lower::lower(&scratch, sig, block);
    scratch.refusal().map_err(Some)?;
    Ok(companions(&primal, sig, args))
}

/// `NAME_grad` (for a float result) and `NAME_vjp` of a lowered primal. For a function
/// of floats `NAME_grad` calls `NAME_vjp` ([`emit::grad_via_vjp`]).
fn companions(
    primal: &ir::Func,
    sig: &parse::Signature,
    args: &args::Args,
) -> Result<TokenStream, syn::Error> {
    let mut out = TokenStream::new();
    let vjp = simplify::run(&adjoint::build(primal, sig, adjoint::Seed::Param));
    let vjp = emit::emit(&vjp, sig, Which::Vjp);
    if adjoint::scalar_seed(sig) {
        out.extend(emit::grad_via_vjp(sig));
    } else if matches!(sig.ret_kind, Ty::Float(_)) {
        let grad = simplify::run(&adjoint::build(primal, sig, adjoint::Seed::One));
        out.extend(emit::emit(&grad, sig, Which::Grad));
    }
    out.extend(vjp);
    out.extend(forward_companions(primal, sig, args)?);
    Ok(out)
}

/// Why `order = 2` does not apply to a function.
const ORDER2_NEEDS: &str = "`order = 2` needs a float result and no `&mut` parameter (`_hvp` is the Hessian of a scalar function)";

/// `NAME_jvp`: the forward sweep of the primal, or from `NAME_vjp` where the forward
/// sweep does not take the body (so every caller's `_jvp` finds one). Under `order = 2`,
/// `NAME_hvp` (the forward sweep of the primal + reverse sweep with seed 1) and the
/// second-order companions; without it, their stand-ins ([`second::stubs`]).
fn forward_companions(
    primal: &ir::Func,
    sig: &parse::Signature,
    args: &args::Args,
) -> Result<TokenStream, syn::Error> {
    use tangent::Mode;
    let mut out = TokenStream::new();
    match tangent::build(primal, sig, Mode::Jvp) {
        Ok(jvp) => {
            let ext = tangent::extend(sig, Mode::Jvp);
            out.extend(emit::emit(&simplify::run(&jvp), &ext, Which::Jvp));
        }
        Err(_) => out.extend(second::jvp_via_vjp(sig)),
    }
    out.extend(dense::jacobian(sig));
    out.extend(second_order(sig, args, || {
        let grad = simplify::run(&adjoint::build(primal, sig, adjoint::Seed::One));
        let hvp = tangent::build(&grad, sig, Mode::Hvp).map_err(|(span, msg)| {
            let mut e = syn::Error::new(span, format!("{msg}; `order = 2` needs it"));
            if let Some(order2) = args.order2 {
                e.combine(syn::Error::new(order2, "`order = 2` is asked for here"));
            }
            e
        })?;
        let ext = tangent::extend(sig, Mode::Hvp);
        Ok(emit::emit(&simplify::run(&hvp), &ext, Which::Hvp))
    })?);
    Ok(out)
}

/// The second-order part of either path: under `order = 2`, `hvp()` (`NAME_hvp`), the
/// companions made from it and `NAME_hessian`, or the error saying the function cannot
/// have them; without it, the stand-ins ([`second::stubs`]) for a function that could.
fn second_order(
    sig: &parse::Signature,
    args: &args::Args,
    hvp: impl FnOnce() -> Result<TokenStream, syn::Error>,
) -> Result<TokenStream, syn::Error> {
    let scalar = matches!(sig.ret_kind, Ty::Float(_)) && !sig.has_mut();
    match (args.order2, scalar) {
        (None, true) => Ok(second::stubs(sig)),
        (None, false) => Ok(TokenStream::new()),
        (Some(order2), false) => Err(syn::Error::new(order2, ORDER2_NEEDS)),
        (Some(_), true) => {
            let mut out = hvp()?;
            out.extend(second::companions(sig));
            out.extend(dense::hessian(sig));
            Ok(out)
        }
    }
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
        Err(e) => Err(messages(e)),
    }
}
