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
    /// How many reversed loop bodies enclose the code being built: inside one, a
    /// primal value of the loop body must be recomputed or saved (`materialize`).
    loop_depth: usize,
    /// The adjoint buffer of each active slice parameter or local buffer.
    dbuf: HashMap<Id, Id>,
    /// The buffer a vector-valued function returns (its adjoint is the seed).
    result: Option<Id>,
    /// What `materialize` needs to know about the primal (computed once).
    facts: Facts,
    /// The buffers whose snapshot the reverse of each loop body restores first,
    /// because a recomputed load reads them there ([`Facts::restorable`]).
    restores: HashMap<Id, Vec<Id>>,
    /// The induction variables of the loop body being materialized: each carried
    /// argument, the reversed loop's argument carrying its next value, the step and
    /// the operation that undoes it ([`reverse_for`]).
    inductions: HashMap<Id, (Id, Id, BinOp)>,
    /// Each induction variable that the reverse read, and the node recomputing it.
    induced: HashMap<Id, Id>,
    /// The buffers among the elements of a tuple result, with their element number
    /// (their adjoint is that element of the seed).
    parts: HashMap<Id, u32>,
    /// The final values, in the loop body being materialized, of the carried values
    /// that an inner loop walks ([`walked_by_inner`]), and the reversed loop's argument
    /// carrying each.
    finals: HashMap<Id, Id>,
    /// Whether this builds a forward sweep (`tangent.rs`), where no value is a routed
    /// zero that meets an infinite partial at a finite primal: a partial in forward
    /// mode is local to its node, and an infinite one at a finite value only happens
    /// at the edges that the rules always guard.
    forward: bool,
}

/// Facts about the primal that the choice between recomputing and saving a value
/// needs.
#[derive(Default)]
struct Facts {
    /// The `For` nodes around each primal node, outermost first.
    loops: HashMap<Id, Vec<Id>>,
    /// The stores into each buffer.
    stores: HashMap<Id, Vec<Id>>,
    /// The structured node whose region lists each node.
    parent: HashMap<Id, Id>,
    /// How many primal nodes read each node.
    users: HashMap<Id, usize>,
}

impl Facts {
    fn of(func: &Func) -> Facts {
        fn walk(func: &Func, nodes: &[Id], around: &mut Vec<Id>, f: &mut Facts) {
            for &id in nodes {
                f.loops.insert(id, around.clone());
                let node = func.node(id);
                if let Op::Store(b, _, _) = node.op {
                    f.stores.entry(b).or_default().push(id);
                }
                // A call writes the memory it is passed `&mut`.
                for b in mut_call_writes(func, &node.op) {
                    f.stores.entry(b).or_default().push(id);
                }
                let is_loop = matches!(node.op, Op::For { .. });
                if is_loop {
                    around.push(id);
                }
                for r in node.op.regions() {
                    for &a in &r.args {
                        f.loops.insert(a, around.clone());
                    }
                    for &n in &r.nodes {
                        f.parent.insert(n, id);
                    }
                    walk(func, &r.nodes, around, f);
                }
                if is_loop {
                    around.pop();
                }
            }
        }
        let mut f = Facts::default();
        walk(func, &func.body.nodes, &mut Vec::new(), &mut f);
        for node in &func.nodes {
            for a in node.op.operands() {
                *f.users.entry(a).or_default() += 1;
            }
        }
        f
    }

    /// The loop at the end of each of whose iterations local buffer `b` holds, at
    /// every index, what `load` read in that iteration: the innermost loop `L` around
    /// `load` and every store into `b`, when no store can run after `load` in the same
    /// iteration (every store comes earlier in program order, none in a loop inside
    /// `L` around both), and `L`'s body itself overwrites all of `b` (a loop
    /// `for i in 0..len { b[i] = .. }` right in it, `len` being `b`'s length), so that
    /// a snapshot costs no more than that loop, and `b` is made outside `L`. A snapshot
    /// of `b` saved at the end of each iteration and restored at the start of its
    /// reverse then serves every such load (Tapenade saves what is overwritten, not
    /// each read).
    fn restorable(&self, func: &Func, b: Id, load: Id) -> Option<Id> {
        let Op::Alloc { len, .. } = func.node(b).op else {
            return None;
        };
        let stores = self.stores.get(&b)?;
        let mut common: &[Id] = self.loops.get(&load)?;
        for s in stores {
            let l = self.loops.get(s)?;
            let n = common.iter().zip(l).take_while(|(x, y)| x == y).count();
            common = &common[..n];
        }
        let l = *common.last()?;
        // A buffer made inside the loop is a new one each iteration: not restored.
        if self.loops.get(&b).is_some_and(|around| around.contains(&l)) {
            return None;
        }
        let inner = |n: Id| -> Option<&[Id]> {
            let around = self.loops.get(&n)?;
            let at = around.iter().position(|&x| x == l)?;
            Some(&around[at + 1..])
        };
        let lv = inner(load)?;
        let ordered = stores
            .iter()
            .all(|&s| s < load && inner(s).is_some_and(|ls| !ls.iter().any(|x| lv.contains(x))));
        let fills = stores.iter().any(|s| {
            let Op::Store(_, i, _) = func.node(*s).op else {
                return false;
            };
            let Some(&f) = self.parent.get(s) else {
                return false;
            };
            let Op::For {
                lo,
                hi,
                inclusive: false,
                step: None,
                body,
                ..
            } = &func.node(f).op
            else {
                return false;
            };
            self.parent.get(&f) == Some(&l)
                && *hi == len
                && func.int_literal(*lo) == Some(0)
                && body.args.first() == Some(&i)
        });
        (ordered && fills).then_some(l)
    }

    /// The loop that can stand in for the snapshot of local buffer `b` restored at the
    /// start of each reversed iteration of loop `l` ([`Facts::restorable`]): the fill
    /// `for i in 0..len { b[i] = e(i) }` right in `l`'s body, when it is the only write
    /// into `b` and `e` reads nothing that changes later (cheap arithmetic, loads of
    /// memory never written after them, never `b`). Run again in the reverse, it
    /// writes what the snapshot would restore, and nothing is saved (GMM's
    /// `xcentered`). Its operands from `l`'s body are checked by the caller.
    fn refill(&self, func: &Func, l: Id, b: Id) -> Option<Id> {
        let Op::Alloc { len, .. } = func.node(b).op else {
            return None;
        };
        let [s] = self.stores.get(&b)?.as_slice() else {
            return None;
        };
        let Op::Store(_, i, _) = func.node(*s).op else {
            return None;
        };
        let f = *self.parent.get(s)?;
        let Op::For {
            lo,
            hi,
            inclusive: false,
            step: None,
            inits,
            body,
            exit: None,
            ..
        } = &func.node(f).op
        else {
            return None;
        };
        let plain = self.parent.get(&f) == Some(&l)
            && *hi == len
            && func.int_literal(*lo) == Some(0)
            && inits.is_empty()
            && body.args.as_slice() == [i]
            && body.yields.is_empty();
        let pure = body.nodes.iter().all(|&n| match func.node(n).op {
            Op::Const(_) | Op::Opaque(_) | Op::Neg(_) | Op::Not(_) | Op::Cast(..) => true,
            Op::Binary(..) | Op::Select(..) | Op::Detach(_) | Op::Math(..) => true,
            Op::Load(m, _) => m != b && self.frozen_after(func, m, n),
            Op::Store(..) => n == *s,
            _ => false,
        });
        (plain && pure).then_some(f)
    }

    /// Whether `b[i]` read at `load` still reads the same value at the end of the
    /// forward sweep: no store into `b` can run after it (none later in program order,
    /// none in a loop around both).
    fn frozen_after(&self, func: &Func, b: Id, load: Id) -> bool {
        // Parameters are read only, but for `&mut` ones.
        if matches!(func.node(b).op, Op::Param(_)) && !self.stores.contains_key(&b) {
            return true;
        }
        let around = self.loops.get(&load).cloned().unwrap_or_default();
        self.stores.get(&b).map_or(true, |stores| {
            stores.iter().all(|s| {
                *s < load
                    && !self
                        .loops
                        .get(s)
                        .is_some_and(|l| l.iter().any(|x| around.contains(x)))
            })
        })
    }
}

impl<'f> Builder<'f> {
    /// A builder of a forward sweep (`tangent.rs`) into `func`, which starts empty:
    /// nodes go to the innermost region opened with [`Builder::open`].
    pub(crate) fn forward(func: &'f mut Func, span: Span) -> Builder<'f> {
        Builder {
            func,
            span,
            regions: vec![Vec::new()],
            shapes: HashMap::new(),
            seed_routed: false,
            routed: HashMap::new(),
            loop_depth: 0,
            dbuf: HashMap::new(),
            result: None,
            facts: Facts::default(),
            restores: HashMap::new(),
            inductions: HashMap::new(),
            induced: HashMap::new(),
            parts: HashMap::new(),
            finals: HashMap::new(),
            forward: true,
        }
    }

    /// Starts a region: later nodes go there until [`Builder::close`].
    pub(crate) fn open(&mut self) {
        self.regions.push(Vec::new());
    }

    /// Ends the innermost region, returning its nodes.
    pub(crate) fn close(&mut self) -> Vec<Id> {
        self.regions.pop().unwrap_or_default()
    }

    /// Appends `node` as it is (its origin kept) to the innermost region.
    pub(crate) fn raw(&mut self, node: Node) -> Id {
        if let Op::ShapeOf(x) = node.op {
            let id = Id(self.func.nodes.len() as u32);
            self.shapes.entry(x).or_insert(id);
        }
        let id = self.func.push(node);
        if let Some(r) = self.regions.last_mut() {
            r.push(id);
        }
        id
    }

    /// The span later nodes get.
    pub(crate) fn set_span(&mut self, span: Span) {
        self.span = span;
    }

    /// A region argument made by the forward sweep.
    pub(crate) fn arg(&mut self, k: u32, ty: Ty, origin: Origin) -> Id {
        let id = self.new_arg(k, ty);
        self.func.nodes[id.idx()].origin = origin;
        id
    }

    /// A zero of the kind of `x` (a buffer of zeros for memory).
    pub(crate) fn zero_of(&mut self, x: Id) -> Id {
        self.zero_like(x)
    }
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
        if self.forward {
            return false;
        }
        let mut stack = vec![id];
        while let Some(&top) = stack.last() {
            if self.routed.contains_key(&top) {
                stack.pop();
                continue;
            }
            let node = self.func.node(top);
            let adjoint = node.origin == Origin::Adjoint;
            let own = match node.op {
                Op::Load(..) | Op::Arg(_) if !adjoint => Some(false),
                // A carried adjoint, an adjoint read from memory and a saved value can
                // be anything, zeros included.
                Op::Select(..) | Op::Proj(..) | Op::If { .. } | Op::Arg(_) | Op::Load(..) => {
                    Some(true)
                }
                // `max_axis`'s pullback gives 0 to the elements that are not the maximum.
                Op::ExtremumAxisGrad(..) => Some(true),
                Op::Seed | Op::SeedElem(..) => Some(self.seed_routed),
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

    /// Whether the scalar call `call` in a reversed loop body can be made again in the
    /// reverse sweep: it has memory arguments, each a parameter or a buffer that holds
    /// there what the call read (never written after it, or restored from a snapshot,
    /// which this records; see `Facts::restorable`).
    pub fn replay_call(&mut self, call: Id, args: &[Id]) -> bool {
        if self.loop_depth == 0 {
            return false;
        }
        let mut restore = Vec::new();
        let mut any = false;
        for &a in args {
            if !self.ty(a).is_memory() {
                continue;
            }
            any = true;
            let m = match self.func.node(a).op {
                Op::View(m, ..) => m,
                _ => a,
            };
            if self.facts.frozen_after(self.func, m, call) {
                continue;
            }
            match self.facts.restorable(self.func, m, call) {
                Some(l) if self.result != Some(m) && !self.parts.contains_key(&m) => {
                    restore.push((l, m))
                }
                _ => return false,
            }
        }
        for (l, m) in restore {
            let list = self.restores.entry(l).or_default();
            if !list.contains(&m) {
                list.push(m);
            }
        }
        any
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
        if ty.is_memory() {
            return self.push(Op::ZerosLike(x), ty);
        }
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
        // Constants are scalars; they broadcast against tensors, and are the
        // elements of memory.
        let ty = match ty {
            Ty::Tensor(ft) | Ty::Slice(ft) | Ty::Buf(ft) => Ty::Float(ft),
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

    /// A fresh region argument (not listed in any region's nodes).
    fn new_arg(&mut self, k: u32, ty: Ty) -> Id {
        self.func.push(Node {
            op: Op::Arg(k),
            ty,
            span: self.span,
            origin: Origin::Adjoint,
            hint: None,
        })
    }

    /// The integer literal `k`.
    pub fn int_const(&mut self, k: usize) -> Id {
        let idx = self.func.opaque.len() as u32;
        let lit = proc_macro2::Literal::usize_unsuffixed(k);
        self.func.opaque.push(quote::quote!(#lit));
        self.push(Op::Opaque(idx), Ty::Int)
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
/// operations. Carried loop values and buffers make this a fixed point: a carried
/// value is active when its initial value or its next value is, a buffer when an
/// active value is stored into it.
pub fn activity(func: &Func, sig: &Signature) -> Vec<bool> {
    // The owner and index of each carried argument.
    let mut carried: HashMap<Id, (Id, usize)> = HashMap::new();
    for (i, node) in func.nodes.iter().enumerate() {
        if let Op::For { body, .. } = &node.op {
            for (k, &a) in body.args.iter().enumerate().skip(1) {
                carried.insert(a, (Id(i as u32), k - 1));
            }
        }
    }
    let mut active = vec![false; func.nodes.len()];
    loop {
        let mut changed = false;
        for (i, node) in func.nodes.iter().enumerate() {
            let was = active[i];
            let now = match &node.op {
                Op::Store(b, _, v) => {
                    if active[v.idx()] && !active[b.idx()] {
                        active[b.idx()] = true;
                        changed = true;
                    }
                    false
                }
                // A call with `&mut` arguments: when it reads an active value, the memory
                // it writes becomes active, and so does its result.
                Op::MutCall { args, .. } => {
                    let any = args.iter().any(|a| active[a.idx()]);
                    if any {
                        for b in mut_call_writes(func, &node.op) {
                            if !active[b.idx()] {
                                active[b.idx()] = true;
                                changed = true;
                            }
                        }
                    }
                    any && node.ty.is_differentiable()
                }
                Op::MutOut(c, _) => match &func.node(*c).op {
                    Op::MutCall { args, .. } => args.iter().any(|a| active[a.idx()]),
                    _ => false,
                },
                Op::MutSeed(_) | Op::MutCallVjp { .. } | Op::Snapshot(_) => false,
                // A tuple, and a call returning one, are active when an operand is.
                Op::Pack(items) => items.iter().any(|a| active[a.idx()]),
                Op::Call { args, .. } if node.ty == Ty::Tuple => {
                    args.iter().any(|a| active[a.idx()])
                }
                // A tuple inside a call's tuple result.
                Op::Elem(c, _) if node.ty == Ty::Tuple => active[c.idx()],
                _ if !node.ty.is_differentiable() => false,
                Op::Param(k) => sig.params.get(*k as usize).is_some_and(|p| p.diff),
                Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::Detach(_) => false,
                Op::CallGrad { .. } | Op::Select(..) | Op::If { .. } | Op::For { .. } => false,
                Op::Push(..)
                | Op::Grow(_)
                | Op::Pop(_)
                | Op::Restore(..)
                | Op::ZerosLike(_)
                | Op::SeedBuf(_)
                | Op::AccMem { .. }
                | Op::Effect { .. } => false,
                Op::Arg(_) => carried
                    .get(&Id(i as u32))
                    .is_some_and(|&(f, k)| carried_active(&func.node(f).op, k, &active)),
                Op::Proj(n, k) => {
                    let k = *k as usize;
                    match &func.node(*n).op {
                        Op::If { then, else_, .. } => {
                            then.yields.get(k).is_some_and(|y| active[y.idx()])
                                || else_.yields.get(k).is_some_and(|y| active[y.idx()])
                        }
                        op => carried_active(op, k, &active),
                    }
                }
                // An element of memory is active when the memory is.
                Op::Load(b, _) | Op::View(b, _, _) => active[b.idx()],
                // A buffer is active once an active value is stored into it (above).
                Op::Alloc { init, .. } => active[init.idx()] || was,
                Op::Elems(items, _) => items.iter().any(|a| active[a.idx()]) || was,
                op => op.operands().iter().any(|a| active[a.idx()]),
            };
            if now && !was {
                active[i] = true;
                changed = true;
            }
        }
        if !changed {
            return active;
        }
    }
}

/// Which nodes an output can depend on other than through `detach`: the backward
/// half of activity analysis (Tapenade's "useful"). A node that no output needs has
/// a zero adjoint, so `build` gives it none; a loop whose values only feed a
/// `detach` (the maximum of a stabilised LogSumExp) is not reversed, and nothing is
/// saved for it. Conservative where precision would need aliasing facts: a
/// structured node that is needed needs all of its regions; a buffer that is needed
/// needs its views, every store and `push` into it, and the buffer it views; calls
/// with `&mut` arguments, effects and parameters are always needed.
pub(crate) fn useful(func: &Func) -> Vec<bool> {
    useful_for(func, &func.outputs)
}

/// [`useful`] for the outputs `roots` only.
pub(crate) fn useful_for(func: &Func, roots: &[Id]) -> Vec<bool> {
    let n = func.nodes.len();
    let mut owner: Vec<Option<Id>> = vec![None; n];
    // Per buffer: the nodes that change or alias it.
    let mut touching: HashMap<Id, Vec<Id>> = HashMap::new();
    let mut pushes: HashMap<u32, Vec<Id>> = HashMap::new();
    let mut work: Vec<Id> = roots.to_vec();
    for (i, node) in func.nodes.iter().enumerate() {
        let id = Id(i as u32);
        for region in node.op.regions() {
            for &x in region.args.iter().chain(&region.nodes) {
                owner[x.idx()] = Some(id);
            }
        }
        match &node.op {
            // Writes into memory, the reverse sweep's included (a forward sweep over
            // it asks which of its values reach the gradients).
            Op::Store(b, ..) | Op::Grow(b) | Op::Restore(_, b) | Op::AccMem { dst: b, .. } => {
                touching.entry(*b).or_default().push(id)
            }
            Op::MutCallVjp { dmut, .. } => {
                for b in dmut {
                    touching.entry(*b).or_default().push(id);
                }
            }
            // A value taken off a stack needs the pushes onto it.
            Op::Push(k, _) => pushes.entry(*k).or_default().push(id),
            Op::View(b, ..) => {
                touching.entry(*b).or_default().push(id);
                touching.entry(id).or_default().push(*b);
            }
            Op::Param(_) | Op::MutCall { .. } | Op::Effect { .. } => work.push(id),
            _ => {}
        }
    }
    for (i, node) in func.nodes.iter().enumerate() {
        if let Op::Pop(k) | Op::Restore(k, _) = node.op {
            if let Some(p) = pushes.get(&k) {
                touching
                    .entry(Id(i as u32))
                    .or_default()
                    .extend(p.iter().copied());
            }
        }
    }
    let mut needed = vec![false; n];
    while let Some(x) = work.pop() {
        if std::mem::replace(&mut needed[x.idx()], true) {
            continue;
        }
        let op = &func.node(x).op;
        if !matches!(op, Op::Detach(_)) {
            work.extend(op.operands());
        }
        for region in op.regions() {
            work.extend(
                region
                    .args
                    .iter()
                    .chain(&region.nodes)
                    .chain(&region.yields),
            );
        }
        work.extend(owner[x.idx()]);
        if let Some(t) = touching.get(&x) {
            work.extend(t.iter().copied());
        }
    }
    needed
}

/// Whether carried value `k` of a `For` is active: its initial or its next value is.
fn carried_active(op: &Op, k: usize, active: &[bool]) -> bool {
    match op {
        Op::For { inits, body, .. } => {
            inits.get(k).is_some_and(|x| active[x.idx()])
                || body.yields.get(k).is_some_and(|y| active[y.idx()])
        }
        _ => false,
    }
}

/// Whether the `_vjp` seed of `sig` is one float and every gradient a float: then
/// the seed is zero in every component or in none, and `build` guards it once.
pub fn scalar_seed(sig: &Signature) -> bool {
    matches!(sig.ret_kind, Ty::Float(_))
        && sig
            .params
            .iter()
            // A `&mut` parameter has a seed of its own: the result's seed being zero
            // does not make the gradients zero.
            .all(|p| !p.mutable && (!p.diff || matches!(p.kind, Ty::Float(_))))
}

/// Builds primal + adjoint: the outputs become the value followed by one gradient per
/// differentiated parameter (in parameter order).
pub fn build(primal: &Func, sig: &Signature, seed: Seed) -> Func {
    let mut func = primal.clone();
    let needed = useful(&func);
    let active: Vec<bool> = activity(&func, sig)
        .into_iter()
        .zip(needed)
        .map(|(a, u)| a && u)
        .collect();
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
    // A scalar seed of a function of scalars is zero in every component or in none:
    // then the products of the sweep need no guard against it (as with the 1 of
    // `_grad`), and one select at the end gives the zero gradient of a zero seed.
    let scalar_seed = seed == Seed::Param && scalar_seed(sig);
    let mut b = Builder {
        func: &mut func,
        span: ret_node.span,
        regions: vec![body.nodes.clone()],
        shapes,
        // Only the constant 1 of `_grad` is never zero: a `_vjp` seed may be zero in
        // some components (the rows of a Jacobian).
        seed_routed: seed != Seed::One && !scalar_seed,
        routed: HashMap::new(),
        loop_depth: 0,
        dbuf: HashMap::new(),
        result: None,
        facts: Facts::of(primal),
        restores: HashMap::new(),
        inductions: HashMap::new(),
        induced: HashMap::new(),
        parts: HashMap::new(),
        finals: HashMap::new(),
        forward: false,
    };
    // The adjoint of each active slice parameter: a buffer of zeros, filled by the
    // reverse sweep and returned as the parameter's gradient. That of a `&mut`
    // parameter starts as the seed of its final value (zero for `_grad`), and what is
    // left of it at the end is the gradient of its initial value.
    for (k, p) in sig.params.iter().enumerate() {
        if let (true, Some(x)) = (p.diff || p.mutable, params[k]) {
            if p.kind.is_memory() && active[x.idx()] {
                let z = match seed {
                    Seed::Param if p.mutable => b.push(Op::MutSeed(k as u32), p.kind),
                    _ => b.push(Op::ZerosLike(x), p.kind),
                };
                b.dbuf.insert(x, z);
            }
        }
    }
    // The final value of each `&mut` scalar parameter (after the result in the
    // primal's outputs) gets the seed of that parameter.
    let finals: Vec<Id> = primal.outputs[1..].to_vec();
    let scalar_muts = sig
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.mutable && !p.kind.is_memory());
    for ((k, p), &fin) in scalar_muts.zip(&finals) {
        if seed == Seed::Param && active[fin.idx()] {
            let s = b.push(Op::MutSeed(k as u32), p.kind);
            accumulate(&mut b, &mut adj, fin, s);
        }
    }
    let mut seed_node = None;
    if ret_node.ty.is_memory() {
        // A vector result: its adjoint buffer is the seed (made where the buffer's
        // reverse starts, in `sweep`).
        b.result = Some(ret);
    } else if let Op::Pack(items) = &ret_node.op {
        seed_tuple(&mut b, items, &active, &mut adj, seed);
    } else if active[ret.idx()] {
        let s = match seed {
            Seed::One => b.constant(1.0, ret_node.ty),
            Seed::Param => b.push(Op::Seed, ret_node.ty),
        };
        adj[ret.idx()] = Some(s);
        seed_node = Some(s);
    }
    let mut pending = HashMap::new();
    sweep(&mut b, &body.nodes, &active, &mut adj, &mut pending);
    // A tuple result is made again after the reverse sweep, which may read its
    // elements (a buffer's length): the tuple moves them.
    let ret = match &ret_node.op {
        Op::Pack(items) => b.push(Op::Pack(items.clone()), Ty::Tuple),
        _ => ret,
    };
    let mut outputs = vec![ret];
    for (k, p) in sig.params.iter().enumerate() {
        if !p.diff {
            continue;
        }
        let g = params[k].and_then(|id| adj[id.idx()].or_else(|| b.dbuf.get(&id).copied()));
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
    if let (true, Some(s)) = (scalar_seed, seed_node) {
        b.span = ret_node.span;
        let zero = b.constant(0.0, ret_node.ty);
        let is_zero = b.cmp(BinOp::Eq, s, zero);
        for g in &mut outputs[1..] {
            let zero = b.constant(0.0, b.ty(*g));
            *g = b.select(is_zero, zero, *g);
        }
    }
    outputs.extend(finals);
    let nodes = b.regions.pop().unwrap_or_default();
    func.body = Region {
        nodes,
        yields: body.yields,
        args: Vec::new(),
    };
    func.outputs = outputs;
    debug_assert_eq!(func.verify(), Ok(()));
    func
}

/// Whether `push` grows the local buffer `buf` ([`Op::Grow`]).
fn grows(func: &Func, buf: Id) -> bool {
    func.nodes
        .iter()
        .any(|n| matches!(n.op, Op::Grow(b) if b == buf))
}

/// The seed of a tuple result `(items..)`: element `k` of the seed is the adjoint of
/// `items[k]` (a buffer's is made where its reverse starts, in `sweep`).
fn seed_tuple(
    b: &mut Builder<'_>,
    items: &[Id],
    active: &[bool],
    adj: &mut [Option<Id>],
    seed: Seed,
) {
    for (k, &x) in items.iter().enumerate() {
        let ty = b.ty(x);
        if ty.is_memory() {
            b.parts.insert(x, k as u32);
        } else if active[x.idx()] {
            let s = match seed {
                Seed::One => b.constant(1.0, ty),
                Seed::Param => b.push(Op::SeedElem(k as u32, None), ty),
            };
            // Of the element's own type: no fitting (an element named twice adds up).
            adj[x.idx()] = Some(match adj[x.idx()] {
                None => s,
                Some(prev) => b.add(prev, s),
            });
        }
    }
}

/// The seed of a call with a tuple result: the adjoints its elements gathered
/// (`pending`), a zero for the others; `None` when no element has one.
fn seed_of_tuple_call(
    b: &mut Builder<'_>,
    call: Id,
    pending: &HashMap<(Id, u32), Id>,
) -> Option<Id> {
    let elems: Vec<(u32, Id)> = (call.0 + 1..b.func.nodes.len() as u32)
        .map(Id)
        .filter_map(|e| match b.func.node(e).op {
            Op::Elem(c, k) if c == call => Some((k, e)),
            _ => None,
        })
        .collect();
    if !elems.iter().any(|&(k, _)| pending.contains_key(&(call, k))) {
        return None;
    }
    let mut parts = vec![None; elems.len()];
    for &(k, e) in &elems {
        let g = match pending.get(&(call, k)) {
            Some(&g) => g,
            None => zero_tuple(b, e),
        };
        if let Some(p) = parts.get_mut(k as usize) {
            *p = Some(g);
        }
    }
    let parts: Option<Vec<Id>> = parts.into_iter().collect();
    Some(b.push(Op::Pack(parts?), Ty::Tuple))
}

/// A zero of the kind of `e`, an element of a call's tuple result: for a tuple, the
/// tuple of its elements' zeros.
fn zero_tuple(b: &mut Builder<'_>, e: Id) -> Id {
    if b.ty(e) != Ty::Tuple {
        return b.zero_like(e);
    }
    let mut inner: Vec<(u32, Id)> = (e.0 + 1..b.func.nodes.len() as u32)
        .map(Id)
        .filter_map(|x| match b.func.node(x).op {
            Op::Elem(c, k) if c == e => Some((k, x)),
            _ => None,
        })
        .collect();
    inner.sort_by_key(|&(k, _)| k);
    inner.dedup_by_key(|&mut (k, _)| k);
    let zeros = inner.into_iter().map(|(_, x)| zero_tuple(b, x)).collect();
    b.push(Op::Pack(zeros), Ty::Tuple)
}

/// Adds `c` to the adjoint of `x`.
fn accumulate(b: &mut Builder<'_>, adj: &mut [Option<Id>], x: Id, c: Id) {
    if b.ty(x).is_memory() {
        // A callee's gradient for memory passed to it (`dy * g`, see `rules.rs`):
        // added into the memory's adjoint, from where a view starts.
        let (base, lo) = match b.func.node(x).op {
            Op::View(m, lo, _) => (m, Some(lo)),
            _ => (x, None),
        };
        if let Some(&dst) = b.dbuf.get(&base) {
            // Any other contribution is a gradient to add as it is (never dropped).
            let (scale, g) = match b.func.node(c).op {
                Op::Binary(BinOp::Mul, scale, g) => (scale, g),
                _ => {
                    let ft = b.ty(x).float().unwrap_or(FloatTy::F64);
                    (b.constant(1.0, Ty::Float(ft)), c)
                }
            };
            b.push(Op::AccMem { dst, lo, g, scale }, Ty::Unit);
        }
        return;
    }
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
    // The adjoints of the buffers this region allocates start as zeros here, at the
    // start of its reverse: every later contribution is added into memory.
    for &id in nodes {
        if !active[id.idx()] {
            continue;
        }
        if b.result == Some(id) {
            let ty = b.ty(id);
            let z = b.push(Op::SeedBuf(id), ty);
            b.dbuf.insert(id, z);
            continue;
        }
        if let Some(&k) = b.parts.get(&id) {
            let ty = b.ty(id);
            let z = b.push(Op::SeedElem(k, Some(id)), ty);
            b.dbuf.insert(id, z);
            continue;
        }
        let z = match b.func.node(id).op.clone() {
            // A `Vec` that grows has its final length only at run time.
            Op::Alloc { .. } if grows(b.func, id) => {
                let ty = b.ty(id);
                b.push(Op::ZerosLike(id), ty)
            }
            Op::Alloc { len, array, .. } => {
                let ty = b.ty(id);
                let zero = b.constant(0.0, ty);
                b.push(
                    Op::Alloc {
                        len,
                        init: zero,
                        array,
                    },
                    ty,
                )
            }
            Op::Elems(ref items, array) => {
                let ty = b.ty(id);
                // The elements are floats of the buffer's width.
                let ft = ty.float().unwrap_or(FloatTy::F64);
                let zero = b.constant(0.0, Ty::Float(ft));
                let zeros = vec![zero; items.len()];
                b.push(Op::Elems(zeros, array), ty)
            }
            // An array or `Vec` a call returned: its adjoint is the seed of the
            // callee's `_vjp`.
            Op::Call { .. } if b.ty(id).is_memory() => b.push(Op::ZerosLike(id), b.ty(id)),
            _ => continue,
        };
        b.dbuf.insert(id, z);
    }
    for &id in nodes.iter().rev() {
        let node = b.func.node(id).clone();
        b.span = node.span;
        match &node.op {
            Op::If { cond, then, else_ } => {
                reverse_if(b, id, *cond, then, else_, active, adj, pending);
                continue;
            }
            Op::For { .. } => {
                reverse_for(b, id, active, adj, pending);
                continue;
            }
            Op::MutCall { path, args, muts } => {
                reverse_mut_call(b, id, *path, args, muts, active, adj);
                continue;
            }
            // b[i] = v: v gets what b[i] had gathered, and b[i] starts again from 0
            // (the value it held before was overwritten, so it gets nothing).
            Op::Store(buf, i, v) => {
                if let Some(&db) = b.dbuf.get(buf) {
                    let ty = Ty::Float(b.ty(db).float().unwrap_or(FloatTy::F64));
                    let g = b.push(Op::Load(db, *i), ty);
                    // b[i] += c (or -= c): b[i]'s adjoint stays, and c gets it (the
                    // same sums as zeroing it and adding it back through the load).
                    if let Some((c, neg)) = compound(b.func, &b.facts, nodes, id) {
                        if active[c.idx()] {
                            let g = if neg { b.neg(g) } else { g };
                            accumulate(b, adj, c, g);
                        }
                        continue;
                    }
                    let zero = b.constant(0.0, ty);
                    b.push(Op::Store(db, *i, zero), Ty::Unit);
                    if active[v.idx()] {
                        accumulate(b, adj, *v, g);
                    }
                }
                continue;
            }
            _ => {}
        }
        if !active[id.idx()] {
            continue;
        }
        if let Op::Load(buf, i) = node.op {
            // y = b[i]: b[i]'s adjoint gathers y's.
            if let (Some(&db), Some(dy)) = (b.dbuf.get(&buf), adj[id.idx()]) {
                let old = b.push(Op::Load(db, i), node.ty);
                let new = b.add(old, dy);
                b.push(Op::Store(db, i, new), Ty::Unit);
            }
            continue;
        }
        if let Op::Elems(items, _) = &node.op {
            // [a, b, c]: each element's adjoint is read back from the buffer's.
            if let Some(&db) = b.dbuf.get(&id) {
                let ty = Ty::Float(node.ty.float().unwrap_or(FloatTy::F64));
                for (k, &x) in items.iter().enumerate() {
                    if active[x.idx()] {
                        let idx = b.int_const(k);
                        let g = b.push(Op::Load(db, idx), ty);
                        accumulate(b, adj, x, g);
                    }
                }
            }
            continue;
        }
        if let Op::Alloc { init, .. } = node.op {
            // vec![x; n]: x's adjoint is the sum of the buffer's.
            if let (Some(&db), true) = (b.dbuf.get(&id), active[init.idx()]) {
                let ty = b.ty(init);
                let g = b.push(Op::Reduce(Reduction::Sum, db), ty);
                accumulate(b, adj, init, g);
            }
            continue;
        }
        // The seed of a call with a tuple result, and of a tuple inside one: the tuple
        // of its elements' adjoints.
        if let (Op::Call { .. } | Op::Elem(..), Ty::Tuple, None) =
            (&node.op, node.ty, adj[id.idx()])
        {
            adj[id.idx()] = seed_of_tuple_call(b, id, pending);
        }
        if let (Op::Call { .. }, true) = (&node.op, node.ty.is_memory()) {
            adj[id.idx()] = b.dbuf.get(&id).copied();
        }
        let Some(dy) = adj[id.idx()] else { continue };
        if let Op::Proj(n, k) | Op::Elem(n, k) = node.op {
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
    // A branch with no value to differentiate may still move adjoints through
    // memory (an element update inside an `if`).
    if seeds.is_empty()
        && !touches_active_memory(b.func, then, active)
        && !touches_active_memory(b.func, else_, active)
    {
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
    // Inside a loop, a branch's values do not outlive the iteration: its reverse
    // recomputes or pops them (at top level the emitter hands them out instead).
    let (then_nodes, else_nodes, remaps) = if b.loop_depth > 0 {
        let (tn, tm) = materialize(b, id, 0, then_nodes, None);
        let (en, em) = materialize(b, id, 1, else_nodes, None);
        (tn, en, Some((tm, em)))
    } else {
        (then_nodes, else_nodes, None)
    };
    // The adjoints of outer values that a branch changed: those of the branches' own
    // values stay inside (a tensor's zero there would need a shape out of scope).
    let local: std::collections::HashSet<Id> = defined_in(b.func, then)
        .into_iter()
        .chain(defined_in(b.func, else_))
        .collect();
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| then_adj[i] != before[i] || else_adj[i] != before[i])
        .filter(|&i| !local.contains(&Id(i as u32)))
        .collect();
    let mut then_r = Region {
        nodes: then_nodes,
        ..Region::default()
    };
    let mut else_r = Region {
        nodes: else_nodes,
        ..Region::default()
    };
    for &i in &changed {
        let get =
            |b: &mut Builder<'_>, v: Option<Id>| v.unwrap_or_else(|| b.zero_like(Id(i as u32)));
        let (t, e) = match &remaps {
            Some((tm, em)) => (
                then_adj[i].map(|v| tm.get(&v).copied().unwrap_or(v)),
                else_adj[i].map(|v| em.get(&v).copied().unwrap_or(v)),
            ),
            None => (then_adj[i], else_adj[i]),
        };
        then_r.yields.push(get(b, t));
        else_r.yields.push(get(b, e));
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

/// Whether the store `store` (one of `nodes`) is `b[i] = b[i] + c` (or `c + b[i]`,
/// `b[i] - c`) with the load and the sum read by nothing else, and no node between
/// the load and the store (in `nodes`) reading `b` or owning a region. Returns `c`
/// and whether it is subtracted.
fn compound(func: &Func, facts: &Facts, nodes: &[Id], store: Id) -> Option<(Id, bool)> {
    let Op::Store(buf, i, v) = func.node(store).op else {
        return None;
    };
    let load = |x: Id| matches!(func.node(x).op, Op::Load(m, j) if m == buf && j == i);
    let (l, c, neg) = match func.node(v).op {
        Op::Binary(BinOp::Add, l, c) if load(l) => (l, c, false),
        Op::Binary(BinOp::Add, c, l) if load(l) => (l, c, false),
        Op::Binary(BinOp::Sub, l, c) if load(l) => (l, c, true),
        _ => return None,
    };
    let once = |x: Id| facts.users.get(&x) == Some(&1);
    if !once(l) || !once(v) || c == l {
        return None;
    }
    let at = |x: Id| nodes.iter().position(|&n| n == x);
    let (pl, ps) = (at(l)?, at(store)?);
    let quiet = nodes[pl + 1..ps].iter().all(|&n| {
        let op = &func.node(n).op;
        op.regions().is_empty() && !op.operands().contains(&buf)
    });
    quiet.then_some((c, neg))
}

/// `for i in range { body }` reversed: the same range walked backwards, carrying the
/// adjoints of the carried values and of the outer values the body reads.
fn reverse_for(
    b: &mut Builder<'_>,
    id: Id,
    active: &[bool],
    adj: &mut [Option<Id>],
    pending: &mut HashMap<(Id, u32), Id>,
) {
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
        trips: _,
    } = b.func.node(id).op.clone()
    else {
        return;
    };
    // A loop that can stop early is walked back from the last iteration that ran.
    let trips = match exit {
        Some(_) => {
            let found = projection(b.func, id, inits.len() as u32);
            // Lowering places this projection after every such loop.
            debug_assert!(found.is_some(), "a loop with an exit has no trip count");
            Some(found.unwrap_or(id))
        }
        None => None,
    };
    // Which values the reverse body must carry: the carried values' adjoints, and the
    // adjoints of the active outer scalars that the body reads.
    let inside = defined_in(b.func, &body);
    let mut free: Vec<Id> = Vec::new();
    for_each_operand(b.func, &body, &mut |x| {
        if !inside.contains(&x)
            && active[x.idx()]
            && matches!(b.func.node(x).ty, Ty::Float(_) | Ty::Tensor(_))
            && !free.contains(&x)
        {
            free.push(x);
        }
    });
    free.sort();
    let carried = &body.args[1..];
    let any_carried = carried.iter().any(|a| active[a.idx()]);
    // Whether the body reads or writes memory that has an adjoint.
    let memory = inside.iter().any(|&n| match b.func.node(n).op {
        // The load or view itself: one that no output needs is inactive though its
        // buffer is not (and an active one has an active buffer).
        Op::Load(..) | Op::View(..) => active[n.idx()],
        Op::Store(x, _, _) => active[x.idx()],
        Op::MutCall { ref args, .. } => args.iter().any(|a| active[a.idx()]),
        _ => false,
    });
    if !any_carried && free.is_empty() && !memory {
        return;
    }
    let span = b.func.node(id).span;
    b.span = span;
    // The seeds: the adjoints of the loop's results (zero where there is none).
    let mut new_inits = Vec::new();
    let mut arg_tys = Vec::new();
    for (k, &a) in carried.iter().enumerate() {
        let seed = pending.remove(&(id, k as u32));
        // An inactive carried value has no adjoint: an integer stands in for it.
        let ty = if active[a.idx()] { b.ty(a) } else { Ty::Int };
        let v = match seed {
            Some(v) => v,
            // A tensor's zero takes the shape of the loop's result (the carried value
            // itself lives inside the loop).
            None if active[a.idx()] && matches!(ty, Ty::Tensor(_)) => {
                match projection(b.func, id, k as u32) {
                    Some(p) => b.zero_like(p),
                    None => b.zero_like(a),
                }
            }
            None if active[a.idx()] => b.zero_like(a),
            None => b.constant(0.0, Ty::Int),
        };
        new_inits.push(v);
        arg_tys.push(ty);
    }
    for &f in &free {
        let v = match adj[f.idx()] {
            Some(v) => v,
            None => b.zero_like(f),
        };
        new_inits.push(v);
        arg_tys.push(b.ty(f));
    }
    // The reversed body's arguments: the index, then one adjoint per carried value
    // and per free value.
    let index = b.new_arg(0, Ty::Int);
    let args: Vec<Id> = arg_tys
        .iter()
        .enumerate()
        .map(|(k, &t)| b.new_arg(k as u32 + 1, t))
        .collect();
    // A carried adjoint may be a routed zero when its seed may be, or when the body
    // routes (a select, a branch, a read of adjoint memory, an inner loop).
    let routes = body_routes(b.func, &body);
    for (k, &a) in args.iter().enumerate() {
        let init = new_inits[k];
        let v = routes || b.may_be_routed_zero(init);
        b.routed.insert(a, v);
    }
    b.regions.push(Vec::new());
    b.loop_depth += 1;
    let mut local = adj.to_vec();
    for &a in carried {
        local[a.idx()] = None;
    }
    for (m, &f) in free.iter().enumerate() {
        local[f.idx()] = Some(args[carried.len() + m]);
    }
    for (k, &y) in body.yields.iter().enumerate() {
        if active[y.idx()] && active[carried[k].idx()] {
            accumulate(b, &mut local, y, args[k]);
        }
    }
    let mut inner = HashMap::new();
    sweep(b, &body.nodes, active, &mut local, &mut inner);
    let mut yields = Vec::new();
    for (k, &a) in carried.iter().enumerate() {
        let v = match local[a.idx()] {
            Some(v) => v,
            // Shaped like the carried adjoint, which is in scope here.
            None if active[a.idx()] => b.zero_like(args[k]),
            None => args[k],
        };
        yields.push(v);
    }
    for &f in &free {
        yields.push(local[f.idx()].unwrap_or(args[0]));
    }
    b.loop_depth -= 1;
    let nodes = b.regions.pop().unwrap_or_default();
    // Induction variables (a carried integer whose next value is itself plus or minus
    // a value from outside the body) are never saved: the reversed loop carries their
    // next value, starting from the final one, and undoes the step.
    let mut inductions = Vec::new();
    for (k, &a) in carried.iter().enumerate() {
        if let Some((step, undo, last)) = induction(b.func, id, k, a, &body, &inside) {
            let next = b.new_arg(0, Ty::Int);
            b.inductions.insert(a, (next, step, undo));
            inductions.push((a, next, last));
        }
    }
    let mut nodes = nodes;
    let mut walked = Vec::new();
    if exit.is_none() {
        for (k, &a) in carried.iter().enumerate() {
            if b.inductions.contains_key(&a) {
                continue;
            }
            if let Some(w) = walked_by_inner(b, id, k, a, &body, &mut nodes) {
                walked.push(w);
            }
        }
    }
    let (nodes, remap) = materialize(b, id, 0, nodes, Some((body.args[0], index)));
    b.inductions.clear();
    b.finals.clear();
    let mut yields: Vec<Id> = yields
        .into_iter()
        .map(|y| remap.get(&y).copied().unwrap_or(y))
        .collect();
    let mut args = args;
    for (a, next, last) in inductions {
        if let Some(prev) = b.induced.remove(&a) {
            b.func.nodes[next.idx()].op = Op::Arg(args.len() as u32 + 1);
            args.push(next);
            new_inits.push(last);
            yields.push(prev);
        }
    }
    for (next, start, last) in walked {
        b.func.nodes[next.idx()].op = Op::Arg(args.len() as u32 + 1);
        args.push(next);
        new_inits.push(last);
        yields.push(remap.get(&start).copied().unwrap_or(start));
    }
    let mut nodes = nodes;
    let promoted = promote(b, index, &mut nodes, &mut args, &mut new_inits, &mut yields);
    let node = b.push(
        Op::For {
            lo,
            hi,
            inclusive,
            step,
            rev,
            back: !back,
            inits: new_inits,
            body: Region {
                args: std::iter::once(index).chain(args.iter().copied()).collect(),
                nodes,
                yields,
            },
            exit: None,
            trips,
        },
        Ty::Tuple,
    );
    // The free values' adjoints first: each replaces the adjoint it started from, and
    // a carried value's initial value may be one of them (`let mut y = x; for .. { y =
    // y * a + x; }`; found by the tester, seed 4242: the replacement dropped the
    // carried adjoint added before it).
    for (m, &f) in free.iter().enumerate() {
        let k = carried.len() + m;
        let p = b.push(Op::Proj(node, k as u32), arg_tys[k]);
        adj[f.idx()] = Some(p);
    }
    for (k, &a) in carried.iter().enumerate() {
        if !active[a.idx()] {
            continue;
        }
        let p = b.push(Op::Proj(node, k as u32), arg_tys[k]);
        let init = inits[k];
        if active[init.idx()] {
            accumulate(b, adj, init, p);
        }
    }
    for (db, i, k, ty) in promoted {
        let p = b.push(Op::Proj(node, k), ty);
        b.push(Op::Store(db, i, p), Ty::Unit);
    }
}

/// Keeps in a register each element of adjoint memory that the reversed loop body
/// `nodes` reads and writes at one index from outside the loop, and nowhere else
/// (`db[i] += ..` with `i` the index of an outer loop, GMM's triangle): the element is
/// loaded before the loop, carried through it, stored after it. Adjoint buffers are
/// distinct allocations, which LLVM cannot see through, so it keeps the load-add-store
/// chain through memory otherwise. The sums are the same, in the same order. Returns,
/// per promoted element, the buffer, the index, the carried value's number and kind.
fn promote(
    b: &mut Builder<'_>,
    index: Id,
    nodes: &mut Vec<Id>,
    args: &mut Vec<Id>,
    inits: &mut Vec<Id>,
    yields: &mut Vec<Id>,
) -> Vec<(Id, Id, u32, Ty)> {
    let region = Region {
        nodes: nodes.clone(),
        args: std::iter::once(index).chain(args.iter().copied()).collect(),
        ..Region::default()
    };
    let inside = defined_in(b.func, &region);
    let adjoint_memory: std::collections::HashSet<Id> = b.dbuf.values().copied().collect();
    // Each candidate buffer and the one index it is accessed at, or None when it is
    // accessed any other way.
    let mut cands: HashMap<Id, Option<Id>> = HashMap::new();
    for &n in &inside {
        let op = &b.func.node(n).op;
        let top = nodes.contains(&n);
        let at = match *op {
            Op::Load(m, i) | Op::Store(m, i, _) if top && !inside.contains(&i) => Some((m, i)),
            _ => None,
        };
        for m in op.operands() {
            if !adjoint_memory.contains(&m) || inside.contains(&m) {
                continue;
            }
            // Kept while every access is a load or store at one index (never the
            // buffer stored as a value, an `AccMem`, a view, a call's argument).
            let same = match at {
                Some((bm, i)) if bm == m && !matches!(*op, Op::Store(_, _, v) if v == m) => {
                    cands.get(&m).map_or(true, |c| *c == Some(i))
                }
                _ => false,
            };
            cands.insert(m, if same { at.map(|a| a.1) } else { None });
        }
    }
    let mut keep: Vec<(Id, Id)> = cands
        .into_iter()
        .filter_map(|(m, i)| i.map(|i| (m, i)))
        .collect();
    keep.sort();
    if keep.is_empty() {
        return Vec::new();
    }
    // The loads before the loop, one carried value each; then the body copied (fresh
    // ids after the new arguments), each load read from and each store written into
    // the carried value.
    let mut out = Vec::new();
    let mut cur: HashMap<Id, Id> = HashMap::new();
    for &(db, i) in &keep {
        let ty = Ty::Float(b.ty(db).float().unwrap_or(FloatTy::F64));
        let init = b.push(Op::Load(db, i), ty);
        let k = args.len() as u32;
        let arg = b.new_arg(k + 1, ty);
        b.routed.insert(arg, true);
        args.push(arg);
        inits.push(init);
        cur.insert(db, arg);
        out.push((db, i, k, ty));
    }
    let mut remap: HashMap<Id, Id> = HashMap::new();
    b.regions.push(Vec::new());
    for &n in nodes.iter() {
        match b.func.node(n).op {
            Op::Load(m, _) if cur.contains_key(&m) => {
                remap.insert(n, cur[&m]);
            }
            Op::Store(m, _, v) if cur.contains_key(&m) => {
                cur.insert(m, remap.get(&v).copied().unwrap_or(v));
            }
            _ => copy_nodes(b, &[n], &mut remap),
        }
    }
    *nodes = b.regions.pop().unwrap_or_default();
    for y in yields.iter_mut() {
        *y = remap.get(y).copied().unwrap_or(*y);
    }
    for &(db, ..) in &keep {
        yields.push(cur[&db]);
    }
    out
}

/// Walks back carried value `k` (argument `a`) of loop `id` when its next value is an
/// inner loop's induction variable started from `a` (`li` of GMM's triangle: `for i {
/// for j in i + 1..d { li += 1 } }`): the inner reversed loop, which `nodes` holds,
/// starts that variable from its final value and walks it back to `a`. So the
/// reversed loop carries it too, from `id`'s final value (a projection placed after
/// `id` if lowering made none), gives it to the inner reversed loop in place of the
/// inner loop's final value, and takes back what that loop walked it to: nothing is
/// saved per iteration. Returns the new argument, the node that reads the value at the
/// iteration's start (appended to `nodes`) and `id`'s final value.
fn walked_by_inner(
    b: &mut Builder<'_>,
    id: Id,
    k: usize,
    a: Id,
    body: &Region,
    nodes: &mut Vec<Id>,
) -> Option<(Id, Id, Id)> {
    if b.func.node(a).ty != Ty::Int {
        return None;
    }
    let y = *body.yields.get(k)?;
    let Op::Proj(inner, kk) = b.func.node(y).op else {
        return None;
    };
    let started = body.nodes.contains(&inner)
        && matches!(&b.func.node(inner).op, Op::For { inits, exit: None, .. }
            if inits.get(kk as usize) == Some(&a));
    if !started {
        return None;
    }
    // The inner reversed loop and the position of the walked variable in it.
    let end = Op::Proj(inner, kk);
    let (r, p, init) = nodes.iter().find_map(|&n| match &b.func.node(n).op {
        Op::For { inits, .. } => inits.iter().enumerate().find_map(|(p, &x)| {
            let node = b.func.node(x);
            (node.op == end && node.origin != Origin::Adjoint).then_some((n, p, x))
        }),
        _ => None,
    })?;
    let last = match b
        .func
        .nodes
        .iter()
        .position(|n| n.origin != Origin::Adjoint && n.op == Op::Proj(id, k as u32))
    {
        Some(i) => Id(i as u32),
        None => place_after(b, id, Op::Proj(id, k as u32))?,
    };
    let next = b.new_arg(0, Ty::Int);
    b.finals.insert(y, next);
    b.finals.insert(init, next);
    let span = b.func.node(id).span;
    let start = b.func.push(Node {
        op: Op::Proj(r, p as u32),
        ty: Ty::Int,
        span,
        origin: Origin::Adjoint,
        hint: None,
    });
    nodes.push(start);
    Some((next, start, last))
}

/// Places a primal integer node `op` right after `id` in the region of its parent.
fn place_after(b: &mut Builder<'_>, id: Id, op: Op) -> Option<Id> {
    let parent = *b.facts.parent.get(&id)?;
    let span = b.func.node(id).span;
    let new = b.func.push(Node {
        op,
        ty: Ty::Int,
        span,
        origin: Origin::Primal,
        hint: None,
    });
    let r = b.func.nodes[parent.idx()]
        .op
        .regions_mut()
        .into_iter()
        .find(|r| r.nodes.contains(&id))?;
    let at = r.nodes.iter().position(|&n| n == id)?;
    r.nodes.insert(at + 1, new);
    Some(new)
}

/// Whether carried value `k` (argument `a`) of loop `id` is an induction variable:
/// an integer whose next value is `a + c` or `a - c` with `c` from outside the body,
/// (or a literal in it) whose final value a primal node reads. Returns `c`, the operation that undoes the
/// step, and that final value.
fn induction(
    func: &Func,
    id: Id,
    k: usize,
    a: Id,
    body: &Region,
    inside: &std::collections::HashSet<Id>,
) -> Option<(Id, BinOp, Id)> {
    if func.node(a).ty != Ty::Int {
        return None;
    }
    let (step, undo) = match func.node(*body.yields.get(k)?).op {
        Op::Binary(BinOp::Add, x, c) if x == a => (c, BinOp::Sub),
        Op::Binary(BinOp::Add, c, x) if x == a => (c, BinOp::Sub),
        Op::Binary(BinOp::Sub, x, c) if x == a => (c, BinOp::Add),
        _ => return None,
    };
    let ty = func.node(step).ty;
    if inside.contains(&step) && func.int_literal(step).is_none()
        || !matches!(ty, Ty::Int | Ty::Opaque)
    {
        return None;
    }
    let last = func
        .nodes
        .iter()
        .position(|n| n.origin != Origin::Adjoint && n.op == Op::Proj(id, k as u32))?;
    Some((step, undo, Id(last as u32)))
}

/// The primal's projection `.k` of the structured node `id`, if lowering made one.
fn projection(func: &Func, id: Id, k: u32) -> Option<Id> {
    let p = func.nodes.iter().position(|x| x.op == Op::Proj(id, k))?;
    Some(Id(p as u32))
}

/// Every node defined in a region or the regions nested in it, its arguments
/// included.
fn defined_in(func: &Func, region: &Region) -> std::collections::HashSet<Id> {
    let mut set = std::collections::HashSet::new();
    fn walk(func: &Func, r: &Region, set: &mut std::collections::HashSet<Id>) {
        set.extend(r.args.iter().copied());
        for &n in &r.nodes {
            set.insert(n);
            for inner in func.node(n).op.regions() {
                walk(func, inner, set);
            }
        }
    }
    walk(func, region, &mut set);
    set
}

/// Calls `f` on every operand read in a region and the regions nested in it.
fn for_each_operand(func: &Func, region: &Region, f: &mut impl FnMut(Id)) {
    for &y in &region.yields {
        f(y);
    }
    for &n in &region.nodes {
        let op = &func.node(n).op;
        for a in op.operands() {
            f(a);
        }
        for inner in op.regions() {
            for_each_operand(func, inner, f);
        }
    }
}

/// Makes the reverse `nodes` of region `which` of the structured node `owner`
/// self-contained. They may read the primal values of that region, which do not
/// outlive it: each one read is recomputed at the start of the reverse when that is
/// cheap and valid ([`recomputable`]), or else saved on a stack at the end of the
/// forward region and popped at the start of the reverse (Tapenade's
/// to-be-recorded values: only what the reverse reads is saved). `index` maps the
/// forward loop's index to the reversed loop's. Returns the new node list (the
/// prefix, then a copy of `nodes` reading it) and the map from old to new ids.
fn materialize(
    b: &mut Builder<'_>,
    owner: Id,
    which: usize,
    nodes: Vec<Id>,
    index: Option<(Id, Id)>,
) -> (Vec<Id>, HashMap<Id, Id>) {
    let fwd = match b.func.node(owner).op.regions().get(which) {
        Some(r) => (*r).clone(),
        None => return (nodes, HashMap::new()),
    };
    let here: std::collections::HashSet<Id> = fwd.nodes.iter().chain(&fwd.args).copied().collect();
    let mut needed: Vec<Id> = Vec::new();
    let probe = Region {
        nodes: nodes.clone(),
        ..Region::default()
    };
    for_each_operand(b.func, &probe, &mut |x| {
        if here.contains(&x) && !needed.contains(&x) {
            needed.push(x);
        }
    });
    needed.sort();
    let mut remap: HashMap<Id, Id> = HashMap::new();
    if let Some((old, new)) = index {
        remap.insert(old, new);
    }
    b.regions.push(Vec::new());
    let mut memo = HashMap::new();
    for v in needed {
        rematerialize(b, owner, which, &here, v, &mut remap, &mut memo);
    }
    copy_nodes(b, &nodes, &mut remap);
    let mut out = b.regions.pop().unwrap_or_default();
    // The snapshots this body's reverse reads: saved at the end of each forward
    // iteration, restored before anything else in its reverse.
    let restores = if matches!(b.func.node(owner).op, Op::For { .. }) {
        b.restores.remove(&owner).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut at = 0;
    for buf in restores {
        if let Some(prefix) = refill(b, owner, which, &here, buf, index) {
            let n = prefix.len();
            out.splice(at..at, prefix);
            at += n;
            continue;
        }
        let span = b.func.node(owner).span;
        let k = save_at_end(b, owner, 0, buf, span);
        let restore = b.func.push(Node {
            op: Op::Restore(k, buf),
            ty: Ty::Unit,
            span,
            origin: Origin::Adjoint,
            hint: None,
        });
        out.insert(at, restore);
        at += 1;
    }
    (out, remap)
}

/// The fill loop of `buf` copied for the start of the reverse of loop `owner`'s body,
/// with the values of the body it reads recomputed before it, in place of the
/// snapshot restored there ([`Facts::refill`]); `None` when the fill cannot be run
/// again (it reads a value of the body that is not plain integer or float
/// arithmetic on the loop's index and outer values).
fn refill(
    b: &mut Builder<'_>,
    owner: Id,
    which: usize,
    here: &std::collections::HashSet<Id>,
    buf: Id,
    index: Option<(Id, Id)>,
) -> Option<Vec<Id>> {
    let f = b.facts.refill(b.func, owner, buf)?;
    let old_index = index.map(|(old, _)| old);
    fn plain(func: &Func, here: &std::collections::HashSet<Id>, o: Id, index: Option<Id>) -> bool {
        if !here.contains(&o) || Some(o) == index {
            return true;
        }
        let op = &func.node(o).op;
        matches!(
            op,
            Op::Const(_) | Op::Opaque(_) | Op::Neg(_) | Op::Not(_) | Op::Cast(..) | Op::Binary(..)
        ) && op
            .operands()
            .into_iter()
            .all(|x| plain(func, here, x, index))
    }
    let Op::For { body, .. } = b.func.node(f).op.clone() else {
        return None;
    };
    let mut outer = Vec::new();
    for_each_operand(b.func, &body, &mut |x| {
        if here.contains(&x) && !outer.contains(&x) {
            outer.push(x);
        }
    });
    if !outer.iter().all(|&o| plain(b.func, here, o, old_index)) {
        return None;
    }
    let mut remap: HashMap<Id, Id> = index.into_iter().collect();
    let mut memo = HashMap::new();
    b.regions.push(Vec::new());
    outer.sort();
    for o in outer {
        rematerialize(b, owner, which, here, o, &mut remap, &mut memo);
    }
    copy_nodes(b, &[f], &mut remap);
    b.regions.pop()
}

/// Pushes `v` on a new stack at the end of region `which` of `owner` (the forward
/// sweep); returns the stack.
fn save_at_end(b: &mut Builder<'_>, owner: Id, which: usize, v: Id, span: Span) -> u32 {
    let k = b.func.stacks.len() as u32;
    b.func.stacks.push(b.func.node(v).ty);
    let push = b.func.push(Node {
        op: Op::Push(k, v),
        ty: Ty::Unit,
        span,
        origin: Origin::Adjoint,
        hint: None,
    });
    if let Some(r) = b.func.nodes[owner.idx()]
        .op
        .regions_mut()
        .into_iter()
        .nth(which)
    {
        r.nodes.push(push);
    }
    k
}

/// The reverse's copy of the forward value `v` (see [`materialize`]).
fn rematerialize(
    b: &mut Builder<'_>,
    owner: Id,
    which: usize,
    here: &std::collections::HashSet<Id>,
    v: Id,
    remap: &mut HashMap<Id, Id>,
    memo: &mut HashMap<Id, bool>,
) -> Id {
    if let Some(&m) = remap.get(&v) {
        return m;
    }
    if let Some(&next) = b.finals.get(&v) {
        remap.insert(v, next);
        return next;
    }
    if let Some(&(next, step, undo)) = b.inductions.get(&v) {
        // An induction variable: its value at the start of the iteration, from its
        // next value that the reversed loop carries.
        let step = match here.contains(&step) {
            true => rematerialize(b, owner, which, here, step, remap, memo),
            false => step,
        };
        let prev = b.push(Op::Binary(undo, next, step), Ty::Int);
        b.induced.insert(v, prev);
        remap.insert(v, prev);
        return prev;
    }
    let new = if recomputable(b, here, v, memo) {
        if let Op::Load(buf, _) = b.func.node(v).op {
            if !b.facts.frozen_after(b.func, buf, v) {
                if let Some(l) = b.facts.restorable(b.func, buf, v) {
                    let list = b.restores.entry(l).or_default();
                    if !list.contains(&buf) {
                        list.push(buf);
                    }
                }
            }
        }
        let mut node = b.func.node(v).clone();
        let ops = node.op.operands();
        let mut map = HashMap::new();
        for o in ops {
            if here.contains(&o) {
                let m = rematerialize(b, owner, which, here, o, remap, memo);
                map.insert(o, m);
            }
        }
        node.op
            .map_operands(&mut |a| map.get(&a).copied().unwrap_or(a));
        node.origin = Origin::Adjoint;
        let id = b.func.push(node);
        if let Some(r) = b.regions.last_mut() {
            r.push(id);
        }
        id
    } else {
        // Saved: pushed where the forward region ends, popped here.
        let ty = b.func.node(v).ty;
        let k = save_at_end(b, owner, which, v, b.func.node(v).span);
        b.push(Op::Pop(k), ty)
    };
    remap.insert(v, new);
    new
}

/// Whether the forward value `v` can be computed again in the reverse sweep, from
/// values the reverse has: cheap arithmetic on such values, and reads of memory that
/// nothing overwrites later ([`Facts::frozen_after`]).
fn recomputable(
    b: &Builder<'_>,
    here: &std::collections::HashSet<Id>,
    v: Id,
    memo: &mut HashMap<Id, bool>,
) -> bool {
    if let Some(&r) = memo.get(&v) {
        return r;
    }
    let node = b.func.node(v);
    let cheap = match &node.op {
        Op::Const(_) | Op::Opaque(_) | Op::Neg(_) | Op::Not(_) | Op::Cast(..) => true,
        // Pure: it reads constants and the values of its arguments.
        Op::Apply(..) => true,
        Op::Binary(..) | Op::Select(..) | Op::Detach(_) => true,
        Op::Math(MathFn::Abs | MathFn::Min | MathFn::Max | MathFn::MulAdd, _) => true,
        // A small literal power is a few multiplications (`x.powi(2)` is `x * x`).
        Op::Math(MathFn::Powi, args) => b
            .func
            .int_literal(args[1])
            .is_some_and(|k| (-4..=4).contains(&k)),
        Op::Load(buf, _) => {
            !here.contains(buf)
                && (b.facts.frozen_after(b.func, *buf, v)
                    || (b.result != Some(*buf) && b.facts.restorable(b.func, *buf, v).is_some()))
        }
        Op::Len(buf) => !here.contains(buf),
        Op::View(buf, _, _) => !here.contains(buf),
        _ => false,
    };
    // Operands from the region must be recomputable too, or be its arguments (the
    // index is the reversed loop's; a carried value is the state, which is saved
    // anyway, so cheap values computed from it are recomputed from the saved one).
    let r = cheap
        && node.op.operands().iter().all(|o| {
            !here.contains(o)
                || matches!(b.func.node(*o).op, Op::Arg(_))
                || recomputable(b, here, *o, memo)
        });
    memo.insert(v, r);
    r
}

/// Copies `nodes` (and the regions they own) into the builder's current region,
/// reading `remap`ped operands; records each copy in `remap`.
fn copy_nodes(b: &mut Builder<'_>, nodes: &[Id], remap: &mut HashMap<Id, Id>) {
    for &n in nodes {
        let mut node = b.func.node(n).clone();
        // The regions first, as copies; then every operand, those of the copied
        // regions included (copies are never keys of `remap`, so they stay).
        for r in node.op.regions_mut() {
            *r = copy_region(b, r, remap);
        }
        node.op
            .map_operands(&mut |a| remap.get(&a).copied().unwrap_or(a));
        let id = b.func.push(node);
        if let Some(r) = b.regions.last_mut() {
            r.push(id);
        }
        remap.insert(n, id);
    }
}

fn copy_region(b: &mut Builder<'_>, r: &Region, remap: &mut HashMap<Id, Id>) -> Region {
    let args = r
        .args
        .iter()
        .map(|&a| {
            let node = b.func.node(a).clone();
            let id = b.func.push(node);
            remap.insert(a, id);
            id
        })
        .collect();
    b.regions.push(Vec::new());
    copy_nodes(b, &r.nodes, remap);
    let nodes = b.regions.pop().unwrap_or_default();
    let yields = r
        .yields
        .iter()
        .map(|&y| remap.get(&y).copied().unwrap_or(y))
        .collect();
    Region {
        args,
        nodes,
        yields,
    }
}

/// Whether the reverse of a loop body can produce a routed zero: it has a rule that
/// selects, a branch, a store (whose reverse reads adjoint memory) or an inner loop.
fn body_routes(func: &Func, r: &Region) -> bool {
    r.nodes.iter().any(|&n| {
        let op = &func.node(n).op;
        matches!(
            op,
            Op::If { .. }
                | Op::For { .. }
                | Op::Store(..)
                | Op::Select(..)
                | Op::Call { .. }
                | Op::MutCall { .. }
                | Op::Math(
                    MathFn::Min
                        | MathFn::Max
                        | MathFn::Clamp
                        | MathFn::Abs
                        | MathFn::Relu
                        | MathFn::Sqrt
                        | MathFn::Cbrt
                        | MathFn::Asin
                        | MathFn::Acos
                        | MathFn::Powf
                        | MathFn::Atan2
                        | MathFn::Hypot,
                    _
                )
        )
    })
}

/// Whether a region (or one nested in it) reads or writes active memory.
fn touches_active_memory(func: &Func, r: &Region, active: &[bool]) -> bool {
    defined_in(func, r).iter().any(|&n| match func.node(n).op {
        Op::Load(m, _) | Op::Store(m, _, _) | Op::View(m, _, _) => active[m.idx()],
        Op::MutCall { ref args, .. } => args.iter().any(|a| active[a.idx()]),
        _ => false,
    })
}

/// The memory (buffers, not views) that a [`Op::MutCall`] writes: the base of each
/// argument passed `&mut`.
fn mut_call_writes(func: &Func, op: &Op) -> Vec<Id> {
    let Op::MutCall { args, muts, .. } = op else {
        return Vec::new();
    };
    args.iter()
        .zip(muts)
        .filter(|(a, m)| **m && func.node(**a).ty.is_memory())
        .map(|(&a, _)| match func.node(a).op {
            Op::View(base, _, _) => base,
            _ => a,
        })
        .collect()
}

/// The reverse of `path(args)` with `&mut` arguments: `path_vjp` called with each
/// argument's value at the call (memory from its [`Op::Snapshot`]), the adjoint of
/// each `&mut` argument's final value as its seed, and the adjoint of the result.
/// The gradients of the `&mut` arguments' initial values replace their adjoints
/// (memory: written back by the call; scalars: added to the value passed); the
/// other gradients are accumulated as for any call.
fn reverse_mut_call(
    b: &mut Builder<'_>,
    id: Id,
    path: u32,
    args: &[Id],
    muts: &[bool],
    active: &[bool],
    adj: &mut [Option<Id>],
) {
    if !args.iter().any(|a| active[a.idx()]) {
        return;
    }
    let split = |b: &Builder<'_>, a: Id| match b.func.node(a).op {
        Op::View(base, lo, hi) => (base, Some(lo), hi),
        _ => (a, None, None),
    };
    // The snapshots lowering placed right before the call, one per buffer argument.
    let snapshot = |b: &Builder<'_>, a: Id| {
        (0..id.0)
            .rev()
            .map(Id)
            .find(|&s| matches!(b.func.node(s).op, Op::Snapshot(x) if x == a))
    };
    let mut vals = Vec::new();
    let mut dmut = Vec::new();
    for (k, (&a, &m)) in args.iter().zip(muts).enumerate() {
        let ty = b.ty(a);
        vals.push(if ty.is_memory() {
            snapshot(b, a).unwrap_or(a)
        } else {
            a
        });
        if !m {
            continue;
        }
        if ty.is_memory() {
            let (base, lo, hi) = split(b, a);
            let db = match b.dbuf.get(&base) {
                Some(&db) => db,
                None => {
                    let z = b.zero_like(base);
                    b.dbuf.insert(base, z);
                    z
                }
            };
            dmut.push(match lo {
                Some(lo) => b.push(Op::View(db, lo, hi), ty),
                None => db,
            });
        } else {
            let out = (id.0 + 1..b.func.nodes.len() as u32).map(Id).find(
                |&o| matches!(b.func.node(o).op, Op::MutOut(c, j) if c == id && j as usize == k),
            );
            let d = out.and_then(|o| adj[o.idx()]);
            dmut.push(match d {
                Some(d) => d,
                None => b.constant(0.0, ty),
            });
        }
    }
    // The seed of the result: its adjoint, or a zero of whatever the callee returns.
    let seed = match adj[id.idx()] {
        Some(d) => d,
        None => {
            let idx = b.func.opaque.len() as u32;
            b.func
                .opaque
                .push(quote::quote!(::core::default::Default::default()));
            b.push(Op::Opaque(idx), Ty::Opaque)
        }
    };
    let call = b.push(
        Op::MutCallVjp {
            path,
            args: vals,
            muts: muts.to_vec(),
            dmut,
            seed,
        },
        Ty::Tuple,
    );
    let diff: Vec<(usize, Id)> = args
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, a)| b.ty(a).is_differentiable())
        .collect();
    let of = diff.len() as u32;
    for (index, &(k, a)) in diff.iter().enumerate() {
        let ty = b.ty(a);
        if muts[k] && ty.is_memory() {
            // Written back by the call itself.
            continue;
        }
        if !active[a.idx()] {
            continue;
        }
        let g = b.call_grad(call, index as u32, of, ty);
        if ty.is_memory() {
            let (base, lo, _) = split(b, a);
            if let Some(&dst) = b.dbuf.get(&base) {
                let one = b.constant(1.0, Ty::Float(ty.float().unwrap_or(FloatTy::F64)));
                b.push(
                    Op::AccMem {
                        dst,
                        lo,
                        g,
                        scale: one,
                    },
                    Ty::Unit,
                );
            }
        } else {
            accumulate(b, adj, a, g);
        }
    }
}
