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
//! passes the gradient to `x` on the closed interval `[lo, hi]`, `max`/`min` split
//! the gradient evenly between tied operands (and the reductions `max`, `max_axis`,
//! ... among tied elements), and `signum`, `floor`, `ceil`, `round`, `trunc` give 0
//! everywhere. Where a formula would divide by zero,
//! each rule states its value next to it (`hypot(0, 0)`, the norm of a zero tensor,
//! `powi`/`powf` with exponent 0, `powf` with a zero base, `clamp` and `max`/`min` of
//! NaN); the tape's rules give the same bits there (`tests/edge_points.rs`).
//!
//! Domain edges keep the formula's value, as PyTorch does: `sqrt'(0) = 1 / (2 * 0) =
//! +inf`, `ln'(0) = 1 / 0 = +inf`, and outside the domain `ln'(x) = 1 / x` even though
//! the value is NaN. A zero adjoint is a strong zero: it contributes exactly 0 through
//! any partial, so `0 * inf` never turns a finite primal's gradient into NaN
//! (`tests/nonfinite.rs`). The structural products (`dot`, `matmul`, the norm's
//! `a * dy / y`) multiply as BLAS does on both paths: there a zero adjoint meeting an
//! infinite operand still gives NaN.

use crate::adjoint::Builder;
use crate::ir::{BinOp, FloatTy, Id, MathFn, Op, Reduction, Ty};

/// The contributions of node `id`'s adjoint `dy` to its operands' adjoints, as pairs
/// `(operand, contribution)`. Operands that are not differentiable may appear; the
/// caller skips them.
pub fn pullback(b: &mut Builder<'_>, id: Id, dy: Id) -> Vec<(Id, Id)> {
    let node = b.func.node(id).clone();
    let ty = node.ty;
    let y = id;
    match node.op {
        Op::Param(_) | Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::Not(_) => vec![],
        // Loops and memory are reversed by `adjoint.rs` itself.
        Op::Arg(_)
        | Op::For { .. }
        | Op::Alloc { .. }
        | Op::Elems(..)
        | Op::ZerosLike(_)
        | Op::SeedBuf(_)
        | Op::Matches(..)
        | Op::Load(..)
        | Op::Store(..)
        | Op::Grow(_)
        | Op::Len(_)
        | Op::Push(..)
        | Op::Pop(_)
        | Op::Restore(..)
        | Op::View(..)
        | Op::AccMem { .. }
        | Op::Effect { .. }
        // Calls with `&mut` arguments are reversed by `adjoint.rs` itself.
        | Op::MutSeed(_)
        | Op::Snapshot(_)
        | Op::MutCall { .. }
        | Op::MutOut(..)
        | Op::MutCallVjp { .. }
        // Tuples: an element's adjoint is gathered into the seed of the call that made
        // the tuple (`adjoint.rs`).
        | Op::Pack(_)
        | Op::Elem(..)
        | Op::SeedElem(..) => vec![],
        // d(-a) = -da
        Op::Neg(a) => vec![(a, b.neg(dy))],
        // d(a + c) = da + dc
        Op::Binary(BinOp::Add, a, c) => vec![(a, dy), (c, dy)],
        // d(a - c) = da - dc
        Op::Binary(BinOp::Sub, a, c) => {
            let dc = b.neg(dy);
            vec![(a, dy), (c, dc)]
        }
        // d(a c) = c da + a dc   (strong zeros: a detached infinite `c` cut off
        // downstream by `min` gives `a` exactly 0, not 0 * inf)
        Op::Binary(BinOp::Mul, a, c) => {
            let da = scale_product(b, dy, c, ty);
            let dc = scale_product(b, dy, a, ty);
            vec![(a, da), (c, dc)]
        }
        // d(a / c) = da / c - (a / c) dc / c = r da - y r dc with r = 1 / c, the
        // tape's partials (strong zeros)
        Op::Binary(BinOp::Div, a, c) => {
            let one = b.constant(1.0, ty);
            let r = b.div(one, c);
            let da = scale_product(b, dy, r, ty);
            let yr = b.mul(y, r);
            let pc = b.neg(yr);
            let dc = scale_product(b, dy, pc, ty);
            vec![(a, da), (c, dc)]
        }
        // Integer `%` and comparisons carry no gradient (float `%` is rejected by lowering).
        Op::Binary(_, _, _) => vec![],
        // A constant expression: nothing differentiable in or out.
        Op::Apply(..) => vec![],
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
        // y = g(a..) with a tuple result: the same, `dy` the tuple of the elements'
        // adjoints (`adjoint::seed_of_tuple_call`).
        // An array or `Vec` result: `dy` is its adjoint memory.
        Op::Call { path, args, .. } if matches!(ty, Ty::Tensor(_) | Ty::Tuple | Ty::Buf(_)) => {
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
                    let g = b.call_grad(call, index as u32, of, t);
                    if t.is_memory() {
                        // Added into memory by `adjoint.rs` as `scale * g`; the seed is
                        // already in `g`.
                        let one = b.constant(1.0, Ty::Float(t.float().unwrap_or(FloatTy::F64)));
                        (a, b.push_op(Op::Binary(BinOp::Mul, one, g), t))
                    } else {
                        (a, g)
                    }
                })
                .collect()
        }
        // y = g(a..) in a loop, with memory arguments that still hold in the reverse
        // sweep what the call read: `g_vjp(a.., 1)` is called there, not in the forward
        // sweep, so no gradient `Vec` per iteration is saved (the forward calls `g`).
        Op::Call { path, args, .. } if matches!(ty, Ty::Float(_)) && b.replay_call(id, &args) => {
            let diff: Vec<Id> = args
                .iter()
                .copied()
                .filter(|a| b.func.node(*a).ty.is_differentiable())
                .collect();
            let one = b.constant(1.0, ty);
            let call = b.call_vjp(path, &args, one);
            let of = diff.len() as u32;
            diff.into_iter()
                .enumerate()
                .map(|(index, a)| {
                    let t = b.func.node(a).ty;
                    let g = b.call_grad(call, index as u32, of, t);
                    if t.is_memory() {
                        (a, b.push_op(Op::Binary(BinOp::Mul, dy, g), t))
                    } else {
                        (a, scale(b, dy, g, ty))
                    }
                })
                .collect()
        }
        Op::Call { args, .. } => {
            let mut out = Vec::new();
            let grads = call_grads(b, id);
            let floats = args.iter().filter(|a| {
                let t = b.func.node(**a).ty;
                matches!(t, Ty::Float(_) | Ty::Tensor(_)) || t.is_memory()
            });
            for (arg, g) in floats.copied().collect::<Vec<_>>().into_iter().zip(grads) {
                if b.func.node(arg).ty.is_memory() {
                    // A slice argument's gradient is added into memory by
                    // `adjoint.rs`, scaled there: `dy * g` names the contribution.
                    let t = b.func.node(g).ty;
                    out.push((arg, b.push_op(Op::Binary(BinOp::Mul, dy, g), t)));
                    continue;
                }
                let d = scale(b, dy, g, ty);
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
        // y = a.max_axis(k) (min_axis): along each line of axis k, the elements equal
        // to y there share dy evenly (the full reduction's rule, line by line)
        Op::ReduceAxis(Reduction::Max | Reduction::Min, a, k) => {
            let t = b.func.node(a).ty;
            vec![(a, b.push_op(Op::ExtremumAxisGrad(a, y, dy, k), t))]
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
        | Op::ExtremumAxisGrad(..)
        | Op::MatMulGrad { .. }
        | Op::CallVjp { .. } => vec![],
    }
}

/// The [`Op::CallGrad`] nodes that lowering placed right after the call `id`.
fn call_grads(b: &Builder<'_>, id: Id) -> Vec<Id> {
    // Lowering pushes them right after the call, but a tensor-typed one is followed by
    // its `ShapeOf` node: collect them all by index, never stop at the first other node
    // (stopping there lost the gradients of every argument after a tensor argument).
    let mut grads: Vec<(u32, Id)> = (id.0 + 1..b.func.nodes.len() as u32)
        .map(Id)
        .filter_map(|g| match b.func.node(g).op {
            Op::CallGrad { call, index, .. } if call == id => Some((index, g)),
            _ => None,
        })
        .collect();
    grads.sort_by_key(|&(index, _)| index);
    grads.into_iter().map(|(_, g)| g).collect()
}

/// The pullback of a float method. The rules that only route `dy` (`relu`, `abs`,
/// `clamp`, `min`, `max`) select it or 0; every other rule is `dy` times a partial
/// computed from primal values (as the tape stores it), with strong zeros: where `dy`
/// is 0 the contribution is exactly 0, even where the partial is infinite or NaN
/// (`sqrt'(0)`, `ln'(0)`, `exp'` of an infinity).
fn math(b: &mut Builder<'_>, f: MathFn, args: &[Id], ty: Ty, y: Id, dy: Id) -> Vec<(Id, Id)> {
    if let Some(routed) = route(b, f, args, ty, dy) {
        return routed;
    }
    // A partial that can be infinite or NaN at a point where the primal is finite
    // (`sqrt'(0)`, `asin'(1)`, `powf` with a zero base, `atan2` at the origin) is
    // always guarded. Every other partial is infinite or NaN only where the function's
    // value or input is, so the primal is not finite there unless a routing rule
    // downstream cut it off: guarded only where such a routed zero may reach `dy`.
    let edge = matches!(
        f,
        MathFn::Sqrt
            | MathFn::Cbrt
            | MathFn::Asin
            | MathFn::Acos
            | MathFn::Powf
            | MathFn::Atan2
            | MathFn::Hypot
    );
    let guard = edge || b.may_be_routed_zero(dy);
    partials(b, f, args, ty, y)
        .into_iter()
        .map(|(x, p)| {
            (
                x,
                if guard {
                    scale(b, dy, p, ty)
                } else {
                    b.mul(dy, p)
                },
            )
        })
        .collect()
}

/// `dy * p`, exactly 0 where `dy` is 0 (see [`strong`]). A finite constant `p`
/// needs no guard: `0 * p` is already 0.
fn scale(b: &mut Builder<'_>, dy: Id, p: Id, ty: Ty) -> Id {
    let t = b.mul(dy, p);
    if finite_const(b, p) {
        return t;
    }
    strong(b, dy, t, ty)
}

/// [`scale`] for the partials of a product or quotient, which are operand values
/// (`c` for `a c`, `1 / c` for `a / c`): infinite only where an operand is, so the
/// primal is infinite or NaN there unless a routing rule downstream cut it off. The
/// guard is kept where such a routed zero may reach `dy`, and dropped elsewhere (most
/// products of most bodies), where it would only cost a compare and a select.
fn scale_product(b: &mut Builder<'_>, dy: Id, p: Id, ty: Ty) -> Id {
    if b.may_be_routed_zero(dy) {
        return scale(b, dy, p, ty);
    }
    b.mul(dy, p)
}

/// Whether `id` is a finite float constant (a literal such as the `2.0` of `x * 2.0`).
fn finite_const(b: &Builder<'_>, id: Id) -> bool {
    matches!(b.func.node(id).op, Op::Const(v) if v.is_finite())
}

/// `t = dy * p` where `dy` is nonzero, and exactly 0 where it is 0: a zero adjoint
/// contributes nothing, whatever the partial it meets. So a finite primal whose
/// derivative exists gets no NaN from `0 * inf` (`0.0 * x.sqrt()` at 0, an infinity
/// cut off by `min` or `clamp`), and runtime zeros behave as the symbolic zeros of
/// `simplify.rs` do. The tape skips zero adjoints the same way (`rules::scale` in
/// `ad-runtime/src/tape/`). The guard folds away where `dy` is a constant; on tensors
/// `emit.rs` writes `select(dy == 0, 0, dy * p)` as one `strong_mul(dy, p)`, which
/// reads `dy` once and keeps it fused.
fn strong(b: &mut Builder<'_>, dy: Id, t: Id, ty: Ty) -> Id {
    let zero = b.constant(0.0, ty);
    // A scalar filled to a shape (the pullback of `sum`/`mean`, maybe summed back onto
    // an operand's shape, which multiplies it by a count >= 1) is 0 exactly where the
    // scalar is: test the scalar, so the fill stays a broadcast scalar in the fused
    // kernel instead of being written out.
    let mut v = dy;
    while let Op::SumToShape(g, _) | Op::ReshapeTo(g, _) = b.func.node(v).op {
        v = g;
    }
    let v = match b.func.node(v).op {
        Op::Fill(s, _) => s,
        _ => dy,
    };
    let z = b.cmp(BinOp::Eq, v, zero);
    let guarded = b.select(z, zero, t);
    // The guard is 0 only where `t` already is: it makes no new routed zero.
    b.same_zeros(guarded, t);
    guarded
}

/// The rules that route `dy` (or 0) to their operands instead of scaling it.
fn route(b: &mut Builder<'_>, f: MathFn, args: &[Id], ty: Ty, dy: Id) -> Option<Vec<(Id, Id)>> {
    let x = args[0];
    let zero = b.constant(0.0, ty);
    Some(match f {
        // d |x| = sign(x) dx, with abs'(0) = 0 (PyTorch)
        MathFn::Abs => {
            let pos = b.cmp(BinOp::Gt, x, zero);
            let neg = b.cmp(BinOp::Lt, x, zero);
            let ndy = b.neg(dy);
            let inner = b.select(neg, ndy, zero);
            vec![(x, b.select(pos, dy, inner))]
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
        // d relu x = [x > 0] dx, with relu'(0) = 0 (PyTorch)
        MathFn::Relu => {
            let pos = b.cmp(BinOp::Gt, x, zero);
            vec![(x, b.select(pos, dy, zero))]
        }
        // signum, floor, ceil, round, trunc are piecewise constant: nothing flows back,
        // also at the jumps (PyTorch) and from an infinite dy. The tape's nodes for
        // them keep no edge to x.
        MathFn::Signum | MathFn::Floor | MathFn::Ceil | MathFn::Round | MathFn::Trunc => {
            vec![]
        }
        _ => return None,
    })
}

/// The partial derivatives `dy/d operand` of a float method that scales `dy`, from
/// primal values (`y` is the method's own value); the same formulas as the tape's
/// `rules::unary` and `rules::binary`.
fn partials(b: &mut Builder<'_>, f: MathFn, args: &[Id], ty: Ty, y: Id) -> Vec<(Id, Id)> {
    let x = args[0];
    let one = b.constant(1.0, ty);
    let zero = b.constant(0.0, ty);
    match f {
        // d sin x = cos x dx
        MathFn::Sin => vec![(x, b.math(MathFn::Cos, &[x], ty))],
        // d cos x = -sin x dx
        MathFn::Cos => {
            let s = b.math(MathFn::Sin, &[x], ty);
            vec![(x, b.neg(s))]
        }
        // d tan x = (1 + y^2) dx
        MathFn::Tan => {
            let yy = b.mul(y, y);
            vec![(x, b.add(one, yy))]
        }
        // d asin x = dx / sqrt(1 - x^2)
        MathFn::Asin => {
            let r = one_minus_sq_sqrt(b, x, ty);
            vec![(x, b.div(one, r))]
        }
        // d acos x = -dx / sqrt(1 - x^2)
        MathFn::Acos => {
            let r = one_minus_sq_sqrt(b, x, ty);
            let m = b.neg(one);
            vec![(x, b.div(m, r))]
        }
        // d atan x = dx / (1 + x^2)
        MathFn::Atan => {
            let xx = b.mul(x, x);
            let r = b.add(one, xx);
            vec![(x, b.div(one, r))]
        }
        // y = atan2(u, v): dy = (v du - u dv) / (u^2 + v^2)
        MathFn::Atan2 => {
            let (u, v) = (x, args[1]);
            let uu = b.mul(u, u);
            let vv = b.mul(v, v);
            let r = b.add(uu, vv);
            let r = b.div(one, r);
            let du = b.mul(v, r);
            let nu = b.neg(u);
            let dv = b.mul(nu, r);
            vec![(u, du), (v, dv)]
        }
        // d sinh x = cosh x dx
        MathFn::Sinh => vec![(x, b.math(MathFn::Cosh, &[x], ty))],
        // d cosh x = sinh x dx
        MathFn::Cosh => vec![(x, b.math(MathFn::Sinh, &[x], ty))],
        // d tanh x = (1 - y^2) dx
        MathFn::Tanh => {
            let yy = b.mul(y, y);
            vec![(x, b.sub(one, yy))]
        }
        // d e^x = y dx
        MathFn::Exp => vec![(x, y)],
        // d 2^x = y ln 2 dx
        MathFn::Exp2 => {
            let ln2 = b.constant(std::f64::consts::LN_2, ty);
            vec![(x, b.mul(y, ln2))]
        }
        // d ln x = dx / x: +inf at x = 0 (PyTorch), and 1/x also outside the domain
        MathFn::Ln => vec![(x, b.div(one, x))],
        // d log10 x = dx / (x ln 10)
        MathFn::Log10 => {
            let k = b.constant(std::f64::consts::LN_10, ty);
            let r = b.mul(x, k);
            vec![(x, b.div(one, r))]
        }
        // d log2 x = dx / (x ln 2)
        MathFn::Log2 => {
            let k = b.constant(std::f64::consts::LN_2, ty);
            let r = b.mul(x, k);
            vec![(x, b.div(one, r))]
        }
        // d sqrt x = dx / (2 y): +inf at x = 0 (PyTorch), NaN below it
        MathFn::Sqrt => {
            let r = b.add(y, y);
            vec![(x, b.div(one, r))]
        }
        // d cbrt x = dx / (3 y^2): +inf at x = 0
        MathFn::Cbrt => {
            let three = b.constant(3.0, ty);
            let r = b.mul(three, y);
            let r = b.mul(r, y);
            vec![(x, b.div(one, r))]
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
            // A literal exponent other than 0 needs no mask (nor a select, which
            // would count as a routing rule and guard every product downstream).
            if b.func.int_literal(n).is_some_and(|k| k != 0) {
                return vec![(x, d)];
            }
            let n_zero = b.cmp(BinOp::Eq, nf, zero);
            vec![(x, b.select(n_zero, zero, d))]
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
            let dx = b.select(p_zero, zero, d);
            let lnx = b.math(MathFn::Ln, &[x], ty);
            let e = b.mul(y, lnx);
            let x_zero = b.cmp(BinOp::Eq, x, zero);
            let p_pos = b.cmp(BinOp::Ge, p, zero);
            let mask = b.cmp(BinOp::And, x_zero, p_pos);
            let dp = b.select(mask, zero, e);
            vec![(x, dx), (p, dp)]
        }
        // d (1/x) = -y^2 dx
        MathFn::Recip => {
            let yy = b.mul(y, y);
            vec![(x, b.neg(yy))]
        }
        // y = hypot(u, v): dy = (u du + v dv) / y, and both partials 0 at the origin
        // (a subgradient, as for the norm of a zero vector; PyTorch's `u / y` would give
        // NaN there). The tape's `Op::Hypot` agrees.
        MathFn::Hypot => {
            let (u, v) = (x, args[1]);
            let at_zero = b.cmp(BinOp::Eq, y, zero);
            let pu = b.div(u, y);
            let pu = b.select(at_zero, zero, pu);
            let pv = b.div(v, y);
            let pv = b.select(at_zero, zero, pv);
            vec![(u, pu), (v, pv)]
        }
        // d (u v + w) = v du + u dv + dw
        MathFn::MulAdd => vec![(x, args[1]), (args[1], x), (args[2], one)],
        // d sigmoid x = y (1 - y) dx
        MathFn::Sigmoid => {
            let t = b.sub(one, y);
            vec![(x, b.mul(y, t))]
        }
        // d softplus x = sigmoid(x) dx
        MathFn::Softplus => vec![(x, b.math(MathFn::Sigmoid, &[x], ty))],
        // The routing rules are in `route`.
        MathFn::Abs
        | MathFn::Min
        | MathFn::Max
        | MathFn::Clamp
        | MathFn::Relu
        | MathFn::Signum
        | MathFn::Floor
        | MathFn::Ceil
        | MathFn::Round
        | MathFn::Trunc => vec![],
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
