//! Conversions between [`Tensor`] and `ndarray` arrays (the `ndarray` feature).

use crate::float::Float;
use crate::tensor::Tensor;
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

/// Copies an array of any dimension and memory layout, in logical row-major order.
///
/// ```
/// use ad_runtime::Tensor;
/// let a = ndarray::array![[1.0, 2.0], [3.0, 4.0]];
/// let t = Tensor::from(a.t()); // a transposed view
/// assert_eq!(t.as_slice(), &[1.0, 3.0, 2.0, 4.0]);
/// assert_eq!(t.to_ndarray(), a.t().into_dyn());
/// ```
impl<T: Float, S: Data<Elem = T>, D: Dimension> From<ArrayBase<S, D>> for Tensor<T> {
    fn from(a: ArrayBase<S, D>) -> Self {
        let data: Vec<T> = a.iter().copied().collect();
        Tensor::from_vec(data, a.shape())
    }
}

impl<T: Float> Tensor<T> {
    /// A copy as a dynamic-dimensional `ndarray` array of the same shape.
    pub fn to_ndarray(&self) -> ArrayD<T> {
        self.clone().into_ndarray()
    }

    /// The tensor as a dynamic-dimensional `ndarray` array, moving the data.
    pub fn into_ndarray(self) -> ArrayD<T> {
        let shape = IxDyn(self.shape());
        ArrayD::from_shape_vec(shape, self.into_vec()).expect("a tensor's data fills its shape")
    }
}

impl<T: Float> From<Tensor<T>> for ArrayD<T> {
    fn from(t: Tensor<T>) -> Self {
        t.into_ndarray()
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use ndarray::{Array1, Array2, Array3, ArrayD};

    #[test]
    fn round_trips_keep_shape_and_order() {
        let a = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32);
        let t = Tensor::from(a.clone());
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.as_slice(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            ArrayD::from(t)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap(),
            a
        );
        let v = Array1::from(vec![1.0, 2.0]);
        assert_eq!(Tensor::from(v.view()).shape(), &[2]);
        let c = Array3::<f64>::zeros((2, 1, 4));
        assert_eq!(Tensor::from(c).to_ndarray().shape(), &[2, 1, 4]);
        assert_eq!(Tensor::scalar(2.0f64).to_ndarray().ndim(), 0);
    }
}
