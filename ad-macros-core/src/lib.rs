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
//! emit    ir::Func                                -> NAME_grad, NAME_vjp
//! route   (when lower refuses the body)           -> the tape, or lower's errors
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
//! stack (accumulators are never saved). When the lowering refuses the body, its
//! errors are the answer under `static`; otherwise [`route`] decides whether the tape
//! takes it (with a warning that gives the lowering's own message) or the errors
//! stand.
//!
//! # Which functions take the tape
//!
//! `#[differentiable(tape)]` always does, `#[differentiable(static)]` never does (a
//! construct below is then a compile error on its span). Without either option, and
//! when the one IR does not take the body, a function takes the tape automatically
//! exactly when its signature or body contains
//! one of these ([`route::Construct`]), and but for `inline(..)` (an explicit request)
//! rustc warns on the construct ([`warn::tape_warning`]):
//!
//! - a function named in `inline(..)`;
//! - a closure;
//! - a loop label (`'a: for ..`, `break 'a`, `continue 'a`) or a labeled block;
//! - a `for` over anything but a range (`a..b`, `a..=b`, `(a..b).rev()`) or a slice
//!   parameter (`s.iter()`, `&s`, `s`, `s.iter().enumerate()`); another iterator method
//!   (`iter()` not followed by `.sum()`, `zip`, `into_iter`, `fold`, ...); a sub-slice
//!   `&s[a..b]` anywhere but as a call argument; a slice parameter's own methods other
//!   than `len`, `is_empty` and `iter` (`s.last()`, `s.get(i)`, `s.clone()[0]`);
//! - a local array (`let p = [a, b];`) indexed at run time (`p[i]`) or used whole other
//!   than as a call argument, an array literal that is neither a call argument nor
//!   such a `let`, or `[c; N]`;
//! - in a function with tensors (a `Tensor` parameter, result or path) that also has a
//!   loop, `break`, `continue`, an early `return`, indexing or a slice parameter: a call
//!   of another function (other than `Tensor::..`), or indexing of anything but a
//!   slice parameter;
//! - `match`, `if let`, `while let` or `let .. else`;
//! - a macro call (`vec![..]`, `assert!(..)`, `println!(..)`);
//! - a destructuring `let` (`let (a, b) = ..`, `let _ = ..`) or a tuple value;
//! - field access (`p.0`, `s.x`);
//! - a local `Vec` (a `Vec<..>` annotation or a `Vec::..` call);
//! - a call of an integer type's function (`usize::min(i, n)`);
//! - in a function that also has a loop, `break`, `continue`, an early `return`,
//!   indexing or a slice parameter: an `if`, a block or a loop inside an `if` or
//!   `while` condition.
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
//! inside the body ([`route::check`]), nor the signatures that [`parse`] rejects.

#![warn(missing_docs)]

pub mod adjoint;
pub mod args;
pub mod ctxt;
pub mod emit;
pub mod fallback;
#[cfg(feature = "inspect")]
pub mod inspect;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod route;
pub mod rules;
pub mod shapes;
pub mod simplify;
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
        Some(sig) => match one_ir(sig, &args, &item_fn.block) {
            Ok(out) => out,
            // Only the one IR takes vector and tuple results: say what it does not take.
            Err(why) if sig.ret_kind.is_memory() || sig.ret_kind == Ty::Tuple => {
                let what = if sig.ret_kind == Ty::Tuple {
                    "tuple"
                } else {
                    "vector"
                };
                match why {
                    Some(e) => e
                        .into_iter()
                        .for_each(|e| cx.error_at(e.span(), without_tape(&e.to_string(), what))),
                    None => cx.error_at(sig.ident.span(), format!("a function with a {what} result cannot take the tape; remove `tape`/`inline(..)`")),
                }
                TokenStream::new()
            }
            // `&mut` parameters and calls that pass `&mut`: the one IR only (the tape
            // would not see the writes).
            Err(why) if sig.has_mut() || passes_mut(&item_fn.block).is_some() => {
                if args.tape || !args.inline.is_empty() {
                    match (sig.params.iter().find(|p| p.mutable), passes_mut(&item_fn.block)) {
                        (Some(p), _) => cx.error_spanned_by(&p.ty, "a function with `&mut` parameters cannot take the tape, which would not see the writes; remove `tape`/`inline(..)`"),
                        (None, Some(a)) => cx.error_spanned_by(a, "a function that passes `&mut` to a call cannot take the tape, which would not see the writes; remove `tape`/`inline(..)`"),
                        (None, None) => {}
                    }
                } else if let Some(e) = why {
                    cx.syn_error(e);
                }
                TokenStream::new()
            }
            Err(why) => match route::route(sig, &args, &item_fn.block) {
                route::Route::Tape(reason) => {
                    let mut out = tape::expand(sig, &args, &item_fn.block);
                    if let Some((what, span)) = reason.unasked() {
                        // The function's own lint levels (`#[allow(deprecated)]`) cover it.
                        let lints = item_fn.attrs.iter().filter(|a| warn::is_lint_level(a));
                        out.extend(quote!(#(#lints)*));
                        // The one IR's own reason when it gave one, else the construct.
                        let (span, what) = match why.as_ref().and_then(refusal) {
                            Some((span, msg)) => (span, format!("here: {msg}")),
                            None => (span, format!("because of {}", what.describe())),
                        };
                        out.extend(warn::tape_warning(&sig.ident, span, &what));
                    }
                    out
                }
                route::Route::Static => static_path(&cx, sig, &item_fn.block, why),
            },
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
    route::check(cx, &item_fn.block);
    (args, sig)
}

/// The route [`expand`] takes for `#[differentiable(args)] item`, so that a test can
/// pin every function's route and notice when one moves. `Err` with the messages when
/// the function is rejected before a route is chosen (its options, its signature, or
/// a construct that neither path takes).
pub fn route_of(args: TokenStream, item: TokenStream) -> Result<route::Route, String> {
    let item_fn: syn::ItemFn = syn::parse2(item).map_err(|e| e.to_string())?;
    let cx = Ctxt::new();
    let (args, sig) = front(&cx, args, &item_fn);
    let route = sig.map(|sig| match one_ir(&sig, &args, &item_fn.block) {
        Ok(_) => route::Route::Static,
        Err(_) => route::route(&sig, &args, &item_fn.block),
    });
    match cx.check() {
        Ok(()) => route.ok_or_else(|| "no signature".to_string()),
        Err(e) => Err(messages(e)),
    }
}

/// Which expansion [`expand`] uses for a function, for the census of the corpus:
/// `"one IR"`, `"tape"`, or `"rejected"` (the one IR's errors stand), with the one
/// IR's first message when it did not take the body.
pub fn expansion_of(
    args: TokenStream,
    item: TokenStream,
) -> Result<(&'static str, String), String> {
    let item_fn: syn::ItemFn = syn::parse2(item).map_err(|e| e.to_string())?;
    let cx = Ctxt::new();
    let (args, sig) = front(&cx, args, &item_fn);
    cx.check().map_err(messages)?;
    let sig = sig.ok_or_else(|| "no signature".to_string())?;
    let why = match one_ir(&sig, &args, &item_fn.block) {
        Ok(_) => return Ok(("one IR", String::new())),
        Err(None) => "tape or inline(..) asked".to_string(),
        Err(Some(e)) => e
            .into_iter()
            .next()
            .map(|e| e.to_string())
            .unwrap_or_default(),
    };
    let path = match route::route(&sig, &args, &item_fn.block) {
        route::Route::Tape(_) => "tape",
        route::Route::Static => "rejected",
    };
    Ok((path, why))
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

/// A lowering error for a function with a vector (`what`) or tuple result, which the
/// tape cannot take: its advice to use the tape becomes a word on why there is none.
fn without_tape(msg: &str, what: &str) -> String {
    let msg = strip_tape_hint(msg);
    format!("{msg}; a function with a {what} result has no tape fallback (the tape has no {what} seed), so the body must take the static path")
}

/// A lowering message without its advice to use the tape.
fn strip_tape_hint(msg: &str) -> String {
    let hint = "use #[differentiable(tape)]";
    let msg = msg
        .replace(&format!("; the tape has it: {hint}"), "")
        .replace(&format!(", or {hint}"), "")
        .replace(&format!(" or {hint}"), "")
        .replace(&format!("; {hint}"), "");
    msg.trim_end_matches([';', ' ', ',']).to_string()
}

fn messages(e: syn::Error) -> String {
    e.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one-IR expansion: `Err` when the lowering does not take the body (then the
/// route decides), with its errors (`None` when the one IR was not tried: `tape` or
/// `inline(..)`).
fn one_ir(
    sig: &parse::Signature,
    args: &args::Args,
    block: &syn::Block,
) -> Result<TokenStream, Option<syn::Error>> {
    if args.tape || !args.inline.is_empty() {
        return Err(None);
    }
    let scratch = Ctxt::new();
    let primal = lower::lower(&scratch, sig, block);
    scratch.check().map_err(Some)?;
    Ok(companions(&primal, sig))
}

/// The message of a one-IR refusal to show in the tape warning (the first error).
fn refusal(e: &syn::Error) -> Option<(proc_macro2::Span, String)> {
    let first = e.clone().into_iter().next()?;
    // The warning says how to keep the tape; the lowering's own hint would repeat it.
    let msg = strip_tape_hint(&first.to_string());
    Some((first.span(), msg))
}

/// `NAME_grad` (for a float result) and `NAME_vjp` of a lowered primal. For a function
/// of floats `NAME_grad` calls `NAME_vjp` ([`emit::grad_via_vjp`]).
fn companions(primal: &ir::Func, sig: &parse::Signature) -> TokenStream {
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
    out
}

/// The static expansion when the one IR did not take the body: its errors (`why`) are
/// the answer; without them (the one IR was not tried), the lowering's.
fn static_path(
    cx: &Ctxt,
    sig: &parse::Signature,
    block: &syn::Block,
    why: Option<syn::Error>,
) -> TokenStream {
    match why {
        Some(e) => {
            cx.syn_error(e);
            TokenStream::new()
        }
        None => {
            let primal = lower::lower(cx, sig, block);
            if cx.has_errors() {
                return TokenStream::new();
            }
            companions(&primal, sig)
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
