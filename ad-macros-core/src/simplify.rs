//! Simplification of primal + adjoint: constant folding, algebraic identities
//! (`x * 1`, `x + 0`, `0 * x`, `--x`, ...), common subexpressions, dead code (dead
//! adjoints included).
//!
//! Identities and folding only touch adjoint nodes: primal nodes stay exactly as the
//! user wrote them, so `NAME_grad` computes the same value, bit for bit, as `NAME`.
//!
//! Before/after, for the adjoint of `y = 2 * x` with seed 1:
//!
//! ```text
//! %2 = 1.0 ; adj          %2 = 2.0   (the gradient)
//! %3 = %2 * %1 ; adj
//! ```

use crate::ir::{BinOp, Func, Id, MathFn, Node, Op, Origin, Region, Ty};
use std::collections::HashMap;

/// Runs every simplification, then removes dead nodes and renumbers.
pub fn run(func: &Func) -> Func {
    let folded = Rewriter::new(func, true).run();
    let live = liveness(&folded);
    let mut out = Rewriter::new(&folded, false);
    out.live = Some(live);
    let mut result = out.run();
    mark_vjp_calls(&mut result);
    debug_assert_eq!(result.verify(), Ok(()));
    result
}

/// Rebuilds a function region by region, mapping old ids to new ones.
struct Rewriter<'a> {
    old: &'a Func,
    new: Func,
    map: Vec<Option<Id>>,
    /// Whether to fold, apply identities and CSE (first pass) or only drop dead nodes.
    optimize: bool,
    live: Option<Vec<bool>>,
    /// The shape classes of the old function's nodes.
    classes: Vec<Option<Id>>,
    /// CSE tables, one per open region.
    scopes: Vec<HashMap<String, Id>>,
    regions: Vec<Vec<Id>>,
    /// Which new nodes are parameters (memory that is never written).
    params: Vec<bool>,
}

impl<'a> Rewriter<'a> {
    fn new(old: &'a Func, optimize: bool) -> Self {
        let new = Func {
            stacks: old.stacks.clone(),
            opaque: old.opaque.clone(),
            paths: old.paths.clone(),
            arg_refs: old.arg_refs.clone(),
            ..Func::default()
        };
        Rewriter {
            old,
            new,
            map: vec![None; old.nodes.len()],
            optimize,
            live: None,
            classes: if optimize {
                crate::shapes::classes(old)
            } else {
                Vec::new()
            },
            scopes: vec![HashMap::new()],
            regions: vec![Vec::new()],
            params: Vec::new(),
        }
    }

    fn run(mut self) -> Func {
        let body = self.region(&self.old.body);
        self.new.body = body;
        self.new.outputs = self.old.outputs.iter().map(|&o| self.get(o)).collect();
        self.new
    }

    fn get(&self, id: Id) -> Id {
        // Every operand is mapped before its user: the old function is in region order.
        self.map[id.idx()].unwrap_or(id)
    }

    fn region(&mut self, region: &Region) -> Region {
        self.regions.push(Vec::new());
        self.scopes.push(HashMap::new());
        for &id in &region.nodes {
            self.node(id);
        }
        self.scopes.pop();
        let nodes = self.regions.pop().unwrap_or_default();
        Region {
            nodes,
            yields: region.yields.iter().map(|&y| self.get(y)).collect(),
            args: region.args.iter().map(|&a| self.get(a)).collect(),
        }
    }

    fn emit(&mut self, node: Node) -> Id {
        self.params.resize(self.new.nodes.len(), false);
        // `&mut` parameters (kind `buf`) are written.
        self.params
            .push(matches!(node.op, Op::Param(_)) && !matches!(node.ty, Ty::Buf(_)));
        let id = self.new.push(node);
        if let Some(r) = self.regions.last_mut() {
            r.push(id);
        }
        id
    }

    fn node(&mut self, id: Id) {
        if let Some(live) = &self.live {
            if !live[id.idx()] {
                return;
            }
        }
        let old = &self.old.nodes[id.idx()];
        let mut node = old.clone();
        if let Op::For {
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
        } = &old.op
        {
            let (lo, hi, step) = (self.get(*lo), self.get(*hi), step.map(|s| self.get(s)));
            let trips = trips.map(|t| self.get(t));
            let inits = inits.iter().map(|&a| self.get(a)).collect();
            // The body's arguments are nodes of no region: copy them first.
            for &a in &body.args {
                let arg = self.new.push(self.old.nodes[a.idx()].clone());
                self.map[a.idx()] = Some(arg);
            }
            let body = self.region(body);
            node.op = Op::For {
                lo,
                hi,
                inclusive: *inclusive,
                step,
                rev: *rev,
                back: *back,
                inits,
                body,
                exit: *exit,
                trips,
            };
            let new = self.emit(node);
            self.map[id.idx()] = Some(new);
            return;
        }
        if let Op::If { cond, then, else_ } = &old.op {
            let cond = self.get(*cond);
            let then = self.region(then);
            let else_ = self.region(else_);
            node.op = Op::If { cond, then, else_ };
            let new = self.emit(node);
            self.map[id.idx()] = Some(new);
            return;
        }
        // A gradient summed or reshaped onto the shape it already has is itself.
        if let Op::SumToShape(g, s) | Op::ReshapeTo(g, s) = old.op {
            if self.optimize
                && self.classes[g.idx()].is_some()
                && self.classes[g.idx()] == self.classes[s.idx()]
            {
                self.map[id.idx()] = Some(self.get(g));
                return;
            }
        }
        node.op.map_operands(&mut |a| self.get(a));
        if self.optimize && node.origin == Origin::Adjoint {
            match self.fold(&node) {
                Some(Folded::Alias(a)) => {
                    self.map[id.idx()] = Some(a);
                    return;
                }
                Some(Folded::Op(op)) => node.op = op,
                None => {}
            }
        }
        let key = self
            .optimize
            .then(|| cse_key(&node, &self.params))
            .flatten();
        if let Some(key) = &key {
            if let Some(&hit) = self.scopes.iter().rev().find_map(|s| s.get(key)) {
                self.map[id.idx()] = Some(hit);
                return;
            }
        }
        let new = self.emit(node);
        if let (Some(key), Some(scope)) = (key, self.scopes.last_mut()) {
            scope.insert(key, new);
        }
        self.map[id.idx()] = Some(new);
    }

    fn konst(&self, id: Id) -> Option<f64> {
        match self.new.node(id) {
            Node {
                op: Op::Const(v),
                ty: Ty::Float(_),
                ..
            } => Some(*v),
            _ => None,
        }
    }

    /// The truth of `c` when it compares two constants (a rule's guard such as
    /// `dy == 0` once `dy` folded to a constant, or `p == 0` for a literal exponent).
    fn known(&self, c: Id) -> Option<bool> {
        let Op::Binary(op, a, b) = self.new.node(c).op else {
            return None;
        };
        let (x, y) = (self.konst(a)?, self.konst(b)?);
        Some(match op {
            BinOp::Eq => x == y,
            BinOp::Ne => x != y,
            BinOp::Lt => x < y,
            BinOp::Le => x <= y,
            BinOp::Gt => x > y,
            BinOp::Ge => x >= y,
            _ => return None,
        })
    }

    /// A select whose condition is [`known`](Self::known) is the branch it takes, when
    /// that branch has the select's type (a scalar `0` branch of a tensor select stays).
    fn known_select(&self, node: &Node) -> Option<Folded> {
        let Op::Select(c, a, b) = node.op else {
            return None;
        };
        let pick = if self.known(c)? { a } else { b };
        (self.new.node(pick).ty == node.ty).then_some(Folded::Alias(pick))
    }

    /// Identities on a tensor-valued adjoint node that keep its shape: a scalar `1`
    /// or `0` operand leaves the tensor operand as it is.
    fn fold_tensor(&self, node: &Node) -> Option<Folded> {
        let keeps = |x: Id| self.new.node(x).ty == node.ty;
        if let Some(f) = self.known_select(node) {
            return Some(f);
        }
        match node.op {
            Op::Neg(a) => match self.new.node(a).op {
                Op::Neg(inner) if keeps(inner) => Some(Folded::Alias(inner)),
                _ => None,
            },
            Op::Binary(op, a, b) => match (op, self.konst(a), self.konst(b)) {
                (BinOp::Add, Some(0.0), _) | (BinOp::Mul, Some(1.0), _) if keeps(b) => {
                    Some(Folded::Alias(b))
                }
                (BinOp::Add | BinOp::Sub, _, Some(0.0))
                | (BinOp::Mul | BinOp::Div, _, Some(1.0))
                    if keeps(a) =>
                {
                    Some(Folded::Alias(a))
                }
                (BinOp::Sub, Some(0.0), _) | (BinOp::Mul, Some(-1.0), _) if keeps(b) => {
                    Some(Folded::Op(Op::Neg(b)))
                }
                (BinOp::Mul | BinOp::Div, _, Some(-1.0)) if keeps(a) => {
                    Some(Folded::Op(Op::Neg(a)))
                }
                _ => None,
            },
            Op::Select(_, a, b) if a == b && keeps(a) => Some(Folded::Alias(a)),
            Op::Math(MathFn::Powi, ref args)
                if self.new.int_literal(args[1]) == Some(1) && keeps(args[0]) =>
            {
                Some(Folded::Alias(args[0]))
            }
            _ => None,
        }
    }

    /// Constant folding and identities on one (already remapped) adjoint node.
    fn fold(&mut self, node: &Node) -> Option<Folded> {
        let round = |v: f64| node.ty.float().map_or(v, |f| f.round(v));
        let fl = matches!(node.ty, Ty::Float(_));
        if matches!(node.ty, Ty::Tensor(_)) {
            return self.fold_tensor(node);
        }
        if let Some(f) = self.known_select(node) {
            return Some(f);
        }
        match node.op {
            // `n as f64` and `n - 1` of an integer literal (`powi(2)`'s rule).
            Op::Cast(a, _) if fl && self.new.int_literal(a).is_some() => self
                .new
                .int_literal(a)
                .map(|v| Folded::Op(Op::Const(round(v as f64)))),
            Op::Binary(BinOp::Sub, a, b) if node.ty == Ty::Int => {
                let v = self
                    .new
                    .int_literal(a)?
                    .checked_sub(self.new.int_literal(b)?)?;
                let idx = self.new.opaque.len() as u32;
                let lit = proc_macro2::Literal::i64_unsuffixed(v);
                self.new.opaque.push(quote::quote!(#lit));
                Some(Folded::Op(Op::Opaque(idx)))
            }
            Op::Math(MathFn::Powi, ref args) if fl && self.new.int_literal(args[1]) == Some(1) => {
                Some(Folded::Alias(args[0]))
            }
            Op::Neg(a) if fl => {
                if let Some(v) = self.konst(a) {
                    return Some(Folded::Op(Op::Const(-v)));
                }
                if let Op::Neg(inner) = self.new.node(a).op {
                    return Some(Folded::Alias(inner));
                }
                None
            }
            Op::Binary(op, a, b) if fl => {
                let (ka, kb) = (self.konst(a), self.konst(b));
                if let (Some(x), Some(y)) = (ka, kb) {
                    let v = match op {
                        BinOp::Add => x + y,
                        BinOp::Sub => x - y,
                        BinOp::Mul => x * y,
                        BinOp::Div => x / y,
                        _ => return None,
                    };
                    return Some(Folded::Op(Op::Const(round(v))));
                }
                match (op, ka, kb) {
                    (BinOp::Add, Some(0.0), _) => Some(Folded::Alias(b)),
                    (BinOp::Add | BinOp::Sub, _, Some(0.0)) => Some(Folded::Alias(a)),
                    (BinOp::Sub, Some(0.0), _) => Some(Folded::Op(Op::Neg(b))),
                    (BinOp::Mul, Some(1.0), _) => Some(Folded::Alias(b)),
                    (BinOp::Mul | BinOp::Div, _, Some(1.0)) => Some(Folded::Alias(a)),
                    (BinOp::Mul, Some(-1.0), _) => Some(Folded::Op(Op::Neg(b))),
                    (BinOp::Mul | BinOp::Div, _, Some(-1.0)) => Some(Folded::Op(Op::Neg(a))),
                    // 0 * x = 0: adjoints are linear in the seed, and a zero adjoint is
                    // a symbolic zero (as in JAX), whatever x is.
                    (BinOp::Mul, Some(0.0), _) | (BinOp::Mul, _, Some(0.0)) => {
                        Some(Folded::Op(Op::Const(0.0)))
                    }
                    (BinOp::Div, Some(0.0), _) => Some(Folded::Op(Op::Const(0.0))),
                    _ => None,
                }
            }
            Op::Select(_, a, b) if a == b && self.new.node(a).ty == node.ty => {
                Some(Folded::Alias(a))
            }
            Op::Select(_, a, b)
                if fl && self.konst(a) == Some(0.0) && self.konst(b) == Some(0.0) =>
            {
                Some(Folded::Op(Op::Const(0.0)))
            }
            Op::Cast(a, _) if fl => self.konst(a).map(|v| Folded::Op(Op::Const(round(v)))),
            _ => None,
        }
    }
}

enum Folded {
    /// The node is another, existing node.
    Alias(Id),
    /// The node computes this simpler operation.
    Op(Op),
}

/// The value-numbering key of a pure node, or `None` for nodes never merged.
fn cse_key(node: &Node, params: &[bool]) -> Option<String> {
    let node_reads_param = |n: &Node| match n.op {
        Op::Load(b, _) | Op::Len(b) => params.get(b.idx()).copied().unwrap_or(false),
        _ => false,
    };
    match &node.op {
        Op::Param(_)
        | Op::Seed
        | Op::Error
        | Op::Call { .. }
        | Op::CallGrad { .. }
        | Op::CallVjp { .. }
        | Op::If { .. }
        | Op::For { .. }
        | Op::Arg(_)
        | Op::Alloc { .. }
        | Op::Elems(..)
        | Op::ZerosLike(_)
        | Op::SeedBuf(_)
        | Op::Store(..)
        | Op::Grow(_)
        | Op::Push(..)
        | Op::Pop(_)
        | Op::Restore(..)
        | Op::View(..)
        | Op::AccMem { .. }
        | Op::Effect { .. }
        | Op::MutSeed(_)
        | Op::Snapshot(_)
        | Op::MutCall { .. }
        | Op::MutOut(..)
        | Op::MutCallVjp { .. }
        | Op::Pack(_)
        | Op::SeedElem(..) => None,
        // Memory is read where it is: a store may come between two reads. Parameters
        // are never written.
        Op::Load(..) | Op::Len(_) if !node_reads_param(node) => None,
        Op::Const(v) => Some(format!("c{}:{:?}", v.to_bits(), node.ty)),
        // `+` and `*` commute exactly in IEEE arithmetic: `a*b` and `b*a` are one value.
        Op::Binary(op @ (BinOp::Add | BinOp::Mul), a, b) if a > b => {
            Some(format!("{:?}:{:?}", Op::Binary(*op, *b, *a), node.ty))
        }
        op => Some(format!("{op:?}:{:?}", node.ty)),
    }
}

/// Which nodes the outputs and the effects need.
fn liveness(func: &Func) -> Vec<bool> {
    let n = func.nodes.len();
    // The structured node that owns each node of a region.
    let mut owner: Vec<Option<Id>> = vec![None; n];
    for (i, node) in func.nodes.iter().enumerate() {
        for r in node.op.regions() {
            for &x in r.nodes.iter().chain(&r.args) {
                owner[x.idx()] = Some(Id(i as u32));
            }
        }
    }
    let mut live = vec![false; n];
    let mut popped = vec![false; func.stacks.len()];
    for o in &func.outputs {
        live[o.idx()] = true;
    }
    // Ids point backwards, so a reverse pass over the arena sees every user first;
    // a save appended to a forward region is the exception, hence the fixed point.
    // A structured node is live when one of its projections or of its region's
    // nodes is; then its operands (condition, bounds, yields) are.
    loop {
        let mut changed = false;
        for i in (0..n).rev() {
            let node = &func.nodes[i];
            let was = live[i];
            // A save is kept when its value is read back; memory writes always are.
            match node.op {
                Op::Push(k, _) => live[i] |= popped[k as usize],
                Op::Pop(k) if live[i] && !popped[k as usize] => {
                    popped[k as usize] = true;
                    changed = true;
                }
                Op::Pop(_) => {}
                Op::Restore(k, _) if !popped[k as usize] => {
                    live[i] = true;
                    popped[k as usize] = true;
                    changed = true;
                }
                ref op if op.has_effect() => live[i] = true,
                _ => {}
            }
            if let Op::Proj(x, _) = node.op {
                if live[i] && !live[x.idx()] {
                    live[x.idx()] = true;
                    changed = true;
                }
            }
            if !live[i] {
                continue;
            }
            changed |= !was;
            if let Some(o) = owner[i] {
                if !live[o.idx()] {
                    live[o.idx()] = true;
                    changed = true;
                }
            }
            for a in node.op.operands() {
                if !live[a.idx()] {
                    live[a.idx()] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return live;
        }
    }
}

/// Calls whose partials survived become `NAME_vjp` calls.
fn mark_vjp_calls(func: &mut Func) {
    let used: Vec<Id> = func
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::CallGrad { call, .. } => Some(call),
            _ => None,
        })
        .collect();
    for c in used {
        if let Op::Call { vjp, .. } = &mut func.nodes[c.idx()].op {
            *vjp = true;
        }
    }
}
