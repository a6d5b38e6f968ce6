//! Kernels that the static path of `#[differentiable]` emits calls to, beside the
//! fused kernels of [`fused`].
//!
//! The macro knows which values are tensors but not their shapes, so the emitted
//! code leans on these kernels for everything shape-dependent:
//!
//! - [`ew1`] .. [`ew4`]: one fused elementwise chain over tensors that may
//!   broadcast against each other. A leaf passed by value ([`Leaf::Owned`]) whose
//!   shape is the result's lends its buffer to the result: the chain then
//!   allocates nothing (an adjoint accumulated in place, `tanh`'s `dy (1 - y²)`
//!   written over `dy`).
//! - [`sum1`] .. [`sum3`] and [`sum_to1`] .. [`sum_to3`]: a chain reduced to one
//!   value or summed back onto an operand's shape (a broadcast operand's
//!   gradient) in one pass.
//! - [`reduce_to`] and [`reduce_to_ref`]: `sum_to_shape` that costs nothing when
//!   the shapes are equal (a move, or a borrow).
//! - [`matmul_grad_lhs`], [`matmul_grad_rhs`] and their accumulating forms: the
//!   pullbacks of `matmul` in its three shape cases, on the GEMM.
//! - [`expand_axis`], [`extremum_axis_grad`], [`reshape_to`], [`full`],
//!   [`zeros`]: the pullbacks of `sum_axis`, `max_axis`/`min_axis`, `reshape`
//!   and the full reductions.
//!
//! Every kernel panics with a [`ShapeError`](crate::ShapeError) message on
//! shapes that do not fit, like the tensor operations do.

use super::elementwise::broadcast_assign;
use super::fused;
use crate::float::Float;
use crate::ops::expect;
use crate::shape::{broadcast_shapes, check_alloc, Shape};
use crate::tensor::Tensor;

/// A tensor operand of a fused chain: owned (its buffer may be reused for the
/// result) or borrowed.
pub enum Leaf<'a, T> {
    /// A tensor the chain consumes.
    Owned(Tensor<T>),
    /// A tensor the chain only reads.
    Ref(&'a Tensor<T>),
}

impl<T> From<Tensor<T>> for Leaf<'_, T> {
    fn from(t: Tensor<T>) -> Self {
        Leaf::Owned(t)
    }
}

impl<'a, T> From<&'a Tensor<T>> for Leaf<'a, T> {
    fn from(t: &'a Tensor<T>) -> Self {
        Leaf::Ref(t)
    }
}

impl<'a, T> From<&'a &'a Tensor<T>> for Leaf<'a, T> {
    fn from(t: &'a &'a Tensor<T>) -> Self {
        Leaf::Ref(t)
    }
}

impl<T: Float> Leaf<'_, T> {
    fn get(&self) -> &Tensor<T> {
        match self {
            Leaf::Owned(t) => t,
            Leaf::Ref(t) => t,
        }
    }

    /// The leaf with exactly `shape`: itself, or repeated along broadcast axes.
    #[track_caller]
    fn broadcast(self, shape: &Shape) -> Self {
        if self.get().shape == *shape {
            self
        } else {
            Leaf::Owned(self.get().broadcast_to(shape.dims()))
        }
    }

    /// Whether this leaf can give its buffer to a result of `shape`.
    fn lends(&self, shape: &Shape) -> bool {
        matches!(self, Leaf::Owned(t) if t.shape == *shape)
    }

    fn take(self) -> Tensor<T> {
        match self {
            Leaf::Owned(t) => t,
            Leaf::Ref(t) => t.clone(),
        }
    }
}

/// The shape that all `shapes` broadcast to.
#[track_caller]
fn out_shape(shapes: &[&Shape]) -> Shape {
    let mut out = *shapes[0];
    for s in &shapes[1..] {
        if **s != out {
            out = expect(broadcast_shapes("elementwise", out.dims(), s.dims()));
        }
    }
    out
}

/// `f(a)` elementwise; in `a`'s buffer when it is owned.
#[track_caller]
pub fn ew1<'a, T: Float>(a: impl Into<Leaf<'a, T>>, f: impl Fn(T) -> T) -> Tensor<T> {
    match a.into() {
        Leaf::Owned(t) => fused::map1_inplace(t, f),
        Leaf::Ref(t) => fused::map1(t, f),
    }
}

/// `f(a, b)` elementwise with broadcasting; in the buffer of an owned operand
/// that has the result's shape, else in one new allocation.
#[track_caller]
pub fn ew2<'a, 'b, T: Float>(
    a: impl Into<Leaf<'a, T>>,
    b: impl Into<Leaf<'b, T>>,
    f: impl Fn(T, T) -> T + Copy,
) -> Tensor<T> {
    let (a, b) = (a.into(), b.into());
    let out = out_shape(&[&a.get().shape, &b.get().shape]);
    // A leaf that keeps its shape while the other broadcasts onto it.
    if a.lends(&out) {
        let mut t = a.take();
        let b = b.get();
        broadcast_assign(&mut t.data, out.dims(), &b.data, b.shape(), f);
        return t;
    }
    if b.lends(&out) {
        let mut t = b.take();
        let a = a.get();
        broadcast_assign(&mut t.data, out.dims(), &a.data, a.shape(), |y, x| f(x, y));
        return t;
    }
    let (a, b) = (a.broadcast(&out), b.broadcast(&out));
    fused::map2(a.get(), b.get(), f)
}

/// `f(a, b, c)` elementwise with broadcasting; in the buffer of an owned
/// operand that has the result's shape, else in one new allocation.
#[track_caller]
pub fn ew3<'a, 'b, 'c, T: Float>(
    a: impl Into<Leaf<'a, T>>,
    b: impl Into<Leaf<'b, T>>,
    c: impl Into<Leaf<'c, T>>,
    f: impl Fn(T, T, T) -> T,
) -> Tensor<T> {
    let (a, b, c) = (a.into(), b.into(), c.into());
    let out = out_shape(&[&a.get().shape, &b.get().shape, &c.get().shape]);
    // An operand's own buffer first, else a broadcast copy's.
    let own = [a.lends(&out), b.lends(&out), c.lends(&out)];
    let (a, b, c) = (a.broadcast(&out), b.broadcast(&out), c.broadcast(&out));
    let any = [a.lends(&out), b.lends(&out), c.lends(&out)];
    let pick = own.iter().position(|&o| o).or(any.iter().position(|&o| o));
    if pick == Some(0) {
        fused::map3_inplace(a.take(), b.get(), c.get(), f)
    } else if pick == Some(1) {
        fused::map3_inplace(b.take(), a.get(), c.get(), |y, x, z| f(x, y, z))
    } else if pick == Some(2) {
        fused::map3_inplace(c.take(), a.get(), b.get(), |z, x, y| f(x, y, z))
    } else {
        fused::map3(a.get(), b.get(), c.get(), f)
    }
}

/// `f(a, b, c, d)` elementwise with broadcasting; in the buffer of an owned
/// operand that has the result's shape, else in one new allocation.
#[track_caller]
pub fn ew4<'a, 'b, 'c, 'd, T: Float>(
    a: impl Into<Leaf<'a, T>>,
    b: impl Into<Leaf<'b, T>>,
    c: impl Into<Leaf<'c, T>>,
    d: impl Into<Leaf<'d, T>>,
    f: impl Fn(T, T, T, T) -> T,
) -> Tensor<T> {
    let (a, b, c, d) = (a.into(), b.into(), c.into(), d.into());
    let out = out_shape(&[
        &a.get().shape,
        &b.get().shape,
        &c.get().shape,
        &d.get().shape,
    ]);
    let own = [a.lends(&out), b.lends(&out), c.lends(&out), d.lends(&out)];
    let (a, b) = (a.broadcast(&out), b.broadcast(&out));
    let (c, d) = (c.broadcast(&out), d.broadcast(&out));
    let any = [a.lends(&out), b.lends(&out), c.lends(&out), d.lends(&out)];
    let pick = own.iter().position(|&o| o).or(any.iter().position(|&o| o));
    if pick == Some(0) {
        fused::map4_inplace(a.take(), b.get(), c.get(), d.get(), f)
    } else if pick == Some(1) {
        fused::map4_inplace(b.take(), a.get(), c.get(), d.get(), |y, x, z, w| {
            f(x, y, z, w)
        })
    } else if pick == Some(2) {
        fused::map4_inplace(c.take(), a.get(), b.get(), d.get(), |z, x, y, w| {
            f(x, y, z, w)
        })
    } else if pick == Some(3) {
        fused::map4_inplace(d.take(), a.get(), b.get(), c.get(), |w, x, y, z| {
            f(x, y, z, w)
        })
    } else {
        fused::map4(a.get(), b.get(), c.get(), d.get(), f)
    }
}

/// `Σ f(a)` over the elements, in one pass.
#[track_caller]
pub fn sum1<T: Float>(a: &Tensor<T>, f: impl Fn(T) -> T) -> T {
    fused::sum1(a, f)
}

/// `Σ f(a, b)` over the elements of the broadcast result, in one pass when the
/// shapes are equal.
#[track_caller]
pub fn sum2<T: Float>(a: &Tensor<T>, b: &Tensor<T>, f: impl Fn(T, T) -> T) -> T {
    if a.shape == b.shape {
        return fused::sum2(a, b, f);
    }
    let out = out_shape(&[&a.shape, &b.shape]);
    let (a, b) = (Leaf::Ref(a).broadcast(&out), Leaf::Ref(b).broadcast(&out));
    fused::sum2(a.get(), b.get(), f)
}

/// `Σ f(a, b, c)` over the elements of the broadcast result.
#[track_caller]
pub fn sum3<T: Float>(a: &Tensor<T>, b: &Tensor<T>, c: &Tensor<T>, f: impl Fn(T, T, T) -> T) -> T {
    let out = out_shape(&[&a.shape, &b.shape, &c.shape]);
    let (a, b) = (Leaf::Ref(a).broadcast(&out), Leaf::Ref(b).broadcast(&out));
    let c = Leaf::Ref(c).broadcast(&out);
    fused::sum3(a.get(), b.get(), c.get(), f)
}

/// `f(a).sum_to_shape(shape)` in one pass: the gradient of an operand of
/// shape `shape` that was broadcast.
#[track_caller]
pub fn sum_to1<'a, T: Float>(
    shape: &Shape,
    a: impl Into<Leaf<'a, T>>,
    f: impl Fn(T) -> T,
) -> Tensor<T> {
    let a = a.into();
    if a.get().shape == *shape {
        return ew1(a, f);
    }
    fused::map1_sum_to(a.get(), f, shape.dims())
}

/// `f(a, b).sum_to_shape(shape)`, in one pass when `a` and `b` have one shape.
#[track_caller]
pub fn sum_to2<'a, 'b, T: Float>(
    shape: &Shape,
    a: impl Into<Leaf<'a, T>>,
    b: impl Into<Leaf<'b, T>>,
    f: impl Fn(T, T) -> T + Copy,
) -> Tensor<T> {
    let (a, b) = (a.into(), b.into());
    if a.get().shape == b.get().shape && a.get().shape != *shape {
        return fused::map2_sum_to(a.get(), b.get(), f, shape.dims());
    }
    reduce_to(ew2(a, b, f), shape)
}

/// `f(a, b, c).sum_to_shape(shape)`, in one pass when the operands have one
/// shape.
#[track_caller]
pub fn sum_to3<'a, 'b, 'c, T: Float>(
    shape: &Shape,
    a: impl Into<Leaf<'a, T>>,
    b: impl Into<Leaf<'b, T>>,
    c: impl Into<Leaf<'c, T>>,
    f: impl Fn(T, T, T) -> T + Copy,
) -> Tensor<T> {
    let (a, b, c) = (a.into(), b.into(), c.into());
    let s = a.get().shape;
    if s == b.get().shape && s == c.get().shape && s != *shape {
        return fused::map3_sum_to(a.get(), b.get(), c.get(), f, shape.dims());
    }
    reduce_to(ew3(a, b, c, f), shape)
}

/// `g.sum_to_shape(shape)`, returning `g` itself (moved, or copied if borrowed)
/// when it already has that shape.
#[track_caller]
pub fn reduce_to<'a, T: Float>(g: impl Into<Leaf<'a, T>>, shape: &Shape) -> Tensor<T> {
    let g = g.into();
    if g.get().shape == *shape {
        g.take()
    } else {
        g.get().sum_to_shape(shape.dims())
    }
}

/// `g.sum_to_shape(shape)`, or `None` when `g` already has that shape (then
/// the caller reads `g` itself, and nothing is copied).
#[track_caller]
pub fn reduce_to_ref<T: Float>(g: &Tensor<T>, shape: &Shape) -> Option<Tensor<T>> {
    (g.shape != *shape).then(|| g.sum_to_shape(shape.dims()))
}

/// The shape of a tensor, by value (it is stored inline).
#[inline]
pub fn shape_of<T>(t: &Tensor<T>) -> Shape {
    t.shape
}

/// The number of elements of `shape`, as a float.
#[inline]
pub fn numel<T: Float>(shape: &Shape) -> T {
    T::from_usize(shape.numel())
}

/// The extent of axis `axis` of `shape`, as a float.
///
/// # Panics
/// If the axis is out of range.
#[inline]
#[track_caller]
pub fn axis_len<T: Float>(shape: &Shape, axis: usize) -> T {
    T::from_usize(shape.dims()[axis])
}

/// A tensor of `shape` with every element `v` (the pullback of a full sum).
///
/// # Panics
/// If a buffer cannot hold that many elements of `T`.
#[track_caller]
pub fn full<T: Float>(shape: &Shape, v: T) -> Tensor<T> {
    expect(check_alloc::<T>("full", shape, shape.dims(), &[]));
    Tensor::from_parts(vec![v; shape.numel()], *shape)
}

/// A tensor of zeros of `shape` (the gradient of a parameter nothing depends on).
///
/// # Panics
/// As [`full`].
#[track_caller]
pub fn zeros<T: Float>(shape: &Shape) -> Tensor<T> {
    full(shape, T::zero())
}

/// An empty tensor, the placeholder for a value that a branch not taken would
/// have computed. Allocates nothing.
pub fn empty<T: Float>() -> Tensor<T> {
    Tensor::from_parts(Vec::new(), Shape::new(&[0]))
}

/// Adds `g` into the adjoint `d` of a tensor variable of a loop body (the static
/// path's statement-level reversal). `None` means no contribution yet: the first
/// one is moved in, later ones are summed onto its shape in place.
///
/// ```
/// use ad_runtime::kernels::emit_support::acc_adj;
/// use ad_runtime::Tensor;
/// let mut d = None;
/// acc_adj(&mut d, Tensor::from_vec(vec![1.0, 2.0], &[2]));
/// acc_adj(&mut d, Tensor::from_vec(vec![3.0, 4.0], &[2]));
/// assert_eq!(d.unwrap().as_slice(), &[4.0, 6.0]);
/// ```
#[inline]
#[track_caller]
pub fn acc_adj<T: Float>(d: &mut Option<Tensor<T>>, g: Tensor<T>) {
    match d {
        Some(acc) => fused::acc_sum_to(acc, &g),
        None => *d = Some(g),
    }
}

/// The gradient of a tensor parameter from its adjoint: the adjoint, or zeros of
/// the parameter's shape when nothing reached it.
#[inline]
pub fn adj_or_zeros<T: Float>(d: Option<Tensor<T>>, like: &Tensor<T>) -> Tensor<T> {
    d.unwrap_or_else(|| zeros(&like.shape))
}

/// `g` under `shape` (the pullback of `reshape`): moves the data when owned.
#[track_caller]
pub fn reshape_to<'a, T: Float>(g: impl Into<Leaf<'a, T>>, shape: &Shape) -> Tensor<T> {
    match g.into() {
        Leaf::Owned(t) => t.into_reshape(shape.dims()),
        Leaf::Ref(t) => t.reshape(shape.dims()),
    }
}

/// `g` (the gradient of `x.sum_axis(axis)` for an `x` of shape `shape`)
/// repeated along `axis`: the pullback of `sum_axis`.
///
/// # Panics
/// If `g`'s shape is not `shape` without `axis`.
#[track_caller]
pub fn expand_axis<T: Float>(g: &Tensor<T>, shape: &Shape, axis: usize) -> Tensor<T> {
    let dims = shape.dims();
    let fits = axis < dims.len()
        && g.ndim() + 1 == dims.len()
        && g.shape()[..axis] == dims[..axis]
        && g.shape()[axis..] == dims[axis + 1..];
    if !fits {
        panic!(
            "{}",
            crate::ShapeError::new(
                "expand_axis",
                g.shape(),
                dims,
                format!("the gradient is not the right shape without axis {axis}"),
            )
        );
    }
    expect(check_alloc::<T>("expand_axis", shape, g.shape(), dims));
    if shape.numel() == 0 {
        // Some extent is 0: the others may be huge and their partial
        // products overflow, and there is nothing to copy.
        return Tensor::from_parts(Vec::new(), *shape);
    }
    // Products of extents of a nonempty `shape`, so each is at most its numel.
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let n = dims[axis];
    let mut data = Vec::with_capacity(shape.numel());
    for o in 0..outer {
        let row = &g.data[o * inner..(o + 1) * inner];
        for _ in 0..n {
            data.extend_from_slice(row);
        }
    }
    Tensor::from_parts(data, *shape)
}

/// The gradient of `y = x.max_axis(axis)` (or `min_axis`) for `x`: each
/// element of `g` (of `y`'s shape) split evenly among the elements along
/// `axis` that equal the extremum, 0 elsewhere. The static path's pullback of
/// `max_axis`/`min_axis`, and the tape's.
///
/// # Panics
/// If `y` or `g` is not shaped as `x` without `axis`.
///
/// ```
/// use ad_runtime::kernels::emit_support::extremum_axis_grad;
/// use ad_runtime::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 3.0, 3.0, 5.0, 0.0, 2.0], &[2, 3]);
/// let y = x.max_axis(1);
/// let dx = extremum_axis_grad(&x, &y, &Tensor::ones(&[2]), 1);
/// assert_eq!(dx.as_slice(), &[0.0, 0.5, 0.5, 1.0, 0.0, 0.0]);
/// ```
#[track_caller]
pub fn extremum_axis_grad<T: Float>(
    x: &Tensor<T>,
    y: &Tensor<T>,
    g: &Tensor<T>,
    axis: usize,
) -> Tensor<T> {
    let dims = x.shape();
    let without = |t: &Tensor<T>| {
        axis < dims.len()
            && t.ndim() + 1 == dims.len()
            && t.shape()[..axis] == dims[..axis]
            && t.shape()[axis..] == dims[axis + 1..]
    };
    for (t, what) in [(y, "extremum"), (g, "gradient")] {
        if !without(t) {
            panic!(
                "{}",
                crate::ShapeError::new(
                    "max_axis/min_axis gradient",
                    dims,
                    t.shape(),
                    format!("the {what} is not the tensor's shape without axis {axis}"),
                )
            );
        }
    }
    if x.data.is_empty() {
        // Some extent is 0: the others may multiply past `usize::MAX`.
        return Tensor::from_parts(Vec::new(), x.shape);
    }
    // Products of extents of a nonempty tensor, so each is at most its numel.
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let data =
        super::reduce::extremum_axis_grad(&x.data, &y.data, &g.data, outer, dims[axis], inner);
    Tensor::from_parts(data, x.shape)
}

/// The gradient of `a` in `c = a.matmul(b)`, from `dc` and `b`:
/// `dc·bᵀ` for `[m,k]·[k,n]`, `outer(dc, b)` for `[m,k]·[k]`, `b·dc` for
/// `[k]·[k,n]`, and `dc·b` for `[k]·[k]`.
///
/// # Panics
/// If the shapes are not those of a product and its gradient.
#[track_caller]
pub fn matmul_grad_lhs<T: Float>(dc: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    match (b.ndim(), dc.ndim()) {
        (2, 2) => dc.matmul_t(b),
        (2, 1) => b.matmul(dc),
        (1, 1) => dc.outer(b),
        _ => b * dc.item(),
    }
}

/// The gradient of `b` in `c = a.matmul(b)`, from `a` and `dc`:
/// `aᵀ·dc` for `[m,k]·[k,n]` and `[m,k]·[k]`, `outer(a, dc)` for `[k]·[k,n]`,
/// and `a·dc` for `[k]·[k]`.
///
/// # Panics
/// If the shapes are not those of a product and its gradient.
#[track_caller]
pub fn matmul_grad_rhs<T: Float>(a: &Tensor<T>, dc: &Tensor<T>) -> Tensor<T> {
    match (a.ndim(), dc.ndim()) {
        (2, _) => a.t_matmul(dc),
        (1, 1) => a.outer(dc),
        _ => a * dc.item(),
    }
}

/// `acc + matmul_grad_lhs(dc, b)`, accumulated in `acc`'s buffer by the GEMM
/// (`beta = 1`) when the shapes allow, without a temporary.
#[track_caller]
pub fn acc_matmul_grad_lhs<T: Float>(
    mut acc: Tensor<T>,
    dc: &Tensor<T>,
    b: &Tensor<T>,
) -> Tensor<T> {
    let one = T::one();
    match (b.ndim(), dc.ndim()) {
        (2, 2) if acc.ndim() == 2 => acc.gemm_into(one, dc, false, b, true, one),
        (2, 1) if acc.ndim() == 1 => acc.gemm_into(one, b, false, dc, false, one),
        _ => return ew2(acc, matmul_grad_lhs(dc, b), |x, y| x + y),
    }
    acc
}

/// `acc + matmul_grad_rhs(a, dc)`, accumulated in `acc`'s buffer by the GEMM
/// (`beta = 1`) when the shapes allow, without a temporary.
#[track_caller]
pub fn acc_matmul_grad_rhs<T: Float>(
    mut acc: Tensor<T>,
    a: &Tensor<T>,
    dc: &Tensor<T>,
) -> Tensor<T> {
    let one = T::one();
    match (a.ndim(), dc.ndim()) {
        (2, d) if acc.ndim() == d => acc.gemm_into(one, a, true, dc, false, one),
        _ => return ew2(acc, matmul_grad_rhs(a, dc), |x, y| x + y),
    }
    acc
}

/// `x` limited to `[lo, hi]`, exactly as [`Tensor::clamp`] computes each
/// element (NaN stays NaN), for fused closures.
#[inline(always)]
pub fn clamp<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// `d * p`, and exactly 0 where `d` is 0 whatever `p` is: the strong-zero
/// product of the derivative rules (a zero adjoint contributes nothing, even
/// through an infinite partial). The product is formed before the choice, so a
/// kernel's loop stays branch-free and vectorizes.
///
/// ```
/// use ad_runtime::kernels::emit_support::strong_mul;
/// assert_eq!(strong_mul(0.0, f64::INFINITY), 0.0);
/// assert_eq!(strong_mul(2.0, 3.0), 6.0);
/// assert!(strong_mul(1.0, f64::NAN).is_nan());
/// ```
#[inline(always)]
pub fn strong_mul<T: Float>(d: T, p: T) -> T {
    let t = d * p;
    if d == T::zero() {
        T::zero()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), s)
    }

    #[test]
    fn chains_broadcast_and_reuse_an_owned_buffer() {
        let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let b = t(&[10.0, 20.0, 30.0], &[3]);
        let y = ew2(a.clone(), &b, |x, y| x + y);
        assert_eq!(y.as_slice(), (&a + &b).as_slice());
        let y2 = ew2(&b, y, |x, y| x - y);
        assert_eq!(y2.as_slice(), &[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]);
        let owned = a.clone();
        let q = owned.as_slice().as_ptr();
        let z = ew3(&b, owned, t(&[2.0], &[1]), |b, a, k| k * a + b);
        assert_eq!(z.as_slice().as_ptr(), q);
        assert_eq!(z.as_slice(), &[12.0, 24.0, 36.0, 18.0, 30.0, 42.0]);
        let c = t(&[1.0, -1.0], &[2, 1]);
        let w = ew4(&c, &b, &a, &a, |c, b, x, y| c * b + x * y);
        assert_eq!(w.shape(), &[2, 3]);
        assert_eq!(w.as_slice()[5], -30.0 + 36.0);
        assert_eq!(sum2(&c, &b, |c, b| c * b), 0.0);
        assert_eq!(sum3(&a, &b, &c, |a, _, _| a), 21.0);
    }

    #[test]
    fn sums_onto_a_shape() {
        let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let s = Shape::new(&[3]);
        assert_eq!(sum_to1(&s, &a, |x| 2.0 * x).as_slice(), &[10.0, 14.0, 18.0]);
        let col = Shape::new(&[2, 1]);
        assert_eq!(
            sum_to2(&col, &a, &a, |x, y| x * y).as_slice(),
            &[14.0, 77.0]
        );
        assert_eq!(reduce_to(&a, &shape_of(&a)).as_slice(), a.as_slice());
        assert!(reduce_to_ref(&a, &shape_of(&a)).is_none());
        assert_eq!(reduce_to_ref(&a, &Shape::scalar()).unwrap().item(), 21.0);
    }

    #[test]
    fn expand_axis_inverts_sum_axis() {
        let g = t(&[1.0, 2.0], &[2]);
        let s = Shape::new(&[2, 3]);
        assert_eq!(
            expand_axis(&g, &s, 1).as_slice(),
            &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
        );
        let g = t(&[1.0, 2.0, 3.0], &[3]);
        assert_eq!(
            expand_axis(&g, &s, 0).as_slice(),
            &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
        );
    }

    #[test]
    fn extremum_axis_grad_along_each_axis() {
        let x = t(&[2.0, 5.0, 5.0, 1.0, 5.0, 0.0], &[2, 3]);
        // Axis 0: the columns [2, 1], [5, 5], [5, 0].
        let y = x.max_axis(0);
        let g = t(&[1.0, 2.0, 3.0], &[3]);
        assert_eq!(
            extremum_axis_grad(&x, &y, &g, 0).as_slice(),
            &[1.0, 1.0, 3.0, 0.0, 1.0, 0.0]
        );
        // Axis 1: the rows; the first has a tie.
        let y = x.max_axis(1);
        let g = t(&[4.0, -1.0], &[2]);
        assert_eq!(
            extremum_axis_grad(&x, &y, &g, 1).as_slice(),
            &[0.0, 2.0, 2.0, 0.0, -1.0, 0.0]
        );
        let y = x.min_axis(1);
        assert_eq!(
            extremum_axis_grad(&x, &y, &g, 1).as_slice(),
            &[4.0, 0.0, 0.0, 0.0, 0.0, -1.0]
        );
        // A 1-d tensor reduces to a 0-d one.
        let v = t(&[3.0, 3.0], &[2]);
        let d = extremum_axis_grad(&v, &v.max_axis(0), &Tensor::scalar(1.0), 0);
        assert_eq!(d.as_slice(), &[0.5, 0.5]);
        // Zero extents.
        let e = Tensor::<f64>::zeros(&[0, 3]);
        let d = extremum_axis_grad(&e, &e.max_axis(0), &Tensor::ones(&[3]), 0);
        assert_eq!(d.shape(), &[0, 3]);
    }

    #[test]
    #[should_panic(expected = "shapes [2, 3] and [3]")]
    fn extremum_axis_grad_names_both_shapes() {
        let x = Tensor::<f64>::ones(&[2, 3]);
        let _ = extremum_axis_grad(&x, &x.max_axis(0), &Tensor::ones(&[3]), 1);
    }

    #[test]
    fn matmul_gradients_in_every_shape_case() {
        let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let b = t(&[1.0, 0.0, -1.0, 2.0, 0.5, 1.0], &[3, 2]);
        let dc = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        assert_eq!(matmul_grad_lhs(&dc, &b), dc.matmul(&b.t()));
        assert_eq!(matmul_grad_rhs(&a, &dc), a.t().matmul(&dc));
        let acc = acc_matmul_grad_lhs(Tensor::ones(&[2, 3]), &dc, &b);
        assert_eq!(acc, dc.matmul(&b.t()) + 1.0);
        let acc = acc_matmul_grad_rhs(Tensor::ones(&[3, 2]), &a, &dc);
        assert_eq!(acc, a.t().matmul(&dc) + 1.0);
        // [m,k]·[k]
        let v = t(&[1.0, -1.0, 2.0], &[3]);
        let dv = t(&[0.5, 2.0], &[2]);
        assert_eq!(matmul_grad_lhs(&dv, &v), dv.outer(&v));
        assert_eq!(matmul_grad_rhs(&a, &dv), a.t().matmul(&dv));
        // [k]·[k,n]
        let u = t(&[1.0, 2.0, 3.0], &[3]);
        assert_eq!(matmul_grad_lhs(&dv, &b), b.matmul(&dv));
        assert_eq!(matmul_grad_rhs(&u, &dv), u.outer(&dv));
        assert_eq!(
            acc_matmul_grad_lhs(Tensor::zeros(&[3]), &dv, &b),
            b.matmul(&dv)
        );
        // [k]·[k]
        let ds = Tensor::scalar(2.0);
        assert_eq!(matmul_grad_lhs(&ds, &v), &v * 2.0);
        assert_eq!(matmul_grad_rhs(&u, &ds), &u * 2.0);
    }
}
