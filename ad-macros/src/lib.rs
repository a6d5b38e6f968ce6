//! The `#[differentiable]` attribute. The pipeline lives in `ad-macros-core`, a normal
//! library, so that it can be tested and benchmarked on `proc_macro2` tokens.

use proc_macro::TokenStream;

/// Emits `NAME_grad` and `NAME_vjp` beside the function; see the `adjoint` crate docs.
#[proc_macro_attribute]
pub fn differentiable(args: TokenStream, item: TokenStream) -> TokenStream {
    ad_macros_core::expand(args.into(), item.into()).into()
}
