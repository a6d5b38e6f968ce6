//! Elementwise kernels: maps, zips, and NumPy broadcasting between two operands.
//!
//! Broadcasting is planned once per call ([`Broadcast`]): dimensions of extent 1
//! are dropped and neighbouring dimensions that both operands traverse the same
//! way are merged. What remains is a loop over *runs*: stretches of the result
//! along which each operand is either contiguous or a single repeated element.
//! Equal shapes become one contiguous run, a scalar operand one repeated run,
//! `[m, n] + [n]` m contiguous runs, `[m, n] + [m, 1]` m runs with a repeated
//! right operand; every other pair takes the same path with more runs.

use crate::shape::MAX_DIMS;

/// How two operands map onto their broadcast result, run by run.
///
/// Both operands must broadcast to `out` (the caller checks this, e.g. with
/// [`broadcast_shapes`](crate::broadcast_shapes)).
#[derive(Clone, Debug)]
pub struct Broadcast {
    /// Extents of the merged dimensions, outermost first; never empty.
    dims: [usize; MAX_DIMS],
    /// Element strides of `a` and `b` per merged dimension (0: broadcast).
    sa: [usize; MAX_DIMS],
    sb: [usize; MAX_DIMS],
    ndim: usize,
    numel: usize,
}

/// One run of a broadcast: `len` result elements starting at `out`; operand
/// `a` starts at element `a` and advances by `a_step` (0 or 1), `b` likewise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The offset of the run's first result element.
    pub out: usize,
    /// The offset of `a`'s first element.
    pub a: usize,
    /// The offset of `b`'s first element.
    pub b: usize,
    /// The number of elements in the run.
    pub len: usize,
    /// 1 if `a` is contiguous along the run, 0 if one element repeats.
    pub a_step: usize,
    /// 1 if `b` is contiguous along the run, 0 if one element repeats.
    pub b_step: usize,
}

/// Contiguous strides of `shape` aligned to the right of an `n`-dimensional
/// result, with 0 for the dimensions that are broadcast (padded or extent 1);
/// `None` if `shape` does not broadcast to `out`. For a nonempty `out` every
/// stride is at most its element count, so none can overflow.
#[inline]
fn aligned_strides(shape: &[usize], out: &[usize]) -> Option<[usize; MAX_DIMS]> {
    let pad = out.len().checked_sub(shape.len())?;
    let mut strides = [0; MAX_DIMS];
    let mut stride = 1;
    for d in (0..shape.len()).rev() {
        let n = shape[d];
        if n == 1 {
            continue;
        }
        if n != out[pad + d] {
            return None;
        }
        strides[pad + d] = stride;
        stride *= n;
    }
    Some(strides)
}

/// Whether `shape` broadcasts to `out`: each aligned extent equal or 1.
fn broadcasts(shape: &[usize], out: &[usize]) -> bool {
    out.len().checked_sub(shape.len()).is_some_and(|pad| {
        shape
            .iter()
            .zip(&out[pad..])
            .all(|(&d, &o)| d == o || d == 1)
    })
}

#[cold]
#[inline(never)]
#[track_caller]
fn bad_plan(a_shape: &[usize], b_shape: &[usize], out: &[usize]) -> ! {
    panic!(
        "Broadcast: shapes {a_shape:?} and {b_shape:?} do not both broadcast to {out:?} \
         (of at most {MAX_DIMS} dimensions and usize::MAX elements)"
    )
}

impl Broadcast {
    /// Plans `a` (of shape `a_shape`) and `b` onto the result shape `out`.
    ///
    /// # Panics
    /// If an operand does not broadcast to `out`, or `out` has more than
    /// [`MAX_DIMS`] dimensions or more than `usize::MAX` elements. The check
    /// costs a comparison per dimension, once per plan.
    #[track_caller]
    pub fn new(a_shape: &[usize], b_shape: &[usize], out: &[usize]) -> Self {
        let numel = match crate::shape::count(out) {
            Some(n) if out.len() <= MAX_DIMS => n,
            _ => bad_plan(a_shape, b_shape, out),
        };
        let mut plan = Broadcast {
            dims: [0; MAX_DIMS],
            sa: [0; MAX_DIMS],
            sb: [0; MAX_DIMS],
            ndim: 1,
            numel,
        };
        if numel == 0 {
            // No runs. The strides are not computed: with a zero extent the
            // other extents may multiply past `usize::MAX`.
            if !(broadcasts(a_shape, out) && broadcasts(b_shape, out)) {
                bad_plan(a_shape, b_shape, out);
            }
            return plan;
        }
        plan.ndim = 0;
        let (Some(sa_full), Some(sb_full)) =
            (aligned_strides(a_shape, out), aligned_strides(b_shape, out))
        else {
            bad_plan(a_shape, b_shape, out)
        };
        for d in 0..out.len() {
            let (n, sa, sb) = (out[d], sa_full[d], sb_full[d]);
            if n == 1 {
                continue;
            }
            if plan.ndim > 0 {
                let last = plan.ndim - 1;
                // Merge with the previous dimension when both operands step
                // across the boundary exactly as within the dimension.
                if plan.sa[last] == sa * n && plan.sb[last] == sb * n {
                    plan.dims[last] *= n;
                    plan.sa[last] = sa;
                    plan.sb[last] = sb;
                    continue;
                }
            }
            plan.dims[plan.ndim] = n;
            plan.sa[plan.ndim] = sa;
            plan.sb[plan.ndim] = sb;
            plan.ndim += 1;
        }
        if plan.ndim == 0 {
            // A one-element result.
            plan.dims[0] = 1;
            plan.ndim = 1;
        }
        plan
    }

    /// The number of elements of the result.
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Calls `f` on every run, in the result's row-major order.
    #[inline]
    pub fn for_each_run(&self, mut f: impl FnMut(Run)) {
        if self.numel == 0 {
            return;
        }
        let inner = self.ndim - 1;
        let len = self.dims[inner];
        let (a_step, b_step) = (self.sa[inner], self.sb[inner]);
        debug_assert!(a_step <= 1 && b_step <= 1);
        let mut idx = [0usize; MAX_DIMS];
        let (mut a, mut b, mut out) = (0, 0, 0);
        loop {
            f(Run {
                out,
                a,
                b,
                len,
                a_step,
                b_step,
            });
            out += len;
            // Advance the outer multi-index, carrying into outer dimensions.
            let mut d = inner;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                a += self.sa[d];
                b += self.sb[d];
                if idx[d] < self.dims[d] {
                    break;
                }
                a -= self.sa[d] * self.dims[d];
                b -= self.sb[d] * self.dims[d];
                idx[d] = 0;
            }
        }
    }
}

/// `f` applied to every element, collected into a new `Vec`.
#[inline]
pub fn map<T: Copy>(x: &[T], f: impl Fn(T) -> T) -> Vec<T> {
    x.iter().map(|&v| f(v)).collect()
}

/// `x[i] = f(x[i])` for every element.
#[inline]
pub fn map_inplace<T: Copy>(x: &mut [T], f: impl Fn(T) -> T) {
    for v in x {
        *v = f(*v);
    }
}

/// `out[i] = f(a[i], b[i])` into a new `Vec`, for slices of equal length.
///
/// # Panics
/// If the lengths differ.
#[inline]
#[track_caller]
pub fn zip<T: Copy>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> Vec<T> {
    assert!(
        a.len() == b.len(),
        "zip: lengths {} and {} differ",
        a.len(),
        b.len()
    );
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

/// `a[i] = f(a[i], b[i])`, for slices of equal length.
///
/// # Panics
/// If the lengths differ.
#[inline]
#[track_caller]
pub fn zip_assign<T: Copy>(a: &mut [T], b: &[T], f: impl Fn(T, T) -> T) {
    assert!(
        a.len() == b.len(),
        "zip_assign: lengths {} and {} differ",
        a.len(),
        b.len()
    );
    for (x, &y) in a.iter_mut().zip(b) {
        *x = f(*x, y);
    }
}

/// `f(a, b)` elementwise with NumPy broadcasting into a new `Vec` of the
/// result shape `out`. Allocates once and writes every element once.
pub fn broadcast_zip<T: Copy>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &[usize],
    f: impl Fn(T, T) -> T + Copy,
) -> Vec<T> {
    if a_shape == b_shape {
        return zip(a, b, f);
    }
    let plan = Broadcast::new(a_shape, b_shape, out);
    let mut res = Vec::with_capacity(plan.numel());
    plan.for_each_run(|r| match (r.a_step, r.b_step) {
        (1, 1) => res.extend(
            a[r.a..r.a + r.len]
                .iter()
                .zip(&b[r.b..r.b + r.len])
                .map(|(&x, &y)| f(x, y)),
        ),
        (1, _) => {
            let y = b[r.b];
            res.extend(a[r.a..r.a + r.len].iter().map(|&x| f(x, y)));
        }
        (_, 1) => {
            let x = a[r.a];
            res.extend(b[r.b..r.b + r.len].iter().map(|&y| f(x, y)));
        }
        _ => res.extend(std::iter::repeat(f(a[r.a], b[r.b])).take(r.len)),
    });
    debug_assert_eq!(res.len(), plan.numel());
    res
}

/// `dst[i] = f(dst[i], src[..])` where `dst` already has the result shape
/// `dst_shape` and `src` broadcasts onto it. Writes in place, allocates nothing.
pub fn broadcast_assign<T: Copy>(
    dst: &mut [T],
    dst_shape: &[usize],
    src: &[T],
    src_shape: &[usize],
    f: impl Fn(T, T) -> T + Copy,
) {
    if dst_shape == src_shape {
        return zip_assign(dst, src, f);
    }
    let plan = Broadcast::new(dst_shape, src_shape, dst_shape);
    plan.for_each_run(|r| {
        let d = &mut dst[r.out..r.out + r.len];
        if r.b_step == 1 {
            zip_assign(d, &src[r.b..r.b + r.len], f);
        } else {
            let y = src[r.b];
            map_inplace(d, |x| f(x, y));
        }
    });
}

/// `x` repeated to the shape `out` it broadcasts to.
pub fn broadcast_to<T: Copy>(x: &[T], shape: &[usize], out: &[usize]) -> Vec<T> {
    let plan = Broadcast::new(shape, out, out);
    let mut res = Vec::with_capacity(plan.numel());
    plan.for_each_run(|r| {
        if r.a_step == 1 {
            res.extend_from_slice(&x[r.a..r.a + r.len]);
        } else {
            res.extend(std::iter::repeat(x[r.a]).take(r.len));
        }
    });
    res
}

/// The transpose of the row-major `rows`×`cols` matrix `x`, row-major.
///
/// # Panics
/// If `x` does not hold `rows * cols` elements.
#[track_caller]
pub fn transpose<T: Copy + Default>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    assert!(
        rows.checked_mul(cols) == Some(x.len()),
        "transpose: {rows}x{cols} does not have {} elements",
        x.len()
    );
    if x.is_empty() {
        // One extent is 0, and the other may be huge: do not loop over it.
        return Vec::new();
    }
    // Tiles keep both the reads and the writes within a few cache lines.
    const TILE: usize = 32;
    let mut out = vec![T::default(); x.len()];
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                let row = &x[i * cols..(i + 1) * cols];
                for j in j0..(j0 + TILE).min(cols) {
                    out[j * rows + i] = row[j];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broadcast result by explicit index arithmetic.
    fn naive(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize], out: &[usize]) -> Vec<f64> {
        let n: usize = out.iter().product();
        let at = |x: &[f64], s: &[usize], flat: usize| {
            let mut rem = flat;
            let mut coords = vec![0; out.len()];
            for d in (0..out.len()).rev() {
                coords[d] = rem % out[d];
                rem /= out[d];
            }
            let pad = out.len() - s.len();
            let mut off = 0;
            for d in 0..s.len() {
                let c = if s[d] == 1 { 0 } else { coords[pad + d] };
                off = off * s[d] + c;
            }
            x[off]
        };
        (0..n).map(|i| at(a, sa, i) * 10.0 + at(b, sb, i)).collect()
    }

    fn check(sa: &[usize], sb: &[usize], out: &[usize]) {
        let a: Vec<f64> = (0..sa.iter().product::<usize>())
            .map(|i| i as f64)
            .collect();
        let b: Vec<f64> = (0..sb.iter().product::<usize>())
            .map(|i| i as f64 + 0.5)
            .collect();
        let want = naive(&a, sa, &b, sb, out);
        assert_eq!(
            broadcast_zip(&a, sa, &b, sb, out, |x, y| x * 10.0 + y),
            want,
            "{sa:?} {sb:?}"
        );
        if sa == out {
            let mut d = a.clone();
            broadcast_assign(&mut d, sa, &b, sb, |x, y| x * 10.0 + y);
            assert_eq!(d, want, "assign {sa:?} {sb:?}");
        }
    }

    #[test]
    fn every_pair_kind_matches_index_arithmetic() {
        check(&[2, 3], &[2, 3], &[2, 3]);
        check(&[2, 3], &[3], &[2, 3]);
        check(&[2, 3], &[2, 1], &[2, 3]);
        check(&[1, 3], &[4, 1], &[4, 3]);
        check(&[4, 1], &[1, 3], &[4, 3]);
        check(&[2, 3], &[], &[2, 3]);
        check(&[], &[2, 3], &[2, 3]);
        check(&[], &[], &[]);
        check(&[2, 3, 4], &[3, 1], &[2, 3, 4]);
        check(&[2, 1, 4], &[3, 1], &[2, 3, 4]);
        check(&[2, 3, 4], &[2, 1, 4], &[2, 3, 4]);
        check(&[1, 1, 4], &[2, 3, 1], &[2, 3, 4]);
        check(&[0, 3], &[3], &[0, 3]);
    }

    #[test]
    fn plans_collapse_common_cases_to_few_runs() {
        let runs = |a: &[usize], b: &[usize], o: &[usize]| {
            let mut v = Vec::new();
            Broadcast::new(a, b, o).for_each_run(|r| v.push(r));
            v
        };
        assert_eq!(runs(&[4, 5], &[4, 5], &[4, 5]).len(), 1);
        assert_eq!(runs(&[4, 5], &[], &[4, 5]).len(), 1);
        assert_eq!(runs(&[4, 5], &[1, 1], &[4, 5]).len(), 1);
        let row = runs(&[4, 5], &[5], &[4, 5]);
        assert_eq!(row.len(), 4);
        assert!(row
            .iter()
            .all(|r| r.len == 5 && r.a_step == 1 && r.b_step == 1 && r.b == 0));
        let col = runs(&[4, 5], &[4, 1], &[4, 5]);
        assert!(col
            .iter()
            .enumerate()
            .all(|(i, r)| r.b == i && r.b_step == 0));
    }

    #[test]
    fn transposes_by_tiles() {
        for &(r, c) in &[(1, 1), (3, 5), (33, 70), (64, 1)] {
            let x: Vec<f64> = (0..r * c).map(|i| i as f64).collect();
            let t = transpose(&x, r, c);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(t[j * r + i], x[i * c + j]);
                }
            }
        }
    }
}
