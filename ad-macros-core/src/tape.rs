//! The `#[differentiable(tape)]` expansion: the same `_grad`/`_vjp` signatures, computed
//! by running the body on the dynamic tape (`ad_runtime::tape`).
//!
//! Parameters become tape leaves (`tape.var(x)`, `tape.tensor(t)`; constants for the ones
//! outside `wrt`), and the body runs on them with a few rewrites:
//! - type annotations `f32`/`f64`/`Tensor<..>` become `Var<'_, ..>`;
//! - a float literal in value position (`let s = 0.0;`, a branch's tail) becomes a
//!   constant on the tape, so it can be accumulated into;
//! - `t.max()`/`t.min()` without arguments become `max_all()`/`min_all()`;
//! - `f64::sin(x)` becomes `(x).sin()`;
//! - a call `g(a, b)` records one node on the tape: its value is `g(a, b)` run on the
//!   arguments' plain values (scalars or tensors, passed by value or as `&Tensor` as
//!   rustc infers from `g`'s signature), and its backward runs `g_vjp(a, b, seed)` with
//!   the incoming gradient as seed, one gradient per `Var` argument; unless
//!   `g` is named in `inline(..)`, is a local (a closure), or lives in `std`/`core`,
//!   or its path names a type (`Vec::new`, `usize::min`): those run as written;
//! - a slice, `Vec` or array parameter becomes one scalar leaf per element, kept in a
//!   `Vec<Var>` (an array in a `[Var; N]`); the body sees it with the same shape of
//!   type (`&[f64]` as `&[Var]`, `&Vec<f64>` as `&Vec<Var>`, `Vec<f64>` as an owned
//!   copy), so `x[i]`, `x.len()`, `for v in x` and `x.iter()` work as written; its
//!   gradient is read back element by element;
//! - `f64::MAX`-style constants, float casts (`i as f64`) and the elements of
//!   `vec![..]` and array literals in value position become tape constants too;
//! - an iterator's `.sum()`/`.product()` become a sum/product on the tape (an empty
//!   one gives the constant 0/1), and `fold`'s float start value a tape constant.
//!
//! Before/after, for `fn f(x: f64) -> f64 { x.sin() * 2.0 }`:
//!
//! ```text
//! fn f_vjp(x: f64, seed: f64) -> (f64, f64) {
//!     let __ad_tape = Tape::<f64>::new();
//!     let __ad_leaf_x = __ad_tape.var(x);
//!     let mut x = Clone::clone(&__ad_leaf_x);
//!     let __ad_out = IntoVar::into_var((|| { x.sin() * 2.0 })(), &__ad_tape);
//!     let __ad_value = __ad_out.item();
//!     if __ad_out.requires_grad() {
//!         __ad_out.backward_with(seed);
//!     }
//!     (__ad_value, __ad_leaf_x.grad_scalar())
//! }
//! ```

use crate::args::Args;
use crate::emit::{self, Which};
use crate::ir::{FloatTy, Ty};
use crate::parse::Signature;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Lit, Type};

/// Emits `NAME_grad` (for a float result) and `NAME_vjp` on the tape.
pub fn expand(sig: &Signature, args: &Args, block: &syn::Block) -> TokenStream {
    let ft = sig.ret_kind.float().unwrap_or(sig.float);
    let t = Ident::new(ft.name(), Span::call_site());
    let tape = Ident::new("__ad_tape", Span::call_site());
    let mut block = block.clone();
    let mut locals: Vec<String> = args.inline.iter().map(|f| f.to_string()).collect();
    syn::visit::Visit::visit_block(&mut Locals(&mut locals), &block);
    let mut rewrite = Rewrite {
        tape: &tape,
        float: ft,
        direct: &locals,
        debug: false,
    };
    rewrite.visit_block_mut(&mut block);
    if rewrite.debug {
        // The methods that the debug macros' arguments call (see `debug_macro`).
        block.stmts.insert(
            0,
            syn::parse_quote! {
                #[allow(unused_imports)]
                use ::adjoint::__private::show::{
                    ShowCopy as _, ShowElems as _, ShowRef as _, ShowVar as _,
                };
            },
        );
    }

    // Each leaf keeps its own name, so a body that reassigns the parameter does not
    // lose it: the gradient is read from the leaf.
    let leaf = |x: &Ident| Ident::new(&format!("__ad_leaf_{x}"), x.span());
    let leaves: Vec<TokenStream> = sig.params.iter().map(|p| {
        let x = &p.ident;
        let l = leaf(x);
        let span = x.span();
        let make = match (p.kind, p.diff) {
            (Ty::Float(_), true) => quote_spanned!(span=> #tape.var(#x)),
            (Ty::Float(_), false) => quote_spanned!(span=> #tape.constant(#x)),
            // One scalar leaf per element; an array stays an array (`[Var; N]`).
            (Ty::Slice(_), diff) => {
                let make = if diff { quote!(var) } else { quote!(constant) };
                if is_array(&p.ty) {
                    quote_spanned!(span=> #x.map(|__ad_e| #tape.#make(__ad_e)))
                } else {
                    quote_spanned!(span=> #x.iter().map(|&__ad_e| #tape.#make(__ad_e)).collect::<::std::vec::Vec<_>>())
                }
            }
            (Ty::Tensor(_), diff) => {
                let owned = if p.by_ref {
                    quote!(::core::clone::Clone::clone(#x))
                } else {
                    quote!(#x)
                };
                if diff {
                    quote_spanned!(span=> #tape.tensor(#owned))
                } else {
                    quote_spanned!(span=> #tape.constant_tensor(#owned))
                }
            }
            _ => return quote!(),
        };
        // A borrowed slice stays borrowed (`&[f64]` -> `&[Var]`, `&Vec` -> `&Vec<Var>`), so
        // the body can iterate it, reborrow it and still use it afterwards, as written.
        let bind = match (p.kind, p.by_ref) {
            (Ty::Slice(_), true) if is_array(&p.ty) || is_vec(&p.ty) => quote!(&#l),
            (Ty::Slice(_), true) => quote!(&#l[..]),
            _ => quote!(::core::clone::Clone::clone(&#l)),
        };
        quote_spanned!(span=> let #l = #make; let mut #x = #bind;)
    }).collect();
    let grads: Vec<TokenStream> = sig
        .diff_params()
        .map(|(_, p)| {
            let l = leaf(&p.ident);
            match p.kind {
                Ty::Tensor(_) => quote!(#l.grad_tensor()),
                Ty::Slice(_) if is_array(&p.ty) => quote!(#l.map(|__ad_e| __ad_e.grad_scalar())),
                Ty::Slice(_) => {
                    quote!(#l.iter().map(|__ad_e| __ad_e.grad_scalar()).collect::<::std::vec::Vec<_>>())
                }
                _ => quote!(#l.grad_scalar()),
            }
        })
        .collect();
    let grads = emit::tuple(&grads);
    let value = match sig.ret_kind {
        Ty::Tensor(_) => quote!(__ad_out.tensor()),
        _ => quote!(__ad_out.item()),
    };
    let seed = emit::seed_ident(sig);
    let vjp_attrs = emit::attrs(sig, Which::Vjp);
    let vjp_sig = emit::signature(sig, Which::Vjp);
    let vjp = quote! {
        #vjp_attrs
        #vjp_sig {
            let #tape = ::adjoint::__private::tape::Tape::<#t>::new();
            #(#leaves)*
            let __ad_out = ::adjoint::__private::IntoVar::into_var((|| #block)(), &#tape);
            let __ad_value = #value;
            // A result that depends on no leaf (a constant branch) has zero gradients.
            if __ad_out.requires_grad() {
                __ad_out.backward_with(#seed);
            }
            (__ad_value, #grads)
        }
    };
    let grad = matches!(sig.ret_kind, Ty::Float(_)).then(|| {
        let attrs = emit::attrs(sig, Which::Grad);
        let signature = emit::signature(sig, Which::Grad);
        let vjp_name = Ident::new(&format!("{}_vjp", sig.ident), sig.ident.span());
        let args = sig.params.iter().map(|p| &p.ident);
        let one = emit::float_lit(1.0, ft, Span::call_site());
        quote! {
            #attrs
            #signature {
                #vjp_name(#(#args,)* #one)
            }
        }
    });
    let hvp = (args.order2.is_some() && matches!(sig.ret_kind, Ty::Float(_)))
        .then(|| hvp(sig, &tape, &t, &leaves, &block, &grads));
    quote!(#grad #vjp #hvp)
}

/// `NAME_hvp` on the tape (`order = 2`): the body recorded once, its gradient recorded
/// on the same tape ([`Tape::grad_graph`](ad_runtime::tape::Tape::grad_graph)), then
/// the gradient of `<gradient, v>`: PyTorch's double backward with `create_graph`.
fn hvp(
    sig: &Signature,
    tape: &Ident,
    t: &Ident,
    leaves: &[TokenStream],
    block: &syn::Block,
    zero_grads: &TokenStream,
) -> TokenStream {
    let leaf = |x: &Ident| Ident::new(&format!("__ad_leaf_{x}"), x.span());
    let ext = crate::tangent::extend(sig, crate::tangent::Mode::Hvp);
    let vs: Vec<&Ident> = ext.params[sig.params.len()..]
        .iter()
        .map(|p| &p.ident)
        .collect();
    let diff: Vec<&crate::parse::Param> = sig.diff_params().map(|(_, p)| p).collect();
    let mut ins = TokenStream::new();
    let mut dot = TokenStream::new();
    let mut grads = Vec::new();
    let mut hvps = Vec::new();
    for (p, v) in diff.iter().zip(&vs) {
        let l = leaf(&p.ident);
        match p.kind {
            Ty::Tensor(_) => {
                ins.extend(quote!(__ad_ins.push(#l);));
                dot.extend(quote! {
                    __ad_s = __ad_s + (__ad_g[__ad_at] * #tape.constant_tensor(::adjoint::__private::owned(&#v))).sum();
                    __ad_at += 1;
                });
                grads.push(quote!({
                    __ad_at += 1;
                    __ad_g[__ad_at - 1].tensor()
                }));
                hvps.push(quote!({
                    __ad_at += 1;
                    ::core::clone::Clone::clone(&__ad_h[__ad_at - 1]).into_tensor()
                }));
            }
            Ty::Slice(_) => {
                ins.extend(quote!(__ad_ins.extend(#l.iter().copied());));
                dot.extend(quote! {
                    for (__ad_j, &__ad_e) in #v.iter().enumerate() {
                        __ad_s = __ad_s + __ad_g[__ad_at + __ad_j] * __ad_e;
                    }
                    __ad_at += #l.len();
                });
                let collect = |item: TokenStream| {
                    if is_array(&p.ty) {
                        quote!({
                            let __ad_k = __ad_at;
                            __ad_at += #l.len();
                            ::core::array::from_fn(|__ad_j| #item)
                        })
                    } else {
                        quote!({
                            let __ad_k = __ad_at;
                            __ad_at += #l.len();
                            (0..#l.len()).map(|__ad_j| #item).collect::<::std::vec::Vec<_>>()
                        })
                    }
                };
                grads.push(collect(quote!(__ad_g[__ad_k + __ad_j].item())));
                hvps.push(collect(quote!(__ad_h[__ad_k + __ad_j].item())));
            }
            _ => {
                ins.extend(quote!(__ad_ins.push(#l);));
                dot.extend(quote! {
                    __ad_s = __ad_s + __ad_g[__ad_at] * #v;
                    __ad_at += 1;
                });
                grads.push(quote!({
                    __ad_at += 1;
                    __ad_g[__ad_at - 1].item()
                }));
                hvps.push(quote!({
                    __ad_at += 1;
                    __ad_h[__ad_at - 1].item()
                }));
            }
        }
    }
    let (grads, hvps) = (emit::tuple(&grads), emit::tuple(&hvps));
    let attrs = emit::attrs(sig, Which::Hvp);
    let head = emit::signature(&ext, Which::Hvp);
    let name = format!("{}_hvp", sig.ident);
    let zero = emit::float_lit(
        0.0,
        sig.ret_kind.float().unwrap_or(sig.float),
        Span::call_site(),
    );
    quote! {
        #attrs
        #head {
            let #tape = ::adjoint::__private::tape::Tape::<#t>::new();
            #(#leaves)*
            let __ad_out = ::adjoint::__private::IntoVar::into_var((|| #block)(), &#tape);
            let __ad_value = __ad_out.item();
            if !__ad_out.requires_grad() {
                return (__ad_value, #zero_grads, #zero_grads);
            }
            let mut __ad_ins = ::std::vec::Vec::new();
            #ins
            let __ad_g = #tape
                .try_grad_graph(__ad_out, &__ad_ins)
                .unwrap_or_else(|e| ::core::panic!("{}: {}", #name, e));
            let mut __ad_s = #tape.constant(#zero);
            let mut __ad_at = 0usize;
            #dot
            let __ad_h: ::std::vec::Vec<::adjoint::__private::Value<#t>> = if __ad_s.requires_grad() {
                #tape.grad(__ad_s, &__ad_ins)
            } else {
                // The gradient does not depend on the inputs: the Hessian is zero.
                __ad_ins
                    .iter()
                    .map(|x| match x.shape().as_slice() {
                        [] => ::adjoint::__private::Value::Scalar(#zero),
                        s => ::adjoint::__private::Value::Tensor(::adjoint::__private::Tensor::zeros(s)),
                    })
                    .collect()
            };
            let mut __ad_at = 0usize;
            let __ad_grads = #grads;
            let mut __ad_at = 0usize;
            let __ad_hvps = #hvps;
            (__ad_value, __ad_grads, __ad_hvps)
        }
    }
}

/// Whether a parameter's type is an array (`[f64; N]` or `&[f64; N]`).
fn is_array(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_array(&r.elem),
        Type::Paren(p) => is_array(&p.elem),
        Type::Group(g) => is_array(&g.elem),
        Type::Array(_) => true,
        _ => false,
    }
}

/// Whether a parameter's type is a `Vec` (`Vec<f64>` or `&Vec<f64>`).
fn is_vec(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_vec(&r.elem),
        Type::Paren(p) => is_vec(&p.elem),
        Type::Group(g) => is_vec(&g.elem),
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Vec"),
        _ => false,
    }
}

/// Collects the names a body binds with `let` (closures among them): calls of these
/// run as written.
struct Locals<'a>(&'a mut Vec<String>);

impl<'ast> syn::visit::Visit<'ast> for Locals<'_> {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.0.push(p.ident.to_string());
        syn::visit::visit_pat_ident(self, p);
    }
}

struct Rewrite<'a> {
    tape: &'a Ident,
    float: FloatTy,
    /// Functions called as written: `inline(..)` and the body's locals.
    direct: &'a [String],
    /// Whether a debug macro was rewritten (the body then imports what it calls).
    debug: bool,
}

/// The debug macros that run in the forward pass on the values: each with the number
/// of leading arguments that are values (not format arguments) and whether those are
/// shown as values (`assert_eq!`'s operands) or run as written (`assert!`'s condition,
/// whose comparisons of `Var`s compare values).
const DEBUG_MACROS: [(&str, usize, bool); 10] = [
    ("println", 0, false),
    ("print", 0, false),
    ("eprintln", 0, false),
    ("eprint", 0, false),
    ("assert", 1, false),
    ("debug_assert", 1, false),
    ("assert_eq", 2, true),
    ("assert_ne", 2, true),
    ("debug_assert_eq", 2, true),
    ("debug_assert_ne", 2, true),
];

impl Rewrite<'_> {
    /// A float literal, float constant (`f64::MAX`) or float cast in value position
    /// becomes a tape constant; so do the elements of `vec![..]` and array literals.
    fn constant(&self, e: &mut Expr) {
        let tape = self.tape;
        let span = e.span();
        if let Some(lit) = float_literal(e).or_else(|| float_value(e)) {
            *e = syn::parse_quote_spanned!(span=> #tape.constant(#lit));
            return;
        }
        // A float computed from constants only (`2.0f64.ln()`, `0.5 * PI_F`) meets `Var`s
        // in the other branch or the result: it becomes a constant too.
        if const_float(e) {
            *e = syn::parse_quote_spanned!(span=> #tape.constant(#e));
            return;
        }
        match e {
            Expr::Array(a) => a.elems.iter_mut().for_each(|e| self.tail(e)),
            Expr::Repeat(r) => self.tail(&mut r.expr),
            _ => {}
        }
    }

    /// `vec![a, b]` and `vec![a; n]`: the elements are rewritten like any expression,
    /// in value position.
    fn vec_macro(&mut self, mac: &mut syn::Macro) {
        use syn::parse::Parser;
        let repeat = |input: syn::parse::ParseStream| {
            let e: Expr = input.parse()?;
            let semi: syn::Token![;] = input.parse()?;
            let n: Expr = input.parse()?;
            Ok((e, semi, n))
        };
        if let Ok((mut e, semi, n)) = repeat.parse2(mac.tokens.clone()) {
            self.visit_expr_mut(&mut e);
            self.tail(&mut e);
            mac.tokens = quote!(#e #semi #n);
            return;
        }
        let list = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        if let Ok(mut elems) = list.parse2(mac.tokens.clone()) {
            for e in elems.iter_mut() {
                self.visit_expr_mut(e);
                self.tail(e);
            }
            mac.tokens = elems.to_token_stream();
        }
    }

    /// A debug macro (`println!`, `assert_eq!`, ... of [`DEBUG_MACROS`]): its arguments
    /// are rewritten like any expression of the body, then each format argument (and
    /// each name the format string captures, `{y}`) and `assert_eq!`'s operands are
    /// shown as plain values: `(&&&Probe(&(e))).__ad_show()` is a `Var`'s value, a
    /// `Vec` of a slice of `Var`s' values, or the argument itself (see
    /// `src/debug_show.rs`). Nothing they do is recorded on the tape but the calls the
    /// arguments make, which no result depends on. Returns whether it was one.
    fn debug_macro(&mut self, mac: &mut syn::Macro) -> bool {
        use syn::parse::Parser;
        let Some(&(_, values, shown)) = DEBUG_MACROS
            .iter()
            .find(|(name, _, _)| mac.path.is_ident(name))
        else {
            return false;
        };
        let list = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        let Ok(mut elems) = list.parse2(mac.tokens.clone()) else {
            return false;
        };
        let show = |e: &Expr| -> Expr {
            let span = e.span();
            syn::parse_quote_spanned!(span=> (&&&::adjoint::__private::show::Probe(&(#e))).__ad_show())
        };
        let mut named = Vec::new();
        let mut format = None;
        for (i, e) in elems.iter_mut().enumerate() {
            if i < values {
                self.visit_expr_mut(e);
                if shown {
                    *e = show(e);
                }
            } else if i == values {
                format = Some(e.clone());
            } else if let Expr::Assign(a) = e {
                // `name = value`
                self.visit_expr_mut(&mut a.right);
                *a.right = show(&a.right);
                if let Expr::Path(p) = &*a.left {
                    named.extend(p.path.get_ident().map(|i| i.to_string()));
                }
            } else {
                self.visit_expr_mut(e);
                *e = show(e);
            }
        }
        // The names the format string captures become named arguments, shown too.
        if let Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        })) = &format
        {
            for name in captures(&lit.value()) {
                if named.contains(&name) {
                    continue;
                }
                let ident = Ident::new(&name, lit.span());
                let value = show(&syn::parse_quote_spanned!(lit.span()=> #ident));
                elems.push(syn::parse_quote_spanned!(lit.span()=> #ident = #value));
                named.push(name);
            }
        }
        mac.tokens = elems.to_token_stream();
        self.debug = true;
        true
    }

    fn block_tail(&self, b: &mut syn::Block) {
        if let Some(syn::Stmt::Expr(e, None)) = b.stmts.last_mut() {
            self.tail(e);
        }
    }

    fn tail(&self, e: &mut Expr) {
        match e {
            Expr::If(i) => {
                self.block_tail(&mut i.then_branch);
                if let Some((_, els)) = &mut i.else_branch {
                    self.tail(els);
                }
            }
            Expr::Block(b) => self.block_tail(&mut b.block),
            Expr::Paren(p) => self.tail(&mut p.expr),
            Expr::Match(m) => m.arms.iter_mut().for_each(|a| self.tail(&mut a.body)),
            other => self.constant(other),
        }
    }
}

/// Whether `e` is a float computed from literals and float constants only: a float
/// literal or constant, or an arithmetic operation or float method of such values (with
/// integer literals as arguments, as in `2.0f64.powi(3)`).
fn const_float(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => const_float(&p.expr),
        Expr::Group(g) => const_float(&g.expr),
        Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)) && const_float(&u.expr),
        Expr::Binary(b) => {
            use syn::BinOp as B;
            matches!(b.op, B::Add(_) | B::Sub(_) | B::Mul(_) | B::Div(_))
                && const_float(&b.left)
                && const_float(&b.right)
        }
        Expr::MethodCall(m) => {
            m.turbofish.is_none()
                && (m.method == "detach"
                    || crate::ir::MathFn::from_name(&m.method.to_string()).is_some())
                && const_float(&m.receiver)
                && m.args.iter().all(is_const)
        }
        e => float_literal(e).is_some() || float_value(e).is_some(),
    }
}

/// `Tensor::zeros(..)`, `Tensor::<f32>::ones(..)`, ...: a constructor of a constant.
fn is_tensor_constructor(c: &syn::ExprCall) -> bool {
    match &*c.func {
        Expr::Path(p) => constructor(&p.path).is_some(),
        _ => false,
    }
}

/// The constructor a path names (`Tensor::ones`, `adjoint::Tensor::<f32>::zeros`):
/// its name, and the `Tensor` segment (which carries the float type, if written).
pub(crate) fn constructor(path: &syn::Path) -> Option<(String, &syn::PathSegment)> {
    let n = path.segments.len();
    if n < 2 || path.segments[n - 2].ident != "Tensor" {
        return None;
    }
    let name = path.segments[n - 1].ident.to_string();
    matches!(
        name.as_str(),
        "zeros" | "ones" | "full" | "from_vec" | "arange" | "scalar" | "rand" | "randn"
    )
    .then(|| (name, &path.segments[n - 2]))
}

/// The array literal an argument passes (`[..]`, `&[..]`, `[..].to_vec()`), if any.
fn array_arg(a: &mut Expr) -> Option<&mut Expr> {
    if matches!(a, Expr::Array(_)) {
        return Some(a);
    }
    match a {
        Expr::Paren(p) => array_arg(&mut p.expr),
        Expr::Reference(r) => array_arg(&mut r.expr),
        Expr::MethodCall(m) if m.args.is_empty() && m.method == "to_vec" => {
            array_arg(&mut m.receiver)
        }
        _ => None,
    }
}

/// A constant argument: a constant float or an integer literal.
fn is_const(e: &Expr) -> bool {
    const_float(e) || matches!(e, Expr::Lit(l) if matches!(l.lit, Lit::Int(_)))
}

fn float_literal(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Lit(l) if matches!(l.lit, Lit::Float(_)) => Some(e.clone()),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) && float_literal(&u.expr).is_some() => {
            Some(e.clone())
        }
        Expr::Paren(p) => float_literal(&p.expr).map(|_| e.clone()),
        _ => None,
    }
}

/// A float constant (`f64::MAX`, `std::f64::consts::PI`) or a float cast (`i as f64`).
fn float_value(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Path(p) if p.qself.is_none() => {
            let segs = &p.path.segments;
            let float_mod = segs.iter().any(|s| s.ident == "f32" || s.ident == "f64");
            let upper = segs
                .last()
                .is_some_and(|s| s.ident.to_string().starts_with(|c: char| c.is_uppercase()));
            (segs.len() >= 2 && float_mod && upper).then(|| e.clone())
        }
        Expr::Cast(c) => {
            matches!(crate::parse::classify(&c.ty), Some((Ty::Float(_), false))).then(|| e.clone())
        }
        _ => None,
    }
}

/// `f64`, `Tensor<f32>`, ... -> `Var<'_, ..>`, in a type annotation, also inside
/// `Vec<..>`, arrays, slices, references and tuples (`Vec<f64>` -> `Vec<Var<'_, f64>>`).
fn var_type(ty: &mut Type) {
    match ty {
        Type::Array(a) => return var_type(&mut a.elem),
        Type::Slice(s) => return var_type(&mut s.elem),
        Type::Reference(r) => return var_type(&mut r.elem),
        Type::Paren(p) => return var_type(&mut p.elem),
        Type::Tuple(t) => return t.elems.iter_mut().for_each(var_type),
        Type::Path(p) if p.qself.is_none() => {
            if let Some(last) = p.path.segments.last_mut() {
                if last.ident == "Vec" {
                    if let syn::PathArguments::AngleBracketed(a) = &mut last.arguments {
                        for arg in a.args.iter_mut() {
                            if let syn::GenericArgument::Type(t) = arg {
                                var_type(t);
                            }
                        }
                    }
                    return;
                }
            }
        }
        _ => {}
    }
    if let Some((Ty::Float(ft) | Ty::Tensor(ft), false)) = crate::parse::classify(ty) {
        let t = Ident::new(ft.name(), ty.span());
        *ty = syn::parse_quote_spanned!(ty.span()=> ::adjoint::__private::tape::Var<'_, #t>);
    }
}

fn var_pat_type(pat: &mut syn::Pat) {
    if let syn::Pat::Type(pt) = pat {
        var_type(&mut pt.ty);
    }
}

impl VisitMut for Rewrite<'_> {
    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        visit_mut::visit_local_mut(self, local);
        var_pat_type(&mut local.pat);
        let tuple_type =
            matches!(&local.pat, syn::Pat::Type(pt) if matches!(&*pt.ty, Type::Tuple(_)));
        if let Some(init) = &mut local.init {
            match &mut *init.expr {
                // `let p: (f64, f64) = (x, 1.0);`: the annotation became `(Var, Var)`.
                Expr::Tuple(t) if tuple_type => t.elems.iter_mut().for_each(|e| self.tail(e)),
                e => self.tail(e),
            }
        }
    }

    /// A float annotation on a closure moves into its body: `|t: f64| t * t` becomes
    /// `|__ad_c0| { let t: Var<'_, f64> = __ad_c0; t * t }`. Left on the parameter,
    /// `Var<'_, f64>` would be a type for every lifetime (higher-ranked), which the
    /// closure's `Var` result cannot satisfy; in a `let`, `'_` is the tape's.
    fn visit_expr_closure_mut(&mut self, c: &mut syn::ExprClosure) {
        visit_mut::visit_expr_closure_mut(self, c);
        let mut lets = Vec::new();
        for (k, input) in c.inputs.iter_mut().enumerate() {
            if let syn::Pat::Type(pt) = input {
                let mut ty = (*pt.ty).clone();
                var_type(&mut ty);
                if ty != *pt.ty {
                    let name = Ident::new(&format!("__ad_c{k}"), pt.span());
                    let pat = &pt.pat;
                    lets.push(quote_spanned!(pt.span()=> let #pat: #ty = #name;));
                    *input = syn::Pat::Ident(syn::PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: name,
                        subpat: None,
                    });
                }
            }
        }
        let mut ret = None;
        if let syn::ReturnType::Type(_, ty) = &c.output {
            let mut var = (**ty).clone();
            var_type(&mut var);
            if var != **ty {
                ret = Some(var);
                c.output = syn::ReturnType::Default;
            }
        }
        if lets.is_empty() && ret.is_none() {
            return;
        }
        let body = &c.body;
        let span = body.span();
        let body = match ret {
            Some(ty) => quote_spanned!(span=> { let __ad_r: #ty = #body; __ad_r }),
            None => quote!(#body),
        };
        *c.body = syn::parse_quote_spanned!(span=> { #(#lets)* #body });
    }

    fn visit_block_mut(&mut self, b: &mut syn::Block) {
        visit_mut::visit_block_mut(self, b);
        self.block_tail(b);
    }

    // Items are rejected before this runs (`lower::check`); never rewrite inside one.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}

    fn visit_expr_macro_mut(&mut self, m: &mut syn::ExprMacro) {
        if m.mac.path.is_ident("vec") {
            self.vec_macro(&mut m.mac);
        } else {
            self.debug_macro(&mut m.mac);
        }
    }

    fn visit_stmt_macro_mut(&mut self, m: &mut syn::StmtMacro) {
        self.debug_macro(&mut m.mac);
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        visit_mut::visit_expr_mut(self, e);
        match e {
            Expr::Assign(a) => self.tail(&mut a.right),
            Expr::Return(r) => {
                if let Some(v) = &mut r.expr {
                    self.tail(v);
                }
            }
            Expr::Break(b) => {
                if let Some(v) = &mut b.expr {
                    self.tail(v);
                }
            }
            Expr::MethodCall(m) if m.method == "fold" && m.args.len() == 2 => {
                if let Some(init) = m.args.first_mut() {
                    self.tail(init);
                }
            }
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && (m.method == "sum" || m.method == "product")
                    && is_iterator(&m.receiver)
                    && m.turbofish.as_ref().map_or(true, float_turbofish) =>
            {
                let f = Ident::new(&format!("tape_{}", m.method), m.method.span());
                let (tape, recv) = (self.tape, &m.receiver);
                *e = syn::parse_quote_spanned!(m.method.span()=> ::adjoint::__private::#f(&#tape, #recv));
            }
            Expr::MethodCall(m)
                if m.args.is_empty() && (m.method == "max" || m.method == "min") =>
            {
                m.method = Ident::new(&format!("{}_all", m.method), m.method.span());
            }
            // `0.0f64.max(x)`: a constant receiver of a method with a non-constant
            // argument becomes a tape constant, so the method is `Var`'s.
            Expr::MethodCall(m) if const_float(&m.receiver) && !m.args.iter().all(is_const) => {
                let (tape, recv) = (self.tape, &m.receiver);
                let span = recv.span();
                *m.receiver = syn::parse_quote_spanned!(span=> #tape.constant(#recv));
            }
            Expr::Call(c) => {
                // An array literal argument (`g([x, 0.5])`, `g(&[..])`, `g([..].to_vec())`)
                // holds `Var`s: its constant elements become tape constants too.
                for a in c.args.iter_mut() {
                    if let Some(arr) = array_arg(a) {
                        self.constant(arr);
                    }
                }
                if is_tensor_constructor(c) {
                    // `Tensor::ones(&[3])`: a constant on the tape, so that its methods
                    // (`.matmul(&v)`) take `Var`s.
                    let tape = self.tape;
                    let span = c.span();
                    *e = syn::parse_quote_spanned!(span=> #tape.constant_tensor(#c));
                    return;
                }
                if let Some(new) = self.call(c) {
                    *e = new;
                }
            }
            _ => {}
        }
    }
}

impl Rewrite<'_> {
    fn call(&self, c: &syn::ExprCall) -> Option<Expr> {
        let Expr::Path(p) = &*c.func else { return None };
        if p.qself.is_some() {
            return None;
        }
        let segs: Vec<String> = p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let span = c.span();
        // `f64::sin(x)` -> `(x).sin()`
        if segs.len() == 2 && (segs[0] == "f32" || segs[0] == "f64") {
            let mut args = c.args.iter();
            let recv = args.next()?;
            let m = &p.path.segments[1].ident;
            let rest: Vec<_> = args.collect();
            return Some(syn::parse_quote_spanned!(span=> (#recv).#m(#(#rest),*)));
        }
        // Only calls of functions (lowercase last segment, no type in the path) go
        // through `_vjp`; constructors and associated functions run as written, and so
        // do locals (closures), `inline(..)` functions and the standard library.
        let last = p.path.segments.last()?;
        if (segs.len() == 1 && self.direct.contains(&segs[0]))
            || matches!(segs[0].as_str(), "std" | "core" | "alloc")
            || segs[..segs.len() - 1].iter().any(|s| is_primitive(s))
        {
            return None;
        }
        let lower = |s: &str| {
            s.chars()
                .next()
                .is_some_and(|ch| ch.is_lowercase() || ch == '_')
        };
        if !lower(&segs[segs.len() - 1])
            || segs[..segs.len() - 1]
                .iter()
                .any(|s| !lower(s) || s == "f32" || s == "f64")
        {
            return None;
        }
        if !last.arguments.is_none() {
            return None;
        }
        let mut vjp_path = p.path.clone();
        if let Some(l) = vjp_path.segments.last_mut() {
            l.ident = Ident::new(&format!("{}_vjp", l.ident), l.ident.span());
        }
        let name = segs.join("::");
        let tape = self.tape;
        let t = Ident::new(self.float.name(), span);
        let private = quote_spanned!(span=> ::adjoint::__private);
        let arg_trait = quote_spanned!(span=> #private::TapeArg<'_, #t>);
        // Each argument is bound by reference (`&w` as written, or the value's
        // address) and its plain value kept; the type it is passed to `g` as (a float,
        // a tensor, a reference to one) is inferred from the call.
        let mut binds = Vec::new();
        let mut pushes = Vec::new();
        let mut plain_args = Vec::new();
        for (i, arg) in c.args.iter().enumerate() {
            let a = Ident::new(&format!("__ad_a{i}"), span);
            let p = Ident::new(&format!("__ad_p{i}"), span);
            let mut arg = arg;
            while let Expr::Paren(p) = arg {
                arg = &p.expr;
            }
            let arg = match arg {
                Expr::Reference(r) if r.mutability.is_none() => &r.expr,
                _ => arg,
            };
            binds.push(quote_spanned! {span=>
                let #a = &(#arg);
                let #p = <_ as #arg_trait>::plain(#a);
            });
            plain_args.push(quote_spanned!(span=> #private::PassArg::pass(&#p)));
            pushes.push(quote_spanned! {span=>
                if <_ as #arg_trait>::is_float(#a) {
                    let __ad_from = __ad_vars.len();
                    <_ as #arg_trait>::vars(#a, &mut __ad_vars);
                    __ad_sel.extend(__ad_vars[__ad_from..].iter().map(|&(_, e)| (__ad_k, e)));
                    __ad_k += 1;
                }
            });
        }
        let func = &p.path;
        let tokens = quote_spanned! {span=>
            {
                #(#binds)*
                let __ad_y = #func(#(#plain_args),*);
                let mut __ad_vars = ::std::vec::Vec::new();
                let mut __ad_sel = ::std::vec::Vec::new();
                let mut __ad_k = 0usize;
                #(#pushes)*
                let __ad_inputs: ::std::vec::Vec<_> = __ad_vars.iter().map(|&(v, _)| v).collect();
                #private::tape_call(&#tape, #name, &__ad_inputs, __ad_sel, __ad_k, __ad_y,
                    move |__ad_s: &#private::tape::Value<#t>| {
                        let (_, __ad_g) = #vjp_path(#(#plain_args,)* #private::FromValue::from_value(__ad_s));
                        #private::TapeGrads::into_values(__ad_g)
                    })
            }
        };
        syn::parse2(tokens.to_token_stream()).ok()
    }
}

/// The names a format string captures (`{y}`, `{y:?}`, `{y:.3}`), in order, each
/// once; not positions (`{0}`), `{{`, or widths and precisions (`{:w$}`).
fn captures(format: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            continue;
        }
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '}' && *c != ':')).collect();
        let name = name.trim();
        let ident = name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            && name != "_";
        if ident && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Whether `name` is a primitive type whose associated functions a body may call
/// (`usize::min(i, n)`, `i32::pow(k, 2)`).
fn is_primitive(name: &str) -> bool {
    crate::parse::is_int_type(name) || matches!(name, "bool" | "char")
}

/// Whether an expression is an iterator chain (`x.iter()`, `.map(..)`, `.zip(..)`):
/// its `.sum()` is an iterator sum, not a tensor reduction.
fn is_iterator(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) => matches!(
            m.method.to_string().as_str(),
            "iter"
                | "into_iter"
                | "map"
                | "zip"
                | "filter"
                | "filter_map"
                | "enumerate"
                | "rev"
                | "skip"
                | "take"
                | "step_by"
                | "chain"
                | "copied"
                | "cloned"
                | "skip_while"
                | "take_while"
                | "flat_map"
                | "flatten"
                | "inspect"
                | "windows"
                | "chunks"
        ),
        Expr::Paren(p) => is_iterator(&p.expr),
        _ => false,
    }
}

/// Whether `::<T>` names a float: `sum::<usize>()` stays an integer sum.
fn float_turbofish(t: &syn::AngleBracketedGenericArguments) -> bool {
    match t.args.first() {
        Some(syn::GenericArgument::Type(ty)) => {
            matches!(crate::parse::classify(ty), Some((Ty::Float(_), false)))
        }
        _ => false,
    }
}
