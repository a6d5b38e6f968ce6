//! Reductions: full sums and extrema, sums along one axis, and the sum of a
//! broadcast result back onto an operand's shape.

use super::elementwise::{zip_assign, Broadcast};
use crate::float::Float;

/// Independent accumulators: a float sum cannot be reordered by the compiler,
/// so eight lanes are kept explicitly; it then vectorizes, and pairwise-style
/// summation also loses less precision than one running total.
const LANES: usize = 8;

/// The sum of the elements (0 for none).
#[inline]
pub fn sum<T: Float>(x: &[T]) -> T {
    fold_lanes(x, T::zero(), |acc, v| acc + v, |p, q| p + q)
}

/// The sum of the squares of the elements.
#[inline]
pub fn sum_sq<T: Float>(x: &[T]) -> T {
    fold_lanes(x, T::zero(), |acc, v| acc + v * v, |p, q| p + q)
}

/// The largest element; `-inf` for none. NaNs are skipped, as `f64::max` does.
#[inline]
pub fn max<T: Float>(x: &[T]) -> T {
    fold_lanes(x, T::neg_infinity(), greater, greater)
}

/// The smallest element; `+inf` for none. NaNs are skipped, as `f64::min` does.
#[inline]
pub fn min<T: Float>(x: &[T]) -> T {
    fold_lanes(x, T::infinity(), lesser, lesser)
}

/// The inner product of two slices of equal length.
#[inline]
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    assert!(
        a.len() == b.len(),
        "dot: lengths {} and {} differ",
        a.len(),
        b.len()
    );
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += xa[i] * xb[i];
        }
    }
    let tail = ra.iter().zip(rb).fold(T::zero(), |s, (&x, &y)| s + x * y);
    combine(acc, |p, q| p + q) + tail
}

/// Folds `x` with `step` in [`LANES`] interleaved accumulators, then merges
/// the lanes and the tail with `merge`.
#[inline(always)]
fn fold_lanes<T: Float>(
    x: &[T],
    init: T,
    step: impl Fn(T, T) -> T,
    merge: impl Fn(T, T) -> T,
) -> T {
    let mut acc = [init; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = step(acc[i], c[i]);
        }
    }
    let tail = rest.iter().fold(init, |a, &v| step(a, v));
    merge(combine(acc, &merge), tail)
}

#[inline(always)]
fn combine<T: Float>(acc: [T; LANES], f: impl Fn(T, T) -> T) -> T {
    let a = [
        f(acc[0], acc[4]),
        f(acc[1], acc[5]),
        f(acc[2], acc[6]),
        f(acc[3], acc[7]),
    ];
    f(f(a[0], a[2]), f(a[1], a[3]))
}

/// The larger of two values; `acc` stays when `v` is NaN.
#[inline(always)]
fn greater<T: Float>(acc: T, v: T) -> T {
    if v > acc {
        v
    } else {
        acc
    }
}

/// The smaller of two values; `acc` stays when `v` is NaN.
#[inline(always)]
fn lesser<T: Float>(acc: T, v: T) -> T {
    if v < acc {
        v
    } else {
        acc
    }
}

/// Sums a row-major tensor of shape `[outer, n, inner]` over its middle axis,
/// giving `[outer, inner]`.
///
/// # Panics
/// If `x` does not hold `outer * n * inner` elements, or the result would
/// hold more than `usize::MAX`.
#[track_caller]
pub fn sum_axis<T: Float>(x: &[T], outer: usize, n: usize, inner: usize) -> Vec<T> {
    let out_len = axis_lengths("sum_axis", x, outer, n, inner);
    if x.is_empty() {
        // Some extent is 0, so `n * inner` below might not fit.
        return vec![T::zero(); out_len];
    }
    if inner == 1 {
        return x.chunks_exact(n).map(sum).collect();
    }
    let mut out = vec![T::zero(); out_len];
    for (o, block) in out.chunks_exact_mut(inner).zip(x.chunks_exact(n * inner)) {
        for row in block.chunks_exact(inner) {
            zip_assign(o, row, |s, v| s + v);
        }
    }
    out
}

/// Checks that `x` has the shape `[outer, n, inner]`, and gives the length of
/// the result `[outer, inner]`. Once per call: the kernels are public, so a
/// wrong length must not wrap around into a plausible one.
#[track_caller]
fn axis_lengths<T>(op: &str, x: &[T], outer: usize, n: usize, inner: usize) -> usize {
    let fits = crate::shape::count(&[outer, n, inner]) == Some(x.len());
    let out_len = crate::shape::count(&[outer, inner]);
    match out_len {
        Some(len) if fits => len,
        _ => panic!(
            "{op}: [{outer}, {n}, {inner}] does not describe {} elements",
            x.len()
        ),
    }
}

/// The largest element over the middle axis of `[outer, n, inner]`, giving
/// `[outer, inner]` (`-inf` where `n` is 0).
#[track_caller]
pub fn max_axis<T: Float>(x: &[T], outer: usize, n: usize, inner: usize) -> Vec<T> {
    extremum_axis(x, outer, n, inner, T::neg_infinity(), greater)
}

/// The smallest element over the middle axis of `[outer, n, inner]`, giving
/// `[outer, inner]` (`+inf` where `n` is 0).
#[track_caller]
pub fn min_axis<T: Float>(x: &[T], outer: usize, n: usize, inner: usize) -> Vec<T> {
    extremum_axis(x, outer, n, inner, T::infinity(), lesser)
}

#[track_caller]
fn extremum_axis<T: Float>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    init: T,
    f: impl Fn(T, T) -> T + Copy,
) -> Vec<T> {
    let out_len = axis_lengths("max_axis/min_axis", x, outer, n, inner);
    let mut out = vec![init; out_len];
    if x.is_empty() {
        return out;
    }
    for (o, block) in out.chunks_exact_mut(inner).zip(x.chunks_exact(n * inner)) {
        for row in block.chunks_exact(inner) {
            zip_assign(o, row, f);
        }
    }
    out
}

/// The pullback of [`max_axis`] and [`min_axis`] over the middle axis of
/// `[outer, n, inner]`: each element of `g` (of shape `[outer, inner]`) is
/// split evenly among the elements of its line of `x` that equal the
/// extremum `y` there, and the other elements get 0 (PyTorch's `amax`/`amin`
/// rule, and that of the full `max`/`min`). A line with no such element (all
/// NaN) gets 0 everywhere.
///
/// # Panics
/// If `x` does not hold `outer * n * inner` elements, or `y` or `g` not
/// `outer * inner`.
#[track_caller]
pub fn extremum_axis_grad<T: Float>(
    x: &[T],
    y: &[T],
    g: &[T],
    outer: usize,
    n: usize,
    inner: usize,
) -> Vec<T> {
    let out_len = axis_lengths("extremum_axis_grad", x, outer, n, inner);
    assert!(
        y.len() == out_len && g.len() == out_len,
        "extremum_axis_grad: the extremum has {} and the gradient {} elements, not {out_len}",
        y.len(),
        g.len()
    );
    if x.is_empty() {
        return Vec::new();
    }
    // Count the ties of each line, then give each tied element its share.
    let mut share = vec![T::zero(); out_len];
    for ((s, yb), block) in share
        .chunks_exact_mut(inner)
        .zip(y.chunks_exact(inner))
        .zip(x.chunks_exact(n * inner))
    {
        for row in block.chunks_exact(inner) {
            for ((c, &m), &v) in s.iter_mut().zip(yb).zip(row) {
                if v == m {
                    *c += T::one();
                }
            }
        }
    }
    for (c, &gv) in share.iter_mut().zip(g) {
        // A line without ties keeps 0: no element takes its share.
        *c = if *c > T::zero() { gv / *c } else { T::zero() };
    }
    let mut out = Vec::with_capacity(x.len());
    for ((sb, yb), block) in share
        .chunks_exact(inner)
        .zip(y.chunks_exact(inner))
        .zip(x.chunks_exact(n * inner))
    {
        for row in block.chunks_exact(inner) {
            out.extend(
                row.iter()
                    .zip(yb)
                    .zip(sb)
                    .map(|((&v, &m), &c)| if v == m { c } else { T::zero() }),
            );
        }
    }
    out
}

/// Sums `x` (of shape `shape`) onto `target`, a shape that broadcasts to
/// `shape`: every dimension where `target` has extent 1 (or is missing) is
/// summed over. This is the adjoint of broadcasting `target` to `shape`.
///
/// # Panics
/// If `target` does not broadcast to `shape`, or `x` does not have `shape`.
#[track_caller]
pub fn sum_to_shape<T: Float>(x: &[T], shape: &[usize], target: &[usize]) -> Vec<T> {
    // The plan checks that `target` broadcasts to `shape`, so with `shape`'s
    // product (its `numel`) fitting, so does `target`'s unless `shape` has a
    // zero extent; `count` covers that case.
    let plan = Broadcast::new(target, shape, shape);
    let n_out = crate::shape::count(target);
    let n_out = match n_out {
        Some(n) if plan.numel() == x.len() => n,
        _ => panic!(
            "sum_to_shape: {} elements of shape {shape:?} onto shape {target:?}",
            x.len()
        ),
    };
    if n_out == 1 {
        return vec![sum(x)];
    }
    let mut out = vec![T::zero(); n_out];
    plan.for_each_run(|r| {
        let src = &x[r.b..r.b + r.len];
        if r.a_step == 1 {
            zip_assign(&mut out[r.a..r.a + r.len], src, |s, v| s + v);
        } else {
            out[r.a] += sum(src);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reductions_match_naive_loops() {
        for n in [0usize, 1, 7, 8, 9, 100] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            assert_eq!(sum(&x), x.iter().sum::<f64>());
            assert_eq!(sum_sq(&x), x.iter().map(|v| v * v).sum::<f64>());
            assert_eq!(max(&x), x.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
            assert_eq!(min(&x), x.iter().cloned().fold(f64::INFINITY, f64::min));
            let y: Vec<f64> = x.iter().map(|v| v * 0.5 + 1.0).collect();
            assert_eq!(
                dot(&x, &y),
                x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()
            );
        }
        let x = [1.0f32, f32::NAN, 3.0];
        assert_eq!(max(&x), 3.0);
        assert_eq!(min(&x), 1.0);
    }

    #[test]
    fn axis_reductions_match_naive_loops() {
        for &(o, n, i) in &[
            (2, 3, 4),
            (1, 5, 1),
            (3, 1, 2),
            (4, 6, 1),
            (2, 0, 3),
            (2, 0, 1),
        ] {
            let x: Vec<f64> = (0..o * n * i).map(|v| ((v * 7) % 5) as f64).collect();
            let mut s = vec![0.0; o * i];
            let mut m = vec![f64::NEG_INFINITY; o * i];
            for a in 0..o {
                for b in 0..n {
                    for c in 0..i {
                        s[a * i + c] += x[(a * n + b) * i + c];
                        m[a * i + c] = m[a * i + c].max(x[(a * n + b) * i + c]);
                    }
                }
            }
            assert_eq!(sum_axis(&x, o, n, i), s, "{o} {n} {i}");
            assert_eq!(max_axis(&x, o, n, i), m, "{o} {n} {i}");
        }
    }

    #[test]
    fn extremum_axis_grad_splits_ties_evenly_along_the_axis() {
        // [2, 3, 2] over the middle axis: line (0, 0) has a triple tie, (0, 1) a
        // double one, (1, 0) one maximum, (1, 1) a NaN beside its maximum.
        let x = [
            4.0,
            1.0,
            4.0,
            2.0,
            4.0,
            2.0, //
            0.0,
            f64::NAN,
            7.0,
            3.0,
            -1.0,
            1.0,
        ];
        let y = max_axis(&x, 2, 3, 2);
        assert_eq!(y, [4.0, 2.0, 7.0, 3.0]);
        let g = [3.0, -1.0, 2.0, 0.5];
        let d = extremum_axis_grad(&x, &y, &g, 2, 3, 2);
        assert_eq!(
            d,
            [1.0, 0.0, 1.0, -0.5, 1.0, -0.5, 0.0, 0.0, 2.0, 0.5, 0.0, 0.0]
        );
        let y = min_axis(&x, 2, 3, 2);
        assert_eq!(y, [4.0, 1.0, -1.0, 1.0]);
        let d = extremum_axis_grad(&x, &y, &g, 2, 3, 2);
        assert_eq!(
            d,
            [1.0, -1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.5]
        );
        // A line of NaNs: max_axis gives -inf, which no element equals.
        let x = [f64::NAN, f64::NAN];
        let y = max_axis(&x, 1, 2, 1);
        assert_eq!(extremum_axis_grad(&x, &y, &[1.0], 1, 2, 1), [0.0, 0.0]);
        // Empty lines.
        assert!(
            extremum_axis_grad::<f32>(&[], &[f32::NEG_INFINITY; 3], &[1.0; 3], 3, 0, 1).is_empty()
        );
    }

    #[test]
    #[should_panic(expected = "extremum_axis_grad")]
    fn extremum_axis_grad_checks_lengths() {
        let _ = extremum_axis_grad(&[1.0, 2.0], &[2.0], &[1.0, 1.0], 1, 2, 1);
    }

    #[test]
    fn sums_a_broadcast_back_to_each_operand_shape() {
        let x: Vec<f64> = (0..24).map(|v| v as f64).collect();
        let shape = [2, 3, 4];
        let naive = |target: &[usize]| {
            let pad = 3 - target.len();
            let mut out = vec![0.0; target.iter().product()];
            for (flat, &v) in x.iter().enumerate() {
                let c = [flat / 12, (flat / 4) % 3, flat % 4];
                let mut off = 0;
                for d in 0..target.len() {
                    off = off * target[d] + if target[d] == 1 { 0 } else { c[pad + d] };
                }
                out[off] += v;
            }
            out
        };
        for t in [
            &[2, 3, 4][..],
            &[4],
            &[3, 1],
            &[2, 1, 4],
            &[1, 3, 1],
            &[],
            &[1],
            &[2, 1, 1],
        ] {
            assert_eq!(sum_to_shape(&x, &shape, t), naive(t), "{t:?}");
        }
    }
}
