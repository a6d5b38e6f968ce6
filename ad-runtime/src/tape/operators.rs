//! Operators on [`Var`]: `+ - * /` with every kind of operand, unary `-`,
//! compound assignment, and comparisons of values for control flow.

use super::rules::Op;
use super::{Tape, Var};
use crate::float::Float;
use crate::tensor::Tensor;
use std::cmp::Ordering;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// An operand of a [`Var`] operation, resolved: another variable, a constant
/// scalar, or a constant tensor.
#[derive(Clone, Debug)]
pub enum Arg<'t, T: Float> {
    /// A variable on the tape.
    Var(Var<'t, T>),
    /// A constant scalar.
    Scalar(T),
    /// A constant tensor.
    Tensor(Tensor<T>),
}

impl<'t, T: Float> Arg<'t, T> {
    /// The operand as a variable on `tape` (constants become constant leaves).
    pub fn into_var(self, tape: &'t Tape<T>) -> Var<'t, T> {
        match self {
            Arg::Var(v) => v,
            Arg::Scalar(x) => tape.constant(x),
            Arg::Tensor(t) => tape.constant_tensor(t),
        }
    }
}

/// What can stand beside a [`Var`] in an operation: `Var`, `&Var`, a float
/// (`T`), or a constant `Tensor<T>` / `&Tensor<T>`.
pub trait Operand<'t, T: Float> {
    /// Resolves the operand.
    fn into_arg(self) -> Arg<'t, T>;
}

impl<'t, T: Float> Operand<'t, T> for Var<'t, T> {
    #[inline(always)]
    fn into_arg(self) -> Arg<'t, T> {
        Arg::Var(self)
    }
}

impl<'t, T: Float> Operand<'t, T> for &Var<'t, T> {
    #[inline(always)]
    fn into_arg(self) -> Arg<'t, T> {
        Arg::Var(*self)
    }
}

impl<'t, T: Float> Operand<'t, T> for T {
    #[inline(always)]
    fn into_arg(self) -> Arg<'t, T> {
        Arg::Scalar(self)
    }
}

impl<'t, T: Float> Operand<'t, T> for Tensor<T> {
    #[inline(always)]
    fn into_arg(self) -> Arg<'t, T> {
        Arg::Tensor(self)
    }
}

impl<'t, T: Float> Operand<'t, T> for &Tensor<T> {
    #[inline(always)]
    fn into_arg(self) -> Arg<'t, T> {
        Arg::Tensor(self.clone())
    }
}

macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $Assign:ident, $assign:ident, $op:expr) => {
        impl<'t, T: Float, O: Operand<'t, T>> $Trait<O> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: O) -> Var<'t, T> {
                self.binary_any($op, rhs.into_arg(), false)
            }
        }

        impl<'t, T: Float, O: Operand<'t, T>> $Trait<O> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: O) -> Var<'t, T> {
                (*self).binary_any($op, rhs.into_arg(), false)
            }
        }

        impl<'t, T: Float, O: Operand<'t, T>> $Assign<O> for Var<'t, T> {
            #[inline(always)]
            #[track_caller]
            fn $assign(&mut self, rhs: O) {
                *self = self.binary_any($op, rhs.into_arg(), false);
            }
        }

        impl<'t, T: Float> $Trait<Var<'t, T>> for Tensor<T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                rhs.binary_any($op, Arg::Tensor(self), true)
            }
        }

        impl<'t, T: Float> $Trait<&Var<'t, T>> for Tensor<T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> {
                rhs.binary_any($op, Arg::Tensor(self), true)
            }
        }

        impl<'t, T: Float> $Trait<Var<'t, T>> for &Tensor<T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                rhs.binary_any($op, Arg::Tensor(self.clone()), true)
            }
        }

        impl<'t, T: Float> $Trait<&Var<'t, T>> for &Tensor<T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> {
                rhs.binary_any($op, Arg::Tensor(self.clone()), true)
            }
        }

        binary_operator!(@float f32, $Trait, $method, $op);
        binary_operator!(@float f64, $Trait, $method, $op);
    };
    (@float $t:ty, $Trait:ident, $method:ident, $op:expr) => {
        impl<'t> $Trait<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: Var<'t, $t>) -> Var<'t, $t> {
                rhs.binary_const($op, self, true)
            }
        }

        impl<'t> $Trait<&Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: &Var<'t, $t>) -> Var<'t, $t> {
                rhs.binary_const($op, self, true)
            }
        }
    };
}

binary_operator!(Add, add, AddAssign, add_assign, Op::Add);
binary_operator!(Sub, sub, SubAssign, sub_assign, Op::Sub);
binary_operator!(Mul, mul, MulAssign, mul_assign, Op::Mul);
binary_operator!(Div, div, DivAssign, div_assign, Op::Div);

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn neg(self) -> Var<'t, T> {
        self.unary(Op::Neg, [T::zero(); 2])
    }
}

impl<'t, T: Float> Neg for &Var<'t, T> {
    type Output = Var<'t, T>;
    #[inline(always)]
    fn neg(self) -> Var<'t, T> {
        (*self).unary(Op::Neg, [T::zero(); 2])
    }
}

/// The sum of an iterator of variables. Summing an empty iterator panics, as
/// there is no tape to put the 0 on; use [`Tape::sum`] for that case.
impl<'t, T: Float> std::iter::Sum<Var<'t, T>> for Var<'t, T> {
    #[track_caller]
    fn sum<I: Iterator<Item = Var<'t, T>>>(mut iter: I) -> Self {
        let first = iter
            .next()
            .expect("the sum of no Vars has no tape; use Tape::sum");
        iter.fold(first, |acc, v| acc + v)
    }
}

/// Values compare as scalars (`if b > 0.0`, `while b.norm() < 1000.0`);
/// comparing a tensor of more than one element panics.
impl<'t, T: Float> PartialEq for Var<'t, T> {
    #[track_caller]
    fn eq(&self, other: &Self) -> bool {
        self.item() == other.item()
    }
}

impl<'t, T: Float> PartialEq<T> for Var<'t, T> {
    #[track_caller]
    fn eq(&self, other: &T) -> bool {
        self.item() == *other
    }
}

impl<'t, T: Float> PartialOrd for Var<'t, T> {
    #[track_caller]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.item().partial_cmp(&other.item())
    }
}

impl<'t, T: Float> PartialOrd<T> for Var<'t, T> {
    #[track_caller]
    fn partial_cmp(&self, other: &T) -> Option<Ordering> {
        self.item().partial_cmp(other)
    }
}

macro_rules! float_lhs_compare {
    ($t:ty) => {
        impl<'t> PartialEq<Var<'t, $t>> for $t {
            #[track_caller]
            fn eq(&self, other: &Var<'t, $t>) -> bool {
                *self == other.item()
            }
        }

        impl<'t> PartialOrd<Var<'t, $t>> for $t {
            #[track_caller]
            fn partial_cmp(&self, other: &Var<'t, $t>) -> Option<Ordering> {
                self.partial_cmp(&other.item())
            }
        }
    };
}

float_lhs_compare!(f32);
float_lhs_compare!(f64);
