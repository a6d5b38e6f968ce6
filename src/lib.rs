//! `adjoint`: compile-time reverse-mode automatic differentiation for Rust.
//!
//! Put `#[differentiable]` on a function and the macro emits `NAME_grad` and
//! `NAME_vjp` beside it, built at compile time as plain Rust.
#![warn(missing_docs)]

// Lets the emitted code's `::adjoint::...` paths resolve inside this crate too.
extern crate self as adjoint;

pub use ad_macros::differentiable;
pub use ad_runtime::*;

/// Everything a user of `#[differentiable]` needs in one import.
pub mod prelude {
    pub use ad_macros::differentiable;
    pub use ad_runtime::{Float, FloatExt, Tensor};
}
