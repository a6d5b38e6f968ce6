//! The runtime of `adjoint`: the [`Tensor`] type and its kernels, the dynamic
//! [`tape`] (PyTorch-autograd semantics), and finite-difference [`check`]s.
//!
//! # Soundness
//!
//! Safe code that uses this crate cannot cause undefined behaviour. A size
//! that cannot be honoured is a panic that names the shape, or a
//! [`ShapeError`] from the operation's `try_` form:
//!
//! ```
//! use ad_runtime::Tensor;
//! let err = Tensor::<f64>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
//! assert_eq!(err.reason, "shape [4294967296, 4294967296] has more than usize::MAX elements");
//! ```
//!
//! Sizes are checked once per operation, never per element. Every [`Shape`]
//! has at most [`MAX_DIMS`] dimensions and a product of extents that fits in
//! `usize` (checked where it is built, [`Shape::try_new`]); before an
//! operation allocates a result, it checks that the result fits in
//! `isize::MAX` bytes; products of extents are checked, and the extents of an
//! empty shape are never multiplied (in `[0, usize::MAX, 2]` they overflow).
//!
//! `unsafe` lives in three places:
//!
//! - [`kernels::matmul::gemm`], the one call into `matrixmultiply`'s
//!   `sgemm`/`dgemm` (through `Float::gemm_raw` in `float.rs`, which forwards
//!   it unchanged). [`MatRef`](kernels::matmul::MatRef)'s constructors check
//!   that the last element a view addresses lies inside its slice and that its
//!   strides fit `isize`; `gemm` checks, with real assertions, the output's
//!   length against a checked `m·n` and that `m`, `k` and `n` fit `isize`.
//! - The `Drop` of the loop-reversal stack (`stack.rs`), which takes its
//!   buffer out of a `ManuallyDrop` exactly once.
//! - [`tape`], which has its own SAFETY notes.
//!
//! Every `unsafe` block carries a SAFETY comment naming the invariant it
//! relies on, and that invariant is checked before the block by code that
//! runs in release builds too.
//!
//! [Miri](https://github.com/rust-lang/miri), which would run the tests under
//! an interpreter that checks Rust's memory and aliasing rules, cannot be
//! installed on this project's machines: it needs a nightly toolchain, and
//! none can be fetched there. The tests carry that weight instead:
//! `tests/robustness.rs` drives random shapes (zero extents, extents near
//! `usize::MAX`, products that overflow) into every constructor, every `try_`
//! operation, the fused kernels and the GEMM on arbitrary strided views, and
//! checks each outcome against a model; the tape's tests re-enter it from user
//! callbacks (a custom function's forward, backward and drop, nested
//! `no_grad` and profiling). Debug builds add assertions on internal
//! invariants (a tensor's length against its shape, among others).
#![warn(missing_docs)]

pub mod check;
mod error;
mod float;
pub mod kernels;
#[cfg(feature = "ndarray")]
mod ndarray_conv;
mod ops;
mod rng;
mod second;
mod shape;
mod stack;
pub mod tape;
mod tensor;

pub use error::{Result, ShapeError};
pub use float::{Float, FloatExt};
pub use shape::{broadcast_shapes, Shape, MAX_DIMS};
pub use tensor::Tensor;

/// Items the code that `#[differentiable]` emits refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::float::{Float, FloatExt};
    pub use crate::kernels;
    pub use crate::kernels::emit_support;
    pub use crate::kernels::fused;
    pub use crate::second::{inner, owned, scale, scale_add, AsFlat, AsTensor, Lin, SecondOrder};
    pub use crate::shape::Shape;
    pub use crate::stack::{zeros, Stack};
    pub use crate::tape;
    pub use crate::tape::{Function, Tape, Value, Var};
    pub use crate::tensor::Tensor;
}
