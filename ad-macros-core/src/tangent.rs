//! The forward sweep: rebuilds a [`Func`] with the tangent of each active value
//! computed right after it, in the same region (forward mode, JAX's `jvp`).
//!
//! It runs on a primal (`NAME_jvp`) and on a primal + reverse sweep built with seed 1
//! (`NAME_hvp`: the tangent of the gradient along `v` is the Hessian-vector product,
//! forward over reverse, in one pass). Tangents are SSA values of the same arena:
//! `tan[x]` is the new id of the tangent of new node `x`, and a value without one has
//! a zero tangent.
//!
//! One table serves both modes. For the elementwise operations the pullbacks of
//! `rules.rs` are linear maps that are their own transposes (a partial times the
//! adjoint, or the adjoint routed by a comparison), so the tangent of `y = op(a, c)` is
//! the sum, over its active operands `o`, of the pullback's contribution to `o` with
//! the adjoint set to `o`'s tangent. The structural operations whose pullback is not
//! self-transposed (products, reductions, layout, the reverse sweep's shape nodes)
//! have their pushforward here, each next to its formula. The random-program tester
//! holds the two modes against each other by `<u, J v> = <J^T u, v>`.
//!
//! Loops carry the tangents of their active carried values as more carried values; an
//! `if` yields the tangents of its active results; an active buffer (local, or a slice
//! parameter) has a tangent buffer that every store and load mirrors; a value pushed
//! on a stack has its tangent pushed on a stack of its own; a call `g(a..)` of a
//! function with an active argument becomes `g_jvp(a.., da..)`.
//!
//! Before/after, for `y = x.sin() * x` with the tangent `dx` of `x` (`%0`):
//!
//! ```text
//! %1 = sin %0          %1 = sin %0
//! %2 = %1 * %0         %2 = cos %0 ; adj
//!                      %3 = dx * %2 ; adj      (the tangent of %1)
//!                      %4 = %1 * %0
//!                      %5 = %3 * %0 ; adj
//!                      %6 = dx * %1 ; adj
//!                      %7 = %5 + %6 ; adj      (the tangent of %4)
//! ```

use crate::adjoint::{activity, useful_for, Builder};
use crate::ir::{BinOp, Func, Id, MathFn, Node, Op, Origin, Reduction, Region, Ty};
use crate::parse::{Param, Signature};
use crate::rules;
use proc_macro2::{Ident, Span};
use std::collections::HashMap;

/// Which companion the forward sweep is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// `NAME_jvp`: the tangent of the result.
    Jvp,
    /// `NAME_hvp`: the tangents of the gradients of a primal + reverse sweep.
    Hvp,
}

/// The signature of the companion: the parameters followed by one tangent parameter
/// per differentiated parameter, of its type (`dx` for `_jvp`, `vx` for `_hvp`, or
/// `__ad_dx` when a parameter already has that name). The tangents are constants of
/// the companion (`diff: false`).
pub fn extend(sig: &Signature, mode: Mode) -> Signature {
    let mut out = sig.clone();
    let prefix = match mode {
        Mode::Jvp => "d",
        Mode::Hvp => "v",
    };
    for (_, p) in sig.diff_params() {
        let name = format!("{prefix}{}", p.ident);
        let name = if sig.params.iter().any(|q| q.ident == name) {
            format!("__ad_{name}")
        } else {
            name
        };
        out.params.push(Param {
            ident: Ident::new(&name, p.ident.span()),
            diff: false,
            ..p.clone()
        });
    }
    out
}

/// Why a function has no forward sweep: the span to point at and the reason.
pub type Refusal = (Span, String);

/// The forward sweep of `src`: the outputs become `src`'s outputs followed by the
/// tangents of `src.outputs[from..]` (the result for [`Mode::Jvp`], the gradients for
/// [`Mode::Hvp`]). `ext` is [`extend`]ed `sig`: tangent parameter `j` is
/// `Op::Param(sig.params.len() + j)`.
pub fn build(src: &Func, sig: &Signature, mode: Mode) -> Result<Func, Refusal> {
    let from = match mode {
        Mode::Jvp => 0,
        Mode::Hvp => 1,
    };
    let n_out = match mode {
        Mode::Jvp => 1,
        Mode::Hvp => 1 + sig.diff_params().count(),
    };
    if sig.has_mut() || src.outputs.len() != n_out {
        // Only `&mut` parameters add outputs (their final values).
        let span = sig
            .params
            .iter()
            .find(|p| p.mutable)
            .map_or(sig.ident.span(), |p| p.ident.span());
        return Err((
            span,
            "a function with `&mut` parameters has no forward-mode companions (`_jvp`, `_hvp`) yet"
                .into(),
        ));
    }
    // Only the values that reach an output whose tangent is wanted need one.
    let needed = useful_for(src, &src.outputs[from..]);
    let active: Vec<bool> = forward_activity(src, sig)
        .into_iter()
        .zip(needed)
        .map(|(a, u)| a && u)
        .collect();
    let active_projs = src
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.op {
            Op::Proj(s, k) if active[i] => Some((s, k)),
            _ => None,
        })
        .collect();
    let mut func = Func {
        stacks: src.stacks.clone(),
        opaque: src.opaque.clone(),
        paths: src.paths.clone(),
        arg_refs: src.arg_refs.clone(),
        ..Func::default()
    };
    let span = src
        .outputs
        .first()
        .map_or(sig.ident.span(), |o| src.node(*o).span);
    let mut t = Sweep {
        src,
        mode,
        b: Builder::forward(&mut func, span),
        active,
        map: vec![None; src.nodes.len()],
        tan: HashMap::new(),
        stacks: HashMap::new(),
        jvp_paths: HashMap::new(),
        hvps: HashMap::new(),
        skipped: vec![false; src.nodes.len()],
        proj: HashMap::new(),
        trips: HashMap::new(),
        active_projs,
        params: HashMap::new(),
    };
    // Tangent parameter `j` of the `j`-th differentiated parameter.
    let n = sig.params.len() as u32;
    for (j, (k, p)) in sig.diff_params().enumerate() {
        t.params.insert(k as u32, (n + j as u32, p.kind));
    }
    let body = t.region(&src.body)?;
    let mut outputs: Vec<Id> = src.outputs.iter().map(|&o| t.get(o)).collect();
    for &o in &src.outputs[from..] {
        let o = t.get(o);
        let d = t.tangent_or_zero(o)?;
        outputs.push(d);
    }
    let nodes = t.b.close();
    drop(t);
    func.body = Region {
        nodes,
        yields: body.yields,
        args: Vec::new(),
    };
    func.outputs = outputs;
    debug_assert_eq!(func.verify(), Ok(()));
    Ok(func)
}

/// Forward activity, extended to the nodes of a reverse sweep: a value saved on a
/// stack is active when its pop is, adjoint memory when an active contribution is
/// added into it, the partials of a call when the call's arguments are.
fn forward_activity(func: &Func, sig: &Signature) -> Vec<bool> {
    let mut active = activity(func, sig);
    let mut stacks = vec![false; func.stacks.len()];
    loop {
        let mut changed = false;
        let set = |active: &mut Vec<bool>, i: usize, changed: &mut bool| {
            if !active[i] {
                active[i] = true;
                *changed = true;
            }
        };
        for (i, node) in func.nodes.iter().enumerate() {
            let any = |a: &[Id]| a.iter().any(|x| active[x.idx()]);
            match &node.op {
                Op::Push(k, v) if active[v.idx()] && !stacks[*k as usize] => {
                    stacks[*k as usize] = true;
                    changed = true;
                }
                Op::Pop(k) if stacks[*k as usize] => set(&mut active, i, &mut changed),
                Op::Store(b, _, v) if active[v.idx()] => set(&mut active, b.idx(), &mut changed),
                Op::AccMem { dst, g, scale, .. } if any(&[*g, *scale]) => {
                    set(&mut active, dst.idx(), &mut changed)
                }
                Op::CallGrad { call, .. } if any(&func.node(*call).op.operands()) => {
                    set(&mut active, i, &mut changed)
                }
                Op::Select(_, a, b) if any(&[*a, *b]) => set(&mut active, i, &mut changed),
                Op::ZerosLike(_) | Op::Restore(..) => {}
                Op::CallVjp { args, seed, .. } if any(args) || active[seed.idx()] => {
                    set(&mut active, i, &mut changed)
                }
                Op::Load(b, _) | Op::View(b, _, _) if active[b.idx()] => {
                    set(&mut active, i, &mut changed)
                }
                Op::Arg(_) | Op::Proj(..) | Op::If { .. } | Op::For { .. } => {}
                op if node.ty.is_differentiable()
                    && !matches!(op, Op::Detach(_) | Op::Param(_) | Op::Const(_))
                    && op.operands().iter().any(|a| active[a.idx()]) =>
                {
                    set(&mut active, i, &mut changed)
                }
                _ => {}
            }
        }
        // Carried values and the results of structured nodes.
        for (i, node) in func.nodes.iter().enumerate() {
            match &node.op {
                Op::For { inits, body, .. } => {
                    for (k, &a) in body.args.iter().enumerate().skip(1) {
                        let on = inits.get(k - 1).is_some_and(|x| active[x.idx()])
                            || body.yields.get(k - 1).is_some_and(|y| active[y.idx()]);
                        if on && !active[a.idx()] {
                            active[a.idx()] = true;
                            changed = true;
                        }
                    }
                }
                Op::Proj(s, k) => {
                    let k = *k as usize;
                    let on = match &func.node(*s).op {
                        Op::If { then, else_, .. } => {
                            then.yields.get(k).is_some_and(|y| active[y.idx()])
                                || else_.yields.get(k).is_some_and(|y| active[y.idx()])
                        }
                        Op::For { inits, body, .. } => {
                            inits.get(k).is_some_and(|x| active[x.idx()])
                                || body.yields.get(k).is_some_and(|y| active[y.idx()])
                        }
                        _ => false,
                    };
                    if on && !active[i] {
                        active[i] = true;
                        changed = true;
                    }
                }
                _ => {}
            }
        }
        if !changed {
            return active;
        }
    }
}

/// The state of one forward sweep.
struct Sweep<'a, 'f> {
    src: &'a Func,
    mode: Mode,
    b: Builder<'f>,
    /// Which source nodes have a tangent.
    active: Vec<bool>,
    /// The new id of each source node.
    map: Vec<Option<Id>>,
    /// The tangent of each new node that has one.
    tan: HashMap<Id, Id>,
    /// The stack of the tangents of each stack's values.
    stacks: HashMap<u32, u32>,
    /// The path of `g_jvp` (or `g_hvp`) for each callee path.
    jvp_paths: HashMap<(u32, String), u32>,
    /// The source nodes left out (the partials of calls, in a forward sweep of a
    /// primal).
    skipped: Vec<bool>,
    /// Each source call made into `g_hvp`: the new call, and how many gradients it
    /// gives.
    hvps: HashMap<Id, (Id, u32)>,
    /// For each new structured node, where the tangent of each result is: the index
    /// of the projection that reads it.
    proj: HashMap<(Id, u32), u32>,
    /// For each new loop with carried tangents: the projection number of its trip
    /// count before and after them.
    trips: HashMap<Id, (u32, u32)>,
    /// The results of source structured nodes that an active projection reads.
    active_projs: std::collections::HashSet<(Id, u32)>,
    /// The tangent parameter of each differentiated parameter, and its kind.
    params: HashMap<u32, (u32, Ty)>,
}

impl Sweep<'_, '_> {
    fn get(&self, id: Id) -> Id {
        self.map[id.idx()].unwrap_or(id)
    }

    fn ty(&self, id: Id) -> Ty {
        self.b.func.node(id).ty
    }

    /// The tangent of new node `x`, or a zero of its kind.
    fn tangent_or_zero(&mut self, x: Id) -> Result<Id, Refusal> {
        if let Some(&d) = self.tan.get(&x) {
            return Ok(d);
        }
        self.zero(x)
    }

    /// A zero tangent for new node `x`.
    fn zero(&mut self, x: Id) -> Result<Id, Refusal> {
        let node = self.b.func.node(x).clone();
        match (&node.op, node.ty) {
            (Op::View(m, lo, hi), _) => {
                let (m, lo, hi) = (*m, *lo, *hi);
                let z = self.b.zero_of(m);
                Ok(self.b.push_op(Op::View(z, lo, hi), node.ty))
            }
            (Op::Pack(items), _) => {
                let items = items.clone();
                let zs = items
                    .into_iter()
                    .map(|i| self.zero(i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.b.push_op(Op::Pack(zs), Ty::Tuple))
            }
            (_, Ty::Tuple) => Err((
                node.span,
                "this tuple has no zero tangent in forward mode yet".into(),
            )),
            // The shape read here, in this region: a shape node of `x` made in another
            // branch would be out of scope.
            (_, Ty::Tensor(ft)) => {
                let s = self.b.push_op(Op::ShapeOf(x), Ty::Opaque);
                let zero = self.b.constant(0.0, Ty::Float(ft));
                Ok(self.b.push_op(Op::Fill(zero, s), node.ty))
            }
            _ => Ok(self.b.zero_of(x)),
        }
    }

    fn copy(&mut self, id: Id) -> Id {
        let mut node = self.src.node(id).clone();
        node.op
            .map_operands(&mut |a| self.map[a.idx()].unwrap_or(a));
        let new = self.b.raw(node);
        self.map[id.idx()] = Some(new);
        new
    }

    /// Rebuilds a region with tangents (its nodes are left for the caller to close).
    fn region(&mut self, r: &Region) -> Result<Region, Refusal> {
        for &id in &r.nodes {
            self.node(id)?;
        }
        Ok(Region {
            args: r.args.iter().map(|&a| self.get(a)).collect(),
            nodes: Vec::new(),
            yields: r.yields.iter().map(|&y| self.get(y)).collect(),
        })
    }

    fn node(&mut self, id: Id) -> Result<(), Refusal> {
        let src_node = self.src.node(id).clone();
        self.b.set_span(src_node.span);
        let on = self.active[id.idx()];
        match &src_node.op {
            Op::If { .. } => return self.if_(id),
            Op::For { .. } => return self.for_(id),
            Op::Proj(s, k) => {
                let new = self.copy(id);
                let s = self.get(*s);
                if let Some(&(before, after)) = self.trips.get(&s) {
                    if *k == before {
                        self.b.func.nodes[new.idx()].op = Op::Proj(s, after);
                    }
                }
                if on {
                    if let Some(&j) = self.proj.get(&(s, *k)) {
                        let d = self.b.push_op(Op::Proj(s, j), src_node.ty);
                        self.tan.insert(new, d);
                    }
                }
                return Ok(());
            }
            Op::Call { path, args, .. } if on && self.mode == Mode::Jvp => {
                return self.call(id, *path, args);
            }
            // The partials of a call serve only the reverse sweep (and so do the shapes
            // of tensor partials).
            Op::CallGrad { .. } if self.mode == Mode::Jvp => {
                self.skipped[id.idx()] = true;
                return Ok(());
            }
            op if op.operands().iter().any(|a| self.skipped[a.idx()]) => {
                self.skipped[id.idx()] = true;
                return Ok(());
            }
            Op::Call { path, args, .. } if on => return self.hvp_call(id, *path, args, false),
            Op::CallVjp { path, args, seed } if on => {
                // A replay of a scalar call's partials (seed 1) in a reversed loop.
                if !matches!(self.src.node(*seed).op, Op::Const(v) if v == 1.0) {
                    return Err((
                        src_node.span,
                        "a call with a tensor, tuple or vector result is not differentiated twice yet (no `_hvp` for this function)".into(),
                    ));
                }
                return self.hvp_call(id, *path, args, true);
            }
            Op::CallGrad { call, index, .. } if self.hvp_grad(id, *call, *index) => return Ok(()),
            Op::MutCall { .. } | Op::MutCallVjp { .. } | Op::MutOut(..) | Op::MutSeed(_) => {
                return Err((
                    src_node.span,
                    "a call that passes `&mut` has no forward-mode companions (`_jvp`, `_hvp`) yet"
                        .into(),
                ));
            }
            _ => {}
        }
        let new = self.copy(id);
        // Effects have no value to be active: they mirror themselves on the tangents
        // of their operands that have one.
        if !on && !src_node.op.has_effect() {
            return Ok(());
        }
        let d = self.push_forward(new)?;
        if let Some(d) = d {
            self.tan.insert(new, d);
        }
        Ok(())
    }

    /// The tangent of the new node `y` (already copied), from its operands' tangents.
    fn push_forward(&mut self, y: Id) -> Result<Option<Id>, Refusal> {
        let node = self.b.func.node(y).clone();
        let ty = node.ty;
        let t = |s: &Self, x: Id| s.tan.get(&x).copied();
        Ok(match node.op {
            Op::Param(k) => match self.params.get(&k).copied() {
                Some((j, kind)) => Some(self.b.push_op(Op::Param(j), kind)),
                None => None,
            },
            Op::Detach(_) => None,
            // y = x as T: dy = dx as T
            Op::Cast(a, _) => match (t(self, a), ty) {
                (Some(da), Ty::Float(ft)) => Some(self.b.cast(da, ft)),
                _ => None,
            },
            // The elementwise operations: their pullbacks, with the adjoint set to each
            // active operand's tangent.
            Op::Neg(_) | Op::Binary(..) | Op::Math(..) => self.elementwise(y)?,
            // y = select(c, a, b): dy = select(c, da, db)
            Op::Select(c, a, b) => {
                let da = self.tangent_or_zero(a)?;
                let db = self.tangent_or_zero(b)?;
                Some(self.b.select(c, da, db))
            }
            // C = A B: dC = dA B + A dB
            Op::MatMul(a, c) => {
                let mut terms = Vec::new();
                if let Some(da) = t(self, a) {
                    terms.push(self.b.push_op(Op::MatMul(da, c), ty));
                }
                if let Some(dc) = t(self, c) {
                    terms.push(self.b.push_op(Op::MatMul(a, dc), ty));
                }
                self.sum(terms)
            }
            // d (a · c) = da · c + a · dc
            Op::Dot(a, c) => {
                let mut terms = Vec::new();
                if let Some(da) = t(self, a) {
                    terms.push(self.b.push_op(Op::Dot(da, c), ty));
                }
                if let Some(dc) = t(self, c) {
                    terms.push(self.b.push_op(Op::Dot(a, dc), ty));
                }
                self.sum(terms)
            }
            // Layout moves elements: the tangent moves the same way.
            Op::Transpose(a) => t(self, a).map(|da| self.b.push_op(Op::Transpose(da), ty)),
            Op::Reshape(a, dims) => {
                t(self, a).map(|da| self.b.push_op(Op::Reshape(da, dims.clone()), ty))
            }
            // Sums and means are linear.
            Op::Reduce(r @ (Reduction::Sum | Reduction::Mean), a) => {
                t(self, a).map(|da| self.b.push_op(Op::Reduce(r, da), ty))
            }
            Op::ReduceAxis(r @ (Reduction::Sum | Reduction::Mean), a, k) => {
                t(self, a).map(|da| self.b.push_op(Op::ReduceAxis(r, da, k), ty))
            }
            // y = norm/max/min of a (a scalar): dy = <w, da>, w the pullback of the
            // adjoint 1 (a / y, or the tied maxima's even shares).
            Op::Reduce(_, a) => match t(self, a) {
                Some(da) => {
                    let one = self.b.constant(1.0, ty);
                    let w = rules::pullback(&mut self.b, y, one)
                        .into_iter()
                        .find(|&(o, _)| o == a)
                        .map(|(_, w)| w);
                    w.map(|w| {
                        let wd = self.b.mul(w, da);
                        self.b.push_op(Op::Reduce(Reduction::Sum, wd), ty)
                    })
                }
                None => None,
            },
            // y = a.max_axis(k): dy = (shares · da).sum_axis(k), the shares being the
            // pullback of ones.
            Op::ReduceAxis(_, a, k) => match t(self, a) {
                Some(da) => {
                    let one = self.b.constant(1.0, ty);
                    let s = self.b.shape_of(y);
                    let ones = self.b.fill(one, s, y);
                    let at = self.ty(a);
                    let w = self.b.push_op(Op::ExtremumAxisGrad(a, y, ones, k), at);
                    let wd = self.b.mul(w, da);
                    Some(self.b.push_op(Op::ReduceAxis(Reduction::Sum, wd, k), ty))
                }
                None => None,
            },
            // The reverse sweep's shape nodes are linear in their gradient operand.
            Op::Fill(v, s) => t(self, v).map(|dv| self.b.push_op(Op::Fill(dv, s), ty)),
            Op::SumToShape(g, s) => t(self, g).map(|dg| self.b.push_op(Op::SumToShape(dg, s), ty)),
            Op::ReshapeTo(g, s) => t(self, g).map(|dg| self.b.push_op(Op::ReshapeTo(dg, s), ty)),
            Op::ExpandAxis(g, s, k) => {
                t(self, g).map(|dg| self.b.push_op(Op::ExpandAxis(dg, s, k), ty))
            }
            // Piecewise constant in x (which elements are the maxima), linear in g.
            Op::ExtremumAxisGrad(x, m, g, k) => {
                t(self, g).map(|dg| self.b.push_op(Op::ExtremumAxisGrad(x, m, dg, k), ty))
            }
            // Bilinear in (x, y).
            Op::MatMulGrad {
                lhs,
                x,
                y: w,
                shape,
            } => {
                let mut terms = Vec::new();
                if let Some(dx) = t(self, x) {
                    let op = Op::MatMulGrad {
                        lhs,
                        x: dx,
                        y: w,
                        shape,
                    };
                    terms.push(self.b.push_op(op, ty));
                }
                if let Some(dw) = t(self, w) {
                    let op = Op::MatMulGrad {
                        lhs,
                        x,
                        y: dw,
                        shape,
                    };
                    terms.push(self.b.push_op(op, ty));
                }
                self.sum(terms)
            }
            // Memory: a tangent buffer beside each active buffer.
            Op::Alloc { len, init, array } => {
                let di = match t(self, init) {
                    Some(d) => d,
                    None => self.b.constant(0.0, self.ty(init)),
                };
                Some(self.b.push_op(
                    Op::Alloc {
                        len,
                        init: di,
                        array,
                    },
                    ty,
                ))
            }
            Op::Elems(items, array) => {
                let mut ds = Vec::new();
                for i in items {
                    ds.push(self.tangent_or_zero(i)?);
                }
                Some(self.b.push_op(Op::Elems(ds, array), ty))
            }
            Op::ZerosLike(x) => Some(self.b.push_op(Op::ZerosLike(x), ty)),
            Op::Load(m, i) => t(self, m).map(|dm| self.b.push_op(Op::Load(dm, i), ty)),
            Op::View(m, lo, hi) => t(self, m).map(|dm| self.b.push_op(Op::View(dm, lo, hi), ty)),
            Op::Store(m, i, v) => {
                if let Some(dm) = t(self, m) {
                    let dv = self.tangent_or_zero(v)?;
                    self.b.push_op(Op::Store(dm, i, dv), Ty::Unit);
                }
                None
            }
            Op::Grow(m) => {
                if let Some(dm) = t(self, m) {
                    self.b.push_op(Op::Grow(dm), Ty::Unit);
                }
                None
            }
            // d(dst[lo..] += s g) = ds g + s dg into the tangent of dst
            Op::AccMem { dst, lo, g, scale } => {
                if let Some(dd) = t(self, dst) {
                    if let Some(dg) = t(self, g) {
                        let op = Op::AccMem {
                            dst: dd,
                            lo,
                            g: dg,
                            scale,
                        };
                        self.b.push_op(op, Ty::Unit);
                    }
                    if let Some(ds) = t(self, scale) {
                        let op = Op::AccMem {
                            dst: dd,
                            lo,
                            g,
                            scale: ds,
                        };
                        self.b.push_op(op, Ty::Unit);
                    }
                }
                None
            }
            // A saved value's tangent is saved beside it, on a stack of its own.
            Op::Push(k, v) => {
                if let Some(dv) = t(self, v) {
                    let dk = self.stack(k);
                    self.b.push_op(Op::Push(dk, dv), Ty::Unit);
                }
                None
            }
            Op::Pop(k) => match self.stacks.get(&k) {
                Some(&dk) => Some(self.b.push_op(Op::Pop(dk), ty)),
                None => None,
            },
            Op::Restore(k, m) => {
                if let (Some(dm), Some(&dk)) = (t(self, m), self.stacks.get(&k)) {
                    self.b.push_op(Op::Restore(dk, dm), Ty::Unit);
                }
                None
            }
            // Tuples: the tuple of the elements' tangents.
            Op::Pack(items) => {
                let mut ds = Vec::new();
                for i in items {
                    ds.push(self.tangent_or_zero(i)?);
                }
                Some(self.b.push_op(Op::Pack(ds), Ty::Tuple))
            }
            Op::Elem(c, k) => t(self, c).map(|dc| self.b.push_op(Op::Elem(dc, k), ty)),
            _ => None,
        })
    }

    /// The tangent stack of stack `k`.
    fn stack(&mut self, k: u32) -> u32 {
        if let Some(&dk) = self.stacks.get(&k) {
            return dk;
        }
        let dk = self.b.func.stacks.len() as u32;
        let ty = self.b.func.stacks[k as usize];
        self.b.func.stacks.push(ty);
        self.stacks.insert(k, dk);
        dk
    }

    /// The sum of some terms, `None` for none.
    fn sum(&mut self, terms: Vec<Id>) -> Option<Id> {
        let mut it = terms.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, x| self.b.add(acc, x)))
    }

    /// The tangent of an elementwise node `y`: for each distinct active operand `o`,
    /// the contributions of `y`'s pullback to `o` with the adjoint `do`.
    fn elementwise(&mut self, y: Id) -> Result<Option<Id>, Refusal> {
        let node = self.b.func.node(y).clone();
        let mut operands = node.op.operands();
        operands.dedup();
        let mut seen = Vec::new();
        let mut terms = Vec::new();
        for &o in &operands {
            if seen.contains(&o) {
                continue;
            }
            seen.push(o);
            let Some(&d) = self.tan.get(&o) else {
                continue;
            };
            for (x, c) in rules::pullback(&mut self.b, y, d) {
                if x == o {
                    terms.push(c);
                }
            }
        }
        let Some(mut sum) = self.sum(terms) else {
            return Ok(None);
        };
        // A tensor result whose tangent comes from an operand that may be broadcast
        // (a scalar, or a tensor beside an inactive one in a sum): given the result's
        // shape.
        if let Ty::Tensor(_) = node.ty {
            let partial = operands.iter().any(|o| !self.tan.contains_key(o))
                && matches!(
                    node.op,
                    Op::Binary(BinOp::Add | BinOp::Sub, ..)
                        | Op::Math(
                            MathFn::Min | MathFn::Max | MathFn::Clamp | MathFn::MulAdd,
                            _
                        )
                );
            let s = self.b.shape_of(y);
            if self.b.tensor_of(sum).is_none() {
                sum = self.b.fill(sum, s, y);
            } else if partial {
                let zero = self.b.constant(0.0, node.ty);
                let z = self.b.fill(zero, s, y);
                sum = self.b.add(z, sum);
            }
        }
        Ok(Some(sum))
    }

    /// `g(a..)` with an active argument. With a float result, through the partials of
    /// `g_vjp(a.., 1)`, as the reverse sweep reads them (so a hand-written `g_vjp`, a
    /// custom rule, serves forward mode too): `dy = sum_k <dy/da_k, da_k>`. Otherwise
    /// `g_jvp(a.., da..)`, one tangent per float, tensor or memory argument (zero for an
    /// inactive one), whose value and tangent are the two elements of the pair it
    /// returns.
    fn call(&mut self, id: Id, path: u32, args: &[Id]) -> Result<(), Refusal> {
        let src_node = self.src.node(id).clone();
        if matches!(src_node.ty, Ty::Float(_)) {
            return self.call_by_partials(id);
        }
        let args: Vec<Id> = args.iter().map(|&a| self.get(a)).collect();
        let (pair, _) = self.companion(&src_node, path, &args, "jvp")?;
        let value = self.b.raw(Node {
            op: Op::Elem(pair, 0),
            ..src_node.clone()
        });
        let d = self.b.push_op(Op::Elem(pair, 1), src_node.ty);
        self.map[id.idx()] = Some(value);
        self.tan.insert(value, d);
        Ok(())
    }

    /// A scalar call and its partials ([`Op::CallGrad`], one per float, tensor or
    /// memory argument), and its tangent from them. The source's own partials are left
    /// out ([`Sweep::node`]).
    fn call_by_partials(&mut self, id: Id) -> Result<(), Refusal> {
        let src_node = self.src.node(id).clone();
        let new = self.copy(id);
        let Op::Call { args, .. } = self.b.func.node(new).op.clone() else {
            return Ok(());
        };
        let diff: Vec<Id> = args
            .iter()
            .copied()
            .filter(|&a| {
                let t = self.ty(a);
                matches!(t, Ty::Float(_) | Ty::Tensor(_)) || t.is_memory()
            })
            .collect();
        let of = diff.len() as u32;
        let mut terms = Vec::new();
        for (k, &a) in diff.iter().enumerate() {
            let Some(&d) = self.tan.get(&a) else {
                continue;
            };
            let at = self.ty(a);
            let op = Op::CallGrad {
                call: new,
                index: k as u32,
                of,
            };
            let g = self.b.push_op(op, at);
            terms.push(match at {
                Ty::Float(_) => self.b.mul(g, d),
                Ty::Tensor(_) => {
                    let gd = self.b.mul(g, d);
                    self.b.push_op(Op::Reduce(Reduction::Sum, gd), src_node.ty)
                }
                _ => self.inner(g, d, src_node.ty),
            });
        }
        if let Some(dy) = self.sum(terms) {
            self.tan.insert(new, dy);
        }
        Ok(())
    }

    /// `<g, d>` of a gradient `g` and a tangent `d` held in memory (a view is read
    /// through its memory, having no value of its own).
    fn inner(&mut self, g: Id, d: Id, ty: Ty) -> Id {
        let (tokens, holes) = match self.b.func.node(d).op {
            Op::View(m, lo, Some(hi)) => (
                quote::quote!(::adjoint::__private::inner(
                    &__ad_hole_0,
                    &__ad_hole_1[__ad_hole_2..__ad_hole_3]
                )),
                vec![g, m, lo, hi],
            ),
            Op::View(m, lo, None) => (
                quote::quote!(::adjoint::__private::inner(
                    &__ad_hole_0,
                    &__ad_hole_1[__ad_hole_2..]
                )),
                vec![g, m, lo],
            ),
            _ => (
                quote::quote!(::adjoint::__private::inner(&__ad_hole_0, &__ad_hole_1)),
                vec![g, d],
            ),
        };
        let code = self.b.func.opaque.len() as u32;
        self.b.func.opaque.push(tokens);
        self.b.push_op(Op::Apply(code, holes), ty)
    }

    /// `path_suffix(args.., tangents..)`, the tangents of the float, tensor and memory
    /// arguments appended (zeros for inactive ones), of kind tuple; and those tangents.
    fn companion(
        &mut self,
        src_node: &Node,
        path: u32,
        args: &[Id],
        suffix: &str,
    ) -> Result<(Id, Vec<(Id, Id)>), Refusal> {
        let mut all = args.to_vec();
        let mut refs = self.b.func.arg_refs[path as usize].clone();
        refs.resize(args.len(), false);
        let mut tans = Vec::new();
        for (i, &a) in args.iter().enumerate() {
            let t = self.ty(a);
            if !(matches!(t, Ty::Float(_) | Ty::Tensor(_)) || t.is_memory()) {
                continue;
            }
            let mut d = self.tangent_or_zero(a)?;
            // A tensor passed by value that is not a parameter is owned: so is its
            // tangent, which the simplifier may fold into a `&Tensor` tangent parameter.
            if matches!(t, Ty::Tensor(_))
                && !refs[i]
                && !matches!(self.b.func.node(a).op, Op::Param(_))
            {
                let code = self.b.func.opaque.len() as u32;
                self.b
                    .func
                    .opaque
                    .push(quote::quote!(::adjoint::__private::owned(&__ad_hole_0)));
                d = self.b.push_op(Op::Apply(code, vec![d]), t);
            }
            all.push(d);
            tans.push((a, d));
            refs.push(refs[i]);
        }
        let key = (path, suffix.to_string());
        let jp = match self.jvp_paths.get(&key) {
            Some(&p) => p,
            None => {
                let mut p = self.b.func.paths[path as usize].clone();
                if let Some(last) = p.segments.last_mut() {
                    last.ident =
                        quote::format_ident!("{}_{}", last.ident, suffix, span = last.ident.span());
                }
                let idx = self.b.func.paths.len() as u32;
                self.b.func.paths.push(p);
                self.b.func.arg_refs.push(refs);
                self.jvp_paths.insert(key, idx);
                idx
            }
        };
        let pair = self.b.raw(Node {
            op: Op::Call {
                path: jp,
                args: all,
                vjp: false,
            },
            ty: Ty::Tuple,
            span: src_node.span,
            origin: Origin::Primal,
            hint: None,
        });
        Ok((pair, tans))
    }

    /// A scalar call of the reverse sweep's primal (`g(a..)`, whose partials
    /// [`Op::CallGrad`] reads) or a replay of its partials in a reversed loop
    /// (`g_vjp(a.., 1)`): both become `g_hvp(a.., da..)`, whose gradients are the
    /// partials and whose Hessian-vector products their tangents. The value's tangent
    /// is `sum_k <partial_k, da_k>`.
    fn hvp_call(&mut self, id: Id, path: u32, args: &[Id], replay: bool) -> Result<(), Refusal> {
        let src_node = self.src.node(id).clone();
        if !replay && !matches!(src_node.ty, Ty::Float(_)) {
            return Err((
                src_node.span,
                "a call with a tensor, tuple or vector result is not differentiated twice yet (no `_hvp` for this function)".into(),
            ));
        }
        let args: Vec<Id> = args.iter().map(|&a| self.get(a)).collect();
        let (pair, tans) = self.companion(&src_node, path, &args, "hvp")?;
        self.hvps.insert(id, (pair, tans.len() as u32));
        if replay {
            self.map[id.idx()] = Some(pair);
            return Ok(());
        }
        let value = self.b.raw(Node {
            op: Op::Elem(pair, 0),
            ..src_node.clone()
        });
        self.map[id.idx()] = Some(value);
        // <g, da> over the arguments: products for scalars, inner products otherwise.
        let grads_ty = if tans.len() == 1 {
            None
        } else {
            Some(Ty::Tuple)
        };
        let grads = self
            .b
            .push_op(Op::Elem(pair, 1), grads_ty.unwrap_or(src_node.ty));
        let mut terms = Vec::new();
        for (k, &(a, d)) in tans.iter().enumerate() {
            let at = self.ty(a);
            let g = match grads_ty {
                None => {
                    self.b.func.nodes[grads.idx()].ty = at;
                    grads
                }
                Some(_) => self.b.push_op(Op::Elem(grads, k as u32), at),
            };
            let term = if matches!(at, Ty::Float(_)) {
                self.b.mul(g, d)
            } else {
                self.inner(g, d, src_node.ty)
            };
            terms.push(term);
        }
        if let Some(dy) = self.sum(terms) {
            self.tan.insert(value, dy);
        }
        Ok(())
    }

    /// A partial of a call made into `g_hvp` ([`Sweep::hvp_call`]): that call's
    /// gradient number `index`, its tangent the Hessian-vector product's.
    fn hvp_grad(&mut self, id: Id, call: Id, index: u32) -> bool {
        let Some(&(pair, of)) = self.hvps.get(&call) else {
            return false;
        };
        let node = self.src.node(id).clone();
        let pick = |s: &mut Self, k: u32| {
            if of == 1 {
                s.b.push_op(Op::Elem(pair, k), node.ty)
            } else {
                let t = s.b.push_op(Op::Elem(pair, k), Ty::Tuple);
                s.b.push_op(Op::Elem(t, index), node.ty)
            }
        };
        let g = pick(self, 1);
        let h = pick(self, 2);
        self.map[id.idx()] = Some(g);
        self.tan.insert(g, h);
        true
    }

    fn if_(&mut self, id: Id) -> Result<(), Refusal> {
        let Op::If { cond, then, else_ } = self.src.node(id).op.clone() else {
            return Ok(());
        };
        // The results with a tangent: those whose projection is active.
        let n = then.yields.len();
        let wanted: Vec<bool> = (0..n as u32)
            .map(|k| self.active_projs.contains(&(id, k)))
            .collect();
        let branch = |s: &mut Self, r: &Region| -> Result<Region, Refusal> {
            s.b.open();
            let mut out = s.region(r)?;
            for (k, &w) in wanted.iter().enumerate() {
                if w {
                    let y = out.yields[k];
                    let d = s.tangent_or_zero(y)?;
                    out.yields.push(d);
                }
            }
            out.nodes = s.b.close();
            Ok(out)
        };
        let then = branch(self, &then)?;
        let else_ = branch(self, &else_)?;
        let cond = self.get(cond);
        let node = Node {
            op: Op::If { cond, then, else_ },
            ..self.src.node(id).clone()
        };
        let new = self.b.raw(node);
        self.map[id.idx()] = Some(new);
        let mut j = n as u32;
        for (k, &w) in wanted.iter().enumerate() {
            if w {
                self.proj.insert((new, k as u32), j);
                j += 1;
            }
        }
        Ok(())
    }

    fn for_(&mut self, id: Id) -> Result<(), Refusal> {
        let src_node = self.src.node(id).clone();
        let Op::For {
            lo,
            hi,
            inclusive,
            step,
            rev,
            back,
            inits,
            body,
            exit,
            trips,
        } = src_node.op.clone()
        else {
            return Ok(());
        };
        let n = inits.len();
        // The carried values with a tangent: those whose argument is active.
        let carried: Vec<usize> = (0..n)
            .filter(|&k| body.args.get(k + 1).is_some_and(|a| self.active[a.idx()]))
            .collect();
        let mut new_inits: Vec<Id> = inits.iter().map(|&a| self.get(a)).collect();
        for &k in &carried {
            let x = new_inits[k];
            let d = self.tangent_or_zero(x)?;
            new_inits.push(d);
        }
        // The body's arguments, then one per carried tangent.
        let mut args = Vec::new();
        for &a in &body.args {
            let node = self.src.node(a).clone();
            let new = self.b.func.push(node);
            self.map[a.idx()] = Some(new);
            args.push(new);
        }
        for (j, &k) in carried.iter().enumerate() {
            let a = args[k + 1];
            let ty = self.ty(a);
            let d = self.b.arg((n + 1 + j) as u32, ty, Origin::Adjoint);
            self.tan.insert(a, d);
            args.push(d);
        }
        self.b.open();
        let mut out = self.region(&body)?;
        for &k in &carried {
            let y = out.yields[k];
            let d = self.tangent_or_zero(y)?;
            out.yields.push(d);
        }
        out.nodes = self.b.close();
        out.args = args;
        let node = Node {
            op: Op::For {
                lo: self.get(lo),
                hi: self.get(hi),
                inclusive,
                step: step.map(|s| self.get(s)),
                rev,
                back,
                inits: new_inits,
                body: out,
                exit,
                trips: trips.map(|t| self.get(t)),
            },
            ..src_node
        };
        let new = self.b.raw(node);
        self.map[id.idx()] = Some(new);
        for (j, &k) in carried.iter().enumerate() {
            self.proj.insert((new, k as u32), (n + j) as u32);
        }
        // The trip count of a loop with an exit moves past the tangents.
        self.trips
            .insert(new, (n as u32, (n + carried.len()) as u32));
        Ok(())
    }
}
