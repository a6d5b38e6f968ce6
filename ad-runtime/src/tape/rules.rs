//! The operations a tape records, their PyTorch-style names, and the table of
//! elementwise derivative rules.
//!
//! Every elementwise operation (scalar or tensor) gets its local partial
//! derivatives from [`unary`] or [`binary`] below: for a scalar node they are
//! computed at record time and stored in the node; for a tensor node they are
//! computed element by element, also at record time, and kept as tensors. The
//! rules of the structural operations (reductions, matmul, reshape, ...) live in
//! the one `match` of `backward.rs`.
//!
//! The conventions where a formula would divide by zero or meet NaN (`hypot` at
//! the origin, `powi`/`pow` with exponent 0 or a zero base, `clamp` and
//! `max`/`min` of NaN) are stated next to each rule; the macro's rule table
//! (`ad-macros-core/src/rules.rs`) gives the same bits there. Domain edges keep
//! the formula's value as PyTorch does (`sqrt'(0) = ln'(0) = +inf`), and the
//! backward pass multiplies an adjoint by these partials through [`scale`], so a
//! zero adjoint contributes exactly 0 even through an infinite partial.

use crate::float::Float;

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
            Op::Mul => "MulBackward",
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
            Op::Mul => "mul",
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
