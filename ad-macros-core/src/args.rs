//! The options of `#[differentiable(wrt(a, b), tape)]`, `static` and `inline(f, g)`.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

/// The parsed attribute arguments.
#[derive(Default, Debug)]
pub struct Args {
    /// `wrt(..)`: the parameters to differentiate, with their spans; `None` means the
    /// default (every float parameter).
    pub wrt: Option<Vec<Ident>>,
    /// `tape`: use the dynamic tape instead of the static path.
    pub tape: bool,
    /// `static`: require the static path; every construct that would take the tape
    /// fallback is a compile error instead. The keyword's span, for errors.
    pub static_: Option<proc_macro2::Span>,
    /// `inline(f, g)`: calls of these functions run as written on tape values (the
    /// callee is generic over the value type) instead of chaining through `f_vjp`.
    /// Only the tape can do that, so naming one sends the body to the tape.
    pub inline: Vec<Ident>,
    /// `order = 2`: also the second-order companions (`NAME_hvp`, `NAME_hessian`, and
    /// the derivatives of `NAME_grad`, `NAME_vjp`, `NAME_jvp` that nested calls use),
    /// with the span of the option. `None` is order 1.
    pub order2: Option<proc_macro2::Span>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        while !input.is_empty() {
            if input.peek(Token![static]) {
                let kw: Token![static] = input.parse()?;
                if args.static_.is_some() {
                    push(syn::Error::new(kw.span, "`static` is given twice"));
                }
                args.static_ = Some(kw.span);
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
                continue;
            }
            let key: Ident = input.parse()?;
            if key == "tape" {
                if args.tape {
                    push(syn::Error::new(key.span(), "`tape` is given twice"));
                }
                args.tape = true;
            } else if key == "wrt" {
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if args.wrt.is_some() {
                    push(syn::Error::new(key.span(), "`wrt(..)` is given twice"));
                }
                if names.is_empty() {
                    push(syn::Error::new(
                        key.span(),
                        "`wrt()` names no parameter; list the parameters to differentiate, as in `wrt(x, y)`",
                    ));
                }
                // A name given twice is a slip (a different parameter was meant).
                for (i, name) in names.iter().enumerate() {
                    if names.iter().take(i).any(|earlier| earlier == name) {
                        push(syn::Error::new(
                            name.span(),
                            format!("`wrt` names `{name}` twice"),
                        ));
                    }
                }
                args.wrt = Some(names.into_iter().collect());
            } else if key == "order" {
                input.parse::<Token![=]>()?;
                let lit: syn::LitInt = input.parse()?;
                match lit.base10_parse::<u32>() {
                    Ok(1) => {}
                    Ok(2) => args.order2 = Some(lit.span()),
                    _ => push(syn::Error::new(
                        lit.span(),
                        "`order` is 1 (the default: `_grad`, `_vjp`, `_jvp`) or 2 (also `_hvp`, `_hessian` and the companions that nested differentiation calls)",
                    )),
                }
            } else if key == "inline" {
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if names.is_empty() {
                    push(syn::Error::new(
                        key.span(),
                        "`inline()` names no function; list the functions to run on the tape as written, as in `inline(sq)`",
                    ));
                }
                args.inline.extend(names);
            } else {
                push(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}`; #[differentiable] takes `wrt(..)`, `tape`, `static`, `inline(..)` and `order = 2`"),
                ));
                // Skip a parenthesized group after an unknown key, so parsing goes on.
                if input.peek(syn::token::Paren) {
                    let _content;
                    syn::parenthesized!(_content in input);
                    let _: TokenStream = _content.parse()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if let (true, Some(span)) = (args.tape, args.static_) {
            push(syn::Error::new(
                span,
                "`static` and `tape` exclude each other; keep the one you need",
            ));
        }
        if let (Some(span), Some(f)) = (args.static_, args.inline.first()) {
            let mut e = syn::Error::new(
                f.span(),
                format!("`inline({f})` needs the tape, which `static` forbids; give `{f}` a `{f}_vjp` and call it normally"),
            );
            e.combine(syn::Error::new(span, "`static` is given here"));
            push(e);
        }
        match errors {
            Some(e) => Err(e),
            None => Ok(args),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let a: Args = syn::parse_str("wrt(a, b), tape").unwrap();
        assert!(a.tape);
        assert_eq!(a.wrt.unwrap().len(), 2);
        let a: Args = syn::parse_str("").unwrap();
        assert!(!a.tape && a.wrt.is_none());
        let a: Args = syn::parse_str("static, wrt(x)").unwrap();
        assert!(a.static_.is_some() && !a.tape);
        let a: Args = syn::parse_str("inline(sq, cube), tape").unwrap();
        assert_eq!(a.inline.len(), 2);
        let e = syn::parse_str::<Args>("static, tape").unwrap_err();
        assert!(e.to_string().contains("exclude each other"));
        let e = syn::parse_str::<Args>("wrt(x, y, x)").unwrap_err();
        assert_eq!(e.to_string(), "`wrt` names `x` twice");
        let e = syn::parse_str::<Args>("tap").unwrap_err();
        assert!(e.to_string().contains("unknown option `tap`"));
        let a: Args = syn::parse_str("order = 2, wrt(x)").unwrap();
        assert!(a.order2.is_some());
        let a: Args = syn::parse_str("order = 1").unwrap();
        assert!(a.order2.is_none());
        let e = syn::parse_str::<Args>("order = 3").unwrap_err();
        assert!(e.to_string().contains("`order` is 1"));
        let a: Args = syn::parse_str("order = 2, tape").unwrap();
        assert!(a.order2.is_some() && a.tape);
    }
}
