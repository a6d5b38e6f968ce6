//! The linear algebra of the second-order companions (`NAME_grad_vjp`,
//! `NAME_jvp_jvp`, ...) that `#[differentiable]` writes from `NAME_hvp`: inner
//! products of gradients with tangents, and `a x + y` on gradients.

use crate::float::Float;
use crate::tensor::Tensor;

/// A gradient or tangent seen as its elements in order: a float, a slice, a `Vec`, an
/// array or a tensor.
pub trait AsFlat<T> {
    /// The elements.
    fn as_flat(&self) -> &[T];
}

impl AsFlat<f32> for f32 {
    fn as_flat(&self) -> &[f32] {
        std::slice::from_ref(self)
    }
}

impl AsFlat<f64> for f64 {
    fn as_flat(&self) -> &[f64] {
        std::slice::from_ref(self)
    }
}

impl<T: Float> AsFlat<T> for [T] {
    fn as_flat(&self) -> &[T] {
        self
    }
}

impl<T: Float> AsFlat<T> for Vec<T> {
    fn as_flat(&self) -> &[T] {
        self
    }
}

impl<T: Float, const N: usize> AsFlat<T> for [T; N] {
    fn as_flat(&self) -> &[T] {
        self
    }
}

impl<T: Float> AsFlat<T> for Tensor<T> {
    fn as_flat(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, X: AsFlat<T> + ?Sized> AsFlat<T> for &X {
    fn as_flat(&self) -> &[T] {
        (**self).as_flat()
    }
}

/// `<a, b>`, the sum of the products of their elements.
///
/// # Panics
/// When the lengths differ, naming both.
pub fn inner<T: Float, A: AsFlat<T> + ?Sized, B: AsFlat<T> + ?Sized>(a: &A, b: &B) -> T {
    let (a, b) = (a.as_flat(), b.as_flat());
    assert_eq!(
        a.len(),
        b.len(),
        "a tangent or seed has {} elements where its gradient has {}",
        b.len(),
        a.len()
    );
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// A gradient that second-order companions combine: scaled, and added to another of
/// the same kind and length.
pub trait Lin<T>: Sized {
    /// `a * self`, elementwise.
    fn scaled(self, a: T) -> Self;

    /// `self + y`, elementwise.
    ///
    /// # Panics
    /// When the lengths (shapes) differ, naming both.
    fn plus(self, y: Self) -> Self;
}

impl Lin<f32> for f32 {
    fn scaled(self, a: f32) -> f32 {
        a * self
    }
    fn plus(self, y: f32) -> f32 {
        self + y
    }
}

impl Lin<f64> for f64 {
    fn scaled(self, a: f64) -> f64 {
        a * self
    }
    fn plus(self, y: f64) -> f64 {
        self + y
    }
}

fn plus_slice<T: Float>(x: &mut [T], y: &[T]) {
    assert_eq!(
        x.len(),
        y.len(),
        "gradients of {} and {} elements combined",
        x.len(),
        y.len()
    );
    for (x, &y) in x.iter_mut().zip(y) {
        // `Float` has no `AddAssign`.
        #[allow(clippy::assign_op_pattern)]
        {
            *x = *x + y;
        }
    }
}

impl<T: Float> Lin<T> for Vec<T> {
    fn scaled(mut self, a: T) -> Self {
        self.iter_mut().for_each(|x| *x = a * *x);
        self
    }
    fn plus(mut self, y: Self) -> Self {
        plus_slice(&mut self, &y);
        self
    }
}

impl<T: Float, const N: usize> Lin<T> for [T; N] {
    fn scaled(mut self, a: T) -> Self {
        self.iter_mut().for_each(|x| *x = a * *x);
        self
    }
    fn plus(mut self, y: Self) -> Self {
        plus_slice(&mut self, &y);
        self
    }
}

impl<T: Float> Lin<T> for Tensor<T> {
    fn scaled(mut self, a: T) -> Self {
        self.as_mut_slice().iter_mut().for_each(|x| *x = a * *x);
        self
    }
    fn plus(mut self, y: Self) -> Self {
        assert_eq!(
            self.shape(),
            y.shape(),
            "gradients of shapes {:?} and {:?} combined",
            self.shape(),
            y.shape()
        );
        plus_slice(self.as_mut_slice(), y.as_slice());
        self
    }
}

/// `a * x + y`.
pub fn scale_add<T, G: Lin<T>>(a: T, x: G, y: G) -> G {
    x.scaled(a).plus(y)
}

/// `a * x`.
pub fn scale<T, G: Lin<T>>(a: T, x: G) -> G {
    x.scaled(a)
}

/// A tensor or a reference to one.
pub trait AsTensor<T: Float> {
    /// The tensor.
    fn as_tensor(&self) -> &Tensor<T>;
}

impl<T: Float> AsTensor<T> for Tensor<T> {
    fn as_tensor(&self) -> &Tensor<T> {
        self
    }
}

impl<T: Float> AsTensor<T> for &Tensor<T> {
    fn as_tensor(&self) -> &Tensor<T> {
        self
    }
}

/// An owned copy of a tensor or of the tensor a reference points to: the tangent of a
/// tensor argument passed by value, which may be a `&Tensor` tangent parameter.
pub fn owned<T: Float, X: AsTensor<T>>(x: &X) -> Tensor<T> {
    x.as_tensor().clone()
}

/// Implemented by no type: the bound of the stand-ins that `#[differentiable]` writes
/// for the second-order companions of a function without `order = 2`, so that a call
/// of one is an error at the call that says what to do.
#[diagnostic::on_unimplemented(
    message = "the function called here has no second-order companions (`_hvp`, and the derivatives of `_grad`, `_vjp` and `_jvp` that nested differentiation calls)",
    label = "needs the second-order companions of the function it calls",
    note = "give the called function `#[differentiable(order = 2)]`"
)]
pub trait SecondOrder {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_products_of_every_kind() {
        assert_eq!(inner(&2.0, &3.0), 6.0);
        assert_eq!(inner(&vec![1.0, 2.0], &[3.0, 4.0][..]), 11.0);
        assert_eq!(inner(&[1.0, 2.0], &[3.0, 4.0]), 11.0);
        let t = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        assert_eq!(inner(&t, &&t), 14.0);
    }

    #[test]
    #[should_panic(expected = "has 3 elements where its gradient has 2")]
    fn inner_names_both_lengths() {
        inner(&vec![1.0, 2.0], &vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn scale_add_of_every_kind() {
        assert_eq!(scale_add(2.0, 3.0, 1.0), 7.0);
        assert_eq!(
            scale_add(2.0, vec![1.0, 2.0], vec![1.0, 1.0]),
            vec![3.0, 5.0]
        );
        assert_eq!(scale_add(-1.0, [1.0, 2.0], [1.0, 1.0]), [0.0, -1.0]);
        let t = scale_add(
            0.5,
            Tensor::from_vec(vec![2.0, 4.0], &[2]),
            Tensor::from_vec(vec![1.0, 1.0], &[2]),
        );
        assert_eq!(t.as_slice(), &[2.0, 3.0]);
        assert_eq!(scale(3.0, vec![1.0, -2.0]), vec![3.0, -6.0]);
    }

    #[test]
    #[should_panic(expected = "shapes [2] and [3] combined")]
    fn scale_add_names_both_shapes() {
        scale_add(1.0, Tensor::<f64>::zeros(&[2]), Tensor::zeros(&[3]));
    }
}
