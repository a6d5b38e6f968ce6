//! The operations a tape records, their PyTorch-style names, and the table of
//! elementwise derivative rules.
//!
//! Every elementwise operation (scalar or tensor) gets its local partial
//! derivatives from [`unary`] or [`binary`] below: for a scalar node they are
//! computed at record time and stored in the node; for a tensor node they are
//! computed element by element, also at record time, and kept as tensors. The
//! rules of the structural operations (reductions, matmul, reshape, ...) live in
//! the one `match` of `backward.rs`. For [`Tape::grad_graph`], which records
//! gradients as `Var`s, [`unary_partial`] and [`binary_partials`] at the end
//! write the same partials as `Var` operations (the tests of `create_graph.rs`
//! hold both to the same first gradients).
//!
//! [`Tape::grad_graph`]: super::Tape::grad_graph
//!
//! The conventions where a formula would divide by zero or meet NaN (`hypot` at
//! the origin, `powi`/`pow` with exponent 0 or a zero base, `clamp` and
//! `max`/`min` of NaN) are stated next to each rule; the macro's rule table
//! (`ad-macros-core/src/rules.rs`) gives the same bits there. Domain edges keep
//! the formula's value as PyTorch does (`sqrt'(0) = ln'(0) = +inf`), and the
//! backward pass multiplies an adjoint by these partials through [`scale`], so a
//! zero adjoint contributes exactly 0 even through an infinite partial.

use super::Var;
use crate::float::Float;
use crate::tensor::Tensor;

/// An operation recorded on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Op {
    /// A leaf that requires a gradient (PyTorch's `AccumulateGrad`).
    Leaf,
    /// A value with no gradient: a constant, a detached value, or the result of
    /// an operation none of whose inputs requires a gradient.
    Constant,
    // Elementwise, one input.
    Neg,
    Exp,
    Exp2,
    Ln,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Sqrt,
    Cbrt,
    Recip,
    Abs,
    Relu,
    Sigmoid,
    Softplus,
    /// `x^n`, `n` an integer held in the first parameter.
    Powi,
    /// `x^c`, `c` a constant held in the first parameter.
    Powf,
    /// `clamp(x, lo, hi)`, the bounds held in the parameters.
    Clamp,
    // Elementwise, one input, piecewise constant: gradient 0 (no contribution).
    Signum,
    Floor,
    Ceil,
    Round,
    Trunc,
    // Elementwise, two inputs (either may be a constant scalar).
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Atan2,
    Hypot,
    Max,
    Min,
    /// `a · b`, and exactly 0 where `a` is 0 ([`scale`]): how [`Tape::grad_graph`]
    /// records an adjoint times a partial, so that its first gradients keep the
    /// bits of the backward pass.
    ///
    /// [`Tape::grad_graph`]: super::Tape::grad_graph
    Scale,
    // Structural tensor operations; rules in `backward.rs`.
    Sum,
    Mean,
    Norm,
    MaxAll,
    MinAll,
    SumAxis,
    MeanAxis,
    MaxAxis,
    MinAxis,
    Matmul,
    Dot,
    Transpose,
    Reshape,
    Broadcast,
    Stack,
    Select,
    Custom,
}

impl Op {
    /// The name PyTorch gives this operation's backward node (without its
    /// numeric suffix): `MulBackward`, `PowBackward`, ...; leaves are `AccumulateGrad`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Leaf => "AccumulateGrad",
            Op::Constant => "Constant",
            Op::Neg => "NegBackward",
            Op::Exp => "ExpBackward",
            Op::Exp2 => "Exp2Backward",
            Op::Ln => "LogBackward",
            Op::Log2 => "Log2Backward",
            Op::Log10 => "Log10Backward",
            Op::Sin => "SinBackward",
            Op::Cos => "CosBackward",
            Op::Tan => "TanBackward",
            Op::Asin => "AsinBackward",
            Op::Acos => "AcosBackward",
            Op::Atan => "AtanBackward",
            Op::Sinh => "SinhBackward",
            Op::Cosh => "CoshBackward",
            Op::Tanh => "TanhBackward",
            Op::Sqrt => "SqrtBackward",
            Op::Cbrt => "CbrtBackward",
            Op::Recip => "ReciprocalBackward",
            Op::Abs => "AbsBackward",
            Op::Relu => "ReluBackward",
            Op::Sigmoid => "SigmoidBackward",
            Op::Softplus => "SoftplusBackward",
            Op::Powi | Op::Powf | Op::Pow => "PowBackward",
            Op::Clamp => "ClampBackward",
            Op::Signum => "SignBackward",
            Op::Floor => "FloorBackward",
            Op::Ceil => "CeilBackward",
            Op::Round => "RoundBackward",
            Op::Trunc => "TruncBackward",
            Op::Add => "AddBackward",
            Op::Sub => "SubBackward",
            Op::Mul | Op::Scale => "MulBackward",
            Op::Div => "DivBackward",
            Op::Atan2 => "Atan2Backward",
            Op::Hypot => "HypotBackward",
            Op::Max => "MaximumBackward",
            Op::Min => "MinimumBackward",
            Op::Sum | Op::SumAxis => "SumBackward",
            Op::Mean | Op::MeanAxis => "MeanBackward",
            Op::Norm => "NormBackward",
            Op::MaxAll => "MaxBackward",
            Op::MinAll => "MinBackward",
            Op::MaxAxis => "AmaxBackward",
            Op::MinAxis => "AminBackward",
            Op::Matmul => "MatmulBackward",
            Op::Dot => "DotBackward",
            Op::Transpose => "TBackward",
            Op::Reshape => "ReshapeBackward",
            Op::Broadcast => "ExpandBackward",
            Op::Stack => "StackBackward",
            Op::Select => "SelectBackward",
            Op::Custom => "CustomBackward",
        }
    }

    /// The name of the forward operation, as the user calls it (for the profiler).
    pub(crate) fn forward_name(self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Constant => "constant",
            Op::Neg => "neg",
            Op::Exp => "exp",
            Op::Exp2 => "exp2",
            Op::Ln => "ln",
            Op::Log2 => "log2",
            Op::Log10 => "log10",
            Op::Sin => "sin",
            Op::Cos => "cos",
            Op::Tan => "tan",
            Op::Asin => "asin",
            Op::Acos => "acos",
            Op::Atan => "atan",
            Op::Sinh => "sinh",
            Op::Cosh => "cosh",
            Op::Tanh => "tanh",
            Op::Sqrt => "sqrt",
            Op::Cbrt => "cbrt",
            Op::Recip => "recip",
            Op::Abs => "abs",
            Op::Relu => "relu",
            Op::Sigmoid => "sigmoid",
            Op::Softplus => "softplus",
            Op::Powi => "powi",
            Op::Powf | Op::Pow => "pow",
            Op::Clamp => "clamp",
            Op::Signum => "signum",
            Op::Floor => "floor",
            Op::Ceil => "ceil",
            Op::Round => "round",
            Op::Trunc => "trunc",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul | Op::Scale => "mul",
            Op::Div => "div",
            Op::Atan2 => "atan2",
            Op::Hypot => "hypot",
            Op::Max => "max",
            Op::Min => "min",
            Op::Sum => "sum",
            Op::SumAxis => "sum_axis",
            Op::Mean => "mean",
            Op::MeanAxis => "mean_axis",
            Op::Norm => "norm",
            Op::MaxAll => "max_all",
            Op::MinAll => "min_all",
            Op::MaxAxis => "max_axis",
            Op::MinAxis => "min_axis",
            Op::Matmul => "matmul",
            Op::Dot => "dot",
            Op::Transpose => "t",
            Op::Reshape => "reshape",
            Op::Broadcast => "broadcast_to",
            Op::Stack => "stack",
            Op::Select => "select",
            Op::Custom => "custom",
        }
    }
}

/// The contribution `g · p` of an adjoint `g` through a partial `p`, and exactly 0
/// where `g` is 0, whatever `p` is (a strong zero): a finite primal whose derivative
/// exists gets no NaN from `0 · inf` (`0.0 * x.sqrt()` at 0, an infinity cut off by
/// `min` or `clamp`). The macro's rules guard every contribution the same way
/// (`strong` in `ad-macros-core/src/rules.rs`), so both paths give the same bits.
///
/// The product is formed before the choice, so that a loop over a tensor's
/// elements stays branch-free and vectorizes (a branch around the product does
/// not, and costs two to three times as much).
#[inline(always)]
pub(crate) fn scale<T: Float>(g: T, p: T) -> T {
    let t = g * p;
    if g == T::zero() {
        T::zero()
    } else {
        t
    }
}

/// `max(x, 0)`, generic over the float type (the same definition as `FloatExt::relu`).
#[inline(always)]
pub(crate) fn relu<T: Float>(x: T) -> T {
    if x > T::zero() {
        x
    } else {
        T::zero()
    }
}

/// The logistic function, evaluating `e^-|x|` only (as `FloatExt::sigmoid`).
#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `ln(1 + e^x)` as `max(x, 0) + ln(1 + e^-|x|)` (as `FloatExt::softplus`).
#[inline(always)]
pub(crate) fn softplus<T: Float>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// The value of a one-input elementwise operation at `x` and its derivative
/// `dy/dx`. `p` holds the operation's constant parameters (exponent, bounds).
///
/// Conventions at points of non-differentiability follow PyTorch and are
/// stated next to each rule.
#[inline(always)]
pub(crate) fn unary<T: Float>(op: Op, x: T, p: [T; 2]) -> (T, T) {
    let one = T::one();
    let zero = T::zero();
    match op {
        // y = -x;        dy/dx = -1
        Op::Neg => (-x, -one),
        // y = e^x;       dy/dx = y
        Op::Exp => {
            let y = x.exp();
            (y, y)
        }
        // y = 2^x;       dy/dx = y ln 2
        Op::Exp2 => {
            let y = x.exp2();
            (y, y * T::LN_2())
        }
        // y = ln x;      dy/dx = 1/x
        Op::Ln => (x.ln(), one / x),
        // y = log2 x;    dy/dx = 1/(x ln 2)
        Op::Log2 => (x.log2(), one / (x * T::LN_2())),
        // y = log10 x;   dy/dx = 1/(x ln 10)
        Op::Log10 => (x.log10(), one / (x * T::LN_10())),
        // y = sin x;     dy/dx = cos x
        Op::Sin => {
            let (s, c) = x.sin_cos();
            (s, c)
        }
        // y = cos x;     dy/dx = -sin x
        Op::Cos => {
            let (s, c) = x.sin_cos();
            (c, -s)
        }
        // y = tan x;     dy/dx = 1 + y^2
        Op::Tan => {
            let y = x.tan();
            (y, one + y * y)
        }
        // y = asin x;    dy/dx = 1/sqrt(1 - x^2)
        Op::Asin => (x.asin(), one / (one - x * x).sqrt()),
        // y = acos x;    dy/dx = -1/sqrt(1 - x^2)
        Op::Acos => (x.acos(), -one / (one - x * x).sqrt()),
        // y = atan x;    dy/dx = 1/(1 + x^2)
        Op::Atan => (x.atan(), one / (one + x * x)),
        // y = sinh x;    dy/dx = cosh x
        Op::Sinh => (x.sinh(), x.cosh()),
        // y = cosh x;    dy/dx = sinh x
        Op::Cosh => (x.cosh(), x.sinh()),
        // y = tanh x;    dy/dx = 1 - y^2
        Op::Tanh => {
            let y = x.tanh();
            (y, one - y * y)
        }
        // y = sqrt x;    dy/dx = 1/(2y)   (infinite at 0, as in PyTorch)
        Op::Sqrt => {
            let y = x.sqrt();
            (y, one / (y + y))
        }
        // y = cbrt x;    dy/dx = 1/(3y^2) (infinite at 0)
        Op::Cbrt => {
            let y = x.cbrt();
            (y, one / (T::from_f64(3.0) * y * y))
        }
        // y = 1/x;       dy/dx = -y^2
        Op::Recip => {
            let y = x.recip();
            (y, -(y * y))
        }
        // y = |x|;       dy/dx = sign x, and 0 at x = 0 (PyTorch)
        Op::Abs => {
            let d = if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                zero
            };
            (x.abs(), d)
        }
        // y = max(x, 0); dy/dx = 1 if x > 0 else 0 (relu'(0) = 0, PyTorch)
        Op::Relu => (relu(x), if x > zero { one } else { zero }),
        // y = σ(x);      dy/dx = y (1 - y)
        Op::Sigmoid => {
            let y = sigmoid(x);
            (y, y * (one - y))
        }
        // y = ln(1+e^x); dy/dx = σ(x)
        Op::Softplus => (softplus(x), sigmoid(x)),
        // y = x^n;       dy/dx = n x^(n-1), and exactly 0 for n = 0 (where 0 * 0^-1
        //                would be NaN at x = 0; PyTorch masks the exponent 0). The
        //                macro's `MathFn::Powi` rule applies the same mask.
        Op::Powi => {
            let n = p[0].to_i32().unwrap_or(0);
            let d = if n == 0 { zero } else { p[0] * x.powi(n - 1) };
            (x.powi(n), d)
        }
        // y = x^c;       dy/dx = c x^(c-1), and 0 for c = 0 (as `Op::Pow` below)
        Op::Powf => {
            let c = p[0];
            let d = if c == zero { zero } else { c * x.powf(c - one) };
            (x.powf(c), d)
        }
        // y = clamp(x, lo, hi); dy/dx = 1 on the closed interval [lo, hi], else 0
        // (PyTorch passes the gradient at the bounds). A NaN x stays NaN in the value,
        // as `f64::clamp` and the macro's path keep it (`max`/`min` would drop it), and
        // gets gradient 0, as in PyTorch: no comparison with NaN holds.
        Op::Clamp => {
            let (lo, hi) = (p[0], p[1]);
            let d = if x >= lo && x <= hi { one } else { zero };
            let y = if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            };
            (y, d)
        }
        // y = signum x, floor x, ceil x, round x, trunc x: piecewise constant, so
        // dy/dx = 0 (PyTorch's convention also at the jumps). The recording keeps no
        // edge to x (see `is_flat`): an infinite adjoint gives 0, not 0 * inf = NaN,
        // as the macro's rules, which give x no contribution.
        Op::Signum => (x.signum(), zero),
        Op::Floor => (x.floor(), zero),
        Op::Ceil => (x.ceil(), zero),
        Op::Round => (x.round(), zero),
        Op::Trunc => (x.trunc(), zero),
        _ => unreachable!("{op:?} is not a one-input elementwise operation"),
    }
}

/// Whether a one-input operation is piecewise constant (`floor`, `signum`, ...):
/// its node keeps no edge to its input, so nothing flows back.
#[inline(always)]
pub(crate) fn is_flat(op: Op) -> bool {
    matches!(
        op,
        Op::Signum | Op::Floor | Op::Ceil | Op::Round | Op::Trunc
    )
}

/// The value of a two-input elementwise operation at `(a, b)` and its partial
/// derivatives `(dy/da, dy/db)`.
#[inline(always)]
pub(crate) fn binary<T: Float>(op: Op, a: T, b: T) -> (T, T, T) {
    let one = T::one();
    let zero = T::zero();
    match op {
        // y = a + b;  dy/da = 1,       dy/db = 1
        Op::Add => (a + b, one, one),
        // y = a - b;  dy/da = 1,       dy/db = -1
        Op::Sub => (a - b, one, -one),
        // y = a b;    dy/da = b,       dy/db = a
        Op::Mul => (a * b, b, a),
        // y = a b, 0 where a = 0 (a strong zero); dy/da = b, dy/db = a
        Op::Scale => (scale(a, b), b, a),
        // y = a / b;  dy/da = 1/b,     dy/db = -y/b  (the value is `a / b` itself,
        //                                             as the primal computes it)
        Op::Div => {
            let r = one / b;
            let y = a / b;
            (y, r, -y * r)
        }
        // y = a^b;    dy/da = b a^(b-1), and 0 when b = 0 (x^0 is constant; the
        //                formula gives 0 * 0^-1 = NaN at a = 0);
        //             dy/db = y ln a, and 0 when a = 0 and b >= 0 (0^b is constant in
        //                b > 0, and 0^0 = 1 takes the limit from the right); at a = 0,
        //                b < 0 it is inf * -inf = -inf, at a < 0 NaN.
        // These are PyTorch's masks; the macro's `MathFn::Powf` rule applies the same.
        Op::Pow => {
            let y = a.powf(b);
            let da = if b == zero { zero } else { b * a.powf(b - one) };
            let db = if a == zero && b >= zero {
                zero
            } else {
                y * a.ln()
            };
            (y, da, db)
        }
        // y = atan2(a, b); dy/da = b/(a^2+b^2), dy/db = -a/(a^2+b^2)
        Op::Atan2 => {
            let r = one / (a * a + b * b);
            (a.atan2(b), b * r, -a * r)
        }
        // y = hypot(a, b); dy/da = a/y, dy/db = b/y, and both 0 at the origin (a
        //                  subgradient, as for the norm of a zero vector, where a/y
        //                  would be 0/0 = NaN). The macro's `MathFn::Hypot` agrees.
        Op::Hypot => {
            let y = a.hypot(b);
            if y == zero {
                (y, zero, zero)
            } else {
                (y, a / y, b / y)
            }
        }
        // y = max(a, b); the gradient goes to the larger input; a tie splits it
        // evenly. A NaN input loses (`f64::max` returns the other input); two NaNs
        // split it like a tie. The macro's `pick` decides the same way.
        Op::Max => {
            let (a_loses, b_loses) = (b > a || a.is_nan(), a > b || b.is_nan());
            let (da, db) = pick(a_loses, b_loses);
            (a.max(b), da, db)
        }
        // y = min(a, b); the gradient goes to the smaller input; ties and NaNs as `max`
        Op::Min => {
            let (a_loses, b_loses) = (b < a || a.is_nan(), a < b || b.is_nan());
            let (da, db) = pick(a_loses, b_loses);
            (a.min(b), da, db)
        }
        _ => unreachable!("{op:?} is not a two-input elementwise operation"),
    }
}

/// The partials of `max`/`min` from which inputs lose: the one that alone does not
/// lose takes 1, otherwise (a tie, or both NaN) each takes 1/2.
#[inline(always)]
fn pick<T: Float>(a_loses: bool, b_loses: bool) -> (T, T) {
    let half = T::from_f64(0.5);
    match (a_loses, b_loses) {
        (false, true) => (T::one(), T::zero()),
        (true, false) => (T::zero(), T::one()),
        _ => (half, half),
    }
}

/// A local partial derivative for [`Tape::grad_graph`](super::Tape::grad_graph),
/// which records the adjoint times it.
pub(crate) enum Partial<'t, T: Float> {
    /// The partial recorded with the operation: it is locally constant.
    Stored,
    /// Exactly 0: nothing flows.
    Zero,
    /// A function of the operation's inputs and output, recorded on the tape.
    Var(Var<'t, T>),
}

/// Whether `op` is a one-input elementwise operation (its rule is [`unary`]).
pub(crate) fn is_unary(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Neg | Exp
            | Exp2
            | Ln
            | Log2
            | Log10
            | Sin
            | Cos
            | Tan
            | Asin
            | Acos
            | Atan
            | Sinh
            | Cosh
            | Tanh
            | Sqrt
            | Cbrt
            | Recip
            | Abs
            | Relu
            | Sigmoid
            | Softplus
            | Powi
            | Powf
            | Clamp
            | Signum
            | Floor
            | Ceil
            | Round
            | Trunc
    )
}

/// Whether `op` is a two-input elementwise operation (its rule is [`binary`]).
pub(crate) fn is_binary(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Add | Sub | Mul | Div | Pow | Atan2 | Hypot | Max | Min | Scale
    )
}

/// Whether the partials of `op` are locally constant, so that the recorded
/// ones serve [`Tape::grad_graph`](super::Tape::grad_graph) as they are.
pub(crate) fn has_stored_partials(op: Op) -> bool {
    matches!(
        op,
        Op::Neg | Op::Abs | Op::Relu | Op::Clamp | Op::Add | Op::Sub | Op::Max | Op::Min
    )
}

/// `1 - v`.
fn one_minus<'t, T: Float>(v: Var<'t, T>) -> Var<'t, T> {
    v.binary_const(Op::Sub, T::one(), true)
}

/// The partial `dy/dx` of [`unary`] as operations on the input `x` and the
/// output `y` (`p` the parameter), for `grad_graph`: the same formula, in the
/// same order of operations, so that its value has the bits of `unary`'s
/// partial; the conventions (`powi` with exponent 0, the piecewise-constant
/// operations) are `unary`'s.
pub(crate) fn unary_partial<'t, T: Float>(
    op: Op,
    x: Var<'t, T>,
    y: Var<'t, T>,
    p: T,
) -> Partial<'t, T> {
    let one = T::one();
    let v = Partial::Var;
    match op {
        // -1, sign x, the step of relu and of clamp: locally constant.
        Op::Neg | Op::Abs | Op::Relu | Op::Clamp => Partial::Stored,
        // y
        Op::Exp => v(y),
        // y ln 2
        Op::Exp2 => v(y.binary_const(Op::Mul, T::LN_2(), false)),
        // 1/x
        Op::Ln => v(x.recip()),
        // 1/(x ln 2), 1/(x ln 10)
        Op::Log2 => v(x.binary_const(Op::Mul, T::LN_2(), false).recip()),
        Op::Log10 => v(x.binary_const(Op::Mul, T::LN_10(), false).recip()),
        // cos x, -sin x
        Op::Sin => v(x.cos()),
        Op::Cos => v(-x.sin()),
        // 1 + y^2
        Op::Tan => v((y * y).binary_const(Op::Add, one, true)),
        // ±1/sqrt(1 - x^2)
        Op::Asin => v(one_minus(x * x).sqrt().recip()),
        Op::Acos => v(-one_minus(x * x).sqrt().recip()),
        // 1/(1 + x^2)
        Op::Atan => v((x * x).binary_const(Op::Add, one, true).recip()),
        // cosh x, sinh x
        Op::Sinh => v(x.cosh()),
        Op::Cosh => v(x.sinh()),
        // 1 - y^2
        Op::Tanh => v(one_minus(y * y)),
        // 1/(2y)
        Op::Sqrt => v((y + y).recip()),
        // 1/(3y^2)
        Op::Cbrt => v((y.binary_const(Op::Mul, T::from_f64(3.0), true) * y).recip()),
        // -y^2
        Op::Recip => v(-(y * y)),
        // y (1 - y)
        Op::Sigmoid => v(y * one_minus(y)),
        // σ(x)
        Op::Softplus => v(x.sigmoid()),
        // n x^(n-1), 0 for n = 0
        Op::Powi => match p.to_i32().unwrap_or(0) {
            0 => Partial::Zero,
            n => v(x.powi(n - 1).binary_const(Op::Mul, p, true)),
        },
        // c x^(c-1), 0 for c = 0
        Op::Powf if p == T::zero() => Partial::Zero,
        Op::Powf => v(x.powf(p - one).binary_const(Op::Mul, p, true)),
        Op::Signum | Op::Floor | Op::Ceil | Op::Round | Op::Trunc => Partial::Zero,
        _ => unreachable!("{op:?} is not a one-input elementwise operation"),
    }
}

/// `d` where `keep` is 1 and exactly 0 where it is 0 (`keep` broadcasts to
/// `d`'s shape): [`binary`]'s masks, which replace a formula by 0 where the
/// formula gives NaN.
fn masked<'t, T: Float>(keep: Tensor<T>, d: impl FnOnce() -> Var<'t, T>) -> Partial<'t, T> {
    let s = keep.as_slice();
    if s.iter().all(|&k| k == T::one()) {
        return Partial::Var(d());
    }
    if s.iter().all(|&k| k == T::zero()) {
        return Partial::Zero;
    }
    let d = d();
    Partial::Var(d.tape.constant_tensor(keep).binary(Op::Scale, d))
}

/// 1 where `c` holds, 0 elsewhere.
fn indicator<T: Float>(c: bool) -> T {
    if c {
        T::one()
    } else {
        T::zero()
    }
}

/// The partials `(dy/da, dy/db)` of [`binary`] as operations on the inputs
/// and the output, each only if `need` asks for it; the same formulas, masks
/// and order of operations as `binary`.
pub(crate) fn binary_partials<'t, T: Float>(
    op: Op,
    a: Var<'t, T>,
    b: Var<'t, T>,
    y: Var<'t, T>,
    need: [bool; 2],
) -> [Partial<'t, T>; 2] {
    let one = T::one();
    let v = Partial::Var;
    let when = |k: usize, f: &dyn Fn() -> Partial<'t, T>| {
        if need[k] {
            f()
        } else {
            Partial::Zero
        }
    };
    match op {
        // 1, ±1; the winner's 1 (or a tie's 1/2): locally constant.
        Op::Add | Op::Sub | Op::Max | Op::Min => [Partial::Stored, Partial::Stored],
        // b, a
        Op::Mul | Op::Scale => [when(0, &|| v(b)), when(1, &|| v(a))],
        // 1/b, -y/b
        Op::Div => {
            let r = b.recip();
            [when(0, &|| v(r)), when(1, &|| v(-(y * r)))]
        }
        // b a^(b-1) (0 where b = 0), y ln a (0 where a = 0 and b >= 0)
        Op::Pow => [
            when(0, &|| {
                let keep = b.tensor().map(|e| indicator(e != T::zero()));
                masked(keep, || a.powf(b.binary_const(Op::Sub, one, false)) * b)
            }),
            when(1, &|| {
                let zero = T::zero();
                let keep = a
                    .tensor()
                    .zip_map(&b.tensor(), |x, e| indicator(!(x == zero && e >= zero)));
                masked(keep, || y * a.ln())
            }),
        ],
        // b/(a^2+b^2), -a/(a^2+b^2)
        Op::Atan2 => {
            let r = (a * a + b * b).recip();
            [when(0, &|| v(b * r)), when(1, &|| v(-a * r))]
        }
        // a/y, b/y, both 0 where y = 0
        Op::Hypot => {
            let keep = y.tensor().map(|h| indicator(h != T::zero()));
            [
                when(0, &|| masked(keep.clone(), || a / y)),
                when(1, &|| masked(keep.clone(), || b / y)),
            ]
        }
        _ => unreachable!("{op:?} is not a two-input elementwise operation"),
    }
}
