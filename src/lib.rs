//! `adjoint`: compile-time reverse-mode automatic differentiation for Rust.
//!
//! Put `#[differentiable]` on a function and the macro emits `NAME_grad`, `NAME_vjp` and
//! `NAME_jvp` beside it, built at compile time as plain Rust.
//!
//! ```
//! use adjoint::prelude::*;
//!
//! #[differentiable]
//! fn f(x1: f64, x2: f64) -> f64 {
//!     (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
//! }
//!
//! let y = f(1.5, 0.5);                          // the original function, unchanged
//! let (y1, (dx1, dx2)) = f_grad(1.5, 0.5);      // value and gradient, one call
//! let (y2, (vx1, vx2)) = f_vjp(1.5, 0.5, 2.0);  // value and vector-Jacobian product
//! assert_eq!(y, y1);
//! assert_eq!((vx1, vx2), (2.0 * dx1, 2.0 * dx2));
//! ```
//!
//! # What the macro emits
//!
//! `f` above is emitted unchanged. `f_grad` is one forward sweep computing exactly the
//! primal's operations in the same order (so its value is bit-identical to `f`'s), then
//! the reverse sweep, which reuses the forward values (here `exp x1`, the denominator
//! and the quotient) and folds the seed 1 away: no tape, no allocation. Parameters and
//! constants are inlined; every other value is a `let __ad_vN`. This is the expansion,
//! as `cargo expand` shows it (kept by the snapshot test
//! `ad-macros-core/tests/snapshots/quickstart.rs`, so every change to it is reviewed):
//!
//! ```ignore
#![doc = include_str!("../ad-macros-core/tests/snapshots/quickstart.rs")]
//! ```
//!
//! # Options
//!
//! - `#[differentiable(wrt(a, b))]`: differentiate only `a` and `b`; no adjoint code is
//!   emitted for the other parameters.
//! - `#[differentiable(tape)]`: the same `_grad`/`_vjp`, computed on the dynamic tape.
//! - `#[differentiable(static)]`: require the static path; a construct that would take
//!   the tape fallback (below) is a compile error on its span instead.
//! - `#[differentiable(inline(g, h))]`: calls of `g` and `h` run as written on tape
//!   values instead of chaining through `g_vjp` (the callee is generic over the value
//!   type, as `fn g<V: Copy + Mul<Output = V>>(v: V) -> V`); implies the tape.
//!
//! # The tape fallback
//!
//! Without `tape` or `static`, every body is first lowered into the static path's
//! one IR, and the lowering decides. It refuses a body for one of two reasons: a
//! construct it does not take *yet* and the tape does, or a mistake (or a construct
//! that neither path takes). A function takes the tape exactly when every refusal is
//! of the first kind. rustc then warns on the first refused construct, quoting the
//! lowering's own message ("`f` runs on the tape here: .."; a `deprecated` warning,
//! the one kind a stable macro can emit): `#[differentiable(tape)]` or
//! `#[allow(deprecated)]` on the function silences it, `#[differentiable(static)]`
//! makes it a compile error that adds "the tape takes it". No other error advises the
//! tape. The constructs that take the tape today:
//!
//! - closures that assign a variable of the body (closures that only compute a value
//!   are inlined);
//! - `match` on tuples or enums with fields, `if let`, `while let`, `let .. else`;
//! - macros other than `vec!` and the debug macros (`println!`, `assert!`, ...);
//! - iterator methods the static path does not know (`filter`, ...), slice methods
//!   other than `len`, `iter`, `swap`, `fill`, `copy_from_slice`, `push` and `first`/
//!   `last`/`get` unwrapped;
//! - field access of values other than tuples and constant parameters;
//! - a call whose result the lowering cannot type (bind it with a type, `let y: f64 =
//!   g(x);`, to keep it static), a call with a tensor, tuple or array result and a
//!   local buffer argument.
//!
//! Everything else takes the static path, which includes, for scalar bodies, slice,
//! `Vec` and array parameters (gradients `Vec<_>` / `[_; N]`), indexing (`x[i + 1]`,
//! `c[n - 1 - i]`), `x.len()`, `x.iter().sum()`, `for` over ranges and slices (nested,
//! with bounds that depend on outer indices), `while`, `loop`, `break` (also
//! `break value`), `continue` and early `return`. Loops are reversed as Tapenade does:
//! the forward sweep pushes on a reusable stack each value an iteration overwrites
//! that the reverse sweep needs (plus trip counts and branch decisions), and the
//! reverse sweep runs the iterations backwards, popping them; accumulators like
//! `s += ..` and values a loop does not change are never pushed. Tensors take the
//! same path: tensor-valued loop-carried variables (`while b.norm() < 1000.0 { b = b *
//! 2.0 }`, `for _ in 0..n { h = (h.matmul(w) + b).tanh() }`), conditions computed from
//! tensors, scalar parameters mixed in, and a `Tensor` result (its `_vjp` takes a
//! `Tensor` seed). An overwritten tensor moves onto the stack (no copy), and a
//! tensor adjoint stays unallocated until something reaches it.
//!
//! On the tape, a slice, `Vec` or array parameter becomes one scalar leaf per element,
//! held in a `Vec<Var>` (an array in a `[Var; N]`); the body sees the parameter with
//! the same shape of type (`&[f64]` as `&[Var]`, `Vec<f64>` as `Vec<Var>`, `[f64; N]`
//! as `[Var; N]`), so `x[i]`, `x.len()`, `for v in x` and `x.iter().sum()` work as
//! written. Its gradient is a `Vec` (an array for an array).
//! Integers and loop counters stay plain values and control flow simply runs, so
//! data-dependent loops record exactly the operations that ran.
//!
//! ```
//! use adjoint::prelude::*;
//!
//! // The trip count depends on `a`: f(a) = c·2^k·a piecewise, so f'(a) = f(a)/a.
//! #[differentiable]
//! fn doubling(a: f64) -> f64 {
//!     let mut b = 2.0 * a;
//!     while b.abs() < 1000.0 {
//!         b = b * 2.0;
//!     }
//!     if b > 0.0 { b } else { 100.0 * b }
//! }
//!
//! #[differentiable]
//! fn rosenbrock(x: &[f64]) -> f64 {
//!     let mut s = 0.0;
//!     for i in 0..x.len() - 1 {
//!         s += (1.0 - x[i]).powi(2) + 100.0 * (x[i + 1] - x[i] * x[i]).powi(2);
//!     }
//!     s
//! }
//!
//! let (y, dy) = doubling_grad(0.3);
//! assert!((dy - y / 0.3).abs() < 1e-9);
//! let (_, g): (f64, Vec<f64>) = rosenbrock_grad(&[1.0, 1.0, 1.0]);
//! assert_eq!(g, vec![0.0; 3]);
//! ```
//!
//! Neither path takes `async`, `unsafe` code, items inside the body, generic
//! functions, `self` methods, or results other than floats, tensors, `[f64; N]` and
//! `Vec<f64>` (and `()` for a helper with `&mut` parameters, below): each is a compile
//! error on its span.
//!
//! # Helpers with `&mut` out-parameters
//!
//! A helper may write into `&mut [T]`, `&mut Vec<T>` and `&mut T` parameters (`T` is
//! `f32` or `f64`), with in-out semantics: it may read the initial value, and what it
//! leaves there is an output. It may return a float or nothing.
//!
//! ```text
//! #[differentiable]
//! fn subtract(x: &[f64], y: &[f64], out: &mut [f64]) { .. }
//!
//! fn subtract_vjp(x: &[f64], y: &[f64], out: &mut [f64],
//!                 seed_out: &[f64], seed: ()) -> ((), (Vec<f64>, Vec<f64>, Vec<f64>))
//! ```
//!
//! `NAME_vjp` takes, after the parameters, one seed per `&mut` parameter, in order,
//! for its final value (`seed_out: &[T]` for memory, `seed_s: T` for a scalar), then
//! `seed` for the result. It performs the same writes as `NAME`, and returns the
//! gradient of `<seed, result> + Σ <seed_p, final p>`: `Grads` has one entry per
//! differentiated parameter, a `&mut` one included, whose entry is the gradient with
//! respect to its initial value (`Vec<T>` or `T`). A helper without a result keeps
//! `seed: ()`: the arity of `_vjp` then does not depend on the result type, so a
//! caller that discards the result passes `Default::default()` whatever the callee
//! returns. `NAME_grad` exists for a float result; it writes too, and is the
//! gradient of the result alone (the final values get zero seeds).
//!
//! A caller passes a local buffer (`&mut buf`), a sub-slice of one (`&mut buf[a..b]`),
//! a local scalar (`&mut s`) or its own `&mut` parameter on (`&mut out[..]`,
//! `&mut *s`). Memory it passes is copied before the call; the reverse sweep calls
//! `g_vjp` with those copies, the adjoint of each `&mut` argument as its seed, and
//! replaces that adjoint with the gradient of the initial value. The function
//! differentiated from outside still returns its result. Only the one IR takes these
//! functions: under `tape` (or `inline(..)`) they are a compile error, as the tape
//! would not see the writes.
//!
//! # Composition and custom gradients
//!
//! A call `g(a, b)` in a differentiable body chains through `g_vjp`. On the static
//! path, for a scalar result the forward sweep calls `g_vjp(a, b, 1.0)` once and keeps
//! the partials it returns (a scalar function's VJP is linear in its seed); for a
//! tensor result the reverse sweep calls `g_vjp(a, b, dy)`. On the tape, the call
//! records one node: the forward runs `g(a, b)`, and the backward runs `g_vjp(a, b,
//! seed)` with the node's incoming gradient as seed. Arguments and results may be
//! scalars or tensors on both paths (a `&Tensor` parameter is passed on as a
//! reference; integers and bools stay plain and get no gradient), so static and tape
//! functions compose either way. `g_vjp` may be generated by `#[differentiable]` on `g`,
//! or written by hand beside a plain `g`: that is a custom gradient. The contract of a
//! `g_vjp` called this way: one gradient per float argument of the call, in order (bare
//! for one, a tuple otherwise). In forward mode (`_jvp`) a call with a scalar result
//! goes through the same `g_vjp` partials, so a custom gradient serves both modes; a
//! call with a tensor, vector or tuple result goes through `g_jvp`, which a hand-written
//! rule for such a `g` then provides too.
//!
//! # Forward mode, Hessians and nested differentiation
//!
//! Every function also gets `NAME_jvp(params.., tangents..) -> (Out, OutTangent)`, the
//! forward-mode derivative (one tangent per differentiated parameter, of its type,
//! borrowed where it is), built from the same IR as the reverse sweep; a function with
//! one differentiated slice, `Vec`, array or tensor parameter and a vector or tensor
//! result gets `NAME_jacobian`, by forward mode when the input is no longer than the
//! output and by reverse mode otherwise. `#[differentiable(order = 2)]` on a function
//! with a float result adds `NAME_hvp(params.., v..) -> (Out, Grads, Grads)` (value,
//! gradient and Hessian-vector product, by forward mode over the reverse sweep in one
//! pass; on the tape, by double backward), `NAME_hessian` for one differentiated
//! parameter, and the companions that make a call of its `_grad`, `_vjp` or `_jvp`
//! differentiable in another body, in either mode:
//!
//! ```
//! use adjoint::prelude::*;
//!
//! #[differentiable(order = 2)]
//! fn energy(x: f64, w: f64) -> f64 {
//!     (x - w).powi(2) * 0.5 + (x * w).sin()
//! }
//!
//! // One gradient step inside the body, differentiated again (gradient of a gradient).
//! #[differentiable]
//! fn after_step(x: f64, w: f64) -> f64 {
//!     let (_, (gx, _)) = energy_grad(x, w);
//!     energy(x - 0.1 * gx, w)
//! }
//!
//! let (y, dy) = energy_jvp(0.3, 1.2, 1.0, 0.0);          // forward mode along x
//! let (_, (gx, _gw), (hxx, hwx)) = energy_hvp(0.3, 1.2, 1.0, 0.0); // H e_x
//! assert_eq!(dy, gx);
//! let (_, (dx, dw)) = after_step_grad(0.3, 1.2);         // reverse over reverse
//! let (_, tx) = after_step_jvp(0.3, 1.2, 1.0, 0.0);      // forward over reverse
//! assert!((dx - tx).abs() < 1e-12);
//! # let _ = (y, hxx, hwx, dw);
//! ```
//!
//! Without `order = 2`, a call that needs those companions is a compile error at the
//! call that says to add it (calls of `g_hvp` inside a differentiated body, a third
//! order, are not built).
#![warn(missing_docs)]

// Lets the emitted code's `::adjoint::...` paths resolve inside this crate too.
extern crate self as adjoint;

pub use ad_macros::differentiable;
pub use ad_runtime::*;

/// Everything a user of `#[differentiable]` needs in one import.
pub mod prelude {
    pub use ad_macros::differentiable;
    pub use ad_runtime::check::{gradcheck, Tolerance};
    pub use ad_runtime::{Float, FloatExt, Tensor};
}

#[doc(hidden)]
pub mod debug_show;

/// Items the code that `#[differentiable]` emits refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::debug_show as show;
    pub use ad_runtime::__private::*;
    pub use ad_runtime::tape;

    use ad_runtime::tape::{Tape as TapeT, Value as ValueT, Var as VarT};
    use ad_runtime::{Float as FloatT, Tensor as TensorT};

    /// The result of a tape-expanded body: a variable, or a constant it becomes.
    pub trait IntoVar<'t, T: FloatT> {
        /// The value as a variable of `tape`.
        fn into_var(self, tape: &'t TapeT<T>) -> VarT<'t, T>;
    }

    impl<'t, T: FloatT> IntoVar<'t, T> for VarT<'t, T> {
        fn into_var(self, _: &'t TapeT<T>) -> VarT<'t, T> {
            self
        }
    }

    macro_rules! into_var_float {
        ($($t:ty)*) => {$(
            impl<'t> IntoVar<'t, $t> for $t {
                fn into_var(self, tape: &'t TapeT<$t>) -> VarT<'t, $t> {
                    tape.constant(self)
                }
            }
            impl<'t> IntoVar<'t, $t> for TensorT<$t> {
                fn into_var(self, tape: &'t TapeT<$t>) -> VarT<'t, $t> {
                    tape.constant_tensor(self)
                }
            }
        )*};
    }
    into_var_float!(f32 f64);

    /// An argument of a call that the tape expansion routes through `NAME_vjp`: a
    /// scalar or tensor `Var`, a slice, `Vec` or array of them, a plain float, tensor
    /// or float slice, or a constant (an integer, a `bool`).
    pub trait TapeArg<'t, T: FloatT> {
        /// The plain value kept for the call and its backward.
        type Plain: 'static;
        /// Whether `NAME_vjp` returns a gradient for it (a float, tensor, or float
        /// slice or array argument).
        fn is_float(&self) -> bool;
        /// The plain value.
        fn plain(&self) -> Self::Plain;
        /// The tape variables it holds, each with its position in the argument's
        /// gradient: `None` for the whole gradient (a scalar or tensor `Var`), the
        /// element's index for a slice or array of `Var`s.
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>);
    }

    impl<'t, T: FloatT, A: TapeArg<'t, T> + ?Sized> TapeArg<'t, T> for &A {
        type Plain = A::Plain;
        fn is_float(&self) -> bool {
            (**self).is_float()
        }
        fn plain(&self) -> A::Plain {
            (**self).plain()
        }
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>) {
            (**self).vars(out)
        }
    }

    /// The plain value of a `Var` argument: its scalar or tensor, passed on as what the
    /// callee takes (`T`, `Tensor<T>` or `&Tensor<T>`, see [`PassArg`]).
    pub struct PlainVar<T: FloatT> {
        value: ValueT<T>,
        // A scalar passed as `&Tensor` (a 0-d tensor), made when first asked for.
        tensor: ::std::cell::OnceCell<TensorT<T>>,
    }

    impl<'t, T: FloatT> TapeArg<'t, T> for VarT<'t, T> {
        type Plain = PlainVar<T>;
        fn is_float(&self) -> bool {
            true
        }
        fn plain(&self) -> PlainVar<T> {
            PlainVar {
                value: self.value(),
                tensor: ::std::cell::OnceCell::new(),
            }
        }
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>) {
            out.push((*self, None));
        }
    }

    /// A slice of scalar `Var`s (a slice or `Vec` parameter on the tape, `&v[a..b]`):
    /// passed on as its values.
    impl<'t, T: FloatT> TapeArg<'t, T> for [VarT<'t, T>] {
        type Plain = Vec<T>;
        fn is_float(&self) -> bool {
            true
        }
        fn plain(&self) -> Vec<T> {
            self.iter().map(|v| v.item()).collect()
        }
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>) {
            out.extend(self.iter().enumerate().map(|(i, v)| (*v, Some(i))));
        }
    }

    impl<'t, T: FloatT> TapeArg<'t, T> for Vec<VarT<'t, T>> {
        type Plain = Vec<T>;
        fn is_float(&self) -> bool {
            true
        }
        fn plain(&self) -> Vec<T> {
            self[..].plain()
        }
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>) {
            self[..].vars(out)
        }
    }

    /// An array of scalar `Var`s (an array parameter, an array literal): passed on as
    /// an array of values.
    impl<'t, T: FloatT, const N: usize> TapeArg<'t, T> for [VarT<'t, T>; N] {
        type Plain = [T; N];
        fn is_float(&self) -> bool {
            true
        }
        fn plain(&self) -> [T; N] {
            self.map(|v| v.item())
        }
        fn vars(&self, out: &mut Vec<(VarT<'t, T>, Option<usize>)>) {
            self[..].vars(out)
        }
    }

    /// A kept plain value, passed to the callee as the type `Q` it takes (which rustc
    /// infers from the call): by value or by reference.
    pub trait PassArg<'a, Q> {
        /// The value as a `Q`.
        fn pass(&'a self) -> Q;
    }

    /// A plain value a call's `_vjp` takes for a scalar or tensor result's seed.
    pub trait FromValue<T: FloatT> {
        /// The value, converted.
        fn from_value(v: &ValueT<T>) -> Self;
    }

    macro_rules! pass_plain {
        ($($t:ty)*) => {$(
            impl<'a> PassArg<'a, $t> for $t {
                fn pass(&'a self) -> $t {
                    ::core::clone::Clone::clone(self)
                }
            }
            impl<'a> PassArg<'a, &'a $t> for $t {
                fn pass(&'a self) -> &'a $t {
                    self
                }
            }
        )*};
    }
    pass_plain!(f32 f64 TensorT<f32> TensorT<f64> Vec<f32> Vec<f64>);
    pass_plain!(bool i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

    impl<'a, T: FloatT> PassArg<'a, &'a [T]> for Vec<T> {
        fn pass(&'a self) -> &'a [T] {
            self
        }
    }

    impl<'a, T: FloatT, const N: usize> PassArg<'a, [T; N]> for [T; N] {
        fn pass(&'a self) -> [T; N] {
            *self
        }
    }

    impl<'a, T: FloatT, const N: usize> PassArg<'a, &'a [T; N]> for [T; N] {
        fn pass(&'a self) -> &'a [T; N] {
            self
        }
    }

    impl<'a, T: FloatT, const N: usize> PassArg<'a, &'a [T]> for [T; N] {
        fn pass(&'a self) -> &'a [T] {
            self
        }
    }

    impl<'a, T: FloatT, const N: usize> PassArg<'a, Vec<T>> for [T; N] {
        fn pass(&'a self) -> Vec<T> {
            self.to_vec()
        }
    }

    macro_rules! tape_arg_float {
        ($($t:ty)*) => {$(
            impl<'t> TapeArg<'t, $t> for $t {
                type Plain = $t;
                fn is_float(&self) -> bool {
                    true
                }
                fn plain(&self) -> $t {
                    *self
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, $t>, Option<usize>)>) {}
            }
            impl<'t> TapeArg<'t, $t> for TensorT<$t> {
                type Plain = TensorT<$t>;
                fn is_float(&self) -> bool {
                    true
                }
                fn plain(&self) -> TensorT<$t> {
                    self.clone()
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, $t>, Option<usize>)>) {}
            }
            impl<'t> TapeArg<'t, $t> for [$t] {
                type Plain = Vec<$t>;
                fn is_float(&self) -> bool {
                    true
                }
                fn plain(&self) -> Vec<$t> {
                    self.to_vec()
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, $t>, Option<usize>)>) {}
            }
            impl<'t> TapeArg<'t, $t> for Vec<$t> {
                type Plain = Vec<$t>;
                fn is_float(&self) -> bool {
                    true
                }
                fn plain(&self) -> Vec<$t> {
                    self.clone()
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, $t>, Option<usize>)>) {}
            }
            impl<'t, const N: usize> TapeArg<'t, $t> for [$t; N] {
                type Plain = [$t; N];
                fn is_float(&self) -> bool {
                    true
                }
                fn plain(&self) -> [$t; N] {
                    *self
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, $t>, Option<usize>)>) {}
            }
            impl<'a> PassArg<'a, $t> for PlainVar<$t> {
                fn pass(&'a self) -> $t {
                    self.value.item()
                }
            }
            impl<'a> PassArg<'a, TensorT<$t>> for PlainVar<$t> {
                fn pass(&'a self) -> TensorT<$t> {
                    self.value.to_tensor()
                }
            }
            impl<'a> PassArg<'a, &'a TensorT<$t>> for PlainVar<$t> {
                fn pass(&'a self) -> &'a TensorT<$t> {
                    match &self.value {
                        ValueT::Tensor(t) => t,
                        ValueT::Scalar(x) => self.tensor.get_or_init(|| TensorT::scalar(*x)),
                    }
                }
            }
            impl FromValue<$t> for $t {
                fn from_value(v: &ValueT<$t>) -> $t {
                    v.item()
                }
            }
            impl FromValue<$t> for TensorT<$t> {
                fn from_value(v: &ValueT<$t>) -> TensorT<$t> {
                    v.to_tensor()
                }
            }
        )*};
    }
    tape_arg_float!(f32 f64);

    macro_rules! tape_arg_plain {
        ($($t:ty)*) => {$(
            impl<'t, T: FloatT> TapeArg<'t, T> for $t {
                type Plain = $t;
                fn is_float(&self) -> bool {
                    false
                }
                fn plain(&self) -> $t {
                    *self
                }
                fn vars(&self, _: &mut Vec<(VarT<'t, T>, Option<usize>)>) {}
            }
        )*};
    }
    tape_arg_plain!(bool i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

    /// One gradient a `NAME_vjp` returns: a scalar or tensor, or the elements of a
    /// slice, `Vec` or array parameter's gradient.
    pub enum GradPart<T: FloatT> {
        /// The gradient of a scalar or tensor argument.
        Value(ValueT<T>),
        /// The gradient of a slice, `Vec` or array argument.
        Elems(Vec<T>),
    }

    /// A value that is one gradient of a `NAME_vjp`.
    pub trait IntoGradPart<T: FloatT> {
        /// The gradient as a [`GradPart`].
        fn into_part(self) -> GradPart<T>;
    }

    impl<T: FloatT> IntoGradPart<T> for Vec<T> {
        fn into_part(self) -> GradPart<T> {
            GradPart::Elems(self)
        }
    }

    impl<T: FloatT, const N: usize> IntoGradPart<T> for [T; N] {
        fn into_part(self) -> GradPart<T> {
            GradPart::Elems(self.to_vec())
        }
    }

    /// The gradients a `NAME_vjp` returns (one bare value or a tuple), as parts.
    pub trait TapeGrads<T: FloatT> {
        /// One part per gradient, in order.
        fn into_values(self) -> Vec<GradPart<T>>;
    }

    impl<T: FloatT> TapeGrads<T> for () {
        fn into_values(self) -> Vec<GradPart<T>> {
            Vec::new()
        }
    }

    impl<T: FloatT> TapeGrads<T> for Vec<T> {
        fn into_values(self) -> Vec<GradPart<T>> {
            vec![self.into_part()]
        }
    }

    impl<T: FloatT, const N: usize> TapeGrads<T> for [T; N] {
        fn into_values(self) -> Vec<GradPart<T>> {
            vec![self.into_part()]
        }
    }

    macro_rules! tape_grads_bare {
        ($($t:ty)*) => {$(
            impl TapeGrads<$t> for $t {
                fn into_values(self) -> Vec<GradPart<$t>> {
                    vec![self.into_part()]
                }
            }
            impl TapeGrads<$t> for TensorT<$t> {
                fn into_values(self) -> Vec<GradPart<$t>> {
                    vec![self.into_part()]
                }
            }
            impl IntoGradPart<$t> for $t {
                fn into_part(self) -> GradPart<$t> {
                    GradPart::Value(ValueT::Scalar(self))
                }
            }
            impl IntoGradPart<$t> for TensorT<$t> {
                fn into_part(self) -> GradPart<$t> {
                    GradPart::Value(ValueT::Tensor(self))
                }
            }
        )*};
    }
    tape_grads_bare!(f32 f64);

    macro_rules! tape_grads_tuple {
        ($($a:ident $n:tt)*) => {
            impl<T: FloatT, $($a: IntoGradPart<T>),*> TapeGrads<T> for ($($a,)*) {
                fn into_values(self) -> Vec<GradPart<T>> {
                    vec![$(self.$n.into_part()),*]
                }
            }
        };
    }
    tape_grads_tuple!(A 0 B 1);
    tape_grads_tuple!(A 0 B 1 C 2);
    tape_grads_tuple!(A 0 B 1 C 2 D 3);
    tape_grads_tuple!(A 0 B 1 C 2 D 3 E 4);
    tape_grads_tuple!(A 0 B 1 C 2 D 3 E 4 F 5);
    tape_grads_tuple!(A 0 B 1 C 2 D 3 E 4 F 5 G 6);
    tape_grads_tuple!(A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7);

    /// An item of an iterator that a tape-expanded body sums: a variable, a reference
    /// to one (`x.iter()` over a slice parameter), or a plain float.
    pub trait TapeItem<'t, T: FloatT> {
        /// The item as a variable of `tape`.
        fn tape_item(self, tape: &'t TapeT<T>) -> VarT<'t, T>;
    }

    impl<'t, T: FloatT> TapeItem<'t, T> for VarT<'t, T> {
        fn tape_item(self, _: &'t TapeT<T>) -> VarT<'t, T> {
            self
        }
    }

    impl<'t, T: FloatT> TapeItem<'t, T> for &VarT<'t, T> {
        fn tape_item(self, _: &'t TapeT<T>) -> VarT<'t, T> {
            *self
        }
    }

    macro_rules! tape_item_float {
        ($($t:ty)*) => {$(
            impl<'t> TapeItem<'t, $t> for $t {
                fn tape_item(self, tape: &'t TapeT<$t>) -> VarT<'t, $t> {
                    tape.constant(self)
                }
            }
            impl<'t> TapeItem<'t, $t> for &$t {
                fn tape_item(self, tape: &'t TapeT<$t>) -> VarT<'t, $t> {
                    tape.constant(*self)
                }
            }
        )*};
    }
    tape_item_float!(f32 f64);

    /// `iter.sum()` in a tape-expanded body: the sum on the tape, the constant 0 when
    /// `iter` is empty (a `Var` alone cannot make a 0: it needs the tape).
    pub fn tape_sum<'t, T: FloatT, I>(tape: &'t TapeT<T>, iter: I) -> VarT<'t, T>
    where
        I: IntoIterator,
        I::Item: TapeItem<'t, T>,
    {
        tape.sum(iter.into_iter().map(|v| v.tape_item(tape)))
    }

    /// `iter.product()` in a tape-expanded body: the constant 1 when `iter` is empty.
    pub fn tape_product<'t, T: FloatT, I>(tape: &'t TapeT<T>, iter: I) -> VarT<'t, T>
    where
        I: IntoIterator,
        I::Item: TapeItem<'t, T>,
    {
        let mut it = iter.into_iter().map(|v| v.tape_item(tape));
        match it.next() {
            None => tape.constant(T::one()),
            Some(first) => it.fold(first, |acc, v| acc * v),
        }
    }

    /// The gradients a call's `_vjp` returned, as the caller expects them: one per
    /// float, tensor, slice, `Vec` or array argument of the call, in order.
    #[diagnostic::on_unimplemented(
        message = "this call's `_vjp` returns the gradients `{Self}`, but the call has arguments for `{G}`",
        label = "the `_vjp` of this function does not give one gradient per float, tensor, slice, `Vec` or array argument",
        note = "a function called from a #[differentiable] body must differentiate every such argument of the call: remove `wrt(..)` from it, or, for a hand-written `_vjp`, return one gradient per such parameter, in order"
    )]
    pub trait CallGrads<G> {
        /// The gradients.
        fn grads(self) -> G;
    }

    impl<G> CallGrads<G> for G {
        fn grads(self) -> G {
            self
        }
    }

    /// A value passed to a call that chains through `_vjp`, whose type the macro could
    /// not see (a `const` from outside the body, say): it must not be a float, because
    /// the caller counts the callee's gradients by the arguments it knows are floats.
    #[diagnostic::on_unimplemented(
        message = "#[differentiable] cannot see that this call argument of type `{Self}` is a float",
        label = "passed to a function whose `_vjp` this body calls",
        note = "bind the value to a typed local first (`let c: f64 = C;`) so the gradient of every float argument is accounted for; integers, `bool`s and references to them pass as they are"
    )]
    pub trait NotFloat {}

    macro_rules! not_float {
        ($($t:ty)*) => {$( impl NotFloat for $t {} )*};
    }
    not_float!(bool char str i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);
    impl<T: NotFloat + ?Sized> NotFloat for &T {}

    /// Checks, at compile time only, that `x` is not a float (see [`NotFloat`]).
    #[inline(always)]
    pub fn not_a_float<T: NotFloat + ?Sized>(_: &T) {}

    /// A call's `(value, gradients)`, with the gradients checked to be `G`.
    #[inline(always)]
    pub fn call_grads<G, Y, R: CallGrads<G>>(r: (Y, R)) -> (Y, G) {
        (r.0, r.1.grads())
    }

    /// `d[k] += s * g[k]` for the first `g.len()` elements of `d`: a callee's gradient
    /// `g` for a slice argument, scaled by the adjoint `s` of the call's result, added
    /// to the caller's adjoint of the slice (or of the sub-slice passed). A zero `s`
    /// adds exactly nothing, whatever `g` holds (strong zeros).
    ///
    /// # Panics
    /// If `g` is longer than `d`: the callee's gradient does not fit what was passed.
    pub fn acc_scaled<T: FloatT>(d: &mut [T], g: &[T], s: T) {
        assert!(
            g.len() <= d.len(),
            "a `_vjp` returned a gradient of length {} for a slice argument of length {}",
            g.len(),
            d.len()
        );
        if s == T::zero() {
            return;
        }
        for (d, &g) in d.iter_mut().zip(g) {
            *d += s * g;
        }
    }

    /// Adds a callee's gradient for a slice argument to the caller's adjoint of that
    /// slice (or of the sub-slice passed).
    ///
    /// # Panics
    /// If the lengths differ: the callee returned a gradient that is not of the slice
    /// it was passed, which no `_vjp` may do.
    #[track_caller]
    pub fn acc_slice<T: FloatT>(d: &mut [T], g: &[T]) {
        assert_eq!(
            d.len(),
            g.len(),
            "a `_vjp` returned a gradient of length {} for a slice argument of length {}",
            g.len(),
            d.len()
        );
        for (d, g) in d.iter_mut().zip(g) {
            *d += *g;
        }
    }

    /// Records a call `g(..)` as one tape node: its value `y` (scalar or tensor) and a
    /// backward that runs `g_vjp` with the output's gradient as seed. `grads` maps that
    /// gradient to one gradient per float argument of the call (what `g_vjp` returns,
    /// `floats` of them); `sel[i]` says where the gradient of `inputs[i]` is: the
    /// position of its argument among those, and its element for a slice or array.
    ///
    /// # Panics
    /// In the backward, if `g_vjp` returns a different number of gradients than the
    /// call has float arguments (a callee with `wrt(..)` differentiates fewer), or a
    /// gradient of the wrong kind or length: never a gradient given to the wrong
    /// argument.
    pub fn tape_call<'t, T: FloatT, Y: Into<ValueT<T>>>(
        tape: &'t TapeT<T>,
        name: &'static str,
        inputs: &[VarT<'t, T>],
        sel: Vec<(usize, Option<usize>)>,
        floats: usize,
        y: Y,
        grads: impl Fn(&ValueT<T>) -> Vec<GradPart<T>> + 'static,
    ) -> VarT<'t, T> {
        let y = y.into();
        if inputs.is_empty() {
            return match y {
                ValueT::Scalar(x) => tape.constant(x),
                ValueT::Tensor(t) => tape.constant_tensor(t),
            };
        }
        tape.apply_fn(name, inputs, y, move |g: &ValueT<T>| {
            let all = grads(g);
            assert_eq!(
                all.len(),
                floats,
                "`{name}_vjp` returned {} gradient(s) for a call with {floats} float argument(s); \
                 a callee with `wrt(..)` cannot be called with arguments it does not differentiate",
                all.len()
            );
            sel.iter()
                .map(|&(k, elem)| match (&all[k], elem) {
                    (GradPart::Value(v), None) => v.clone(),
                    (GradPart::Elems(v), Some(i)) if i < v.len() => ValueT::Scalar(v[i]),
                    (GradPart::Elems(v), Some(i)) => panic!(
                        "`{name}_vjp` returned a gradient of length {} for argument {k}, which has at least {} elements",
                        v.len(),
                        i + 1
                    ),
                    _ => panic!("`{name}_vjp` returned a gradient of the wrong kind for argument {k}"),
                })
                .collect()
        })
    }
}

// The README's code is compiled and run as a doc test, so its quick start cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
