//! The values that the debug macros of a tape-expanded body see (`println!`,
//! `assert_eq!`, ...; see `ad-macros-core/src/tape.rs`). Each argument is passed as
//! `(&&&Probe(&(e))).__ad_show()`, and the method the receiver resolves to, tried from
//! the most references down, says what it becomes:
//!
//! 1. a `Var` (or a reference to one): [`Shown`], its scalar or tensor, which prints
//!    and compares as the plain value;
//! 2. a slice, `Vec` or array of `Var`s (or a reference to one): a `Vec` of the values;
//! 3. any other `Copy` value (an integer, a float literal, a `&str`): itself;
//! 4. anything else: a reference to it.
//!
//! So a float that the tape turned into a `Var` prints and compares as it would in the
//! plain function, and nothing is recorded on the tape.

use ad_runtime::tape::{Value, Var};
use ad_runtime::Float;
use std::fmt;

/// An argument of a debug macro, by reference.
pub struct Probe<'a, U: ?Sized>(pub &'a U);

/// The value of a `Var`, shown and compared as the scalar or tensor it holds.
#[derive(Clone, PartialEq)]
pub struct Shown<T: Float>(pub Value<T>);

impl<T: Float> fmt::Debug for Shown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Value::Scalar(x) => fmt::Debug::fmt(x, f),
            Value::Tensor(t) => fmt::Debug::fmt(t, f),
        }
    }
}

macro_rules! shown_fmt {
    ($($trait:ident)*) => {$(
        /// A scalar as the float's; a tensor as its `Debug`.
        impl<T: Float + fmt::$trait> fmt::$trait for Shown<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match &self.0 {
                    Value::Scalar(x) => fmt::$trait::fmt(x, f),
                    Value::Tensor(t) => fmt::Debug::fmt(t, f),
                }
            }
        }
    )*};
}
shown_fmt!(Display LowerExp UpperExp);

/// A scalar equals a float of the same value; a tensor equals none.
impl<T: Float> PartialEq<T> for Shown<T> {
    fn eq(&self, other: &T) -> bool {
        matches!(self.0, Value::Scalar(x) if x == *other)
    }
}

macro_rules! float_eq_shown {
    ($($t:ty)*) => {$(
        impl PartialEq<Shown<$t>> for $t {
            fn eq(&self, other: &Shown<$t>) -> bool {
                other == self
            }
        }
    )*};
}
float_eq_shown!(f32 f64);

/// A `Var`, or a reference to one.
pub trait AsVar {
    /// The float type.
    type T: Float;
    /// The value.
    fn value_of(&self) -> Value<Self::T>;
}

impl<T: Float> AsVar for Var<'_, T> {
    type T = T;
    fn value_of(&self) -> Value<T> {
        self.value()
    }
}

impl<X: AsVar + ?Sized> AsVar for &X {
    type T = X::T;
    fn value_of(&self) -> Value<X::T> {
        (**self).value_of()
    }
}

/// A slice, `Vec` or array of scalar `Var`s, or a reference to one.
pub trait VarElems {
    /// The float type.
    type T: Float;
    /// The values, in order.
    fn values(&self) -> Vec<Self::T>;
}

impl<T: Float> VarElems for [Var<'_, T>] {
    type T = T;
    fn values(&self) -> Vec<T> {
        self.iter().map(|v| v.item()).collect()
    }
}

impl<T: Float> VarElems for Vec<Var<'_, T>> {
    type T = T;
    fn values(&self) -> Vec<T> {
        self[..].values()
    }
}

impl<T: Float, const N: usize> VarElems for [Var<'_, T>; N] {
    type T = T;
    fn values(&self) -> Vec<T> {
        self[..].values()
    }
}

impl<X: VarElems + ?Sized> VarElems for &X {
    type T = X::T;
    fn values(&self) -> Vec<X::T> {
        (**self).values()
    }
}

/// Level 1: a `Var`.
pub trait ShowVar {
    /// What the macro sees.
    type Out;
    /// The argument as the macro sees it.
    fn __ad_show(&self) -> Self::Out;
}

impl<X: AsVar + ?Sized> ShowVar for &&&Probe<'_, X> {
    type Out = Shown<X::T>;
    fn __ad_show(&self) -> Shown<X::T> {
        Shown(self.0.value_of())
    }
}

/// Level 2: `Var`s in a slice, `Vec` or array.
pub trait ShowElems {
    /// What the macro sees.
    type Out;
    /// The argument as the macro sees it.
    fn __ad_show(&self) -> Self::Out;
}

impl<X: VarElems + ?Sized> ShowElems for &&Probe<'_, X> {
    type Out = Vec<X::T>;
    fn __ad_show(&self) -> Vec<X::T> {
        self.0.values()
    }
}

/// Level 3: a `Copy` value, passed as itself.
pub trait ShowCopy {
    /// What the macro sees.
    type Out;
    /// The argument as the macro sees it.
    fn __ad_show(&self) -> Self::Out;
}

impl<U: Copy> ShowCopy for &Probe<'_, U> {
    type Out = U;
    fn __ad_show(&self) -> U {
        *self.0
    }
}

/// Level 4: anything else, by reference.
pub trait ShowRef<'a> {
    /// What the macro sees.
    type Out;
    /// The argument as the macro sees it.
    fn __ad_show(&self) -> Self::Out;
}

impl<'a, U: ?Sized> ShowRef<'a> for Probe<'a, U> {
    type Out = &'a U;
    fn __ad_show(&self) -> &'a U {
        self.0
    }
}
