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
    // the seed 1 and the `* 1` of `d(x*2)` are folded away. The adjoint of `sin` is
    // guarded (a zero adjoint gives exactly 0 through `cos`, a strong zero), the one of
    // `x * 2.0` is not: 0 times the finite constant 2 is already 0.
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
%6: f64 = 0.0  ; adj
%7: f64 = cos %0  ; adj
%8: f64 = %5 * %7  ; adj
%9: bool = %5 == %6  ; adj
%10: f64 = select %9 %6 %8  ; adj
%11: f64 = %5 * %1  ; adj
%12: f64 = %10 + %11  ; adj
return %5, %12"#
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
                let a = x.floor();
                let g = |t: f64| t;
                loop {}
                a + g(x)
            }
        },
    )
    .unwrap_err();
    assert!(err.contains("method `floor` is not supported"), "{err}");
    assert!(err.contains("closures are not supported"), "{err}");
    assert!(err.contains("`loop` is not supported"), "{err}");
}

#[test]
fn never_panics_on_odd_input() {
    let cases = [
        quote!(
            fn f() -> f64 {
                1.0
            }
        ),
        quote!(
            fn f(x: f64) {}
        ),
        quote!(
            fn f(x: f64) -> f64 {}
        ),
        quote!(
            fn f(x: f64) -> f64 {
                let y;
                y
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                let (a, b) = (x, x);
                a
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                x[0] + x.0 + *x
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                x.powi() + x.max(1.0, 2.0) + f64::nope(x)
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                if x > 0.0 {
                    x
                }
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                match x {
                    _ => x,
                }
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                x % 2.0
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                return;
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                (|| x)()
            }
        ),
        quote!(
            fn f(x: f64, x: f64) -> f64 {
                x
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                x << 2
            }
        ),
        quote!(
            fn f(x: f64) -> f64 {
                let mut y = x;
                if x > 1.0 {
                    y = 2.0;
                }
                y
            }
        ),
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
    ];
    for case in cases {
        let _ = ad_macros_core::expand(quote!(), case.clone());
        let _ = ad_macros_core::expand(quote!(tape), case.clone());
        let _ = ad_macros_core::expand(quote!(wrt(x)), case);
    }
}

#[test]
fn tensor_adjoint_sums_back_only_where_shapes_may_differ() {
    // `o - y` may broadcast, so the gradient of `o` is summed back onto its shape
    // (`sum_to`); `tanh` and `powi` keep their operand's shape, so theirs are not.
    // Each contribution is `dy * partial` under the strong-zero guard `dy == 0`; the
    // guard of `powi` tests the filled scalar (%11), not the fill.
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
%13: f64 = 0.0  ; adj
%14: f64 = 2.0  ; adj
%15: Tensor<f64> = %14 * %4  ; adj
%16: Tensor<f64> = %12 * %15  ; adj
%17: bool = %11 == %13  ; adj
%18: Tensor<f64> = select %17 %13 %16  ; adj
%19: Tensor<f64> = sum_to %18 %3  ; adj
%20: Tensor<f64> = %2 * %2  ; adj
%21: Tensor<f64> = %9 - %20  ; adj
%22: Tensor<f64> = %19 * %21  ; adj
%23: bool = %19 == %13  ; adj
%24: Tensor<f64> = select %23 %13 %22  ; adj
return %8, %24"#
    );
}
