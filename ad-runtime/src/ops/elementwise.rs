//! Elementwise functions of one tensor: `exp`, `ln`, ..., `floor`, `powi`, `clamp`,
//! `map`.

use crate::float::Float;
use crate::kernels::elementwise as kernel;
use crate::tensor::Tensor;

/// Defines methods that apply a scalar function to every element.
macro_rules! unary_fns {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(&self) -> Tensor<T> {
                    self.map(|$x: T| $body)
                }
            )*
        }
    };
}

unary_fns! {
    /// `eˣ` elementwise.
    exp => |x| x.exp();
    /// `2ˣ` elementwise.
    exp2 => |x| x.exp2();
    /// The natural logarithm elementwise.
    ln => |x| x.ln();
    /// The base-2 logarithm elementwise.
    log2 => |x| x.log2();
    /// The base-10 logarithm elementwise.
    log10 => |x| x.log10();
    /// The sine elementwise.
    sin => |x| x.sin();
    /// The cosine elementwise.
    cos => |x| x.cos();
    /// The tangent elementwise.
    tan => |x| x.tan();
    /// The arcsine elementwise.
    asin => |x| x.asin();
    /// The arccosine elementwise.
    acos => |x| x.acos();
    /// The arctangent elementwise.
    atan => |x| x.atan();
    /// The hyperbolic sine elementwise.
    sinh => |x| x.sinh();
    /// The hyperbolic cosine elementwise.
    cosh => |x| x.cosh();
    /// The hyperbolic tangent elementwise.
    tanh => |x| x.tanh();
    /// The square root elementwise.
    sqrt => |x| x.sqrt();
    /// The cube root elementwise.
    cbrt => |x| x.cbrt();
    /// The absolute value elementwise.
    abs => |x| x.abs();
    /// `1/x` elementwise.
    recip => |x| x.recip();
    /// `-x` elementwise (the same as unary `-`).
    neg => |x| -x;
    /// `max(x, 0)` elementwise.
    relu => |x| x.relu();
    /// The logistic function `1/(1 + e⁻ˣ)` elementwise, stable for every input.
    sigmoid => |x| x.sigmoid();
    /// `ln(1 + eˣ)` elementwise, stable for every input.
    softplus => |x| x.softplus();
    /// The sign elementwise, as `f64::signum`: `1` for `+0` and above, `-1` for
    /// `-0` and below, NaN for NaN. Its gradient is 0.
    signum => |x| x.signum();
    /// The largest integer not above each element. Its gradient is 0.
    floor => |x| x.floor();
    /// The smallest integer not below each element. Its gradient is 0.
    ceil => |x| x.ceil();
    /// The nearest integer to each element, halves away from zero (as
    /// `f64::round`). Its gradient is 0.
    round => |x| x.round();
    /// The integer part of each element (rounded toward zero). Its gradient is 0.
    trunc => |x| x.trunc();
}

impl<T: Float> Tensor<T> {
    /// `f` applied to every element, as a new tensor of the same shape.
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let t = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    /// assert_eq!(t.map(|x| x * x + 1.0).as_slice(), &[2.0, 5.0]);
    /// ```
    #[must_use]
    pub fn map(&self, f: impl Fn(T) -> T) -> Tensor<T> {
        Tensor::from_parts(kernel::map(&self.data, f), self.shape)
    }

    /// Replaces every element `x` by `f(x)`, without allocating.
    pub fn map_inplace(&mut self, f: impl Fn(T) -> T) {
        kernel::map_inplace(&mut self.data, f)
    }

    /// `xⁿ` elementwise for an integer power.
    #[must_use]
    pub fn powi(&self, n: i32) -> Tensor<T> {
        self.map(|x| x.powi(n))
    }

    /// `xᵉ` elementwise for a float power.
    #[must_use]
    pub fn powf(&self, e: T) -> Tensor<T> {
        self.map(|x| x.powf(e))
    }

    /// Every element limited to `[lo, hi]`; NaN stays NaN.
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let t = Tensor::from_vec(vec![-2.0, 0.5, 3.0], &[3]);
    /// assert_eq!(t.clamp(0.0, 1.0).as_slice(), &[0.0, 0.5, 1.0]);
    /// ```
    #[must_use]
    pub fn clamp(&self, lo: T, hi: T) -> Tensor<T> {
        self.map(|x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        })
    }

    /// A copy of the tensor. Inside a `#[differentiable]` function it marks a
    /// value through which no gradient flows (PyTorch's `detach`).
    #[must_use]
    pub fn detach(&self) -> Tensor<T> {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn rounding_functions_match_the_float_methods() {
        let v = vec![
            -2.5,
            -1.5,
            -0.5,
            -0.0,
            0.0,
            0.5,
            1.49,
            2.5,
            f64::NAN,
            f64::INFINITY,
        ];
        let t = Tensor::from_vec(v.clone(), &[2, 5]);
        type Case = (Tensor<f64>, fn(f64) -> f64);
        let fs: [Case; 5] = [
            (t.signum(), f64::signum),
            (t.floor(), f64::floor),
            (t.ceil(), f64::ceil),
            (t.round(), f64::round),
            (t.trunc(), f64::trunc),
        ];
        for (got, f) in fs {
            assert_eq!(got.shape(), &[2, 5]);
            for (g, &x) in got.as_slice().iter().zip(&v) {
                assert_eq!(g.to_bits(), f(x).to_bits(), "{x}");
            }
        }
        assert_eq!(t.round().as_slice()[..3], [-3.0, -2.0, -1.0]);
        assert_eq!(Tensor::<f32>::scalar(-0.0).signum().item(), -1.0);
    }
}
