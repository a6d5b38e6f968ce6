//! Kernels: contiguous slices in, contiguous slices out.
//!
//! Kernels trust their callers: shapes are validated once by the tensor
//! operations in `ops`, and a kernel only `debug_assert!`s lengths. Hot loops
//! iterate zipped slices, so the compiler drops the bounds checks and vectorizes.

pub mod elementwise;
pub mod emit_support;
pub mod fused;
pub mod matmul;
pub mod reduce;

pub use elementwise::Broadcast;
