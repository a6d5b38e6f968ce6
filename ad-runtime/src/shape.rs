//! Shapes stored inline (no heap allocation), and NumPy broadcasting.

use crate::error::ShapeError;
use std::fmt;

/// The most dimensions a tensor can have.
pub const MAX_DIMS: usize = 6;

/// A tensor's shape, stored inline so that a tensor allocates only its data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: [usize; MAX_DIMS],
    ndim: u8,
}

impl Shape {
    /// The shape with the given extents.
    ///
    /// # Panics
    /// If `dims` has more than [`MAX_DIMS`] entries.
    pub fn new(dims: &[usize]) -> Self {
        assert!(
            dims.len() <= MAX_DIMS,
            "a tensor has at most {MAX_DIMS} dimensions, got shape {dims:?}"
        );
        let mut s = Shape {
            dims: [0; MAX_DIMS],
            ndim: dims.len() as u8,
        };
        s.dims[..dims.len()].copy_from_slice(dims);
        s
    }

    /// The shape of a 0-d (scalar) tensor.
    pub const fn scalar() -> Self {
        Shape {
            dims: [0; MAX_DIMS],
            ndim: 0,
        }
    }

    /// The extents.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.ndim as usize]
    }

    /// The number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.ndim as usize
    }

    /// The number of elements: the product of the extents (1 for a scalar).
    #[inline]
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.dims(), f)
    }
}

/// The shape two operands broadcast to under NumPy's rules: align the trailing
/// dimensions; each pair must be equal or contain a 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape, ShapeError> {
    let n = a.len().max(b.len());
    if n > MAX_DIMS {
        return Err(ShapeError::new(
            op,
            a,
            b,
            format!("more than {MAX_DIMS} dimensions"),
        ));
    }
    let mut out = [0usize; MAX_DIMS];
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(ShapeError::new(
                op,
                a,
                b,
                format!("cannot broadcast: dimension {i} of the result would need {da} and {db}"),
            ));
        };
    }
    Ok(Shape::new(&out[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_like_numpy() {
        let s = |a: &[usize], b: &[usize]| broadcast_shapes("add", a, b).map(|s| s.dims().to_vec());
        assert_eq!(s(&[2, 3], &[3]).unwrap(), vec![2, 3]);
        assert_eq!(s(&[2, 3], &[2, 1]).unwrap(), vec![2, 3]);
        assert_eq!(s(&[1, 3], &[4, 1]).unwrap(), vec![4, 3]);
        assert_eq!(s(&[], &[4, 1]).unwrap(), vec![4, 1]);
        let err = s(&[2, 3], &[2]).unwrap_err();
        assert_eq!(err.lhs, vec![2, 3]);
        assert_eq!(err.rhs, vec![2]);
    }
}
