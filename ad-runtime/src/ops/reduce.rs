//! Reductions: to one element (`sum`, `mean`, `norm`, `max`, `min`), along an
//! axis, and back from a broadcast result onto an operand's shape.

use super::expect;
use crate::error::ShapeError;
use crate::float::Float;
use crate::kernels::reduce as kernel;
use crate::shape::{broadcast_shapes, Shape};
use crate::tensor::Tensor;

impl<T: Float> Tensor<T> {
    /// The sum of all elements (0 for an empty tensor).
    pub fn sum(&self) -> T {
        kernel::sum(&self.data)
    }

    /// The mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> T {
        self.sum() / T::from_usize(self.data.len())
    }

    /// The Euclidean (L2) norm of all elements, `sqrt(Σ x²)`.
    pub fn norm(&self) -> T {
        kernel::sum_sq(&self.data).sqrt()
    }

    /// The largest element (`-inf` for an empty tensor); NaNs are skipped.
    pub fn max(&self) -> T {
        kernel::max(&self.data)
    }

    /// The smallest element (`+inf` for an empty tensor); NaNs are skipped.
    pub fn min(&self) -> T {
        kernel::min(&self.data)
    }

    /// The sum over axis `axis`, which is removed from the shape.
    ///
    /// # Panics
    /// If `axis` is not below [`Tensor::ndim`]; see [`Tensor::try_sum_axis`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(t.sum_axis(0).as_slice(), &[5.0, 7.0, 9.0]);
    /// assert_eq!(t.sum_axis(1).as_slice(), &[6.0, 15.0]);
    /// ```
    #[track_caller]
    pub fn sum_axis(&self, axis: usize) -> Tensor<T> {
        expect(self.try_sum_axis(axis))
    }

    /// [`Tensor::sum_axis`], returning an error instead of panicking.
    pub fn try_sum_axis(&self, axis: usize) -> Result<Tensor<T>, ShapeError> {
        let (outer, n, inner, shape) = split_at_axis("sum_axis", self, axis)?;
        Ok(Tensor::from_parts(
            kernel::sum_axis(&self.data, outer, n, inner),
            shape,
        ))
    }

    /// The mean over axis `axis`, which is removed from the shape.
    ///
    /// # Panics
    /// If `axis` is not below [`Tensor::ndim`]; see [`Tensor::try_mean_axis`].
    #[track_caller]
    pub fn mean_axis(&self, axis: usize) -> Tensor<T> {
        expect(self.try_mean_axis(axis))
    }

    /// [`Tensor::mean_axis`], returning an error instead of panicking.
    pub fn try_mean_axis(&self, axis: usize) -> Result<Tensor<T>, ShapeError> {
        let (outer, n, inner, shape) = split_at_axis("mean_axis", self, axis)?;
        let mut data = kernel::sum_axis(&self.data, outer, n, inner);
        let scale = T::from_usize(n).recip();
        data.iter_mut().for_each(|x| *x *= scale);
        Ok(Tensor::from_parts(data, shape))
    }

    /// The largest element along axis `axis`, which is removed from the shape.
    ///
    /// # Panics
    /// If `axis` is not below [`Tensor::ndim`]; see [`Tensor::try_max_axis`].
    #[track_caller]
    pub fn max_axis(&self, axis: usize) -> Tensor<T> {
        expect(self.try_max_axis(axis))
    }

    /// [`Tensor::max_axis`], returning an error instead of panicking.
    pub fn try_max_axis(&self, axis: usize) -> Result<Tensor<T>, ShapeError> {
        let (outer, n, inner, shape) = split_at_axis("max_axis", self, axis)?;
        Ok(Tensor::from_parts(
            kernel::max_axis(&self.data, outer, n, inner),
            shape,
        ))
    }

    /// The smallest element along axis `axis`, which is removed from the shape.
    ///
    /// # Panics
    /// If `axis` is not below [`Tensor::ndim`]; see [`Tensor::try_min_axis`].
    #[track_caller]
    pub fn min_axis(&self, axis: usize) -> Tensor<T> {
        expect(self.try_min_axis(axis))
    }

    /// [`Tensor::min_axis`], returning an error instead of panicking.
    pub fn try_min_axis(&self, axis: usize) -> Result<Tensor<T>, ShapeError> {
        let (outer, n, inner, shape) = split_at_axis("min_axis", self, axis)?;
        Ok(Tensor::from_parts(
            kernel::min_axis(&self.data, outer, n, inner),
            shape,
        ))
    }

    /// Sums a broadcast result back onto the shape of one of its operands:
    /// every axis that broadcasting added or stretched from extent 1 is summed.
    ///
    /// This is the gradient rule of broadcasting: if `y = a + b` broadcast `a`,
    /// then `dL/da = (dL/dy).sum_to_shape(a.shape())`.
    ///
    /// # Panics
    /// If `shape` does not broadcast to this tensor's shape; see
    /// [`Tensor::try_sum_to_shape`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let g = Tensor::<f64>::ones(&[2, 3]);
    /// assert_eq!(g.sum_to_shape(&[3]).as_slice(), &[2.0, 2.0, 2.0]);
    /// assert_eq!(g.sum_to_shape(&[2, 1]).as_slice(), &[3.0, 3.0]);
    /// assert_eq!(g.sum_to_shape(&[]).as_slice(), &[6.0]);
    /// ```
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor<T> {
        expect(self.try_sum_to_shape(shape))
    }

    /// [`Tensor::sum_to_shape`], returning an error instead of panicking.
    pub fn try_sum_to_shape(&self, shape: &[usize]) -> Result<Tensor<T>, ShapeError> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let op = "sum_to_shape";
        // Onto a tensor with a zero extent, the target may be far larger
        // (`[0, n]` sums onto `[1, n]`, a row of n zeros): it is checked as
        // a new tensor.
        let target = Shape::checked_for::<T>(op, shape, self.shape(), shape)?;
        let fits = shape.len() <= self.ndim()
            && broadcast_shapes(op, shape, self.shape()).is_ok_and(|s| s == self.shape);
        if !fits {
            return Err(ShapeError::new(
                op,
                self.shape(),
                shape,
                "the target shape does not broadcast to the tensor's shape",
            ));
        }
        let data = kernel::sum_to_shape(&self.data, self.shape(), shape);
        Ok(Tensor::from_parts(data, target))
    }
}

/// Splits the shape around `axis` into `(outer, n, inner)` extents, and gives
/// the shape without that axis.
fn split_at_axis<T: Float>(
    op: &'static str,
    t: &Tensor<T>,
    axis: usize,
) -> Result<(usize, usize, usize, Shape), ShapeError> {
    let dims = t.shape();
    if axis >= dims.len() {
        return Err(ShapeError::new(
            op,
            dims,
            &[],
            format!("axis {axis} is out of range for a {}-d tensor", dims.len()),
        ));
    }
    let mut rest = [0; crate::shape::MAX_DIMS];
    rest[..axis].copy_from_slice(&dims[..axis]);
    rest[axis..dims.len() - 1].copy_from_slice(&dims[axis + 1..]);
    // Removing an extent of 0 can leave more elements than a buffer holds
    // (`[usize::MAX, 0]` summed over axis 1), so the result is checked first.
    let shape = Shape::checked_for::<T>(op, &rest[..dims.len() - 1], dims, &[])?;
    if shape.numel() == 0 {
        // An empty result: its other extents may multiply past `usize::MAX`,
        // and `[0, n, 0]` describes the (empty) operand just as well.
        return Ok((0, dims[axis], 0, shape));
    }
    // Products of nonzero extents of `shape`, so each is at most its numel.
    let outer = shape.dims()[..axis].iter().product();
    let inner = shape.dims()[axis..].iter().product();
    Ok((outer, dims[axis], inner, shape))
}
