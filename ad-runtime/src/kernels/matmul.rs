//! Matrix products through `matrixmultiply`'s `sgemm`/`dgemm`, on strided
//! views, so a transposed operand is read in place instead of copied.

use crate::float::Float;

/// A read-only view of an m×n matrix inside a slice: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows`×`cols` matrix.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    #[track_caller]
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "MatRef::row_major: {rows}x{cols} needs {} elements",
            rows * cols
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// A view with explicit strides.
    ///
    /// # Panics
    /// If an addressed element lies outside `data`.
    #[track_caller]
    pub fn strided(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        if rows > 0 && cols > 0 {
            // Checked, so that a wrapped product cannot pass the bounds test.
            let last = (rows - 1)
                .checked_mul(row_stride)
                .zip((cols - 1).checked_mul(col_stride))
                .and_then(|(r, c)| r.checked_add(c));
            assert!(
                last.is_some_and(|last| last < data.len() && last <= isize::MAX as usize),
                "MatRef::strided: element {last:?} is outside {} elements",
                data.len()
            );
        }
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The transpose, as a view of the same elements.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// `c ← α·a·b + β·c`, where `c` is a row-major `a.rows()`×`b.cols()` matrix.
///
/// With `β = 0` the old contents of `c` are ignored (even NaNs).
///
/// # Panics
/// If `a.cols() != b.rows()` or `c` has the wrong length.
///
/// ```
/// use ad_runtime::kernels::matmul::{gemm, MatRef};
/// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let mut c = [1.0; 4];
/// // c = aᵀ·a + c
/// gemm(1.0, MatRef::row_major(&a, 2, 2).t(), MatRef::row_major(&a, 2, 2), 1.0, &mut c);
/// assert_eq!(c, [11.0, 15.0, 15.0, 21.0]);
/// ```
#[track_caller]
pub fn gemm<T: Float>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: &mut [T]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(
        b.rows, k,
        "gemm: inner dimensions {k} and {} differ",
        b.rows
    );
    assert_eq!(
        c.len(),
        m * n,
        "gemm: the output holds {} elements, not {m}x{n}",
        c.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // The product is empty: only the β·c term remains.
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.iter_mut().for_each(|x| *x *= beta);
        }
        return;
    }
    // SAFETY: `MatRef`'s constructors ensure every element that its strides
    // address lies inside its slice; `c` is a distinct `&mut` slice of exactly
    // m·n elements addressed row-major; strides fit `isize` because they index
    // within allocations, which never exceed `isize::MAX` bytes.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// `a·b` for row-major `a` (m×k) and `b` (k×n), into a new row-major `Vec`.
pub fn matmul<T: Float>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    let mut c = vec![T::zero(); m * n];
    gemm(
        T::one(),
        MatRef::row_major(a, m, k),
        MatRef::row_major(b, k, n),
        T::zero(),
        &mut c,
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn matches_the_triple_loop_with_and_without_transposes() {
        for &(m, k, n) in &[(1, 1, 1), (3, 4, 5), (17, 9, 33), (2, 0, 3), (0, 3, 2)] {
            let a: Vec<f64> = (0..m * k).map(|i| (i % 7) as f64 - 3.0).collect();
            let b: Vec<f64> = (0..k * n).map(|i| (i % 5) as f64 * 0.5).collect();
            let want = naive(&a, &b, m, k, n);
            assert_eq!(matmul(&a, &b, m, k, n), want);
            // The same product from stored transposes, read through strides.
            let at = super::super::elementwise::transpose(&a, m, k);
            let bt = super::super::elementwise::transpose(&b, k, n);
            let mut c = vec![f64::NAN; m * n];
            gemm(
                1.0,
                MatRef::row_major(&at, k, m).t(),
                MatRef::row_major(&bt, n, k).t(),
                0.0,
                &mut c,
            );
            assert_eq!(c, want);
            // α and β.
            let mut c = vec![1.0; m * n];
            gemm(
                2.0,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                3.0,
                &mut c,
            );
            assert_eq!(c, want.iter().map(|v| 2.0 * v + 3.0).collect::<Vec<_>>());
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn strided_views_are_bounds_checked() {
        let x = [0.0f32; 5];
        MatRef::strided(&x, 2, 3, 3, 1);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn overflowing_strides_are_rejected() {
        let x = [0.0f32; 5];
        MatRef::strided(&x, 3, 1, usize::MAX / 2 + 1, 1);
    }
}
