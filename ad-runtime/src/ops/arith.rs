//! `+ - * /` between tensors (all four ownership pairs) and with scalars on
//! either side, unary `-`, the compound assignments, the elementwise binary
//! functions (`maximum`, `minimum`, `atan2`, `hypot`, `zip_map`), and their
//! `try_` forms.

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

    /// The elementwise larger of `self` and `other` (as `f64::max`: a NaN
    /// loses to a number), with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`Tensor::try_maximum`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 5.0, 2.0, 0.0, 4.0, 9.0], &[2, 3]);
    /// let b = Tensor::from_vec(vec![3.0, 3.0, 3.0], &[3]);
    /// assert_eq!(a.maximum(&b).as_slice(), &[3.0, 5.0, 3.0, 3.0, 4.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn maximum(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_maximum(other))
    }

    /// [`Tensor::maximum`], returning an error instead of panicking.
    pub fn try_maximum(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("maximum", Arg::Ref(self), Arg::Ref(other), |x, y| x.max(y))
    }

    /// The elementwise smaller of `self` and `other` (as `f64::min`: a NaN
    /// loses to a number), with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`Tensor::try_minimum`].
    #[track_caller]
    pub fn minimum(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_minimum(other))
    }

    /// [`Tensor::minimum`], returning an error instead of panicking.
    pub fn try_minimum(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("minimum", Arg::Ref(self), Arg::Ref(other), |x, y| x.min(y))
    }

    /// `atan2(self, other)` elementwise (the angle of the point `(other, self)`,
    /// as `f64::atan2`), with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`Tensor::try_atan2`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let y = Tensor::from_vec(vec![1.0, -1.0], &[2]);
    /// let x = Tensor::scalar(0.0);
    /// let half_pi = std::f64::consts::FRAC_PI_2;
    /// assert_eq!(y.atan2(&x).as_slice(), &[half_pi, -half_pi]);
    /// ```
    #[track_caller]
    pub fn atan2(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_atan2(other))
    }

    /// [`Tensor::atan2`], returning an error instead of panicking.
    pub fn try_atan2(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("atan2", Arg::Ref(self), Arg::Ref(other), |y, x| y.atan2(x))
    }

    /// `sqrt(self² + other²)` elementwise, without overflow or underflow in
    /// the squares (as `f64::hypot`), with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast; see [`Tensor::try_hypot`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::from_vec(vec![3.0, 5.0], &[2]);
    /// let b = Tensor::from_vec(vec![4.0, 12.0], &[2]);
    /// assert_eq!(a.hypot(&b).as_slice(), &[5.0, 13.0]);
    /// ```
    #[track_caller]
    pub fn hypot(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_hypot(other))
    }

    /// [`Tensor::hypot`], returning an error instead of panicking.
    pub fn try_hypot(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        binary("hypot", Arg::Ref(self), Arg::Ref(other), |x, y| x.hypot(y))
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
    fn binary_functions_broadcast_and_name_both_shapes() {
        let a = Tensor::from_vec(vec![1.0, -2.0, 3.0, 0.0, 5.0, -6.0], &[2, 3]);
        let b = Tensor::from_vec(vec![2.0, -1.0, 4.0], &[3]);
        let s = Tensor::scalar(1.5);
        let zip = |f: fn(f64, f64) -> f64, x: &Tensor<f64>, y: &Tensor<f64>| x.zip_map(y, f);
        for (got, want) in [
            (a.maximum(&b), zip(f64::max, &a, &b)),
            (a.minimum(&b), zip(f64::min, &a, &b)),
            (a.atan2(&b), zip(f64::atan2, &a, &b)),
            (a.hypot(&b), zip(f64::hypot, &a, &b)),
            (b.atan2(&a), zip(f64::atan2, &b, &a)),
            (a.maximum(&s), zip(f64::max, &a, &s)),
            (s.hypot(&a), zip(f64::hypot, &s, &a)),
        ] {
            assert_eq!(got.shape(), &[2, 3]);
            assert_eq!(got.as_slice(), want.as_slice());
        }
        assert_eq!(a.maximum(&b).as_slice(), &[2.0, -1.0, 4.0, 2.0, 5.0, 4.0]);
        assert_eq!(a.minimum(&s).as_slice(), &[1.0, -2.0, 1.5, 0.0, 1.5, -6.0]);
        assert_eq!(a.hypot(&b).as_slice()[0], 5.0f64.sqrt());
        // A NaN loses to a number, as in `f64::max`.
        let n = Tensor::from_vec(vec![f64::NAN, 1.0], &[2]);
        assert_eq!(n.maximum(&Tensor::scalar(0.0)).as_slice(), &[0.0, 1.0]);
        let c = Tensor::<f64>::ones(&[2]);
        type Try = fn(&Tensor<f64>, &Tensor<f64>) -> Result<Tensor<f64>, crate::ShapeError>;
        let ops: [(&str, Try); 4] = [
            ("maximum", Tensor::try_maximum),
            ("minimum", Tensor::try_minimum),
            ("atan2", Tensor::try_atan2),
            ("hypot", Tensor::try_hypot),
        ];
        for (name, op) in ops {
            let err = op(&a, &c).unwrap_err();
            assert!(err
                .to_string()
                .starts_with(&format!("{name}: shapes [2, 3] and [2]")));
            assert_eq!((err.op, err.lhs, err.rhs), (name, vec![2, 3], vec![2]));
        }
    }

    #[test]
    #[should_panic(expected = "hypot")]
    fn a_binary_function_panics_on_shapes_that_do_not_broadcast() {
        let _ = Tensor::<f32>::ones(&[2, 3]).hypot(&Tensor::ones(&[4]));
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
