//! The `#[differentiable]` attribute.

use proc_macro::TokenStream;

/// Emits `NAME_grad` and `NAME_vjp` beside the function (being built).
#[proc_macro_attribute]
pub fn differentiable(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
