//! What is emitted when a function cannot be expanded: the errors as `compile_error!`,
//! the original function unchanged, and stub `_grad`/`_vjp` functions with the right
//! signatures, so that one mistake gives one error and not a cascade at every caller.

use crate::emit::{self, Which};
use crate::ir::Ty;
use crate::parse::Signature;
use proc_macro2::TokenStream;
use quote::quote;

/// The failed expansion of `item` (the function's tokens, as the user wrote them).
pub fn expand(item: &TokenStream, sig: Option<&Signature>, err: syn::Error) -> TokenStream {
    let errors = err.to_compile_error();
    let stubs = sig.map(|sig| {
        let stub = |which: Which| {
            let attrs = emit::attrs(sig, which);
            let signature = emit::signature(sig, which);
            quote! {
                #attrs
                #signature {
                    ::core::unreachable!("#[differentiable] reported an error for this function")
                }
            }
        };
        let grad = matches!(sig.ret_kind, Ty::Float(_)).then(|| stub(Which::Grad));
        let vjp = stub(Which::Vjp);
        quote!(#grad #vjp)
    });
    quote! {
        #errors
        #item
        #stubs
    }
}
