//! Warnings from the macro, on stable Rust.
//!
//! A stable proc macro cannot emit a warning, but rustc warns on the use of a
//! `#[deprecated]` item, at the use's span, with the item's note. So a warning is an
//! anonymous `const _` holding a deprecated constant and one use of it, spanned on the
//! user's code: rustc prints "use of deprecated constant ..: NOTE" there, under the
//! `deprecated` lint (so `#[allow(deprecated)]` on the enclosing module silences it, and
//! `#![deny(warnings)]` makes it an error). The few lines are written here rather than
//! taken from a crate: the note is ours in full, and the macro gains no dependency.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote_spanned;

/// The warning that `fn_name` takes the tape, for `reason` (a clause: "because of a
/// closure", or the static path's own message), pointing at `span`.
pub fn tape_warning(fn_name: &Ident, span: Span, reason: &str) -> TokenStream {
    let note = format!(
        "`{fn_name}` runs on the tape {reason}. \
         Write #[differentiable(tape)] to keep it there without this warning, \
         or #[differentiable(static)] to make this a compile error"
    );
    warning(span, "runs_on_the_tape", &note)
}

/// Whether `attr` sets lint levels (`allow`, `warn`, `deny`, `forbid`): the function's
/// own, which the caller puts on the warning too, so that `#[allow(deprecated)]` on the
/// function silences it. Not `expect`: a copy would be an unfulfilled expectation.
pub fn is_lint_level(attr: &syn::Attribute) -> bool {
    ["allow", "warn", "deny", "forbid"]
        .iter()
        .any(|l| attr.path().is_ident(l))
}

/// A `deprecated` warning with `note`, at `span`. `name` is the constant rustc names in
/// the message (`use of deprecated constant `_::NAME``).
fn warning(span: Span, name: &str, note: &str) -> TokenStream {
    // Both the constant and its use carry the user's span: a span of the macro's own
    // (`call_site`) counts as inside an external macro, where rustc does not warn.
    let name = Ident::new(name, span);
    quote_spanned! {span=>
        const _: () = {
            #[deprecated(note = #note)]
            #[allow(non_upper_case_globals)]
            const #name: () = ();
            #name
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_the_function_the_construct_and_both_options() {
        let f = Ident::new("f", Span::call_site());
        let tokens = tape_warning(&f, Span::call_site(), "because of a macro call").to_string();
        assert!(tokens.contains("deprecated"), "{tokens}");
        for part in [
            "`f` runs on the tape because of a macro call",
            "#[differentiable(tape)]",
            "#[differentiable(static)]",
        ] {
            assert!(tokens.contains(part), "{part} not in {tokens}");
        }
        // Deterministic: the same input gives the same tokens.
        let again = tape_warning(&f, Span::call_site(), "because of a macro call").to_string();
        assert_eq!(tokens, again);
    }
}
