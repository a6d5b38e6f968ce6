//! Kernels: contiguous slices in, contiguous slices out.
//!
//! Shapes are validated once by the tensor operations in `ops`. The kernels
//! are public too, so each checks what it relies on once per call (lengths
//! against extents, with checked products), never per element; the one
//! `unsafe` call, the GEMM in [`matmul`], checks everything it hands over. Hot loops
//! iterate zipped slices, so the compiler drops the bounds checks and vectorizes.

pub mod elementwise;
pub mod emit_support;
pub mod fused;
pub mod matmul;
pub mod reduce;

pub use elementwise::Broadcast;
