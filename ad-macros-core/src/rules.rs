//! The one table of derivative rules: for each operation, its pullback expressed in IR
//! nodes. Given the adjoint `dy` of a node's value, a rule returns the contribution to
//! the adjoint of each operand; `adjoint.rs` accumulates them.
//!
//! The arms follow the order of [`Op`] and [`MathFn`]; each has its formula above it.
//! Rules reuse the primal node's own value (`y`) where the derivative is a function of
//! it (`exp`, `tanh`, `sqrt`, `sigmoid`, ...), so the reverse sweep recomputes nothing.
//! The tape's rules (`ad-runtime/src/tape/`) implement the same formulas.
//!
//! The same rules serve scalars and tensors: constants are scalars that broadcast,
//! a rule's contribution may have the result's (broadcast) shape, and
//! `adjoint.rs` fits each contribution to its operand (a sum for a scalar used in
//! tensor arithmetic, `sum_to_shape` for a broadcast tensor operand).
//!
//! Non-differentiable points follow PyTorch: `relu'(0) = 0`, `abs'(0) = 0`, `clamp`
//! passes the gradient to `x` on the closed interval `[lo, hi]`, and `max`/`min` split
//! the gradient evenly between tied operands.

use crate::adjoint::Builder;
use crate::ir::{BinOp, Id, MathFn, Op, Reduction, Ty};

/// The contributions of node `id`'s adjoint `dy` to its operands' adjoints, as pairs
/// `(operand, contribution)`. Operands that are not differentiable may appear; the
/// caller skips them.
pub fn pullback(b: &mut Builder<'_>, id: Id, dy: Id) -> Vec<(Id, Id)> {
    let node = b.func.node(id).clone();
    let ty = node.ty;
    let y = id;
    match node.op {
        Op::Param(_) | Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::Not(_) => vec![],
        // d(-a) = -da
        Op::Neg(a) => vec![(a, b.neg(dy))],
        // d(a + c) = da + dc
        Op::Binary(BinOp::Add, a, c) => vec![(a, dy), (c, dy)],
        // d(a - c) = da - dc
        Op::Binary(BinOp::Sub, a, c) => {
            let dc = b.neg(dy);
            vec![(a, dy), (c, dc)]
        }
        // d(a c) = c da + a dc
        Op::Binary(BinOp::Mul, a, c) => {
            let da = b.mul(dy, c);
            let dc = b.mul(dy, a);
            vec![(a, da), (c, dc)]
        }
        // d(a / c) = da / c - (a / c) dc / c = da / c - y dc / c
        Op::Binary(BinOp::Div, a, c) => {
            let da = b.div(dy, c);
            let t = b.mul(dy, y);
            let t = b.div(t, c);
            let dc = b.neg(t);
            vec![(a, da), (c, dc)]
        }
        // Integer `%` and comparisons carry no gradient (float `%` is rejected by lowering).
        Op::Binary(_, _, _) => vec![],
        // d(x as T) = (dy as U), for float-to-float casts; casts from integers are constants.
        Op::Cast(a, _) => match b.func.node(a).ty {
            Ty::Float(ft) => {
                let back = b.cast(dy, ft);
                vec![(a, back)]
            }
            _ => vec![],
        },
        // detach(x): the value flows, the gradient stops.
        Op::Detach(_) => vec![],
        // Only adjoint code creates selects; they are never differentiated.
        Op::Select(..) => vec![],
        // y = g(a..) through `g_vjp`: d y = sum_k (dg/da_k) da_k, with the partials read
        // from the forward call `g_vjp(a.., 1)` (the VJP of a scalar function is linear in
        // the seed, so one call in the forward sweep serves the reverse sweep).
        // y = g(a..) with a tensor result: `g_vjp(a.., dy)` in the reverse sweep.
        Op::Call { path, args, .. } if matches!(ty, Ty::Tensor(_)) => {
            let diff: Vec<Id> = args
                .iter()
                .copied()
                .filter(|a| b.func.node(*a).ty.is_differentiable())
                .collect();
            let call = b.call_vjp(path, &args, dy);
            let of = diff.len() as u32;
            diff.into_iter()
                .enumerate()
                .map(|(index, a)| {
                    let t = b.func.node(a).ty;
                    (a, b.call_grad(call, index as u32, of, t))
                })
                .collect()
        }
        Op::Call { args, .. } => {
            let mut out = Vec::new();
            let grads = call_grads(b, id);
            let floats = args
                .iter()
                .filter(|a| matches!(b.func.node(**a).ty, Ty::Float(_) | Ty::Tensor(_)));
            for (arg, g) in floats.copied().collect::<Vec<_>>().into_iter().zip(grads) {
                let d = b.mul(dy, g);
                out.push((arg, d));
            }
            out
        }
        // Partials are read once in the forward sweep; second derivatives are not taken.
        Op::CallGrad { .. } => vec![],
        // Structured nodes are reversed by `adjoint.rs` itself.
        Op::If { .. } | Op::Proj(..) => vec![],
        Op::Math(f, args) => math(b, f, &args, ty, y, dy),
        // C = A B: dA = dC Bᵀ, dB = Aᵀ dC (outer products and matrix-vector products in
        // the 1-d cases; the runtime dispatches on the ranks).
        Op::MatMul(a, c) => {
            let (sa, sc) = (b.shape_of(a), b.shape_of(c));
            let da = b.matmul_grad(true, dy, c, sa, ty);
            let dc = b.matmul_grad(false, a, dy, sc, ty);
            vec![(a, da), (c, dc)]
        }
        // d (a · c) = c da + a dc
        Op::Dot(a, c) => {
            let da = b.mul(dy, c);
            let dc = b.mul(dy, a);
            vec![(a, da), (c, dc)]
        }
        // d aᵀ = (da)ᵀ
        Op::Transpose(a) => vec![(a, b.push_op(Op::Transpose(dy), ty))],
        // reshape moves no element: the gradient takes the operand's shape back
        Op::Reshape(a, _) => {
            let s = b.shape_of(a);
            vec![(a, b.push_op(Op::ReshapeTo(dy, s), ty))]
        }
        // d Σa = Σ da: every element gets dy
        Op::Reduce(Reduction::Sum, a) => {
            let s = b.shape_of(a);
            vec![(a, b.fill(dy, s, a))]
        }
        // d mean(a) = Σ da / n
        Op::Reduce(Reduction::Mean, a) => {
            let s = b.shape_of(a);
            let n = b.push_op(Op::Numel(s), ty);
            let g = b.div(dy, n);
            vec![(a, b.fill(g, s, a))]
        }
        // d ‖a‖ = <a, da> / ‖a‖, and 0 where ‖a‖ = 0 (a subgradient; PyTorch masks the
        // zero norm the same way, where the formula would give 0 / 0 = NaN). The tape's
        // `Op::Norm` in `backward.rs` computes the same `a * (dy / y)`.
        Op::Reduce(Reduction::Norm, a) => {
            let zero = b.constant(0.0, ty);
            let at_zero = b.cmp(BinOp::Eq, y, zero);
            let g = b.div(dy, y);
            let g = b.select(at_zero, zero, g);
            vec![(a, b.mul(a, g))]
        }
        // y = max a (min a): the elements equal to y share dy evenly (PyTorch's rule for
        // ties of a full reduction)
        Op::Reduce(Reduction::Max | Reduction::Min, a) => {
            let hit = b.cmp(BinOp::Eq, a, y);
            let (one, zero) = (b.constant(1.0, ty), b.constant(0.0, ty));
            let ones = b.select(hit, one, zero);
            let count = b.push_op(Op::Reduce(Reduction::Sum, ones), ty);
            let share = b.div(dy, count);
            vec![(a, b.select(hit, share, zero))]
        }
        // d a.sum_axis(k) = da.sum_axis(k): dy repeated along axis k
        Op::ReduceAxis(r, a, k) => {
            let s = b.shape_of(a);
            let g = b.push_op(Op::ExpandAxis(dy, s, k), b.func.node(a).ty);
            match r {
                Reduction::Mean => {
                    let ft = ty.float().map_or(Ty::Opaque, Ty::Float);
                    let n = b.push_op(Op::AxisLen(s, k), ft);
                    vec![(a, b.div(g, n))]
                }
                _ => vec![(a, g)],
            }
        }
        // Shapes, and the nodes only the reverse sweep creates, carry no gradient.
        Op::ShapeOf(_)
        | Op::Numel(_)
        | Op::AxisLen(..)
        | Op::Fill(..)
        | Op::SumToShape(..)
        | Op::ReshapeTo(..)
        | Op::ExpandAxis(..)
        | Op::MatMulGrad { .. }
        | Op::CallVjp { .. } => vec![],
    }
}

/// The [`Op::CallGrad`] nodes that lowering placed right after the call `id`.
fn call_grads(b: &Builder<'_>, id: Id) -> Vec<Id> {
    (id.0 + 1..b.func.nodes.len() as u32)
        .map(Id)
        .take_while(|g| matches!(b.func.node(*g).op, Op::CallGrad { call, .. } if call == id))
        .collect()
}

fn math(b: &mut Builder<'_>, f: MathFn, args: &[Id], ty: Ty, y: Id, dy: Id) -> Vec<(Id, Id)> {
    let x = args[0];
    let one = b.constant(1.0, ty);
    let zero = b.constant(0.0, ty);
    match f {
        // d sin x = cos x dx
        MathFn::Sin => {
            let c = b.math(MathFn::Cos, &[x], ty);
            vec![(x, b.mul(dy, c))]
        }
        // d cos x = -sin x dx
        MathFn::Cos => {
            let s = b.math(MathFn::Sin, &[x], ty);
            let t = b.mul(dy, s);
            vec![(x, b.neg(t))]
        }
        // d tan x = (1 + y^2) dx
        MathFn::Tan => {
            let yy = b.mul(y, y);
            let t = b.add(one, yy);
            vec![(x, b.mul(dy, t))]
        }
        // d asin x = dx / sqrt(1 - x^2)
        MathFn::Asin => {
            let r = one_minus_sq_sqrt(b, x, ty);
            vec![(x, b.div(dy, r))]
        }
        // d acos x = -dx / sqrt(1 - x^2)
        MathFn::Acos => {
            let r = one_minus_sq_sqrt(b, x, ty);
            let t = b.div(dy, r);
            vec![(x, b.neg(t))]
        }
        // d atan x = dx / (1 + x^2)
        MathFn::Atan => {
            let xx = b.mul(x, x);
            let r = b.add(one, xx);
            vec![(x, b.div(dy, r))]
        }
        // y = atan2(u, v): dy = (v du - u dv) / (u^2 + v^2)
        MathFn::Atan2 => {
            let (u, v) = (x, args[1]);
            let uu = b.mul(u, u);
            let vv = b.mul(v, v);
            let r = b.add(uu, vv);
            let s = b.div(dy, r);
            let du = b.mul(s, v);
            let t = b.mul(s, u);
            let dv = b.neg(t);
            vec![(u, du), (v, dv)]
        }
        // d sinh x = cosh x dx
        MathFn::Sinh => {
            let c = b.math(MathFn::Cosh, &[x], ty);
            vec![(x, b.mul(dy, c))]
        }
        // d cosh x = sinh x dx
        MathFn::Cosh => {
            let s = b.math(MathFn::Sinh, &[x], ty);
            vec![(x, b.mul(dy, s))]
        }
        // d tanh x = (1 - y^2) dx
        MathFn::Tanh => {
            let yy = b.mul(y, y);
            let t = b.sub(one, yy);
            vec![(x, b.mul(dy, t))]
        }
        // d e^x = y dx
        MathFn::Exp => vec![(x, b.mul(dy, y))],
        // d 2^x = y ln 2 dx
        MathFn::Exp2 => {
            let ln2 = b.constant(std::f64::consts::LN_2, ty);
            let t = b.mul(dy, y);
            vec![(x, b.mul(t, ln2))]
        }
        // d ln x = dx / x
        MathFn::Ln => vec![(x, b.div(dy, x))],
        // d log10 x = dx / (x ln 10)
        MathFn::Log10 => {
            let k = b.constant(std::f64::consts::LN_10, ty);
            let r = b.mul(x, k);
            vec![(x, b.div(dy, r))]
        }
        // d log2 x = dx / (x ln 2)
        MathFn::Log2 => {
            let k = b.constant(std::f64::consts::LN_2, ty);
            let r = b.mul(x, k);
            vec![(x, b.div(dy, r))]
        }
        // d sqrt x = dx / (2 y)
        MathFn::Sqrt => {
            let two = b.constant(2.0, ty);
            let r = b.mul(two, y);
            vec![(x, b.div(dy, r))]
        }
        // d cbrt x = dx / (3 y^2)
        MathFn::Cbrt => {
            let three = b.constant(3.0, ty);
            let yy = b.mul(y, y);
            let r = b.mul(three, yy);
            vec![(x, b.div(dy, r))]
        }
        // d x^n = n x^(n-1) dx   (n an integer, literal or runtime), and exactly 0 for
        // n = 0, where the formula gives 0 * 0^-1 = NaN at x = 0: PyTorch's `pow` backward
        // masks the exponent 0. Same as the tape's `Op::Powi` in `tape/rules.rs`.
        MathFn::Powi => {
            let n = args[1];
            let nf = b.cast_int(n, ty);
            let n1 = b.int_sub_one(n);
            let p = b.math(MathFn::Powi, &[x, n1], ty);
            let d = b.mul(nf, p);
            let n_zero = b.cmp(BinOp::Eq, nf, zero);
            let d = b.select(n_zero, zero, d);
            vec![(x, b.mul(dy, d))]
        }
        // y = x^p: dy = p x^(p-1) dx + y ln x dp, with PyTorch's two masks:
        // - dy/dx = 0 where p = 0 (x^0 is constant; the formula gives 0 * 0^-1 = NaN at
        //   x = 0);
        // - dy/dp = 0 where x = 0 and p >= 0 (0^p is constant in p > 0, and 0^0 = 1 takes
        //   the limit from the right); at x = 0, p < 0 it stays inf * -inf = -inf, and at
        //   x < 0 it is NaN (ln x), as the real function has no derivative in p there.
        // The tape's `Op::Pow` and `Op::Powf` (`tape/rules.rs`) apply the same masks.
        MathFn::Powf => {
            let p = args[1];
            let p1 = b.sub(p, one);
            let xp = b.math(MathFn::Powf, &[x, p1], ty);
            let d = b.mul(p, xp);
            let p_zero = b.cmp(BinOp::Eq, p, zero);
            let d = b.select(p_zero, zero, d);
            let dx = b.mul(dy, d);
            let lnx = b.math(MathFn::Ln, &[x], ty);
            let e = b.mul(y, lnx);
            let x_zero = b.cmp(BinOp::Eq, x, zero);
            let p_pos = b.cmp(BinOp::Ge, p, zero);
            let mask = b.cmp(BinOp::And, x_zero, p_pos);
            let e = b.select(mask, zero, e);
            let dp = b.mul(dy, e);
            vec![(x, dx), (p, dp)]
        }
        // d (1/x) = -y^2 dx
        MathFn::Recip => {
            let yy = b.mul(y, y);
            let t = b.mul(dy, yy);
            vec![(x, b.neg(t))]
        }
        // d |x| = sign(x) dx, with abs'(0) = 0
        MathFn::Abs => {
            let pos = b.cmp(BinOp::Gt, x, zero);
            let neg = b.cmp(BinOp::Lt, x, zero);
            let ndy = b.neg(dy);
            let inner = b.select(neg, ndy, zero);
            vec![(x, b.select(pos, dy, inner))]
        }
        // y = hypot(u, v): dy = (u du + v dv) / y, and both partials 0 at the origin
        // (a subgradient, as for the norm of a zero vector; PyTorch's `u / y` would give
        // NaN there). The partials `u / y`, `v / y` are formed before the product with
        // `dy`, as the tape's `Op::Hypot` does, so both paths give the same bits.
        MathFn::Hypot => {
            let (u, v) = (x, args[1]);
            let at_zero = b.cmp(BinOp::Eq, y, zero);
            let pu = b.div(u, y);
            let pu = b.select(at_zero, zero, pu);
            let pv = b.div(v, y);
            let pv = b.select(at_zero, zero, pv);
            let du = b.mul(dy, pu);
            let dv = b.mul(dy, pv);
            vec![(u, du), (v, dv)]
        }
        // y = min(u, v): the gradient goes to the smaller operand; ties split it evenly.
        // A NaN operand loses (`f64::min` returns the other one); two NaNs split it.
        MathFn::Min => pick(b, BinOp::Lt, x, args[1], dy, ty),
        // y = max(u, v): the gradient goes to the larger operand; ties split it evenly.
        // A NaN operand loses (`f64::max` returns the other one); two NaNs split it.
        MathFn::Max => pick(b, BinOp::Gt, x, args[1], dy, ty),
        // y = clamp(x, lo, hi): dx = dy on lo <= x <= hi (closed), else the bound it hit
        // gets it. A NaN x passes through the value (as `f64::clamp`) and gives nothing
        // to x, lo or hi, as no comparison holds (PyTorch's `clamp` backward: 0 at NaN).
        MathFn::Clamp => {
            let (lo, hi) = (args[1], args[2]);
            let ge = b.cmp(BinOp::Ge, x, lo);
            let le = b.cmp(BinOp::Le, x, hi);
            let inside = b.cmp(BinOp::And, ge, le);
            let dx = b.select(inside, dy, zero);
            let below = b.cmp(BinOp::Lt, x, lo);
            let dlo = b.select(below, dy, zero);
            let above = b.cmp(BinOp::Gt, x, hi);
            let dhi = b.select(above, dy, zero);
            vec![(x, dx), (lo, dlo), (hi, dhi)]
        }
        // d (u v + w) = v du + u dv + dw
        MathFn::MulAdd => {
            let (u, v, w) = (x, args[1], args[2]);
            let du = b.mul(dy, v);
            let dv = b.mul(dy, u);
            vec![(u, du), (v, dv), (w, dy)]
        }
        // d relu x = [x > 0] dx, with relu'(0) = 0
        MathFn::Relu => {
            let pos = b.cmp(BinOp::Gt, x, zero);
            vec![(x, b.select(pos, dy, zero))]
        }
        // d sigmoid x = y (1 - y) dx
        MathFn::Sigmoid => {
            let t = b.sub(one, y);
            let t = b.mul(y, t);
            vec![(x, b.mul(dy, t))]
        }
        // d softplus x = sigmoid(x) dx
        MathFn::Softplus => {
            let s = b.math(MathFn::Sigmoid, &[x], ty);
            vec![(x, b.mul(dy, s))]
        }
    }
}

/// `sqrt(1 - x^2)`
fn one_minus_sq_sqrt(b: &mut Builder<'_>, x: Id, ty: Ty) -> Id {
    let one = b.constant(1.0, ty);
    let xx = b.mul(x, x);
    let t = b.sub(one, xx);
    b.math(MathFn::Sqrt, &[t], ty)
}

/// The pullback of `max` (`wins = Gt`) or `min` (`wins = Lt`): the operand whose value
/// is the result takes `dy`. An operand loses when the other wins the comparison or
/// when it is NaN (Rust's `max`/`min` return the other operand); when neither or both
/// lose (a tie, or two NaNs) each gets `dy / 2`. The tape's `Op::Max`/`Op::Min` decide
/// the same way.
fn pick(b: &mut Builder<'_>, wins: BinOp, u: Id, v: Id, dy: Id, ty: Ty) -> Vec<(Id, Id)> {
    let zero = b.constant(0.0, ty);
    let half = b.constant(0.5, ty);
    let hdy = b.mul(dy, half);
    let v_beats = b.cmp(wins, v, u);
    let u_nan = b.cmp(BinOp::Ne, u, u);
    let u_loses = b.cmp(BinOp::Or, v_beats, u_nan);
    let u_beats = b.cmp(wins, u, v);
    let v_nan = b.cmp(BinOp::Ne, v, v);
    let v_loses = b.cmp(BinOp::Or, u_beats, v_nan);
    // u loses: 0, or a half share if v loses too; u alone wins: dy; neither: a half share.
    let lost = b.select(v_loses, hdy, zero);
    let kept = b.select(v_loses, dy, hdy);
    let du = b.select(u_loses, lost, kept);
    let lost = b.select(u_loses, hdy, zero);
    let kept = b.select(u_loses, dy, hdy);
    let dv = b.select(v_loses, lost, kept);
    vec![(u, du), (v, dv)]
}
