//! The reverse sweep: appends the adjoint of a primal [`Func`] to the same arena.
//!
//! Adjoints are SSA values too: `adj[x]` is the id of the current adjoint of node `x`,
//! and a contribution is accumulated with a new `+` node, never assigned. Only active
//! nodes (those that depend on a differentiated parameter, not through `detach`) get
//! adjoints, so no adjoint code exists for constants or for parameters outside `wrt`.
//!
//! An `if` is reversed into an `if` on the same condition: each branch of the adjoint
//! walks the primal branch backwards, and yields the adjoints it changed. Values of a
//! primal branch that the adjoint branch reads are exported by the emitter.
//!
//! Before/after, for `y = x.exp() * x` (seed `s`):
//!
//! ```text
//! %1 = exp %0          %3 = %2 * %0 ; adj   (s * x)
//! %2 = %1 * %0         %4 = %2 * %1 ; adj   (s * exp x)
//!                      %5 = %3 * %1 ; adj   (s x exp x, via exp's own value)
//!                      %6 = %4 + %5 ; adj   (the gradient of x)
//! ```

use crate::ir::{BinOp, FloatTy, Func, Id, MathFn, Node, Op, Origin, Reduction, Region, Ty};
use crate::parse::Signature;
use crate::rules;
use proc_macro2::Span;
use std::collections::HashMap;

/// Which seed the reverse sweep starts from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seed {
    /// `1` (`NAME_grad`): lets the simplifier fold the seed away.
    One,
    /// The `seed` parameter of `NAME_vjp`.
    Param,
    /// The running adjoint of one statement of the statement-level path, which may be
    /// an exact zero routed there by a `min`, a branch not taken, ... (see
    /// [`Builder::may_be_routed_zero`]).
    Adjoint,
}

/// Appends adjoint nodes to a copy of the arena and its regions.
pub struct Builder<'f> {
    /// The function being extended.
    pub func: &'f mut Func,
    span: Span,
    regions: Vec<Vec<Id>>,
    /// The [`Op::ShapeOf`] node of each tensor value that lowering placed after it.
    shapes: HashMap<Id, Id>,
    /// Whether the seed may be an exact zero (any seed but [`Seed::One`]).
    seed_routed: bool,
    /// Memo of [`Builder::may_be_routed_zero`].
    routed: HashMap<Id, bool>,
}

impl Builder<'_> {
    /// Whether the adjoint `id` may be an exact zero that a routing rule produced
    /// (`min`/`max`/`clamp`/`relu`/`abs` select it or 0, `max_axis` gives it to the
    /// maximum of a line only, a branch not taken yields 0,
    /// a statement's running adjoint may carry either, a `_vjp` seed may be zero in
    /// some components): only such a zero can meet an
    /// infinite operand of a product while the primal stays finite, so only then does a
    /// product's contribution need the strong-zero guard (`rules::scale_product`).
    pub fn may_be_routed_zero(&mut self, id: Id) -> bool {
        let mut stack = vec![id];
        while let Some(&top) = stack.last() {
            if self.routed.contains_key(&top) {
                stack.pop();
                continue;
            }
            let node = self.func.node(top);
            let own = match node.op {
                Op::Select(..) | Op::Proj(..) | Op::If { .. } => Some(true),
                // `max_axis`'s pullback gives 0 to the elements that are not the maximum.
                Op::ExtremumAxisGrad(..) => Some(true),
                Op::Seed => Some(self.seed_routed),
                _ => None,
            };
            if let Some(v) = own {
                self.routed.insert(top, v);
                stack.pop();
                continue;
            }
            let inputs: Vec<Id> = node.op.operands();
            let pending: Vec<Id> = inputs
                .iter()
                .copied()
                .filter(|i| !self.routed.contains_key(i))
                .collect();
            if pending.is_empty() {
                let v = inputs.iter().any(|i| self.routed[i]);
                self.routed.insert(top, v);
                stack.pop();
            } else {
                stack.extend(pending);
            }
        }
        self.routed[&id]
    }

    /// Records that `id` is an exact zero exactly where `like` is (a strong-zero guard
    /// around `like`), so that it is not taken for a routing select.
    pub fn same_zeros(&mut self, id: Id, like: Id) {
        let v = self.may_be_routed_zero(like);
        self.routed.insert(id, v);
    }

    /// Appends an adjoint node.
    pub fn push_op(&mut self, op: Op, ty: Ty) -> Id {
        self.push(op, ty)
    }

    /// The float width of a tensor value or of an elementwise mask over tensors
    /// (a comparison with a tensor operand); `None` for scalars.
    pub fn tensor_of(&self, id: Id) -> Option<FloatTy> {
        tensor_of(self.func, id)
    }

    /// The shape of the tensor `x` (a node placed after `x` by lowering).
    pub fn shape_of(&mut self, x: Id) -> Id {
        match self.shapes.get(&x) {
            Some(&s) => s,
            None => {
                let s = self.push(Op::ShapeOf(x), Ty::Opaque);
                self.shapes.insert(x, s);
                s
            }
        }
    }

    /// A tensor of shape `s` (that of `like`) filled with the scalar `v`.
    pub fn fill(&mut self, v: Id, s: Id, like: Id) -> Id {
        let ty = self.ty(like);
        self.push(Op::Fill(v, s), ty)
    }

    /// The gradient of one operand of a matrix product.
    pub fn matmul_grad(&mut self, lhs: bool, x: Id, y: Id, shape: Id, ty: Ty) -> Id {
        self.push(Op::MatMulGrad { lhs, x, y, shape }, ty)
    }

    /// `path_vjp(args, seed)` for a tensor-valued call.
    pub fn call_vjp(&mut self, path: u32, args: &[Id], seed: Id) -> Id {
        let op = Op::CallVjp {
            path,
            args: args.to_vec(),
            seed,
        };
        self.push(op, Ty::Tuple)
    }

    /// The gradient number `index` of `of` that a [`Op::CallVjp`] returns.
    pub fn call_grad(&mut self, call: Id, index: u32, of: u32, ty: Ty) -> Id {
        self.push(Op::CallGrad { call, index, of }, ty)
    }

    /// Fits a contribution `c` to the kind and shape of `x`: a tensor contribution to
    /// a scalar is summed (a scalar used in tensor arithmetic), a scalar one to a
    /// tensor is broadcast, and a tensor one is summed back onto `x`'s shape (the
    /// simplifier drops that when the shapes are known to be equal).
    fn fit(&mut self, c: Id, x: Id) -> Id {
        match (self.ty(x), self.tensor_of(c)) {
            (Ty::Float(ft), Some(_)) => self.push(Op::Reduce(Reduction::Sum, c), Ty::Float(ft)),
            (Ty::Tensor(_), None) => {
                let s = self.shape_of(x);
                self.fill(c, s, x)
            }
            (t @ Ty::Tensor(_), Some(_)) => {
                let s = self.shape_of(x);
                self.push(Op::SumToShape(c, s), t)
            }
            _ => c,
        }
    }

    /// A zero of the kind of `x`.
    fn zero_like(&mut self, x: Id) -> Id {
        let ty = self.ty(x);
        let zero = self.constant(0.0, ty);
        match ty {
            Ty::Tensor(_) => {
                let s = self.shape_of(x);
                self.fill(zero, s, x)
            }
            _ => zero,
        }
    }

    fn push(&mut self, op: Op, ty: Ty) -> Id {
        let id = self.func.push(Node {
            op,
            ty,
            span: self.span,
            origin: Origin::Adjoint,
            hint: None,
        });
        if let Some(r) = self.regions.last_mut() {
            r.push(id);
        }
        id
    }

    /// A float constant of kind `ty`.
    pub fn constant(&mut self, v: f64, ty: Ty) -> Id {
        let v = ty.float().map_or(v, |f| f.round(v));
        // Constants are scalars; they broadcast against tensors.
        let ty = match ty {
            Ty::Tensor(ft) => Ty::Float(ft),
            t => t,
        };
        self.push(Op::Const(v), ty)
    }

    fn ty(&self, id: Id) -> Ty {
        self.func.node(id).ty
    }

    fn binary(&mut self, op: BinOp, a: Id, b: Id) -> Id {
        let ty = match (
            self.tensor_of(a).or(self.tensor_of(b)),
            self.ty(a),
            self.ty(b),
        ) {
            (Some(ft), _, _) => Ty::Tensor(ft),
            (None, t @ Ty::Float(_), _) | (None, _, t) => t,
        };
        self.push(Op::Binary(op, a, b), ty)
    }

    /// `a + b`
    pub fn add(&mut self, a: Id, b: Id) -> Id {
        self.binary(BinOp::Add, a, b)
    }
    /// `a - b`
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        self.binary(BinOp::Sub, a, b)
    }
    /// `a * b`
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        self.binary(BinOp::Mul, a, b)
    }
    /// `a / b`
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        self.binary(BinOp::Div, a, b)
    }
    /// `-a`
    pub fn neg(&mut self, a: Id) -> Id {
        let ty = self.ty(a);
        self.push(Op::Neg(a), ty)
    }
    /// A comparison or logical operator (a `bool`).
    pub fn cmp(&mut self, op: BinOp, a: Id, b: Id) -> Id {
        self.push(Op::Binary(op, a, b), Ty::Bool)
    }
    /// `if c { a } else { b }`
    pub fn select(&mut self, c: Id, a: Id, b: Id) -> Id {
        let tensor = [c, a, b].iter().find_map(|&x| self.tensor_of(x));
        let ty = match tensor {
            Some(ft) => Ty::Tensor(ft),
            None => self.ty(a),
        };
        self.push(Op::Select(c, a, b), ty)
    }
    /// A float method.
    pub fn math(&mut self, f: MathFn, args: &[Id], ty: Ty) -> Id {
        self.push(Op::Math(f, args.to_vec()), ty)
    }
    /// `a as ft` for a float `a`.
    pub fn cast(&mut self, a: Id, ft: FloatTy) -> Id {
        let t = self.type_tokens(ft);
        self.push(Op::Cast(a, t), Ty::Float(ft))
    }
    /// `n as F` for an integer `n`, `ty` being the float kind `F`.
    pub fn cast_int(&mut self, n: Id, ty: Ty) -> Id {
        let ft = ty.float().unwrap_or(FloatTy::F64);
        let t = self.type_tokens(ft);
        self.push(Op::Cast(n, t), Ty::Float(ft))
    }
    /// `n - 1` for an integer `n`.
    pub fn int_sub_one(&mut self, n: Id) -> Id {
        let idx = self.func.opaque.len() as u32;
        self.func.opaque.push(quote::quote!(1));
        let one = self.push(Op::Opaque(idx), Ty::Int);
        self.push(Op::Binary(BinOp::Sub, n, one), Ty::Int)
    }

    fn type_tokens(&mut self, ft: FloatTy) -> u32 {
        let idx = self.func.opaque.len() as u32;
        let ident = proc_macro2::Ident::new(ft.name(), Span::call_site());
        self.func.opaque.push(quote::quote!(#ident));
        idx
    }
}

/// The float width of a tensor value or of an elementwise mask over tensors (a
/// comparison with a tensor operand, or logic over such masks); `None` for scalars.
pub fn tensor_of(func: &Func, id: Id) -> Option<FloatTy> {
    let node = func.node(id);
    match node.ty {
        Ty::Tensor(ft) => Some(ft),
        Ty::Bool => match &node.op {
            Op::Binary(_, a, b) => tensor_of(func, *a).or_else(|| tensor_of(func, *b)),
            Op::Not(a) => tensor_of(func, *a),
            _ => None,
        },
        _ => None,
    }
}

/// Whether each node depends on a differentiated parameter through differentiable
/// operations.
pub fn activity(func: &Func, sig: &Signature) -> Vec<bool> {
    let mut active = vec![false; func.nodes.len()];
    for (i, node) in func.nodes.iter().enumerate() {
        active[i] = node.ty.is_differentiable()
            && match &node.op {
                Op::Param(k) => sig.params.get(*k as usize).is_some_and(|p| p.diff),
                Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::Detach(_) => false,
                Op::CallGrad { .. } | Op::Select(..) | Op::If { .. } => false,
                Op::Proj(n, k) => match &func.node(*n).op {
                    Op::If { then, else_, .. } => {
                        let k = *k as usize;
                        then.yields.get(k).is_some_and(|y| active[y.idx()])
                            || else_.yields.get(k).is_some_and(|y| active[y.idx()])
                    }
                    _ => false,
                },
                op => op.operands().iter().any(|a| active[a.idx()]),
            };
    }
    active
}

/// Builds primal + adjoint: the outputs become the value followed by one gradient per
/// differentiated parameter (in parameter order).
pub fn build(primal: &Func, sig: &Signature, seed: Seed) -> Func {
    let mut func = primal.clone();
    let active = activity(&func, sig);
    let ret = func.outputs[0];
    let mut adj: Vec<Option<Id>> = vec![None; func.nodes.len()];
    let mut params: Vec<Option<Id>> = vec![None; sig.params.len()];
    for (i, node) in func.nodes.iter().enumerate() {
        if let Op::Param(k) = node.op {
            params[k as usize] = Some(Id(i as u32));
        }
    }
    let body = std::mem::take(&mut func.body);
    let ret_node = func.node(ret).clone();
    let shapes = func
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.op {
            Op::ShapeOf(x) => Some((x, Id(i as u32))),
            _ => None,
        })
        .collect();
    let mut b = Builder {
        func: &mut func,
        span: ret_node.span,
        regions: vec![body.nodes.clone()],
        shapes,
        // Only the constant 1 of `_grad` is never zero: a `_vjp` seed may be zero in
        // some components (the rows of a Jacobian).
        seed_routed: seed != Seed::One,
        routed: HashMap::new(),
    };
    if active[ret.idx()] {
        let s = match seed {
            Seed::One => b.constant(1.0, ret_node.ty),
            Seed::Param | Seed::Adjoint => b.push(Op::Seed, ret_node.ty),
        };
        adj[ret.idx()] = Some(s);
    }
    let mut pending = HashMap::new();
    sweep(&mut b, &body.nodes, &active, &mut adj, &mut pending);
    let mut outputs = vec![ret];
    for (k, p) in sig.params.iter().enumerate() {
        if !p.diff {
            continue;
        }
        let g = params[k].and_then(|id| adj[id.idx()]);
        let g = match (g, params[k]) {
            (Some(g), _) => g,
            (None, Some(x)) => {
                b.span = p.ident.span();
                b.zero_like(x)
            }
            (None, None) => b.constant(0.0, p.kind),
        };
        outputs.push(g);
    }
    let nodes = b.regions.pop().unwrap_or_default();
    func.body = Region {
        nodes,
        yields: body.yields,
    };
    func.outputs = outputs;
    debug_assert_eq!(func.verify(), Ok(()));
    func
}

/// Adds `c` to the adjoint of `x`.
fn accumulate(b: &mut Builder<'_>, adj: &mut [Option<Id>], x: Id, c: Id) {
    let c = b.fit(c, x);
    adj[x.idx()] = Some(match adj[x.idx()] {
        None => c,
        Some(prev) => b.add(prev, c),
    });
}

/// Walks `nodes` backwards, propagating adjoints. `pending` collects the adjoints of
/// the [`Op::Proj`]s of structured nodes, keyed by (node, index).
fn sweep(
    b: &mut Builder<'_>,
    nodes: &[Id],
    active: &[bool],
    adj: &mut [Option<Id>],
    pending: &mut HashMap<(Id, u32), Id>,
) {
    for &id in nodes.iter().rev() {
        let node = b.func.node(id).clone();
        if let Op::If { cond, then, else_ } = &node.op {
            reverse_if(b, id, *cond, then, else_, active, adj, pending);
            continue;
        }
        if !active[id.idx()] {
            continue;
        }
        let Some(dy) = adj[id.idx()] else { continue };
        b.span = node.span;
        if let Op::Proj(n, k) = node.op {
            let prev = pending.get(&(n, k)).copied();
            let v = match prev {
                Some(p) => b.add(p, dy),
                None => dy,
            };
            pending.insert((n, k), v);
            continue;
        }
        for (x, c) in rules::pullback(b, id, dy) {
            if active[x.idx()] {
                accumulate(b, adj, x, c);
            }
        }
    }
}

/// `if c { A } else { B }` reversed: `if c { reverse A } else { reverse B }`, yielding
/// every adjoint that either branch changed.
#[allow(clippy::too_many_arguments)]
fn reverse_if(
    b: &mut Builder<'_>,
    id: Id,
    cond: Id,
    then: &Region,
    else_: &Region,
    active: &[bool],
    adj: &mut [Option<Id>],
    pending: &mut HashMap<(Id, u32), Id>,
) {
    let seeds: Vec<(u32, Id)> = pending
        .iter()
        .filter(|((n, _), _)| *n == id)
        .map(|((_, k), v)| (*k, *v))
        .collect();
    if seeds.is_empty() {
        return;
    }
    b.span = b.func.node(id).span;
    let before = adj.to_vec();
    let branch = |b: &mut Builder<'_>, region: &Region| {
        let mut local = before.clone();
        b.regions.push(Vec::new());
        for &(k, dy) in &seeds {
            if let Some(&y) = region.yields.get(k as usize) {
                if active[y.idx()] {
                    accumulate(b, &mut local, y, dy);
                }
            }
        }
        let mut inner = HashMap::new();
        sweep(b, &region.nodes, active, &mut local, &mut inner);
        (b.regions.pop().unwrap_or_default(), local)
    };
    let (then_nodes, then_adj) = branch(b, then);
    let (else_nodes, else_adj) = branch(b, else_);
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| then_adj[i] != before[i] || else_adj[i] != before[i])
        .collect();
    let mut then_r = Region {
        nodes: then_nodes,
        yields: Vec::new(),
    };
    let mut else_r = Region {
        nodes: else_nodes,
        yields: Vec::new(),
    };
    for &i in &changed {
        let get =
            |b: &mut Builder<'_>, v: Option<Id>| v.unwrap_or_else(|| b.zero_like(Id(i as u32)));
        let t = get(b, then_adj[i]);
        let e = get(b, else_adj[i]);
        then_r.yields.push(t);
        else_r.yields.push(e);
    }
    let node = b.push(
        Op::If {
            cond,
            then: then_r,
            else_: else_r,
        },
        Ty::Tuple,
    );
    for (k, &i) in changed.iter().enumerate() {
        let ty = b.func.nodes[i].ty;
        let p = b.push(Op::Proj(node, k as u32), ty);
        adj[i] = Some(p);
    }
}
