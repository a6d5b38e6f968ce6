//! Matrix products through `matrixmultiply`'s `sgemm`/`dgemm`, on strided
//! views, so a transposed operand is read in place instead of copied.

use crate::float::Float;

/// A read-only view of an m×n matrix inside a slice: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
///
/// Its fields are private and both constructors check them, so every view
/// that addresses an element at all (`rows > 0` and `cols > 0`) satisfies:
/// the offset of its last element, `(rows - 1) * row_stride + (cols - 1) *
/// col_stride`, is computed without overflow and lies inside `data`, and both
/// strides are at most `isize::MAX`. [`gemm`]'s `unsafe` call rests on this.
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
        // Checked, so that a product that wraps around (`2^32 × 2^32` is 0)
        // cannot pass for the length of an empty slice.
        assert!(
            rows.checked_mul(cols) == Some(data.len()),
            "MatRef::row_major: a {rows}x{cols} matrix does not have {} elements",
            data.len()
        );
        // For a nonempty view the last offset is `data.len() - 1` and the row
        // stride `cols <= data.len()`, so both fit `isize` when the length
        // does. (A slice of `f32` or `f64` always does; this states it for
        // every element type.)
        assert!(
            data.len() <= isize::MAX as usize,
            "MatRef::row_major: {} elements are more than isize::MAX",
            data.len()
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
    /// If an addressed element lies outside `data`, or a stride exceeds
    /// `isize::MAX` while the view addresses elements.
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
            // With one row (or column) its stride multiplies 0 above, so it is
            // checked on its own: the GEMM takes strides as `isize`.
            assert!(
                row_stride <= isize::MAX as usize && col_stride <= isize::MAX as usize,
                "MatRef::strided: strides {row_stride} and {col_stride} do not fit isize"
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
    // Checked: a wrapped m·n (2^32 × 2^32 is 0) would let an empty `c` pass.
    assert!(
        m.checked_mul(n) == Some(c.len()),
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
    // Here m, k and n are all at least 1, so both views address elements.
    // A view with a zero stride can repeat one element along any extent, so
    // k is not bounded by a slice length: it is held to `isize`'s range like
    // every other count the GEMM does arithmetic with.
    assert!(
        m <= isize::MAX as usize && k <= isize::MAX as usize && n <= isize::MAX as usize,
        "gemm: dimensions {m}x{k} times {k}x{n} exceed isize::MAX"
    );
    // SAFETY: `matrixmultiply` reads `a` at offsets `i * rsa + p * csa` for
    // `i < m`, `p < k`, and `b` likewise, and writes `c` at `i * n + j`.
    // - `a` and `b` are `MatRef`s that address elements, so (checked by their
    //   constructors, see `MatRef`) their strides fit `isize` and the offset
    //   of their last element is in bounds; every other offset is smaller.
    // - `c` holds exactly m·n elements (checked above without overflow), so
    //   its row stride `n <= c.len()` fits `isize` (a slice spans at most
    //   `isize::MAX` bytes) and its last offset `m·n - 1` is in bounds.
    // - `c` is a `&mut` slice, so it aliases neither `a` nor `b`.
    // - m, k and n are at most `isize::MAX` (checked above), so the GEMM's own
    //   index arithmetic on them cannot overflow `isize`.
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
///
/// # Panics
/// If the slices do not have those sizes, or `m·n` does not fit in `usize`.
#[track_caller]
pub fn matmul<T: Float>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    // The views check the operands before the result is allocated.
    let (va, vb) = (MatRef::row_major(a, m, k), MatRef::row_major(b, k, n));
    let Some(len) = m.checked_mul(n) else {
        panic!("matmul: a {m}x{n} result has more than usize::MAX elements");
    };
    let mut c = vec![T::zero(); len];
    gemm(T::one(), va, vb, T::zero(), &mut c);
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
