//! Fused elementwise kernels: one pass over memory for a whole chain of
//! elementwise work, written into one buffer without a temporary per step.
//!
//! These are the kernels the reverse sweep of `#[differentiable]` calls. A
//! chain such as tanh's `dy * (1 - y²)` becomes one closure over the elements
//! of its tensor operands, and one of four forms decides where the result goes:
//!
//! | form | result | allocates |
//! |---|---|---|
//! | [`map2`]`(&a, &b, f)` | a new tensor `f(a, b)` | the result |
//! | [`map2_into`]`(&mut out, &a, &b, f)` | `out ← f(a, b)` | nothing |
//! | [`map2_inplace`]`(a, &b, f)` | `a ← f(a, b)`, returned | nothing (reuses `a`) |
//! | [`acc2`]`(&mut g, &a, &b, f)` | `g += f(a, b)` (adjoint accumulation) | nothing |
//!
//! and [`sum2`]`(&a, &b, f)` reduces `Σ f(a, b)` to one value (the gradient of
//! a scalar that was used in tensor arithmetic). Every form exists for one to
//! four operands (`map1` .. `map4`, ...). The operands of one call have equal
//! shapes; scalars are captured by the closure. A mismatch panics with the
//! kernel's name and both shapes, at the caller's location.
//!
//! Broadcast operands get their gradient summed back to their own shape:
//! [`acc_sum_to`] does `g += dy.sum_to_shape(g.shape())` without the
//! temporary, and [`acc1_sum_to`], [`acc2_sum_to`], [`map1_sum_to`] and
//! [`map2_sum_to`] fuse an elementwise chain into that sum (a bias gradient
//! `Σᵢ dyᵢⱼ (1 - yᵢⱼ²)` in one pass).
//!
//! [`map2_broadcast_inplace`] is the forward sweep's companion: `tanh(z + b)`
//! with a broadcast bias, in one pass over `z`'s buffer.
//!
//! The named kernels [`tanh_backward`], [`sigmoid_backward`],
//! [`relu_backward`] and [`mse_grad`] are these forms with a fixed closure.
//!
//! ```
//! use ad_runtime::kernels::fused;
//! use ad_runtime::Tensor;
//!
//! let y = Tensor::from_vec(vec![0.5, -0.25, 0.0, 0.75], &[2, 2]); // y = tanh(z)
//! let dy = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
//! // dz = dy (1 - y²) in one pass, written into dy's buffer.
//! let dz = fused::map2_inplace(dy, &y, |g, y| g * (1.0 - y * y));
//! assert_eq!(dz.as_slice(), &[0.75, 1.875, 3.0, 1.75]);
//! // The bias gradient: column sums, accumulated without a temporary.
//! let mut db = Tensor::zeros(&[2]);
//! fused::acc_sum_to(&mut db, &dz);
//! assert_eq!(db.as_slice(), &[3.75, 3.625]);
//! ```

use crate::error::ShapeError;
use crate::float::Float;
use crate::kernels::elementwise::{self, Broadcast};
use crate::shape::broadcast_shapes;
use crate::tensor::Tensor;

/// Independent accumulators of the fused sums: they let the compiler keep a
/// float sum in vector registers, and lose less precision than one total.
const LANES: usize = 8;

/// Panics with the shape error of a fused kernel.
#[cold]
#[inline(never)]
#[track_caller]
fn mismatch(op: &'static str, lhs: &[usize], rhs: &[usize], reason: &str) -> ! {
    panic!("{}", ShapeError::new(op, lhs, rhs, reason))
}

/// Checks that every operand has the first one's shape.
#[inline]
#[track_caller]
fn same_shapes<T: Float>(op: &'static str, first: &Tensor<T>, rest: &[&Tensor<T>]) {
    for t in rest {
        if t.shape != first.shape {
            mismatch(
                op,
                first.shape(),
                t.shape(),
                "the operands of a fused kernel must have equal shapes",
            );
        }
    }
}

/// Checks that `target` broadcasts to `shape`, so that a tensor of `shape`
/// sums onto it; gives the plan, or `None` when the shapes are equal.
#[inline]
#[track_caller]
fn sum_to_plan(op: &'static str, shape: &[usize], target: &[usize]) -> Option<Broadcast> {
    if shape == target {
        return None;
    }
    let fits = target.len() <= shape.len()
        && broadcast_shapes(op, target, shape).is_ok_and(|s| s.dims() == shape);
    if !fits {
        mismatch(
            op,
            shape,
            target,
            "the target shape (right) does not broadcast to the operands' shape (left)",
        );
    }
    Some(Broadcast::new(target, shape, shape))
}

#[inline(always)]
fn combine<T: Float>(acc: [T; LANES]) -> T {
    let a = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (a[0] + a[2]) + (a[1] + a[3])
}

/// `Σᵢ f(x₁[i], ..)` over slices that all have length `$n`, in [`LANES`]
/// accumulators.
macro_rules! lane_sum {
    ($n:expr, ($($x:ident),+), $f:expr) => {{
        let n: usize = $n;
        let mut acc = [T::zero(); LANES];
        for c in 0..n / LANES {
            let lo = c * LANES;
            $(let $x = &$x[lo..lo + LANES];)+
            for l in 0..LANES {
                acc[l] += $f($($x[l]),+);
            }
        }
        let mut tail = T::zero();
        for i in n / LANES * LANES..n {
            tail += $f($($x[i]),+);
        }
        combine(acc) + tail
    }};
}

/// Defines the kernels of one arity. `$a` is the first operand (the one an
/// `_inplace` kernel consumes), `$x` the others; `$T` is `T` once per operand.
macro_rules! fused_arity {
    (
        $k:literal, [$($T:ident),+],
        $map:ident, $into:ident, $inplace:ident, $acc:ident, $sum:ident,
        ($a:ident $(, $x:ident)*)
    ) => {
        #[doc = concat!(
            "`f(", stringify!($a $(, $x)*), ")` elementwise over ", $k,
            " tensor(s) of equal shape, as a new tensor: one pass, one allocation.",
            "\n\n# Panics\nIf the operands' shapes differ."
        )]
        #[inline]
        #[track_caller]
        pub fn $map<T: Float>(
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) -> Tensor<T> {
            same_shapes(concat!("fused::", stringify!($map)), $a, &[$($x),*]);
            let shape = $a.shape;
            let n = $a.data.len();
            let $a = &$a.data[..n];
            $(let $x = &$x.data[..n];)*
            let data: Vec<T> = (0..n).map(|i| f($a[i] $(, $x[i])*)).collect();
            Tensor::from_parts(data, shape)
        }

        #[doc = concat!(
            "`out ← f(", stringify!($a $(, $x)*), ")` elementwise, overwriting `out`'s ",
            "buffer (its old contents are ignored); allocates nothing.",
            "\n\n# Panics\nIf `out` and the operands do not all have one shape."
        )]
        #[inline]
        #[track_caller]
        pub fn $into<T: Float>(
            out: &mut Tensor<T>,
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) {
            let op = concat!("fused::", stringify!($into));
            same_shapes(op, $a, &[$($x),*]);
            if out.shape != $a.shape {
                mismatch(op, out.shape(), $a.shape(), "the output's shape differs from the operands'");
            }
            let n = out.data.len();
            let out = &mut out.data[..n];
            let $a = &$a.data[..n];
            $(let $x = &$x.data[..n];)*
            for i in 0..n {
                out[i] = f($a[i] $(, $x[i])*);
            }
        }

        #[doc = concat!(
            "`", stringify!($a), " ← f(", stringify!($a $(, $x)*), ")` elementwise, in the ",
            "buffer of the consumed `", stringify!($a), "`, which is returned; allocates nothing.",
            "\n\n# Panics\nIf the operands' shapes differ."
        )]
        #[inline]
        #[track_caller]
        pub fn $inplace<T: Float>(
            mut $a: Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) -> Tensor<T> {
            same_shapes(concat!("fused::", stringify!($inplace)), &$a, &[$($x),*]);
            let n = $a.data.len();
            {
                let dst = &mut $a.data[..n];
                $(let $x = &$x.data[..n];)*
                for i in 0..n {
                    dst[i] = f(dst[i] $(, $x[i])*);
                }
            }
            $a
        }

        #[doc = concat!(
            "`grad += f(", stringify!($a $(, $x)*), ")` elementwise: adjoint accumulation ",
            "without a temporary; allocates nothing.",
            "\n\n# Panics\nIf `grad` and the operands do not all have one shape."
        )]
        #[inline]
        #[track_caller]
        pub fn $acc<T: Float>(
            grad: &mut Tensor<T>,
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) {
            let op = concat!("fused::", stringify!($acc));
            same_shapes(op, $a, &[$($x),*]);
            if grad.shape != $a.shape {
                mismatch(op, grad.shape(), $a.shape(), "the gradient's shape differs from the operands'");
            }
            let n = grad.data.len();
            let grad = &mut grad.data[..n];
            let $a = &$a.data[..n];
            $(let $x = &$x.data[..n];)*
            for i in 0..n {
                grad[i] += f($a[i] $(, $x[i])*);
            }
        }

        #[doc = concat!(
            "`Σ f(", stringify!($a $(, $x)*), ")` over the elements, in one pass without a ",
            "temporary (0 for empty operands): e.g. the gradient `Σ dy·x` of a scalar `s` ",
            "in `s * x`.",
            "\n\n# Panics\nIf the operands' shapes differ."
        )]
        #[inline]
        #[track_caller]
        pub fn $sum<T: Float>(
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) -> T {
            same_shapes(concat!("fused::", stringify!($sum)), $a, &[$($x),*]);
            let n = $a.data.len();
            let $a = &$a.data[..n];
            $(let $x = &$x.data[..n];)*
            lane_sum!(n, ($a $(, $x)*), f)
        }
    };
}

fused_arity!(1, [T], map1, map1_into, map1_inplace, acc1, sum1, (a));
fused_arity!(2, [T, T], map2, map2_into, map2_inplace, acc2, sum2, (a, b));
fused_arity!(
    3,
    [T, T, T],
    map3,
    map3_into,
    map3_inplace,
    acc3,
    sum3,
    (a, b, c)
);
fused_arity!(
    4,
    [T, T, T, T],
    map4,
    map4_into,
    map4_inplace,
    acc4,
    sum4,
    (a, b, c, d)
);

/// Defines the broadcast-reducing kernels of one arity: `acc*_sum_to` and
/// `map*_sum_to`; `$same` is the arity's `acc*`, for equal shapes.
macro_rules! fused_sum_to {
    (
        $k:literal, [$($T:ident),+], $acc:ident, $map:ident, $same:ident,
        ($a:ident $(, $x:ident)*)
    ) => {
        #[doc = concat!(
            "`grad += f(", stringify!($a $(, $x)*), ").sum_to_shape(grad.shape())` in one ",
            "pass without temporaries, for ", $k, " operand(s) of one shape to which `grad`'s ",
            "shape broadcasts: the gradient of a broadcast operand. Allocates nothing.",
            "\n\n# Panics\nIf the operands' shapes differ, or `grad`'s shape does not ",
            "broadcast to theirs."
        )]
        #[inline]
        #[track_caller]
        pub fn $acc<T: Float>(
            grad: &mut Tensor<T>,
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
        ) {
            let op = concat!("fused::", stringify!($acc));
            same_shapes(op, $a, &[$($x),*]);
            let Some(plan) = sum_to_plan(op, $a.shape(), grad.shape()) else {
                return $same(grad, $a, $($x,)* f);
            };
            let grad = &mut grad.data[..];
            let $a = &$a.data[..];
            $(let $x = &$x.data[..];)*
            // Each run reads the operands contiguously; the gradient is either
            // contiguous along it too, or one element that takes the run's sum.
            plan.for_each_run(|r| {
                let $a = &$a[r.b..r.b + r.len];
                $(let $x = &$x[r.b..r.b + r.len];)*
                if r.a_step == 1 {
                    let dst = &mut grad[r.a..r.a + r.len];
                    for i in 0..r.len {
                        dst[i] += f($a[i] $(, $x[i])*);
                    }
                } else {
                    grad[r.a] += lane_sum!(r.len, ($a $(, $x)*), f);
                }
            });
        }

        #[doc = concat!(
            "`f(", stringify!($a $(, $x)*), ").sum_to_shape(shape)` in one pass: ",
            "[`", stringify!($acc), "`] into a new tensor of zeros of shape `shape`.",
            "\n\n# Panics\nAs [`", stringify!($acc), "`]."
        )]
        #[inline]
        #[track_caller]
        pub fn $map<T: Float>(
            $a: &Tensor<T>,
            $($x: &Tensor<T>,)*
            f: impl Fn($($T),+) -> T,
            shape: &[usize],
        ) -> Tensor<T> {
            let mut out = Tensor::zeros(shape);
            $acc(&mut out, $a, $($x,)* f);
            out
        }
    };
}

fused_sum_to!(1, [T], acc1_sum_to, map1_sum_to, acc1, (a));
fused_sum_to!(2, [T, T], acc2_sum_to, map2_sum_to, acc2, (a, b));
fused_sum_to!(3, [T, T, T], acc3_sum_to, map3_sum_to, acc3, (a, b, c));

/// `a ← f(a, b)` elementwise where `b` broadcasts to `a`'s shape, in the
/// buffer of the consumed `a`, which is returned; allocates nothing. The
/// forward sweep of a dense layer uses it for `tanh(x·W + b)` in one pass over
/// the product, with the bias `b` of shape `[n]` against `[m, n]`.
///
/// # Panics
/// If `b`'s shape does not broadcast to `a`'s.
///
/// ```
/// use ad_runtime::kernels::fused;
/// use ad_runtime::Tensor;
/// let z = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
/// let b = Tensor::from_vec(vec![10.0, 20.0], &[2]);
/// let y = fused::map2_broadcast_inplace(z, &b, |z, b| 2.0 * (z + b));
/// assert_eq!(y.as_slice(), &[22.0, 44.0, 26.0, 48.0]);
/// ```
#[inline]
#[track_caller]
pub fn map2_broadcast_inplace<T: Float>(
    mut a: Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T + Copy,
) -> Tensor<T> {
    let op = "fused::map2_broadcast_inplace";
    if a.shape != b.shape {
        let fits = b.ndim() <= a.ndim()
            && broadcast_shapes(op, a.shape(), b.shape()).is_ok_and(|s| s == a.shape);
        if !fits {
            mismatch(
                op,
                a.shape(),
                b.shape(),
                "the right operand does not broadcast to the left one's shape",
            );
        }
    }
    let shape = a.shape;
    elementwise::broadcast_assign(&mut a.data, shape.dims(), &b.data, b.shape(), f);
    a
}

/// `grad += g.sum_to_shape(grad.shape())` without the temporary: the gradient
/// `g` of a broadcast result summed back onto the operand whose gradient is
/// `grad` (a bias gradient is the column sums of `g`). Allocates nothing.
///
/// # Panics
/// If `grad`'s shape does not broadcast to `g`'s.
///
/// ```
/// use ad_runtime::kernels::fused;
/// use ad_runtime::Tensor;
/// let g = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let mut db = Tensor::ones(&[3]);
/// fused::acc_sum_to(&mut db, &g);
/// assert_eq!(db.as_slice(), &[6.0, 8.0, 10.0]);
/// let mut ds = Tensor::zeros(&[2, 1]);
/// fused::acc_sum_to(&mut ds, &g);
/// assert_eq!(ds.as_slice(), &[6.0, 15.0]);
/// ```
#[inline]
#[track_caller]
pub fn acc_sum_to<T: Float>(grad: &mut Tensor<T>, g: &Tensor<T>) {
    acc1_sum_to(grad, g, |v| v)
}

/// tanh's backward pass from its output: `dy · (1 − y²)` for `y = tanh(x)`.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use ad_runtime::kernels::fused;
/// use ad_runtime::Tensor;
/// let x = Tensor::from_vec(vec![-0.5, 0.3], &[2]);
/// let dx = fused::tanh_backward(&Tensor::ones(&[2]), &x.tanh());
/// assert!((dx.as_slice()[1] - 1.0 / 0.3f64.cosh().powi(2)).abs() < 1e-15);
/// ```
#[inline]
#[track_caller]
pub fn tanh_backward<T: Float>(dy: &Tensor<T>, y: &Tensor<T>) -> Tensor<T> {
    map2(dy, y, |g, y| g * (T::one() - y * y))
}

/// The logistic function's backward pass from its output: `dy · s · (1 − s)`
/// for `s = sigmoid(x)`.
///
/// # Panics
/// If the shapes differ.
#[inline]
#[track_caller]
pub fn sigmoid_backward<T: Float>(dy: &Tensor<T>, s: &Tensor<T>) -> Tensor<T> {
    map2(dy, s, |g, s| g * s * (T::one() - s))
}

/// relu's backward pass: `dy` where `x > 0`, else 0, with PyTorch's
/// `relu'(0) = 0`. `x` may be relu's input or its output (both are positive at
/// the same places).
///
/// # Panics
/// If the shapes differ.
#[inline]
#[track_caller]
pub fn relu_backward<T: Float>(dy: &Tensor<T>, x: &Tensor<T>) -> Tensor<T> {
    map2(dy, x, |g, x| if x > T::zero() { g } else { T::zero() })
}

/// The gradient with respect to `y` of `seed · mean((y − t)²)`:
/// `2 · seed · (y − t) / n`, with `n` the number of elements. Pass
/// `seed = 1` for the plain mean-squared error.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use ad_runtime::kernels::fused;
/// use ad_runtime::Tensor;
/// let y = Tensor::from_vec(vec![1.0, 2.0], &[2]);
/// let t = Tensor::from_vec(vec![0.0, 4.0], &[2]);
/// assert_eq!(fused::mse_grad(&y, &t, 1.0).as_slice(), &[1.0, -2.0]);
/// ```
#[inline]
#[track_caller]
pub fn mse_grad<T: Float>(y: &Tensor<T>, t: &Tensor<T>, seed: T) -> Tensor<T> {
    let scale = (seed + seed) / T::from_usize(y.len());
    map2(y, t, |y, t| scale * (y - t))
}
