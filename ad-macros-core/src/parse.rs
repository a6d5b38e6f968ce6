//! `syn::ItemFn` -> the signature model: which parameters exist, their kinds, which
//! ones are differentiated, and what the function returns.

use crate::args::Args;
use crate::ctxt::Ctxt;
use crate::ir::{FloatTy, Ty};
use proc_macro2::Span;
use quote::ToTokens;
use syn::{FnArg, Ident, Pat, ReturnType, Type};

/// One parameter of the function.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name.
    pub ident: Ident,
    /// Its type as written.
    pub ty: Type,
    /// Its kind.
    pub kind: Ty,
    /// Whether the type is a shared reference (`&Tensor`).
    pub by_ref: bool,
    /// Whether a gradient is computed for it.
    pub diff: bool,
    /// Whether it is an in-out `&mut` parameter (`&mut [f64]`, `&mut Vec<f64>`: kind
    /// [`Ty::Buf`]; `&mut f64`: kind [`Ty::Float`]). Its `_vjp` takes a seed for its
    /// final value and gives the gradient of its initial value.
    pub mutable: bool,
}

/// The signature model of a `#[differentiable]` function.
#[derive(Clone, Debug)]
pub struct Signature {
    /// The visibility, reused for `_grad` and `_vjp`.
    pub vis: syn::Visibility,
    /// The function's name.
    pub ident: Ident,
    /// Its parameters, in order.
    pub params: Vec<Param>,
    /// The return type as written.
    pub ret: Type,
    /// The kind of the result (a float, a tensor, memory, or [`Ty::Tuple`]).
    pub ret_kind: Ty,
    /// For a tuple result, the kind of each element (a float, a tensor, or memory
    /// for `[T; N]` and `Vec<T>`); empty otherwise.
    pub ret_elems: Vec<Ty>,
    /// The float width of untyped literals: the result's.
    pub float: FloatTy,
    /// The function's `#[inline]` attributes, which `_grad` and `_vjp` get too: a
    /// caller's reverse sweep calls the `_vjp` of a helper written to be inlined.
    pub inline: Vec<syn::Attribute>,
}

impl Signature {
    /// Whether some parameter is `&mut`.
    pub fn has_mut(&self) -> bool {
        self.params.iter().any(|p| p.mutable)
    }

    /// The name of the seed of `_vjp` for the final value of the `&mut` parameter `p`:
    /// `seed_NAME`, or `__ad_seed_NAME` when a parameter already has that name.
    pub fn mut_seed_ident(&self, p: &Param) -> Ident {
        let name = format!("seed_{}", p.ident);
        let name = if self.params.iter().any(|q| q.ident == name) {
            format!("__ad_{name}")
        } else {
            name
        };
        Ident::new(&name, p.ident.span())
    }

    /// The type of the seed of a `&mut` parameter: `&[T]` for memory, `T` for a scalar.
    pub fn mut_seed_type(p: &Param) -> proc_macro2::TokenStream {
        let t = Ident::new(
            p.kind.float().unwrap_or(FloatTy::F64).name(),
            Span::call_site(),
        );
        if p.kind.is_memory() {
            quote::quote!(&[#t])
        } else {
            quote::quote!(#t)
        }
    }

    /// The differentiated parameters, in order.
    pub fn diff_params(&self) -> impl Iterator<Item = (usize, &Param)> {
        self.params.iter().enumerate().filter(|(_, p)| p.diff)
    }

    /// The type of the gradient of parameter `p`: its own type, owned.
    pub fn grad_type(p: &Param) -> proc_macro2::TokenStream {
        match p.kind {
            Ty::Tensor(t) => {
                let t = Ident::new(t.name(), Span::call_site());
                quote::quote!(::adjoint::__private::Tensor<#t>)
            }
            // A slice's gradient is owned (issue 6): `&[T]` and `Vec<T>` give `Vec<T>`,
            // `[T; N]` gives `[T; N]`.
            Ty::Slice(t) => match strip_ref(&p.ty) {
                Type::Array(a) => quote::quote!(#a),
                _ => {
                    let t = Ident::new(t.name(), Span::call_site());
                    quote::quote!(::std::vec::Vec<#t>)
                }
            },
            // `&mut [T]`, `&mut Vec<T>`: the gradient of the initial value, a `Vec<T>`.
            Ty::Buf(t) => {
                let t = Ident::new(t.name(), Span::call_site());
                quote::quote!(::std::vec::Vec<#t>)
            }
            // `&mut T`: a `T`.
            Ty::Float(t) if p.mutable => {
                let t = Ident::new(t.name(), Span::call_site());
                quote::quote!(#t)
            }
            _ => {
                let ty = &p.ty;
                quote::quote!(#ty)
            }
        }
    }

    /// The `Grads` type: the bare gradient for one parameter, a tuple otherwise.
    pub fn grads_type(&self) -> proc_macro2::TokenStream {
        let tys: Vec<_> = self
            .diff_params()
            .map(|(_, p)| Self::grad_type(p))
            .collect();
        if tys.len() == 1 {
            tys[0].clone()
        } else {
            quote::quote!((#(#tys),*))
        }
    }
}

/// The type behind `&`, invisible groups (types passed through `macro_rules!`) and
/// parentheses.
pub fn strip_ref(ty: &Type) -> &Type {
    match ty {
        Type::Reference(r) => strip_ref(&r.elem),
        Type::Group(g) => strip_ref(&g.elem),
        Type::Paren(p) => strip_ref(&p.elem),
        ty => ty,
    }
}

/// The type behind invisible groups and parentheses.
fn strip_group(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => strip_group(&g.elem),
        Type::Paren(p) => strip_group(&p.elem),
        ty => ty,
    }
}

/// The kind of an in-out parameter `&mut T` from `T`: `[f64]` and `Vec<f64>` are
/// writable memory, `f64` a scalar; `None` for the rest (arrays included: their
/// seed and gradient would have to be arrays too).
fn classify_mut(elem: &Type) -> Option<Ty> {
    match strip_group(elem) {
        Type::Slice(s) => match classify(&s.elem)? {
            (Ty::Float(f), false) => Some(Ty::Buf(f)),
            _ => None,
        },
        Type::Array(_) => None,
        elem => match classify(elem)? {
            (Ty::Slice(f), false) => Some(Ty::Buf(f)),
            (k @ Ty::Float(_), false) => Some(k),
            _ => None,
        },
    }
}

/// Whether a parameter type that [`classify`] does not know is taken as a constant: a
/// named type (`Mode`, `&Config`, `Vec<usize>`) whose generic arguments name no float
/// or tensor: those (`Option<f64>`, `Vec<Vec<f64>>`) would be gradients silently
/// dropped, and stay errors.
fn is_constant_type(ty: &Type) -> bool {
    match strip_group(ty) {
        Type::Reference(r) if r.mutability.is_none() => is_constant_type(&r.elem),
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident != "Tensor" && !mentions_float(&s.arguments)),
        Type::Slice(s) => !mentions_float_ty(&s.elem),
        _ => false,
    }
}

/// Whether generic arguments name `f32` or `f64` anywhere.
fn mentions_float(args: &syn::PathArguments) -> bool {
    match args {
        syn::PathArguments::AngleBracketed(a) => a.args.iter().any(|g| match g {
            syn::GenericArgument::Type(t) => mentions_float_ty(t),
            _ => false,
        }),
        _ => false,
    }
}

fn mentions_float_ty(ty: &Type) -> bool {
    ty.to_token_stream()
        .into_iter()
        .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "f32" || i == "f64"))
        || matches!(strip_group(ty), Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Tensor"))
}

/// Classifies a type as written; `None` when `#[differentiable]` cannot take it.
pub fn classify(ty: &Type) -> Option<(Ty, bool)> {
    match ty {
        Type::Paren(p) => classify(&p.elem),
        Type::Group(g) => classify(&g.elem),
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            // `&[f64]` (issue 6): the unsized slice exists only behind a reference.
            Type::Slice(s) => match classify(&s.elem)? {
                (Ty::Float(f), false) => Some((Ty::Slice(f), true)),
                _ => None,
            },
            elem => match classify(elem)? {
                (k @ (Ty::Tensor(_) | Ty::Slice(_)), false) => Some((k, true)),
                _ => None,
            },
        },
        // `[f64; N]` (issue 6).
        Type::Array(a) => match classify(&a.elem)? {
            (Ty::Float(f), false) => Some((Ty::Slice(f), false)),
            _ => None,
        },
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let name = last.ident.to_string();
            if p.path.segments.len() == 1 {
                match name.as_str() {
                    "f32" => return Some((Ty::Float(FloatTy::F32), false)),
                    "f64" => return Some((Ty::Float(FloatTy::F64), false)),
                    "bool" => return Some((Ty::Bool, false)),
                    n if is_int_type(n) => return Some((Ty::Int, false)),
                    _ => {}
                }
            }
            if name == "Vec" {
                // `Vec<f64>` (issue 6).
                return float_arg(&last.arguments).map(|f| (Ty::Slice(f), false));
            }
            if name == "Tensor" {
                return match &last.arguments {
                    syn::PathArguments::None => Some((Ty::Tensor(FloatTy::F64), false)),
                    syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => {
                        match a.args.first() {
                            Some(syn::GenericArgument::Type(t)) => match classify(t)? {
                                (Ty::Float(f), false) => Some((Ty::Tensor(f), false)),
                                _ => None,
                            },
                            _ => None,
                        }
                    }
                    _ => None,
                };
            }
            None
        }
        _ => None,
    }
}

/// The float `T` of `<T>`, the generic argument of `Vec<T>`.
fn float_arg(args: &syn::PathArguments) -> Option<FloatTy> {
    match args {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first()? {
            syn::GenericArgument::Type(t) => match classify(t)? {
                (Ty::Float(f), false) => Some(f),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// Builds the signature model, reporting every problem into `cx`. Returns `None` when
/// the signature is unusable (then no `_grad`/`_vjp` stubs can be written either).
pub fn parse(cx: &Ctxt, item: &syn::ItemFn, args: &Args) -> Option<Signature> {
    let sig = &item.sig;
    let mut ok = true;
    let mut fail = |tokens: &dyn ToTokens, msg: String| {
        cx.error_spanned_by(tokens.to_token_stream(), msg);
        ok = false;
    };
    if let Some(a) = &sig.asyncness {
        fail(a, "async functions are not supported by #[differentiable]; differentiate a synchronous function and call it from async code".into());
    }
    if let Some(c) = &sig.constness {
        fail(
            c,
            "const functions are not supported by #[differentiable]; remove `const`".into(),
        );
    }
    if let Some(v) = &sig.variadic {
        fail(
            v,
            "variadic functions are not supported by #[differentiable]".into(),
        );
    }
    let type_generics: Vec<_> = sig
        .generics
        .params
        .iter()
        .filter(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
        .collect();
    if !type_generics.is_empty() {
        // The parameter and return types name the generics: one error says it all.
        cx.error_spanned_by(
            &sig.generics,
            "generic functions are not supported by #[differentiable]; write the function for a concrete float type (`f32` or `f64`)",
        );
        return None;
    }
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => fail(
                r,
                "methods taking `self` are not supported by #[differentiable]; write a free function that takes the fields it needs as parameters".into(),
            ),
            FnArg::Typed(pt) => {
                let ident = match &*pt.pat {
                    Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => pi.ident.clone(),
                    other => {
                        fail(other, "parameter patterns are not supported by #[differentiable]; give the parameter a name and destructure it in the body".into());
                        continue;
                    }
                };
                if let Type::Reference(r) = strip_group(&pt.ty) {
                    if r.mutability.is_some() {
                        // An in-out parameter (issue 11): `&mut [f64]`, `&mut Vec<f64>`, `&mut f64`.
                        match classify_mut(&r.elem) {
                            Some(kind) => params.push(Param { ident, ty: (*pt.ty).clone(), kind, by_ref: true, diff: true, mutable: true }),
                            None => fail(&pt.ty, format!("the type of the `&mut` parameter `{ident}` is not supported by #[differentiable]; in-out parameters are `&mut [f64]`, `&mut Vec<f64>` and `&mut f64` (or `f32`)")),
                        }
                        continue;
                    }
                }
                match classify(&pt.ty) {
                    Some((kind, by_ref)) => params.push(Param { ident, ty: (*pt.ty).clone(), kind, by_ref, diff: kind.is_differentiable(), mutable: false }),
                    // A parameter of another type (an enum, a configuration struct, a
                    // `Vec<usize>`) is a constant: the body reads it, no gradient is
                    // computed for it (`wrt` cannot name it).
                    None if is_constant_type(&pt.ty) => params.push(Param { ident, ty: (*pt.ty).clone(), kind: Ty::Opaque, by_ref: matches!(strip_group(&pt.ty), Type::Reference(_)), diff: false, mutable: false }),
                    None => fail(&pt.ty, format!(
                        "parameter `{ident}` holds floats in a type that #[differentiable] does not differentiate, and their gradient would be lost; pass them as `f32`, `f64`, `&[f64]`, `Vec<f64>`, `[f64; N]`, `Tensor` or `&Tensor` (parameters of other types, such as enums, `&[usize]` or configuration structs, are constants)"
                    )),
                }
            }
        }
    }
    let has_mut = params.iter().any(|p| p.mutable);
    let (ret, ret_kind) = match &sig.output {
        // A helper that only writes its `&mut` parameters returns `()`.
        ReturnType::Default if has_mut => (syn::parse_quote!(()), Ty::Unit),
        ReturnType::Type(_, ty)
            if has_mut && matches!(strip_group(ty), Type::Tuple(t) if t.elems.is_empty()) =>
        {
            ((**ty).clone(), Ty::Unit)
        }
        ReturnType::Default => {
            fail(&sig.ident, "a #[differentiable] function must return a value to differentiate; add a return type (`f32`, `f64` or `Tensor`)".into());
            (syn::parse_quote!(()), Ty::Opaque)
        }
        ReturnType::Type(_, ty) => match classify(ty) {
            Some((k @ (Ty::Float(_) | Ty::Tensor(_)), false)) => ((**ty).clone(), k),
            // `-> [f64; N]`, `-> Vec<f64>`: a vector result, whose `_vjp` takes a seed
            // of the same type (one IR only).
            Some((k @ Ty::Slice(_), false)) => ((**ty).clone(), k),
            // `-> (f64, Tensor)`: a tuple result (one IR only).
            None if tuple_elems(ty).is_some() => ((**ty).clone(), Ty::Tuple),
            _ => {
                fail(ty, format!(
                    "#[differentiable] functions must return `f32`, `f64`, `Tensor`, `[f64; N]`, `Vec<f64>` or a tuple of these, not `{}`; only a float result has a gradient",
                    ty.to_token_stream().to_string().replace(" ", "")
                ));
                ((**ty).clone(), Ty::Opaque)
            }
        },
    };
    if let Some(wrt) = &args.wrt {
        for p in &mut params {
            p.diff = false;
        }
        for name in wrt {
            match params.iter_mut().find(|p| p.ident == *name) {
                None => fail(
                    name,
                    format!(
                        "`wrt` names `{name}`, which is not a parameter of `{}`",
                        sig.ident
                    ),
                ),
                Some(p) if !p.kind.is_differentiable() => {
                    let ty = &p.ty;
                    fail(name, format!(
                        "`wrt` names `{name}`, which has type `{}`: only float and tensor parameters can be differentiated",
                        quote::quote!(#ty).to_string().replace(" ", "")
                    ))
                }
                Some(p) => p.diff = true,
            }
        }
    }
    let ret_elems = match &sig.output {
        ReturnType::Type(_, ty) if ret_kind == Ty::Tuple => tuple_elems(ty).unwrap_or_default(),
        _ => Vec::new(),
    };
    let float = ret_kind
        .float()
        .or_else(|| ret_elems.iter().find_map(|k| k.float()))
        .or_else(|| params.iter().find_map(|p| p.kind.float()))
        .unwrap_or(FloatTy::F64);
    if !ok {
        return None;
    }
    Some(Signature {
        vis: item.vis.clone(),
        ident: sig.ident.clone(),
        params,
        ret,
        ret_kind,
        ret_elems,
        float,
        inline: item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("inline"))
            .cloned()
            .collect(),
    })
}

/// The kinds of the elements of a tuple result type `(A, B, ..)`, each a float, a
/// tensor, `[T; N]` or `Vec<T>`; `None` for any other type (the unit type included).
pub fn tuple_elems(ty: &Type) -> Option<Vec<Ty>> {
    let Type::Tuple(t) = strip_group(ty) else {
        return None;
    };
    if t.elems.is_empty() {
        return None;
    }
    t.elems
        .iter()
        .map(|e| match classify(e)? {
            (k @ (Ty::Float(_) | Ty::Tensor(_) | Ty::Slice(_)), false) => Some(k),
            _ => None,
        })
        .collect()
}

/// Whether `name` is one of Rust's primitive integer types.
pub fn is_int_type(name: &str) -> bool {
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
