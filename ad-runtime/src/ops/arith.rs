//! `+ - * /` between tensors (all four ownership pairs) and with scalars on
//! either side, unary `-`, the compound assignments, and their `try_` forms.

use super::expect;
use crate::error::ShapeError;
use crate::float::Float;
use crate::kernels::elementwise as kernel;
use crate::shape::{broadcast_shapes, check_alloc, Shape};
use crate::tensor::Tensor;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// An operand that may be consumed: an owned operand whose shape is the
/// result's lends its buffer to the result.
enum Arg<'a, T> {
    Owned(Tensor<T>),
    Ref(&'a Tensor<T>),
}

impl<T> Arg<'_, T> {
    fn get(&self) -> &Tensor<T> {
        match self {
            Arg::Owned(t) => t,
            Arg::Ref(t) => t,
        }
    }
}

/// `f(a, b)` elementwise with broadcasting; writes into an owned operand's
/// buffer when it has the result's shape, else allocates the result once.
fn binary<T: Float>(
    op: &'static str,
    a: Arg<'_, T>,
    b: Arg<'_, T>,
    f: impl Fn(T, T) -> T + Copy,
) -> Result<Tensor<T>, ShapeError> {
    let (sa, sb) = (a.get().shape, b.get().shape);
    let shape = if sa == sb {
        sa
    } else {
        let s = broadcast_shapes(op, sa.dims(), sb.dims())?;
        // A result larger than both operands is a new allocation.
        if s != sa && s != sb {
            check_alloc::<T>(op, &s, sa.dims(), sb.dims())?;
        }
        s
    };
    Ok(match (a, b) {
        (Arg::Owned(mut a), b) if a.shape == shape => {
            let b = b.get();
            kernel::broadcast_assign(&mut a.data, shape.dims(), &b.data, b.shape.dims(), f);
            a
        }
        (a, Arg::Owned(mut b)) if b.shape == shape => {
            let a = a.get();
            kernel::broadcast_assign(
                &mut b.data,
                shape.dims(),
                &a.data,
                a.shape.dims(),
                |y, x| f(x, y),
            );
            b
        }
        (a, b) => {
            let (a, b) = (a.get(), b.get());
            let data =
                kernel::broadcast_zip(&a.data, sa.dims(), &b.data, sb.dims(), shape.dims(), f);
            Tensor::from_parts(data, shape)
        }
    })
}

/// `f(x, s)` for every element `x`, in place when the tensor is owned.
fn with_scalar<T: Float>(a: Arg<'_, T>, f: impl Fn(T) -> T) -> Tensor<T> {
    match a {
        Arg::Owned(mut a) => {
            kernel::map_inplace(&mut a.data, f);
            a
        }
        Arg::Ref(a) => Tensor::from_parts(kernel::map(&a.data, f), a.shape),
    }
}

impl<T: Float> Tensor<T> {
    /// `self + other` with broadcasting, or the error the `+` operator panics with.
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::<f64>::zeros(&[2, 3]);
    /// assert_eq!(a.try_add(&Tensor::ones(&[3])).unwrap().shape(), &[2, 3]);
    /// let err = a.try_add(&Tensor::ones(&[2])).unwrap_err();
    /// assert_eq!((err.op, err.lhs, err.rhs), ("add", vec![2, 3], vec![2]));
    /// ```
    pub fn try_add(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("add", Arg::Ref(self), Arg::Ref(other), |x, y| x + y)
    }

    /// `self - other` with broadcasting, or the error the `-` operator panics with.
    pub fn try_sub(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("sub", Arg::Ref(self), Arg::Ref(other), |x, y| x - y)
    }

    /// `self * other` (elementwise) with broadcasting, or the error the `*`
    /// operator panics with.
    pub fn try_mul(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("mul", Arg::Ref(self), Arg::Ref(other), |x, y| x * y)
    }

    /// `self / other` (elementwise) with broadcasting, or the error the `/`
    /// operator panics with.
    pub fn try_div(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("div", Arg::Ref(self), Arg::Ref(other), |x, y| x / y)
    }

    /// `f(self[i], other[j])` elementwise with NumPy broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`Tensor::try_zip_map`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 5.0], &[2, 1]);
    /// let b = Tensor::from_vec(vec![2.0, 3.0, 4.0], &[3]);
    /// assert_eq!(a.zip_map(&b, f64::max).as_slice(), &[2.0, 3.0, 4.0, 5.0, 5.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn zip_map(&self, other: &Tensor<T>, f: impl Fn(T, T) -> T + Copy) -> Tensor<T> {
        expect(binary("zip_map", Arg::Ref(self), Arg::Ref(other), f))
    }

    /// [`Tensor::zip_map`], returning an error instead of panicking.
    pub fn try_zip_map(
        &self,
        other: &Tensor<T>,
        f: impl Fn(T, T) -> T + Copy,
    ) -> Result<Tensor<T>, ShapeError> {
        binary("zip_map", Arg::Ref(self), Arg::Ref(other), f)
    }

    /// The elementwise larger of `self` and `other`, with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn maximum(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(binary(
            "maximum",
            Arg::Ref(self),
            Arg::Ref(other),
            |x, y| x.max(y),
        ))
    }

    /// The elementwise smaller of `self` and `other`, with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn minimum(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(binary(
            "minimum",
            Arg::Ref(self),
            Arg::Ref(other),
            |x, y| x.min(y),
        ))
    }
}

/// Implements one operator for every pairing of tensors, references and scalars.
macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $Assign:ident, $assign:ident, $name:literal, |$x:ident, $y:ident| $body:expr) => {
        impl<T: Float> $Trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                expect(binary($name, Arg::Owned(self), Arg::Owned(rhs), |$x, $y| $body))
            }
        }

        impl<T: Float> $Trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                expect(binary($name, Arg::Owned(self), Arg::Ref(rhs), |$x, $y| $body))
            }
        }

        impl<T: Float> $Trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                expect(binary($name, Arg::Ref(self), Arg::Owned(rhs), |$x, $y| $body))
            }
        }

        impl<T: Float> $Trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                expect(binary($name, Arg::Ref(self), Arg::Ref(rhs), |$x, $y| $body))
            }
        }

        impl<T: Float> $Trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, $y: T) -> Tensor<T> {
                with_scalar(Arg::Owned(self), |$x| $body)
            }
        }

        impl<T: Float> $Trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, $y: T) -> Tensor<T> {
                with_scalar(Arg::Ref(self), |$x| $body)
            }
        }

        binary_operator!(@scalar_lhs f32, $Trait, $method, |$x, $y| $body);
        binary_operator!(@scalar_lhs f64, $Trait, $method, |$x, $y| $body);

        impl<T: Float> $Assign<Tensor<T>> for Tensor<T> {
            #[track_caller]
            fn $assign(&mut self, rhs: Tensor<T>) {
                let lhs = std::mem::replace(self, Tensor::from_parts(Vec::new(), Shape::new(&[0])));
                *self = expect(binary($name, Arg::Owned(lhs), Arg::Owned(rhs), |$x, $y| $body));
            }
        }

        impl<T: Float> $Assign<&Tensor<T>> for Tensor<T> {
            #[track_caller]
            fn $assign(&mut self, rhs: &Tensor<T>) {
                let lhs = std::mem::replace(self, Tensor::from_parts(Vec::new(), Shape::new(&[0])));
                *self = expect(binary($name, Arg::Owned(lhs), Arg::Ref(rhs), |$x, $y| $body));
            }
        }

        impl<T: Float> $Assign<T> for Tensor<T> {
            fn $assign(&mut self, $y: T) {
                kernel::map_inplace(&mut self.data, |$x| $body);
            }
        }
    };
    (@scalar_lhs $t:ty, $Trait:ident, $method:ident, |$x:ident, $y:ident| $body:expr) => {
        impl $Trait<Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: Tensor<$t>) -> Tensor<$t> {
                let $x = self;
                with_scalar(Arg::Owned(rhs), |$y| $body)
            }
        }

        impl $Trait<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                let $x = self;
                with_scalar(Arg::Ref(rhs), |$y| $body)
            }
        }
    };
}

binary_operator!(Add, add, AddAssign, add_assign, "add", |x, y| x + y);
binary_operator!(Sub, sub, SubAssign, sub_assign, "sub", |x, y| x - y);
binary_operator!(Mul, mul, MulAssign, mul_assign, "mul", |x, y| x * y);
binary_operator!(Div, div, DivAssign, div_assign, "div", |x, y| x / y);

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        with_scalar(Arg::Owned(self), |x| -x)
    }
}

impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        with_scalar(Arg::Ref(self), |x| -x)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn owned_operands_lend_their_buffer() {
        let a = Tensor::<f64>::ones(&[4, 5]);
        let p = a.as_slice().as_ptr();
        let c = a + &Tensor::ones(&[5]);
        assert_eq!(c.as_slice().as_ptr(), p);
        let b = Tensor::<f64>::ones(&[4, 5]);
        let p = b.as_slice().as_ptr();
        let c = &Tensor::ones(&[4, 1]) - b;
        assert_eq!(c.as_slice().as_ptr(), p);
        assert!(c.as_slice().iter().all(|&v| v == 0.0));
        let p = c.as_slice().as_ptr();
        let d = 2.0 * (c + 1.0);
        assert_eq!(d.as_slice().as_ptr(), p);
        let e = -d;
        assert_eq!(e.as_slice().as_ptr(), p);
    }

    #[test]
    fn compound_assignment_broadcasts_and_may_grow() {
        let mut a = Tensor::<f32>::ones(&[3]);
        a += &Tensor::from_vec(vec![1.0, 2.0], &[2, 1]);
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.as_slice(), &[2.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
        a *= 2.0;
        a /= Tensor::full(&[2, 3], 4.0);
        a -= 1.0;
        assert_eq!(a.as_slice(), &[0.0, 0.0, 0.0, 0.5, 0.5, 0.5]);
    }
}
