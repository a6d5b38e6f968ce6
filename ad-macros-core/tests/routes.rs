//! The route of every `#[differentiable]` function of `tests/grad_tape_fallback.rs`,
//! pinned: that file checks gradients, and would still pass if a function silently
//! moved from the tape to the static path or back. The expected routes follow the
//! rules of the crate docs ("Which functions take the tape"), one function per
//! construct.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::collections::BTreeMap;

const FALLBACK: &str = include_str!("../../tests/grad_tape_fallback.rs");
const CALLS: &str = include_str!("../../tests/grad_calls.rs");

/// The plain `#[differentiable]` functions of `tests/grad_calls.rs` (its twins are
/// defined through a macro and carry `static` or `tape`).
const CALLS_EXPECTED: &[(&str, &str)] = &[
    ("logsumexp", "static"),
    ("sqnorm3", "static"),
    ("scaled_sum", "static"),
    ("vec_energy", "static"),
    ("arr_energy", "static"),
    ("lse_scaled", "static"),
    ("last_twice", "tape: Iterator"),
    ("get_sum", "tape: Iterator"),
    ("clone_index", "tape: Iterator"),
    ("mixed_default", "static"),
    ("local_array_default", "static"),
    ("vec_call_default", "static"),
    ("tensor_between", "static"),
    ("two_tensors", "static"),
    ("calls_tensor_between", "static"),
    ("calls_tensor_between_tape", "tape"),
];

/// Function name -> "static", "tape" (forced) or "tape: <Construct>".
const EXPECTED: &[(&str, &str)] = &[
    ("by_mode", "static"),
    ("by_mode_static", "static"),
    // `zip` comes before the closure in source order.
    ("dot3", "static"),
    ("dot3_static", "static"),
    // `x.iter().sum()` is static; the `iter()` under `map` is not.
    ("variance", "static"),
    ("variance_static", "static"),
    ("with_closures", "static"),
    ("with_closures_static", "static"),
    ("uses_cube", "tape: Inline"),
    ("uses_cube_static", "static"),
    ("prefix_energy", "tape: LocalVec"),
    ("prefix_energy_static", "static"),
    ("smoothed", "static"),
    ("smoothed_static", "static"),
    // `for xi in x` over a slice parameter is static; the sub-slice `&x[1..]` is not.
    ("reborrow", "tape: Iterator"),
    ("reborrow_static", "static"),
    ("labeled", "static"),
    ("labeled_static", "static"),
    ("polar", "static"),
    ("polar_static", "static"),
    ("capped_power", "static"),
    ("capped_power_static", "static"),
    // A straight-line tensor body without an option.
    ("layer", "static"),
    ("layers", "tape: TensorControl"),
    ("layers_static", "static"),
];

fn describe(route: ad_macros_core::route::Route) -> String {
    use ad_macros_core::route::{Reason, Route};
    match route {
        Route::Static => "static".to_string(),
        Route::Tape(Reason::Forced) => "tape".to_string(),
        Route::Tape(Reason::Construct(c, _)) => format!("tape: {c:?}"),
    }
}

/// Every `#[differentiable(..)]` function of a file (top level and in inline
/// modules): its name, the attribute's arguments, and the function without the
/// attribute, as the proc macro receives it.
fn differentiable_fns(file: &syn::File) -> Vec<(String, TokenStream, TokenStream)> {
    fn walk(items: &[syn::Item], out: &mut Vec<(String, TokenStream, TokenStream)>) {
        for item in items {
            match item {
                syn::Item::Fn(f) => {
                    for attr in f
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("differentiable"))
                    {
                        let args = match &attr.meta {
                            syn::Meta::List(l) => l.tokens.clone(),
                            _ => TokenStream::new(),
                        };
                        let mut f = f.clone();
                        f.attrs.retain(|a| !a.path().is_ident("differentiable"));
                        out.push((f.sig.ident.to_string(), args, f.to_token_stream()));
                    }
                }
                syn::Item::Mod(m) => {
                    if let Some((_, items)) = &m.content {
                        walk(items, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&file.items, &mut out);
    out
}

#[test]
fn every_function_of_grad_tape_fallback_takes_its_expected_route() {
    let file = syn::parse_file(FALLBACK).expect("tests/grad_tape_fallback.rs parses");
    let fns = differentiable_fns(&file);
    // A `#[differentiable]` inside a macro invocation would escape the table: every
    // line that starts with the attribute must belong to a function found.
    let attributes = FALLBACK
        .lines()
        .filter(|l| l.trim_start().starts_with("#[differentiable"))
        .count();
    assert_eq!(
        attributes,
        fns.len(),
        "a #[differentiable] function of grad_tape_fallback.rs is not a plain item"
    );
    let expected: BTreeMap<&str, &str> = EXPECTED.iter().copied().collect();
    assert_eq!(
        expected.len(),
        EXPECTED.len(),
        "a name is twice in EXPECTED"
    );
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (name, args, item) in &fns {
        seen.push(name.as_str());
        let got = match ad_macros_core::route_of(args.clone(), item.clone()) {
            Ok(route) => describe(route),
            Err(e) => format!("rejected: {e}"),
        };
        match expected.get(name.as_str()) {
            None => problems.push(format!("{name}: not in EXPECTED (its route: {got})")),
            Some(want) if *want != got => {
                problems.push(format!("{name}: expected {want}, got {got}"))
            }
            Some(_) => {}
        }
    }
    for name in expected.keys() {
        if !seen.contains(name) {
            problems.push(format!("{name}: in EXPECTED but not in the file"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Both routes are represented. (Issue 11 moves constructs from the tape to the
    // one IR: the functions that moved are pinned as "static" above.)
    assert!(EXPECTED.iter().any(|(_, r)| *r == "static"));
    assert!(
        EXPECTED
            .iter()
            .filter(|(_, r)| r.starts_with("tape"))
            .count()
            >= 3
    );
}

#[test]
fn calls_with_slice_and_array_arguments_take_the_static_path() {
    let file = syn::parse_file(CALLS).expect("tests/grad_calls.rs parses");
    let fns = differentiable_fns(&file);
    let expected: BTreeMap<&str, &str> = CALLS_EXPECTED.iter().copied().collect();
    let mut problems = Vec::new();
    for (name, args, item) in &fns {
        let got = match ad_macros_core::route_of(args.clone(), item.clone()) {
            Ok(route) => describe(route),
            Err(e) => format!("rejected: {e}"),
        };
        match expected.get(name.as_str()) {
            None => problems.push(format!("{name}: not in CALLS_EXPECTED (its route: {got})")),
            Some(want) if *want != got => {
                problems.push(format!("{name}: expected {want}, got {got}"))
            }
            Some(_) => {}
        }
    }
    for name in expected.keys() {
        if !fns.iter().any(|(n, ..)| n == name) {
            problems.push(format!("{name}: in CALLS_EXPECTED but not in the file"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn route_of_reports_options_and_rejections() {
    use quote::quote;
    let body = quote!(
        fn f(x: &[f64]) -> f64 {
            *x.last().unwrap() * x[0]
        }
    );
    let route = |args| ad_macros_core::route_of(args, body.clone()).map(describe);
    assert_eq!(route(quote!()), Ok("tape: Iterator".to_string()));
    assert_eq!(route(quote!(tape)), Ok("tape".to_string()));
    assert_eq!(route(quote!(static)), Ok("static".to_string()));
    // A rejection that comes before the route (an unknown option; a construct that
    // neither path takes) is an `Err` with the message, as `expand` reports it.
    let err = route(quote!(frobnicate)).unwrap_err();
    assert!(!err.is_empty());
    let unsafe_body = quote!(
        fn f(x: f64) -> f64 {
            unsafe { x }
        }
    );
    let err = ad_macros_core::route_of(quote!(), unsafe_body).unwrap_err();
    assert!(err.contains("`unsafe` code"), "{err}");
}
