//! The tensor type: contiguous row-major storage of `f32`/`f64` and an inline shape.

use crate::error::ShapeError;
use crate::float::Float;
use crate::rng::SplitMix64;
use crate::shape::Shape;

/// An n-dimensional array of `f32` or `f64`, contiguous and row-major.
///
/// A tensor owns one allocation, its data; the shape is stored inline.
///
/// ```
/// use ad_runtime::Tensor;
/// let t = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.len(), 6);
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<T = f64> {
    pub(crate) data: Vec<T>,
    pub(crate) shape: Shape,
}

impl<T: Float> Tensor<T> {
    /// A tensor of the given shape over `data`, in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`; see [`Tensor::try_from_vec`].
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        crate::ops::expect(Self::try_from_vec(data, shape))
    }

    /// [`Tensor::from_vec`], returning an error instead of panicking.
    pub fn try_from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self, ShapeError> {
        let s = Shape::checked("from_vec", shape, &[data.len()], shape)?;
        if s.numel() != data.len() {
            return Err(ShapeError::new(
                "from_vec",
                &[data.len()],
                shape,
                format!(
                    "{} elements cannot fill a tensor of {} elements",
                    data.len(),
                    s.numel()
                ),
            ));
        }
        Ok(Tensor { data, shape: s })
    }

    /// Builds a tensor from data and an already checked shape.
    ///
    /// Every caller computes `data` from `shape` (or `shape` from `data`), so a
    /// mismatch is a bug in this crate; memory safety does not rest on it,
    /// because every kernel indexes slices with bounds checks and the GEMM
    /// checks its lengths itself.
    #[inline]
    pub(crate) fn from_parts(data: Vec<T>, shape: Shape) -> Self {
        debug_assert_eq!(data.len(), shape.numel());
        Tensor { data, shape }
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    /// If the shape has more than [`MAX_DIMS`](crate::MAX_DIMS) dimensions or
    /// more elements than a buffer can hold; see [`Tensor::try_zeros`].
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::new_full("zeros", shape, T::zero())
    }

    /// [`Tensor::zeros`], returning an error instead of panicking.
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let err = Tensor::<f64>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
    /// assert!(err.reason.contains("more than usize::MAX elements"));
    /// assert!(Tensor::<f64>::try_zeros(&[0, usize::MAX]).is_ok());
    /// ```
    pub fn try_zeros(shape: &[usize]) -> Result<Self, ShapeError> {
        Self::try_new_full("zeros", shape, T::zero())
    }

    /// A tensor of ones.
    ///
    /// # Panics
    /// As [`Tensor::zeros`]; see [`Tensor::try_ones`].
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::new_full("ones", shape, T::one())
    }

    /// [`Tensor::ones`], returning an error instead of panicking.
    pub fn try_ones(shape: &[usize]) -> Result<Self, ShapeError> {
        Self::try_new_full("ones", shape, T::one())
    }

    /// A tensor with every element `value`.
    ///
    /// # Panics
    /// As [`Tensor::zeros`]; see [`Tensor::try_full`].
    #[track_caller]
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::new_full("full", shape, value)
    }

    /// [`Tensor::full`], returning an error instead of panicking.
    pub fn try_full(shape: &[usize], value: T) -> Result<Self, ShapeError> {
        Self::try_new_full("full", shape, value)
    }

    /// The panicking constructors build the tensor outside a `Result`, which
    /// saves moving it through one (they run for every small temporary).
    #[inline]
    #[track_caller]
    fn new_full(op: &'static str, shape: &[usize], value: T) -> Self {
        let s = crate::ops::expect(Shape::checked_for::<T>(op, shape, shape, &[]));
        Tensor {
            data: vec![value; s.numel()],
            shape: s,
        }
    }

    #[inline]
    fn try_new_full(op: &'static str, shape: &[usize], value: T) -> Result<Self, ShapeError> {
        let s = Shape::checked_for::<T>(op, shape, shape, &[])?;
        Ok(Tensor {
            data: vec![value; s.numel()],
            shape: s,
        })
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Tensor {
            data: vec![value],
            shape: Shape::scalar(),
        }
    }

    /// `[0, 1, ..., n-1]` as a 1-d tensor.
    ///
    /// # Panics
    /// If a buffer cannot hold `n` elements; see [`Tensor::try_arange`].
    #[track_caller]
    pub fn arange(n: usize) -> Self {
        crate::ops::expect(Self::try_arange(n))
    }

    /// [`Tensor::arange`], returning an error instead of panicking.
    pub fn try_arange(n: usize) -> Result<Self, ShapeError> {
        let s = Shape::checked_for::<T>("arange", &[n], &[n], &[])?;
        Ok(Tensor {
            data: (0..n).map(T::from_usize).collect(),
            shape: s,
        })
    }

    /// Uniform on `[0, 1)`; the same seed gives the same tensor on every platform.
    ///
    /// # Panics
    /// As [`Tensor::zeros`]; see [`Tensor::try_rand`].
    #[track_caller]
    pub fn rand(shape: &[usize], seed: u64) -> Self {
        crate::ops::expect(Self::try_rand(shape, seed))
    }

    /// [`Tensor::rand`], returning an error instead of panicking.
    pub fn try_rand(shape: &[usize], seed: u64) -> Result<Self, ShapeError> {
        let s = Shape::checked_for::<T>("rand", shape, shape, &[])?;
        let mut rng = SplitMix64::new(seed);
        Ok(Tensor {
            data: (0..s.numel())
                .map(|_| T::from_f64(rng.next_f64()))
                .collect(),
            shape: s,
        })
    }

    /// Standard normal; the same seed gives the same tensor on every platform.
    ///
    /// # Panics
    /// As [`Tensor::zeros`]; see [`Tensor::try_randn`].
    #[track_caller]
    pub fn randn(shape: &[usize], seed: u64) -> Self {
        crate::ops::expect(Self::try_randn(shape, seed))
    }

    /// [`Tensor::randn`], returning an error instead of panicking.
    pub fn try_randn(shape: &[usize], seed: u64) -> Result<Self, ShapeError> {
        let s = Shape::checked_for::<T>("randn", shape, shape, &[])?;
        let mut rng = SplitMix64::new(seed);
        Ok(Tensor {
            data: (0..s.numel())
                .map(|_| T::from_f64(rng.next_normal()))
                .collect(),
            shape: s,
        })
    }

    /// The extents, outermost first; empty for a 0-d tensor.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.shape.ndim()
    }

    /// The number of elements.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements, copied into a `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        self.data.clone()
    }

    /// The elements, moved out.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The one element of a tensor with a single element (of any shape).
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element.
    #[track_caller]
    pub fn item(&self) -> T {
        assert!(
            self.data.len() == 1,
            "item: a tensor of shape {:?} holds {} elements, not one",
            self.shape(),
            self.data.len()
        );
        self.data[0]
    }
}

impl<T: Float> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?} ", self.shape())?;
        if self.data.len() <= 16 {
            f.debug_list().entries(self.data.iter()).finish()
        } else {
            f.debug_list().entries(self.data[..8].iter()).finish()?;
            write!(f, " ... ({} elements)", self.data.len())
        }
    }
}
