//! The operations of [`Tensor`](crate::Tensor), grouped by theme: operators and
//! broadcasting, elementwise functions, reductions, products, and layout.
//!
//! Each operation validates shapes once, then hands contiguous slices to a
//! kernel in [`kernels`](crate::kernels). A shape mismatch is a [`ShapeError`]
//! from the `try_` form and a panic naming the operation and both shapes from
//! the plain form.

mod arith;
mod elementwise;
mod layout;
mod linalg;
mod reduce;

use crate::error::ShapeError;

/// Unwraps a shape check, panicking at the caller's location with the error.
#[track_caller]
#[inline]
pub(crate) fn expect<R>(r: Result<R, ShapeError>) -> R {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
