//! Layout: `t`, `reshape`, `broadcast_to`.

use super::expect;
use crate::error::ShapeError;
use crate::float::Float;
use crate::kernels::elementwise as kernel;
use crate::shape::{broadcast_shapes, Shape};
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// The transpose of a 2-d tensor (a copy); a 0-d or 1-d tensor is returned
    /// unchanged.
    ///
    /// # Panics
    /// If the tensor has more than 2 dimensions.
    #[track_caller]
    #[must_use]
    pub fn t(&self) -> Tensor<T> {
        match *self.shape() {
            [r, c] => Tensor::from_parts(kernel::transpose(&self.data, r, c), Shape::new(&[c, r])),
            [] | [_] => self.clone(),
            _ => panic!(
                "t: a {}-d tensor of shape {:?} has no transpose; t() takes 2-d tensors",
                self.ndim(),
                self.shape()
            ),
        }
    }

    /// The same elements in row-major order under a new shape (a copy).
    ///
    /// # Panics
    /// If the element counts differ; see [`Tensor::try_reshape`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let t = Tensor::<f64>::arange(6).reshape(&[2, 3]);
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(t.try_reshape(&[4]).is_err());
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor<T> {
        expect(self.try_reshape(shape))
    }

    /// [`Tensor::reshape`], returning an error instead of panicking.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor<T>, ShapeError> {
        let s = reshaped("reshape", self, shape)?;
        Ok(Tensor::from_parts(self.data.clone(), s))
    }

    /// [`Tensor::reshape`] that moves the data instead of copying it.
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn into_reshape(self, shape: &[usize]) -> Tensor<T> {
        let s = expect(reshaped("reshape", &self, shape));
        Tensor::from_parts(self.data, s)
    }

    /// The tensor repeated along broadcast axes to `shape`, NumPy's
    /// `broadcast_to` (a copy).
    ///
    /// # Panics
    /// If the tensor does not broadcast to `shape`; see
    /// [`Tensor::try_broadcast_to`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let row = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    /// assert_eq!(row.broadcast_to(&[2, 2]).as_slice(), &[1.0, 2.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
        expect(self.try_broadcast_to(shape))
    }

    /// [`Tensor::broadcast_to`], returning an error instead of panicking.
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Tensor<T>, ShapeError> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let op = "broadcast_to";
        let target = Shape::checked_for::<T>(op, shape, self.shape(), shape)?;
        let fits = self.ndim() <= shape.len()
            && broadcast_shapes(op, self.shape(), shape).is_ok_and(|s| s == target);
        if !fits {
            return Err(ShapeError::new(
                op,
                self.shape(),
                shape,
                "the tensor does not broadcast to the target shape",
            ));
        }
        let data = kernel::broadcast_to(&self.data, self.shape(), shape);
        Ok(Tensor::from_parts(data, target))
    }
}

fn reshaped<T: Float>(
    op: &'static str,
    t: &Tensor<T>,
    shape: &[usize],
) -> Result<Shape, ShapeError> {
    let s = Shape::checked(op, shape, t.shape(), shape)?;
    if s.numel() != t.len() {
        return Err(ShapeError::new(
            op,
            t.shape(),
            shape,
            format!(
                "{} elements cannot take a shape of {} elements",
                t.len(),
                s.numel()
            ),
        ));
    }
    Ok(s)
}
