//! The IR as printed: lowering, the reverse sweep and simplification, and the errors
//! of rejected bodies, all without rustc.

use quote::quote;

fn ir(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> (String, String) {
    ad_macros_core::ir(args, item).expect("the function is accepted")
}

#[test]
fn lowering_resolves_mut_and_shadowing() {
    let (primal, _) = ir(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                let mut y = x * 2.0;
                y += x.sin();
                let y = y.exp();
                y
            }
        },
    );
    assert_eq!(
        primal,
        r#"%0: f64 = param 0
%1: f64 = 2.0
%2: f64 = %0 * %1
%3: f64 = sin %0
%4: f64 = %2 + %3
%5: f64 = exp %4
return %5"#
    );
}

#[test]
fn adjoint_reuses_primal_values_and_simplifies() {
    // d exp(u) = exp(u) du: the gradient reads the forward `exp` (%5), never recomputes it;
    // the seed 1 and the `* 1` of `d(x*2)` are folded away. No contribution is guarded:
    // `cos` and the product's partials are infinite only where the primal is, and no
    // routing rule (`min`, a branch, a select) can make an adjoint an exact zero here.
    let (_, grad) = ir(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                let u = x * 2.0 + x.sin();
                u.exp()
            }
        },
    );
    assert_eq!(
        grad,
        r#"%0: f64 = param 0
%1: f64 = 2.0
%2: f64 = %0 * %1
%3: f64 = sin %0
%4: f64 = %2 + %3
%5: f64 = exp %4
%6: f64 = cos %0  ; adj
%7: f64 = %5 * %6  ; adj
%8: f64 = %5 * %1  ; adj
%9: f64 = %7 + %8  ; adj
return %5, %9"#
    );
}

#[test]
fn wrt_emits_no_adjoint_for_the_others() {
    let (_, grad) = ir(
        quote!(wrt(b)),
        quote! {
            fn f(w: f64, b: f64, x: f64) -> f64 {
                (w * x).sin() + b
            }
        },
    );
    // The gradient of `b` is the seed itself: no node is spent on `w` or `x`.
    assert_eq!(
        grad,
        r#"%0: f64 = param 0
%1: f64 = param 1
%2: f64 = param 2
%3: f64 = %0 * %2
%4: f64 = sin %3
%5: f64 = %4 + %1
%6: f64 = 1.0  ; adj
return %5, %6"#
    );
}

#[test]
fn common_subexpressions_are_shared() {
    // Both rules need cos x: it is computed once.
    let (_, grad) = ir(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                x.sin() + x.sin() * 3.0
            }
        },
    );
    assert_eq!(grad.matches("cos").count(), 1, "{grad}");
}

#[test]
fn if_becomes_a_region_and_is_reversed() {
    let (primal, grad) = ir(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                if x > 0.0 { x * x } else { -x }
            }
        },
    );
    assert_eq!(
        primal,
        r#"%0: f64 = param 0
%1: f64 = 0.0
%2: bool = %0 > %1
%5: tuple = if %2 {
  %3: f64 = %0 * %0
  yield %3
} else {
  %4: f64 = neg %0
  yield %4
}
%6: f64 = %5.0
return %6"#
    );
    assert!(grad.contains("if %2 {"), "{grad}");
}

#[test]
fn every_mistake_is_reported() {
    let err = ad_macros_core::ir(
        quote!(),
        quote! {
            fn f(x: f64) -> f64 {
                let a = x.to_degrees();
                let mut c = 0.0;
                let g = |t: f64| {
                    c = t;
                    t
                };
                loop {}
                a + g(x)
            }
        },
    )
    .unwrap_err();
    assert!(
        err.contains("method `to_degrees` is not supported"),
        "{err}"
    );
    assert!(err.contains("this closure assigns `c`"), "{err}");
    assert!(err.contains("this `loop` never ends"), "{err}");
}

/// The messages of the `compile_error!`s anywhere in `tokens`, each checked to be a
/// non-empty string literal.
fn compile_errors(tokens: proc_macro2::TokenStream, out: &mut Vec<String>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Ident(id) if id == "compile_error" => {
                let Some(TokenTree::Group(arg)) = tokens.get(i + 2) else {
                    panic!("`compile_error` without an argument");
                };
                let msg: syn::LitStr = syn::parse2(arg.stream()).expect("a string message");
                assert!(!msg.value().trim().is_empty(), "an empty message");
                out.push(msg.value());
            }
            TokenTree::Group(g) => compile_errors(g.stream(), out),
            _ => {}
        }
    }
}

/// Whether the three option sets (none, `tape`, `wrt(x)`) reject a case.
const R: bool = true;
/// ... or pass it on: the function is emitted unchanged whatever happens, so code that
/// is not valid Rust but that the macro need not understand (the tape leaves types to
/// rustc) is reported by rustc on the function as written.
const A: bool = false;

#[test]
fn odd_input_expands_to_code_or_an_error() {
    let cases = [
        // No parameter: nothing to differentiate, but nothing wrong (`wrt(x)` is).
        (
            quote!(
                fn f() -> f64 {
                    1.0
                }
            ),
            [A, A, R],
        ),
        // No result: always wrong.
        (
            quote!(
                fn f(x: f64) {}
            ),
            [R, R, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {}
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    let y;
                    y
                }
            ),
            [R, A, R],
        ),
        // A tuple: the tape's (without an option too).
        (
            quote!(
                fn f(x: f64) -> f64 {
                    let (a, b) = (x, x);
                    a
                }
            ),
            [A, A, A],
        ),
        // Field access sends the body to the tape, which leaves `x[0]` to rustc.
        (
            quote!(
                fn f(x: f64) -> f64 {
                    x[0] + x.0 + *x
                }
            ),
            [A, A, A],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    x.powi() + x.max(1.0, 2.0) + f64::nope(x)
                }
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    if x > 0.0 {
                        x
                    }
                }
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    match x {
                        _ => x,
                    }
                }
            ),
            [A, A, A],
        ),
        // Differentiable only piecewise: the static path refuses it.
        (
            quote!(
                fn f(x: f64) -> f64 {
                    x % 2.0
                }
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    return;
                }
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    (|| x)()
                }
            ),
            [A, A, A],
        ),
        // rustc reports the duplicate parameter on the function as written.
        (
            quote!(
                fn f(x: f64, x: f64) -> f64 {
                    x
                }
            ),
            [A, A, A],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    x << 2
                }
            ),
            [R, A, R],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    let mut y = x;
                    if x > 1.0 {
                        y = 2.0;
                    }
                    y
                }
            ),
            [A, A, A],
        ),
        (
            quote!(
                fn f(x: f64) -> f64 {
                    let y;
                    if x > 1.0 {
                        y = 2.0;
                    } else {
                        y = x;
                    }
                    y
                }
            ),
            [A, A, A],
        ),
    ];
    let mut wrong = Vec::new();
    for (case, expected) in cases {
        for (opts, reject) in [quote!(), quote!(tape), quote!(wrt(x))]
            .into_iter()
            .zip(expected)
        {
            let out = ad_macros_core::expand(opts.clone(), case.clone());
            let file: syn::File = syn::parse2(out.clone()).unwrap_or_else(|e| {
                panic!("#[differentiable({opts})] {case}: not a file ({e}): {out}")
            });
            let mut errors = Vec::new();
            compile_errors(out, &mut errors);
            let fns: Vec<String> = file
                .items
                .iter()
                .filter_map(|i| match i {
                    syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                    _ => None,
                })
                .collect();
            // The function itself is always there, and `f_vjp` (a stub after an error)
            // whenever the signature is one.
            assert!(fns.contains(&"f".to_string()), "{case}: {fns:?}");
            if errors.is_empty() {
                assert!(fns.contains(&"f_vjp".to_string()), "{case}: {fns:?}");
            }
            if errors.is_empty() == reject {
                wrong.push(format!(
                    "#[differentiable({opts})] {case}: expected {}, got {errors:?}",
                    if reject { "an error" } else { "no error" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tensor_adjoint_sums_back_only_where_shapes_may_differ() {
    // `o - y` may broadcast, so the gradient of `o` is summed back onto its shape
    // (`sum_to`); `tanh` and `powi` keep their operand's shape, so theirs are not.
    // Each contribution is `dy * partial`; `powi`'s partial with a literal exponent
    // other than 0 needs no select of 0 for the exponent 0, so nothing routes a zero to
    // `tanh` and neither contribution is guarded (`dy == 0`).
    let (_, grad) = ir(
        quote!(wrt(z)),
        quote! {
            fn f(z: &Tensor, y: &Tensor) -> f64 {
                let o = z.tanh();
                (&o - y).powi(2).mean()
            }
        },
    );
    assert_eq!(
        grad,
        r#"%0: Tensor<f64> = param 0
%1: Tensor<f64> = param 1
%2: Tensor<f64> = tanh %0
%3: const = shape %2
%4: Tensor<f64> = %2 - %1
%5: int = `2`
%6: Tensor<f64> = powi %4 %5
%7: const = shape %6
%8: f64 = mean %6
%9: f64 = 1.0  ; adj
%10: f64 = numel %7  ; adj
%11: f64 = %9 / %10  ; adj
%12: Tensor<f64> = fill %11 %7  ; adj
%13: f64 = 2.0  ; adj
%14: Tensor<f64> = %13 * %4  ; adj
%15: Tensor<f64> = %12 * %14  ; adj
%16: Tensor<f64> = sum_to %15 %3  ; adj
%17: Tensor<f64> = %2 * %2  ; adj
%18: Tensor<f64> = %9 - %17  ; adj
%19: Tensor<f64> = %16 * %18  ; adj
return %8, %19"#
    );
}

#[test]
fn a_call_passing_mut_copies_memory_first_and_reverses_through_vjp() {
    // The buffer's value at the call is copied before it (the reverse sweep hands that
    // to `g_vjp`, which writes it again); the scalar passed `&mut` takes the value the
    // call leaves; the reverse calls `g_vjp` with the buffer's adjoint as its seed.
    let (primal, grad) = ir(
        quote!(),
        quote! {
            fn f(x: &[f64], a: f64) -> f64 {
                let mut b = vec![0.0; 2];
                let mut s = a;
                g(x, &mut b, &mut s);
                b[0] * s
            }
        },
    );
    let snap = primal.find("= snapshot %").expect("a snapshot");
    let call = primal.find("= mut_call g").expect("the call");
    assert!(snap < call, "the copy comes first:\n{primal}");
    assert!(primal.contains(".mut2"), "the new value of `s`:\n{primal}");
    assert!(
        grad.contains("= mut_call_vjp g"),
        "the reverse calls `g_vjp`:\n{grad}"
    );
}

#[test]
fn a_mut_parameter_starts_from_its_seed() {
    // `_vjp` (not `_grad`): the adjoint of `out` starts as the seed of its final value.
    let item = quote! {
        fn h(x: f64, out: &mut [f64]) {
            out[0] = out[0] * x;
        }
    };
    let out = ad_macros_core::expand(quote!(), item).to_string();
    assert!(
        out.contains("seed_out : & [f64] , seed : ()"),
        "the signature:\n{out}"
    );
    assert!(
        out.contains("seed_out . to_vec ()"),
        "the seed is copied:\n{out}"
    );
    assert!(!out.contains("h_grad"), "no `_grad` without a float result");
}

// A function with a vector result has no tape fallback: the static path's errors
// for it do not advise `#[differentiable(tape)]` (found by the tester with
// `ADJOINT_DIFF_VECTOR_RESULTS=1`).
#[test]
fn vector_result_errors_do_not_advise_the_tape() {
    let cases = [
        quote! {
            fn f(x: f64) -> [f64; 2] {
                let mut n = 0.0;
                let mut bump = |t: f64| { n += t; t };
                [bump(x), n]
            }
        },
        // (Tuples, the second case until issue 11, are static now.)
        quote! {
            fn f(x: f64) -> [f64; 2] {
                let s = S { a: x };
                [s.a, x]
            }
        },
    ];
    for item in cases {
        let out = ad_macros_core::expand(quote!(), item).to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("differentiable(tape)"), "{out}");
        assert!(out.contains("no tape fallback"), "{out}");
    }
}
