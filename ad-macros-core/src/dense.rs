//! `NAME_jacobian` and `NAME_hessian`: dense derivatives of a function with one
//! differentiated parameter that is a slice, `Vec`, array or tensor, from its
//! companions.
//!
//! - `NAME_jacobian(params) -> (Out, J)` for a `Vec`, array or tensor result: by forward
//!   mode (one `NAME_jvp` per input, the columns) when the input is no longer than the
//!   result, else by reverse mode (one `NAME_vjp` per output, the rows).
//! - `NAME_hessian(params) -> (Out, grad, H)` for a float result under `order = 2`:
//!   one `NAME_hvp` per input, each a row of `H` (symmetric, so also a column).
//!
//! `J` and `H` are row-major `Vec<Vec<T>>` (row `i` is output `i`), or a `Tensor` of
//! shape `[outputs, inputs]` when the parameter is a tensor.

use crate::ir::Ty;
use crate::parse::{Param, Signature};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

/// The one differentiated parameter, when it is memory or a tensor.
fn the_param(sig: &Signature) -> Option<(usize, &Param)> {
    let mut diff = sig.diff_params();
    let (k, p) = diff.next()?;
    if diff.next().is_some() || sig.has_mut() {
        return None;
    }
    (p.kind.is_memory() || matches!(p.kind, Ty::Tensor(_))).then_some((k, p))
}

/// The arguments of a companion call: every parameter cloned (a reference is copied).
pub(crate) fn args(sig: &Signature) -> Vec<TokenStream> {
    sig.params
        .iter()
        .map(|p| {
            let id = &p.ident;
            quote!(::core::clone::Clone::clone(&#id))
        })
        .collect()
}

/// A unit vector of the parameter's owned kind: zeros with a 1 at `__ad_j`, passed as
/// the parameter's type (borrowed where it is). Binds `__ad_e`.
fn unit(p: &Param, one: &TokenStream, zero: &TokenStream) -> (TokenStream, TokenStream) {
    let id = &p.ident;
    let owned = Signature::grad_type(p);
    let make = if matches!(p.kind, Ty::Tensor(_)) {
        quote! {
            let mut __ad_e = ::adjoint::__private::Tensor::zeros(#id.shape());
            __ad_e.as_mut_slice()[__ad_j] = #one;
        }
    } else {
        quote! {
            let mut __ad_flat = ::std::vec![#zero; #id.len()];
            __ad_flat[__ad_j] = #one;
            let __ad_e: #owned = ::core::convert::TryFrom::try_from(__ad_flat).unwrap_or_else(|_| ::core::unreachable!());
        }
    };
    let pass = if p.by_ref {
        quote!(&__ad_e)
    } else {
        quote!(__ad_e)
    };
    (make, pass)
}

/// The flat elements of a gradient or tangent value `v` of kind `kind`.
fn flat(v: TokenStream, kind: Ty) -> TokenStream {
    if matches!(kind, Ty::Tensor(_)) {
        quote!(#v.as_slice())
    } else {
        quote!((&#v[..]))
    }
}

/// The dense result: `Vec<Vec<T>>` rows, or a `[rows, cols]` tensor for a tensor
/// parameter, from `__ad_rows` (a `Vec<Vec<T>>`).
fn finish(p: &Param, t: &TokenStream) -> (TokenStream, TokenStream) {
    if matches!(p.kind, Ty::Tensor(_)) {
        (
            quote!(::adjoint::__private::Tensor<#t>),
            quote! {{
                let __ad_m = __ad_rows.len();
                let __ad_n = __ad_rows.first().map_or(0, |r| r.len());
                ::adjoint::__private::Tensor::from_vec(__ad_rows.concat(), &[__ad_m, __ad_n])
            }},
        )
    } else {
        (
            quote!(::std::vec::Vec<::std::vec::Vec<#t>>),
            quote!(__ad_rows),
        )
    }
}

/// What both helpers write first: the float type, the literals 1 and 0, and the
/// parameter list as declared.
struct Common {
    t: TokenStream,
    one: TokenStream,
    zero: TokenStream,
    params: Vec<TokenStream>,
}

impl Common {
    fn of(sig: &Signature) -> Common {
        let ft = sig.ret_kind.float().unwrap_or(sig.float);
        let t = proc_macro2::Ident::new(ft.name(), Span::call_site());
        Common {
            t: quote!(#t),
            one: crate::emit::float_lit(1.0, ft, Span::call_site()),
            zero: crate::emit::float_lit(0.0, ft, Span::call_site()),
            params: sig
                .params
                .iter()
                .map(|p| {
                    let (i, ty) = (&p.ident, &p.ty);
                    quote!(#i: #ty)
                })
                .collect(),
        }
    }
}

/// `NAME_jacobian`, for a vector or tensor result.
pub fn jacobian(sig: &Signature) -> Option<TokenStream> {
    let (_, p) = the_param(sig)?;
    let out = sig.ret_kind;
    if !(out.is_memory() || matches!(out, Ty::Tensor(_))) {
        return None;
    }
    let Common {
        t,
        one,
        zero,
        params,
    } = Common::of(sig);
    let f = &sig.ident;
    let jvp = format_ident!("{}_jvp", f, span = f.span());
    let vjp = format_ident!("{}_vjp", f, span = f.span());
    let name = format_ident!("{}_jacobian", f, span = f.span());
    let vis = &sig.vis;
    let ret = &sig.ret;
    let x = &p.ident;
    let (make_e, pass_e) = unit(p, &one, &zero);
    let col = flat(quote!(__ad_col), out);
    let row = flat(quote!(__ad_g), p.kind);
    let plain = args(sig);
    let seed = if matches!(out, Ty::Tensor(_)) {
        quote! {
            let mut __ad_s = ::adjoint::__private::Tensor::zeros(__ad_y.shape());
            __ad_s.as_mut_slice()[__ad_i] = #one;
        }
    } else {
        quote! {
            let mut __ad_s = ::core::clone::Clone::clone(&__ad_y);
            for __ad_v in __ad_s.iter_mut() {
                *__ad_v = #zero;
            }
            __ad_s[__ad_i] = #one;
        }
    };
    let n_in = quote!(#x.len());
    let (dense_ty, dense) = finish(p, &t);
    let doc = format!(
        " The value of [`{f}`] and its Jacobian with respect to `{x}`, row `i` holding the derivatives of output `i`, generated by `#[differentiable]`: by forward mode (one `{f}_jvp` per input, the columns) when `{x}` has no more elements than the result, else by reverse mode (one `{f}_vjp` per output, the rows)."
    );
    Some(quote! {
        #[doc = #doc]
        #[allow(unused_variables, unused_mut, clippy::all, clippy::pedantic, clippy::nursery)]
        #vis fn #name(#(#params),*) -> (#ret, #dense_ty) {
            let __ad_y = #f(#(#plain),*);
            let __ad_m = __ad_y.len();
            let __ad_n = #n_in;
            let mut __ad_rows = ::std::vec![::std::vec![#zero; __ad_n]; __ad_m];
            if __ad_n <= __ad_m {
                for __ad_j in 0..__ad_n {
                    #make_e
                    let (_, __ad_col) = #jvp(#(#plain,)* #pass_e);
                    for (__ad_i, &__ad_v) in #col.iter().enumerate() {
                        __ad_rows[__ad_i][__ad_j] = __ad_v;
                    }
                }
            } else {
                for __ad_i in 0..__ad_m {
                    #seed
                    let (_, __ad_g) = #vjp(#(#plain,)* __ad_s);
                    __ad_rows[__ad_i].copy_from_slice(#row);
                }
            }
            (__ad_y, #dense)
        }
    })
}

/// `NAME_hessian`, for a float result under `order = 2`.
pub fn hessian(sig: &Signature) -> Option<TokenStream> {
    let (_, p) = the_param(sig)?;
    if !matches!(sig.ret_kind, Ty::Float(_)) {
        return None;
    }
    let Common {
        t,
        one,
        zero,
        params,
    } = Common::of(sig);
    let f = &sig.ident;
    let hvp = format_ident!("{}_hvp", f, span = f.span());
    let grad = format_ident!("{}_grad", f, span = f.span());
    let name = format_ident!("{}_hessian", f, span = f.span());
    let vis = &sig.vis;
    let ret = &sig.ret;
    let x = &p.ident;
    let (make_e, pass_e) = unit(p, &one, &zero);
    let plain = args(sig);
    let row = flat(quote!(__ad_h), p.kind);
    let grad_ty = Signature::grad_type(p);
    let (dense_ty, dense) = finish(p, &t);
    let doc = format!(
        " The value of [`{f}`], its gradient and its Hessian with respect to `{x}` (symmetric; row `i` is the gradient of the `i`-th partial), by one `{f}_hvp` per element of `{x}`, generated by `#[differentiable(order = 2)]`."
    );
    Some(quote! {
        #[doc = #doc]
        #[allow(unused_variables, unused_mut, clippy::all, clippy::pedantic, clippy::nursery)]
        #vis fn #name(#(#params),*) -> (#ret, #grad_ty, #dense_ty) {
            let (__ad_y, __ad_grad) = #grad(#(#plain),*);
            let __ad_n = #x.len();
            let mut __ad_rows = ::std::vec![::std::vec![#zero; __ad_n]; __ad_n];
            for __ad_j in 0..__ad_n {
                #make_e
                let (_, _, __ad_h) = #hvp(#(#plain,)* #pass_e);
                __ad_rows[__ad_j].copy_from_slice(#row);
            }
            (__ad_y, __ad_grad, #dense)
        }
    })
}
