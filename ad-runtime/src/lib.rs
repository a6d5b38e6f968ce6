//! The runtime of `adjoint`: the [`Tensor`] type and its kernels, the dynamic
//! [`tape`] (PyTorch-autograd semantics), and finite-difference [`check`]s.
#![warn(missing_docs)]

pub mod check;
mod error;
mod float;
pub mod kernels;
#[cfg(feature = "ndarray")]
mod ndarray_conv;
mod ops;
mod rng;
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
    pub use crate::shape::Shape;
    pub use crate::stack::Stack;
    pub use crate::tape;
    pub use crate::tape::{Function, Tape, Value, Var};
    pub use crate::tensor::Tensor;
}
