//! The element types a tensor holds (`f32`, `f64`) and the float extension trait.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// An element type of [`Tensor`](crate::Tensor): `f32` or `f64`.
///
/// It is `num_traits::Float` plus the conversions and bounds the runtime needs,
/// so kernels are written once for both widths.
pub trait Float:
    num_traits::Float
    + num_traits::FloatConst
    + num_traits::NumAssign
    + Debug
    + Display
    + Default
    + Sum
    + Send
    + Sync
    + FloatExt
    + 'static
{
    /// The type's name as Rust spells it, for error messages and the DOT export.
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest value for `f32`.
    fn from_f64(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;

    /// Converts a count or index.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }

    /// `C ← α·A·B + β·C` through `matrixmultiply`'s `sgemm`/`dgemm`, with
    /// `A` m×k, `B` k×n and `C` m×n given by pointers and element strides.
    /// Use the safe [`kernels::matmul::gemm`](crate::kernels::matmul::gemm) instead.
    ///
    /// # Safety
    /// The contract of `matrixmultiply::dgemm`: every element the strides
    /// address must lie inside its allocation, and `C` must not alias `A` or `B`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

/// Implements [`Float`] for a primitive float, forwarding `gemm_raw` to the
/// `matrixmultiply` routine of the same width.
macro_rules! impl_float {
    ($t:ty, $gemm:path) => {
        impl Float for $t {
            const NAME: &'static str = stringify!($t);
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: the caller upholds `sgemm`'s/`dgemm`'s contract, which
                // this forwards unchanged.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}

impl_float!(f32, matrixmultiply::sgemm);
impl_float!(f64, matrixmultiply::dgemm);

/// The activation functions that `std` floats lack, on `f32` and `f64`.
///
/// All three are written to stay finite for every finite input:
/// `softplus(30.0)` and `sigmoid(-800.0)` neither overflow nor lose the result.
///
/// ```
/// use ad_runtime::FloatExt;
/// assert_eq!((-2.0f64).relu(), 0.0);
/// assert!((0.0f64.sigmoid() - 0.5).abs() < 1e-15);
/// assert!((30.0f64.softplus() - 30.0).abs() < 1e-12);
/// assert!((-800.0f64).sigmoid() >= 0.0);
/// ```
pub trait FloatExt: Sized {
    /// `max(x, 0)`; the gradient convention at 0 is PyTorch's: `relu'(0) = 0`.
    fn relu(self) -> Self;
    /// The logistic function `1 / (1 + e^-x)`.
    fn sigmoid(self) -> Self;
    /// `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)`.
    fn softplus(self) -> Self;
    /// The value itself. Inside a `#[differentiable]` function it marks a value
    /// through which no gradient flows (PyTorch's `detach`, JAX's `stop_gradient`).
    fn detach(self) -> Self;
}

macro_rules! impl_float_ext {
    ($t:ty) => {
        impl FloatExt for $t {
            #[inline(always)]
            fn relu(self) -> Self {
                if self > 0.0 {
                    self
                } else {
                    0.0
                }
            }
            #[inline(always)]
            fn sigmoid(self) -> Self {
                // Evaluate e^-|x| only, which never overflows.
                if self >= 0.0 {
                    1.0 / (1.0 + (-self).exp())
                } else {
                    let e = self.exp();
                    e / (1.0 + e)
                }
            }
            #[inline(always)]
            fn softplus(self) -> Self {
                self.max(0.0) + (-self.abs()).exp().ln_1p()
            }
            #[inline(always)]
            fn detach(self) -> Self {
                self
            }
        }
    };
}

impl_float_ext!(f32);
impl_float_ext!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_are_stable_at_extremes() {
        assert_eq!(30.0f64.softplus(), 30.0 + (-30.0f64).exp().ln_1p());
        assert!((-800.0f64).sigmoid() == 0.0 || (-800.0f64).sigmoid() > 0.0);
        assert_eq!(800.0f64.sigmoid(), 1.0);
        assert!((-800.0f64).softplus() >= 0.0);
        assert_eq!(1000.0f32.softplus(), 1000.0);
        assert!((-100.0f32).sigmoid().is_finite());
        assert_eq!(0.0f64.relu(), 0.0);
        assert_eq!(2.5f32.relu(), 2.5);
    }

    #[test]
    fn activations_match_their_definitions() {
        for &x in &[-3.0f64, -0.5, 0.0, 0.7, 4.0] {
            assert!((x.sigmoid() - 1.0 / (1.0 + (-x).exp())).abs() < 1e-15);
            assert!((x.softplus() - (1.0 + x.exp()).ln()).abs() < 1e-14);
        }
    }
}
