//! The options of `#[differentiable(wrt(a, b), tape)]`.

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
                args.wrt = Some(names.into_iter().collect());
            } else {
                push(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}`; #[differentiable] takes `wrt(..)` and `tape`"),
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
        let e = syn::parse_str::<Args>("tap").unwrap_err();
        assert!(e.to_string().contains("unknown option `tap`"));
    }
}
