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
//! - a call `g(a, b)` records one node on the tape whose backward uses `g_vjp`.
//!
//! Before/after, for `fn f(x: f64) -> f64 { x.sin() * 2.0 }`:
//!
//! ```text
//! fn f_vjp(x: f64, seed: f64) -> (f64, f64) {
//!     let __ad_tape = Tape::<f64>::new();
//!     let __ad_leaf_x = __ad_tape.var(x);
//!     let mut x = __ad_leaf_x;
//!     let __ad_out = IntoVar::into_var((|| { x.sin() * 2.0 })(), &__ad_tape);
//!     let __ad_value = __ad_out.item();
//!     __ad_out.backward_with(seed);
//!     (__ad_value, __ad_leaf_x.grad_scalar())
//! }
//! ```

use crate::emit::{self, Which};
use crate::ir::{FloatTy, Ty};
use crate::parse::Signature;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Lit, Type};

/// Emits `NAME_grad` (for a float result) and `NAME_vjp` on the tape.
pub fn expand(sig: &Signature, block: &syn::Block) -> TokenStream {
    let ft = sig.ret_kind.float().unwrap_or(sig.float);
    let t = Ident::new(ft.name(), Span::call_site());
    let tape = Ident::new("__ad_tape", Span::call_site());
    let mut block = block.clone();
    Rewrite {
        tape: &tape,
        float: ft,
    }
    .visit_block_mut(&mut block);

    // Each leaf keeps its own name, so a body that reassigns the parameter does not
    // lose it: the gradient is read from the leaf.
    let leaf = |x: &Ident| Ident::new(&format!("__ad_leaf_{x}"), x.span());
    let leaves = sig.params.iter().map(|p| {
        let x = &p.ident;
        let l = leaf(x);
        let span = x.span();
        let make = match (p.kind, p.diff) {
            (Ty::Float(_), true) => quote_spanned!(span=> #tape.var(#x)),
            (Ty::Float(_), false) => quote_spanned!(span=> #tape.constant(#x)),
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
        quote_spanned!(span=> let #l = #make; let mut #x = #l;)
    });
    let grads: Vec<TokenStream> = sig
        .diff_params()
        .map(|(_, p)| {
            let l = leaf(&p.ident);
            match p.kind {
                Ty::Tensor(_) => quote!(#l.grad_tensor()),
                _ => quote!(#l.grad_scalar()),
            }
        })
        .collect();
    let grads = if grads.len() == 1 {
        grads[0].clone()
    } else {
        quote!((#(#grads),*))
    };
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
            __ad_out.backward_with(#seed);
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
    quote!(#grad #vjp)
}

struct Rewrite<'a> {
    tape: &'a Ident,
    float: FloatTy,
}

impl Rewrite<'_> {
    /// A float literal in value position becomes a tape constant.
    fn constant(&self, e: &mut Expr) {
        if let Some(lit) = float_literal(e) {
            let tape = self.tape;
            let span = e.span();
            let lit = lit.clone();
            *e = syn::parse_quote_spanned!(span=> #tape.constant(#lit));
        }
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
            other => self.constant(other),
        }
    }
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

/// `f64`, `Tensor<f32>`, ... -> `Var<'_, ..>`, in a type annotation.
fn var_type(ty: &mut Type) {
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
        if let Some(init) = &mut local.init {
            self.tail(&mut init.expr);
        }
    }

    fn visit_expr_closure_mut(&mut self, c: &mut syn::ExprClosure) {
        visit_mut::visit_expr_closure_mut(self, c);
        c.inputs.iter_mut().for_each(var_pat_type);
        if let syn::ReturnType::Type(_, ty) = &mut c.output {
            var_type(ty);
        }
    }

    fn visit_block_mut(&mut self, b: &mut syn::Block) {
        visit_mut::visit_block_mut(self, b);
        self.block_tail(b);
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
            Expr::MethodCall(m)
                if m.args.is_empty() && (m.method == "max" || m.method == "min") =>
            {
                m.method = Ident::new(&format!("{}_all", m.method), m.method.span());
            }
            Expr::Call(c) => {
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
        // through `_vjp`; constructors and associated functions run as written.
        let last = p.path.segments.last()?;
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
        let n = c.args.len();
        let arg_names: Vec<Ident> = (0..n)
            .map(|i| Ident::new(&format!("__ad_a{i}"), span))
            .collect();
        let args = c.args.iter();
        let one = emit::float_lit(1.0, self.float, span);
        let t = Ident::new(self.float.name(), span);
        let arg_trait = quote_spanned!(span=> ::adjoint::__private::TapeArg<'_, #t>);
        let pushes = arg_names.iter().map(|a| {
            quote_spanned! {span=>
                if <_ as #arg_trait>::is_float(&#a) {
                    if let ::core::option::Option::Some(v) = <_ as #arg_trait>::var(&#a) {
                        __ad_inputs.push(v);
                        __ad_parts.push(::adjoint::__private::Partials::get(&__ad_g, __ad_k));
                    }
                    __ad_k += 1;
                }
            }
        });
        let plain = arg_names
            .iter()
            .map(|a| quote!(<_ as #arg_trait>::plain(&#a)));
        let tokens = quote_spanned! {span=>
            {
                #(let #arg_names = #args;)*
                let (__ad_y, __ad_g) = #vjp_path(#(#plain,)* #one);
                let mut __ad_inputs = ::std::vec::Vec::new();
                let mut __ad_parts = ::std::vec::Vec::new();
                let mut __ad_k = 0usize;
                #(#pushes)*
                ::adjoint::__private::tape_call(&#tape, #name, &__ad_inputs, __ad_y, __ad_parts)
            }
        };
        syn::parse2(tokens.to_token_stream()).ok()
    }
}
