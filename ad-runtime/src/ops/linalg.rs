//! Products: `matmul` (and its transposed forms), `gemm_into`, `dot`, `outer`.

use super::expect;
use crate::error::ShapeError;
use crate::float::Float;
use crate::kernels::matmul::{gemm, MatRef};
use crate::kernels::reduce;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// The operands of a product as matrix views, and the result's shape.
///
/// NumPy's rules: a 1-d left operand is a row vector and a 1-d right operand a
/// column vector, and those unit dimensions are dropped from the result.
/// `ta`/`tb` transpose a 2-d operand (transposing a 1-d operand changes nothing).
fn plan<'a, T: Float>(
    op: &'static str,
    a: &'a Tensor<T>,
    ta: bool,
    b: &'a Tensor<T>,
    tb: bool,
) -> Result<(MatRef<'a, T>, MatRef<'a, T>, Shape), ShapeError> {
    let err = |reason: String| ShapeError::new(op, a.shape(), b.shape(), reason);
    let view = |t: &'a Tensor<T>, trans: bool, left: bool| match *t.shape() {
        [r, c] => {
            let m = MatRef::row_major(&t.data, r, c);
            Ok(if trans { m.t() } else { m })
        }
        [k] if left => Ok(MatRef::row_major(&t.data, 1, k)),
        [k] => Ok(MatRef::row_major(&t.data, k, 1)),
        _ => Err(err(format!(
            "{op} needs 1-d or 2-d operands, got a {}-d one",
            t.ndim()
        ))),
    };
    let (va, vb) = (view(a, ta, true)?, view(b, tb, false)?);
    if va.cols() != vb.rows() {
        let side = |trans: bool| if trans { " (transposed)" } else { "" };
        return Err(err(format!(
            "inner dimensions differ: {}{} against {}{}",
            va.cols(),
            side(ta && a.ndim() == 2),
            vb.rows(),
            side(tb && b.ndim() == 2),
        )));
    }
    let dims = match (a.ndim(), b.ndim()) {
        (2, 2) => &[va.rows(), vb.cols()][..],
        (2, _) => &[va.rows()][..],
        (_, 2) => &[vb.cols()][..],
        _ => &[][..],
    };
    // `[m, 0]·[0, n]` is a real `[m, n]` of zeros, so the result can be far
    // larger than both operands: check its size before the GEMM sees it.
    let shape = Shape::checked_for::<T>(op, dims, a.shape(), b.shape())?;
    Ok((va, vb, shape))
}

fn product<T: Float>(
    op: &'static str,
    a: &Tensor<T>,
    ta: bool,
    b: &Tensor<T>,
    tb: bool,
) -> Result<Tensor<T>, ShapeError> {
    let (va, vb, shape) = plan(op, a, ta, b, tb)?;
    let mut data = vec![T::zero(); shape.numel()];
    gemm(T::one(), va, vb, T::zero(), &mut data);
    Ok(Tensor::from_parts(data, shape))
}

impl<T: Float> Tensor<T> {
    /// The matrix product: `[m, k]·[k, n] → [m, n]`, `[m, k]·[k] → [m]`,
    /// `[k]·[k, n] → [n]` (and `[k]·[k] → []`, a 0-d tensor).
    ///
    /// # Panics
    /// If the inner dimensions differ or an operand is not 1-d or 2-d; see
    /// [`Tensor::try_matmul`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// let x = Tensor::from_vec(vec![1.0, 0.0, -1.0], &[3]);
    /// assert_eq!(a.matmul(&x).as_slice(), &[-2.0, -2.0]);
    /// assert_eq!(a.matmul(&a.t()).as_slice(), &[14.0, 32.0, 32.0, 77.0]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_matmul(other))
    }

    /// [`Tensor::matmul`], returning an error instead of panicking.
    pub fn try_matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        product("matmul", self, false, other, false)
    }

    /// `self · otherᵀ`, reading `other` transposed in place (no copy).
    /// Equal to `self.matmul(&other.t())`.
    ///
    /// # Panics
    /// As [`Tensor::matmul`]; see [`Tensor::try_matmul_t`].
    #[track_caller]
    pub fn matmul_t(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_matmul_t(other))
    }

    /// [`Tensor::matmul_t`], returning an error instead of panicking.
    pub fn try_matmul_t(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        product("matmul_t", self, false, other, true)
    }

    /// `selfᵀ · other`, reading `self` transposed in place (no copy).
    /// Equal to `self.t().matmul(other)`.
    ///
    /// # Panics
    /// As [`Tensor::matmul`]; see [`Tensor::try_t_matmul`].
    #[track_caller]
    pub fn t_matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_t_matmul(other))
    }

    /// [`Tensor::t_matmul`], returning an error instead of panicking.
    pub fn try_t_matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        product("t_matmul", self, true, other, false)
    }

    /// `self ← alpha·op(a)·op(b) + beta·self`, where `op` transposes a 2-d
    /// operand when its flag is set. Writes into `self`'s buffer, allocating
    /// nothing; the fused gradient code accumulates `dA += dC·Bᵀ` this way.
    ///
    /// Operands follow [`Tensor::matmul`]'s rules for 1-d tensors, and `self`
    /// must have the shape that `op(a).matmul(op(b))` would have. With
    /// `beta = 0` the old contents of `self` are ignored.
    ///
    /// # Panics
    /// If the shapes do not fit; see [`Tensor::try_gemm_into`].
    ///
    /// ```
    /// use ad_runtime::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let mut acc = Tensor::ones(&[2, 2]);
    /// acc.gemm_into(1.0, &a, true, &a, false, 1.0); // acc += aᵀ·a
    /// assert_eq!(acc.as_slice(), &[11.0, 15.0, 15.0, 21.0]);
    /// ```
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_into(
        &mut self,
        alpha: T,
        a: &Tensor<T>,
        transpose_a: bool,
        b: &Tensor<T>,
        transpose_b: bool,
        beta: T,
    ) {
        expect(self.try_gemm_into(alpha, a, transpose_a, b, transpose_b, beta))
    }

    /// [`Tensor::gemm_into`], returning an error instead of panicking.
    pub fn try_gemm_into(
        &mut self,
        alpha: T,
        a: &Tensor<T>,
        transpose_a: bool,
        b: &Tensor<T>,
        transpose_b: bool,
        beta: T,
    ) -> Result<(), ShapeError> {
        let (va, vb, shape) = plan("gemm_into", a, transpose_a, b, transpose_b)?;
        if shape != self.shape {
            return Err(ShapeError::new(
                "gemm_into",
                shape.dims(),
                self.shape(),
                "the product's shape (left) differs from the output's (right)",
            ));
        }
        gemm(alpha, va, vb, beta, &mut self.data);
        Ok(())
    }

    /// The inner product of two 1-d tensors of equal length.
    ///
    /// # Panics
    /// If either is not 1-d or the lengths differ; see [`Tensor::try_dot`].
    #[track_caller]
    pub fn dot(&self, other: &Tensor<T>) -> T {
        expect(self.try_dot(other))
    }

    /// [`Tensor::dot`], returning an error instead of panicking.
    pub fn try_dot(&self, other: &Tensor<T>) -> Result<T, ShapeError> {
        match (self.shape(), other.shape()) {
            ([n], [k]) if n == k => Ok(reduce::dot(&self.data, &other.data)),
            ([_], [_]) => Err(ShapeError::new(
                "dot",
                self.shape(),
                other.shape(),
                "the lengths differ",
            )),
            _ => Err(ShapeError::new(
                "dot",
                self.shape(),
                other.shape(),
                "dot needs two 1-d tensors",
            )),
        }
    }

    /// The outer product of two 1-d tensors: `[m]` and `[n]` give `[m, n]`.
    ///
    /// # Panics
    /// If either operand is not 1-d; see [`Tensor::try_outer`].
    #[track_caller]
    pub fn outer(&self, other: &Tensor<T>) -> Tensor<T> {
        expect(self.try_outer(other))
    }

    /// [`Tensor::outer`], returning an error instead of panicking.
    pub fn try_outer(&self, other: &Tensor<T>) -> Result<Tensor<T>, ShapeError> {
        let (&[m], &[n]) = (self.shape(), other.shape()) else {
            return Err(ShapeError::new(
                "outer",
                self.shape(),
                other.shape(),
                "outer needs two 1-d tensors",
            ));
        };
        let shape = Shape::checked_for::<T>("outer", &[m, n], self.shape(), other.shape())?;
        let mut data = Vec::with_capacity(shape.numel());
        for &x in &self.data {
            data.extend(other.data.iter().map(|&y| x * y));
        }
        Ok(Tensor::from_parts(data, shape))
    }
}
