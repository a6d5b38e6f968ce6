//! [`Value`]: what a tape variable holds, a scalar or a tensor.

use crate::float::Float;
use crate::tensor::Tensor;

/// The value of a tape variable, its gradient, or a seed: a scalar or a tensor.
///
/// ```
/// use ad_runtime::tape::Value;
/// use ad_runtime::Tensor;
/// let s: Value<f64> = 2.0.into();
/// let t: Value<f64> = Tensor::ones(&[2]).into();
/// assert_eq!(s.shape(), &[] as &[usize]);
/// assert_eq!(t.shape(), &[2]);
/// assert_eq!(s.item(), 2.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Value<T: Float = f64> {
    /// A scalar (a 0-d value).
    Scalar(T),
    /// A tensor.
    Tensor(Tensor<T>),
}

impl<T: Float> Value<T> {
    /// The shape: empty for a scalar.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Scalar(_) => &[],
            Value::Tensor(t) => t.shape(),
        }
    }

    /// Whether this is a scalar.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        match self {
            Value::Scalar(_) => 1,
            Value::Tensor(t) => t.len(),
        }
    }

    /// Whether there are no elements (a tensor with a zero extent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements in row-major order (one for a scalar).
    pub fn as_slice(&self) -> &[T] {
        match self {
            Value::Scalar(x) => std::slice::from_ref(x),
            Value::Tensor(t) => t.as_slice(),
        }
    }

    /// The one element of a scalar or of a one-element tensor.
    ///
    /// # Panics
    /// If a tensor holds more than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        match self {
            Value::Scalar(x) => *x,
            Value::Tensor(t) => t.item(),
        }
    }

    /// The value as a tensor (a scalar becomes a 0-d tensor).
    pub fn to_tensor(&self) -> Tensor<T> {
        self.clone().into_tensor()
    }

    /// The value as a tensor, consuming it.
    pub fn into_tensor(self) -> Tensor<T> {
        match self {
            Value::Scalar(x) => Tensor::scalar(x),
            Value::Tensor(t) => t,
        }
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(T) -> T) -> Value<T> {
        match self {
            Value::Scalar(x) => Value::Scalar(f(*x)),
            Value::Tensor(t) => {
                let data = t.as_slice().iter().map(|&x| f(x)).collect();
                Value::Tensor(Tensor::from_vec(data, t.shape()))
            }
        }
    }

    /// Combines two values of the same shape element by element.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn zip_map(&self, other: &Value<T>, f: impl Fn(T, T) -> T) -> Value<T> {
        assert_eq!(
            self.shape(),
            other.shape(),
            "zip_map: values of shapes {:?} and {:?}",
            self.shape(),
            other.shape()
        );
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(f(*a, *b)),
            _ => {
                let data = self
                    .as_slice()
                    .iter()
                    .zip(other.as_slice())
                    .map(|(&a, &b)| f(a, b))
                    .collect();
                Value::Tensor(Tensor::from_vec(data, self.shape()))
            }
        }
    }

    /// Normalises a 0-d tensor to a scalar.
    pub(crate) fn normalized(self) -> Value<T> {
        match self {
            Value::Tensor(t) if t.ndim() == 0 => Value::Scalar(t.as_slice()[0]),
            v => v,
        }
    }
}

impl<T: Float> From<T> for Value<T> {
    fn from(x: T) -> Self {
        Value::Scalar(x)
    }
}

impl<T: Float> From<Tensor<T>> for Value<T> {
    fn from(t: Tensor<T>) -> Self {
        Value::Tensor(t)
    }
}

impl<T: Float> From<&Tensor<T>> for Value<T> {
    fn from(t: &Tensor<T>) -> Self {
        Value::Tensor(t.clone())
    }
}
