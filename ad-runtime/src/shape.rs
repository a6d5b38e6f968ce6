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
    /// If `dims` has more than [`MAX_DIMS`] entries, or the product of the
    /// extents does not fit in `usize`; see [`Shape::try_new`].
    #[track_caller]
    pub fn new(dims: &[usize]) -> Self {
        match Self::try_new(dims) {
            Ok(s) => s,
            Err(e) => panic!("{}", e.reason),
        }
    }

    /// [`Shape::new`], returning an error instead of panicking.
    ///
    /// Every way to build a `Shape` makes this check, so every `Shape`'s
    /// element count fits in `usize` and [`Shape::numel`] never overflows. A shape with a zero
    /// extent has no elements whatever its other extents are.
    ///
    /// ```
    /// use ad_runtime::Shape;
    /// assert_eq!(Shape::try_new(&[0, usize::MAX, 2]).unwrap().numel(), 0);
    /// let err = Shape::try_new(&[1 << 32, 1 << 32]).unwrap_err();
    /// assert_eq!(
    ///     err.reason,
    ///     "shape [4294967296, 4294967296] has more than usize::MAX elements"
    /// );
    /// ```
    pub fn try_new(dims: &[usize]) -> Result<Self, ShapeError> {
        Self::checked("shape", dims, dims, &[])
    }

    /// The shape `dims`, or the error of operation `op` on the shapes `lhs`
    /// and `rhs` when `dims` has too many dimensions or elements.
    pub(crate) fn checked(
        op: &'static str,
        dims: &[usize],
        lhs: &[usize],
        rhs: &[usize],
    ) -> Result<Self, ShapeError> {
        if dims.len() > MAX_DIMS || count(dims).is_none() {
            return Err(shape_error(op, dims, lhs, rhs));
        }
        let mut s = Shape {
            dims: [0; MAX_DIMS],
            ndim: dims.len() as u8,
        };
        s.dims[..dims.len()].copy_from_slice(dims);
        Ok(s)
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

    /// The shape `dims` of a new tensor of `T` that operation `op` builds:
    /// [`Shape::checked`], and few enough elements for one buffer. One pass
    /// over the extents on the way that succeeds.
    #[inline]
    pub(crate) fn checked_for<T>(
        op: &'static str,
        dims: &[usize],
        lhs: &[usize],
        rhs: &[usize],
    ) -> Result<Self, ShapeError> {
        match count(dims) {
            Some(n) if dims.len() <= MAX_DIMS && n <= max_elements::<T>() => {
                let mut s = Shape {
                    dims: [0; MAX_DIMS],
                    ndim: dims.len() as u8,
                };
                s.dims[..dims.len()].copy_from_slice(dims);
                Ok(s)
            }
            _ => Err(new_tensor_error::<T>(op, dims, lhs, rhs)),
        }
    }

    /// The number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.ndim as usize
    }

    /// The number of elements: the product of the extents (1 for a scalar).
    ///
    /// It cannot overflow: [`Shape::try_new`] rejects every shape whose product
    /// does not fit in `usize`. A zero extent is looked for first, because the
    /// other extents of an empty shape may multiply past `usize::MAX`.
    #[inline]
    pub fn numel(&self) -> usize {
        let dims = self.dims();
        if dims.contains(&0) {
            0
        } else {
            dims.iter().product()
        }
    }
}

/// The error of [`Shape::checked`], out of the way of the path that succeeds.
#[cold]
#[inline(never)]
fn shape_error(op: &'static str, dims: &[usize], lhs: &[usize], rhs: &[usize]) -> ShapeError {
    let reason = if dims.len() > MAX_DIMS {
        format!("a tensor has at most {MAX_DIMS} dimensions, got shape {dims:?}")
    } else {
        format!("shape {dims:?} has more than usize::MAX elements")
    };
    ShapeError::new(op, lhs, rhs, reason)
}

/// The product of `dims`, or `None` if it does not fit in `usize`. A zero
/// extent makes the product 0 even when the other extents alone overflow.
#[inline]
pub(crate) fn count(dims: &[usize]) -> Option<usize> {
    if dims.contains(&0) {
        return Some(0);
    }
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The number of elements that a tensor of `T` can hold: its buffer, like
/// every allocation, spans at most `isize::MAX` bytes.
#[inline]
pub(crate) const fn max_elements<T>() -> usize {
    // A zero-sized element would take no bytes at all.
    match (isize::MAX as usize).checked_div(std::mem::size_of::<T>()) {
        Some(n) => n,
        None => usize::MAX,
    }
}

/// Checks that a tensor of `T` of shape `shape` can be allocated at all (its
/// buffer spans at most `isize::MAX` bytes), else the error of `op` on the
/// shapes `lhs` and `rhs`. Operations check this once, before they allocate a
/// result, so that an impossible size is a [`ShapeError`] and not a panic in
/// the allocator.
#[inline]
pub(crate) fn check_alloc<T>(
    op: &'static str,
    shape: &Shape,
    lhs: &[usize],
    rhs: &[usize],
) -> Result<(), ShapeError> {
    if shape.numel() <= max_elements::<T>() {
        Ok(())
    } else {
        Err(alloc_error::<T>(op, shape, lhs, rhs))
    }
}

/// The error of [`Shape::checked_for`].
#[cold]
#[inline(never)]
fn new_tensor_error<T>(
    op: &'static str,
    dims: &[usize],
    lhs: &[usize],
    rhs: &[usize],
) -> ShapeError {
    match Shape::checked(op, dims, lhs, rhs) {
        Err(e) => e,
        Ok(s) => alloc_error::<T>(op, &s, lhs, rhs),
    }
}

#[cold]
#[inline(never)]
fn alloc_error<T>(op: &'static str, shape: &Shape, lhs: &[usize], rhs: &[usize]) -> ShapeError {
    ShapeError::new(
        op,
        lhs,
        rhs,
        format!(
            "a tensor of shape {:?} has {} elements of {} bytes, more than fit in isize::MAX bytes",
            shape.dims(),
            shape.numel(),
            std::mem::size_of::<T>()
        ),
    )
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
    let mut out = Shape {
        dims: [0; MAX_DIMS],
        ndim: n as u8,
    };
    // The element count is kept along the way (saturating: only whether it
    // fits matters, and a zero extent makes it 0 in the end).
    let (mut count, mut empty) = (1usize, false);
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
        let d = if da == db || db == 1 {
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
        out.dims[i] = d;
        empty |= d == 0;
        count = count.saturating_mul(d);
    }
    if count == usize::MAX && !empty && crate::shape::count(out.dims()).is_none() {
        return Err(shape_error(op, out.dims(), a, b));
    }
    Ok(out)
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
