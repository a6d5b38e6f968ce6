//! Tuples as values (issue 11): an aggregate in the environment, no IR value. A
//! tuple variable `p` is a slot without a value followed by one slot per element,
//! named `p.0`, `p.1`, .. (nested: `p.1.0`); `if` and loops see the elements as the
//! ordinary variables they are. `let (a, b) = ..`, `p.0`, `p = (..)`, `(a, b) = (..)`
//! read and write them. A tuple made by a block, an `if` or a `match` is assigned to a
//! hidden tuple variable at the end of each branch. A call of a function with a tuple
//! result is an [`Op::Call`] of kind tuple and one [`Op::Elem`] per element; the
//! reverse sweep calls its `_vjp` with the tuple of the elements' adjoints. A call
//! whose result is indexed (`let r = h(x); r[0]`, `h(x)[0]`) gives a buffer, whose
//! adjoint memory is the seed of `h_vjp`. The body of a function with a tuple result
//! ends in the [`Op::Pack`] of its elements.
//!
//! Before/after, for `let (a, b) = (x * y, y); a + b`:
//!
//! ```text
//! %2 = %0 * %1
//! %3 = %2 + %1
//! return %3
//! ```

use super::{Lower, Slot};
use crate::ir::{Id, Op, Ty};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, Pat, Stmt, Type};

/// A value that may be a tuple: one IR value, or the elements.
#[derive(Clone, Debug)]
pub(super) enum Agg {
    One(Id),
    Many(Vec<Agg>),
}

/// What is known of a value's shape before it is lowered: a tuple of so many
/// elements, or anything (with the kind of a scalar, when declared).
#[derive(Clone, Debug)]
pub(super) enum Want {
    Any(Option<Ty>),
    Tuple(Vec<Want>),
}

impl Want {
    fn elem(&self, k: usize) -> Want {
        match self {
            Want::Tuple(ws) => ws.get(k).cloned().unwrap_or(Want::Any(None)),
            Want::Any(_) => Want::Any(None),
        }
    }

    /// `self`, refined by what the syntax says (`other`).
    fn merge(&self, other: &Want) -> Want {
        match (self, other) {
            (Want::Tuple(a), Want::Tuple(b)) if a.len() == b.len() => {
                Want::Tuple(a.iter().zip(b).map(|(x, y)| x.merge(y)).collect())
            }
            (Want::Tuple(_), _) | (Want::Any(Some(_)), _) => self.clone(),
            (Want::Any(None), o) => o.clone(),
        }
    }
}

/// The names a destructuring assignment `(a, b) = ..` assigns.
pub(super) fn targets(t: &syn::ExprTuple, out: &mut Vec<String>) {
    for e in &t.elems {
        match e {
            Expr::Tuple(t) => targets(t, out),
            Expr::Paren(p) => {
                if let Expr::Path(path) = &*p.expr {
                    if let Some(i) = path.path.get_ident() {
                        out.push(i.to_string());
                    }
                }
            }
            Expr::Path(path) => {
                if let Some(i) = path.path.get_ident() {
                    out.push(i.to_string());
                }
            }
            _ => {}
        }
    }
}

/// The tail expression of a block, if it has one.
fn tail(b: &syn::Block) -> Option<&Expr> {
    match b.stmts.last() {
        Some(Stmt::Expr(Expr::Return(r), _)) => r.expr.as_deref(),
        Some(Stmt::Expr(e, None)) => Some(e),
        _ => None,
    }
}

impl Lower<'_> {
    /// The slot of the tuple variable `name`, if `name` is one.
    pub(super) fn tuple_var(&self, name: &str) -> Option<usize> {
        let i = self.lookup(name)?;
        let slot = &self.env[i];
        let first = format!("{name}.0");
        (slot.id.is_none()
            && slot.closure.is_none()
            && self.env[i + 1..].iter().any(|s| s.name == first))
        .then_some(i)
    }

    /// The slots of the elements of the tuple variable in slot `i`, in order.
    fn elem_slots(&self, i: usize) -> Vec<usize> {
        let name = &self.env[i].name;
        let mut out = Vec::new();
        for k in 0.. {
            let child = format!("{name}.{k}");
            match self.env[i + 1..].iter().position(|s| s.name == child) {
                Some(j) => out.push(i + 1 + j),
                None => break,
            }
        }
        out
    }

    /// Whether slot `i` is a tuple variable (its elements follow it).
    fn is_tuple_slot(&self, i: usize) -> bool {
        let name = &self.env[i].name;
        self.tuple_var(name) == Some(i)
    }

    /// The slots of the scalar elements of tuple variable `name`, nested ones
    /// included: what a loop that assigns `name` carries.
    pub(super) fn tuple_leaves(&self, name: &str) -> Option<Vec<usize>> {
        let i = self.tuple_var(name)?;
        let mut out = Vec::new();
        let mut todo = vec![i];
        while let Some(s) = todo.pop() {
            for e in self.elem_slots(s).into_iter().rev() {
                if self.is_tuple_slot(e) {
                    todo.push(e);
                } else {
                    out.push(e);
                }
            }
        }
        Some(out)
    }

    /// The value of the tuple variable in slot `i`; `None` when an element has no
    /// value yet.
    fn read_tuple(&self, i: usize) -> Option<Agg> {
        let items = self
            .elem_slots(i)
            .into_iter()
            .map(|e| {
                if self.is_tuple_slot(e) {
                    self.read_tuple(e)
                } else {
                    self.env[e].id.map(Agg::One)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Agg::Many(items))
    }

    /// The shape of the tuple variable in slot `i`.
    fn slot_want(&self, i: usize) -> Want {
        if !self.is_tuple_slot(i) {
            return Want::Any(self.env[i].id.map(|id| self.func.node(id).ty));
        }
        Want::Tuple(
            self.elem_slots(i)
                .into_iter()
                .map(|e| self.slot_want(e))
                .collect(),
        )
    }

    /// Binds `name` to a tuple value (or to its one value).
    fn push_var(&mut self, name: String, agg: &Agg) {
        match agg {
            Agg::One(id) => {
                self.func.nodes[id.idx()]
                    .hint
                    .get_or_insert_with(|| name.replace('.', "_"));
                self.env.push(Slot {
                    name,
                    id: Some(*id),
                    closure: None,
                });
            }
            Agg::Many(items) => {
                self.env.push(Slot {
                    name: name.clone(),
                    id: None,
                    closure: None,
                });
                for (k, item) in items.iter().enumerate() {
                    self.push_var(format!("{name}.{k}"), item);
                }
            }
        }
    }

    /// Declares a tuple variable of shape `want` whose elements have no value yet.
    fn declare(&mut self, name: String, want: &Want) {
        self.env.push(Slot {
            name: name.clone(),
            id: None,
            closure: None,
        });
        if let Want::Tuple(ws) = want {
            for (k, w) in ws.iter().enumerate() {
                self.declare(format!("{name}.{k}"), w);
            }
        }
    }

    /// Writes `agg` into the tuple variable in slot `i`; `false` when the shapes differ.
    fn store(&mut self, i: usize, agg: Agg) -> bool {
        match agg {
            Agg::One(id) if !self.is_tuple_slot(i) => {
                let name = self.env[i].name.replace('.', "_");
                self.func.nodes[id.idx()].hint.get_or_insert(name);
                self.env[i].id = Some(id);
                true
            }
            Agg::Many(items) if self.is_tuple_slot(i) => {
                let slots = self.elem_slots(i);
                if slots.len() != items.len() {
                    return false;
                }
                slots
                    .into_iter()
                    .zip(items)
                    .all(|(s, item)| self.store(s, item))
            }
            _ => false,
        }
    }

    /// What the syntax of `e` says of its shape: a tuple literal, a tuple variable, an
    /// element of one, or a block, `if` or `match` ending with one.
    fn shape(&self, e: &Expr) -> Option<Want> {
        match e {
            Expr::Paren(p) => self.shape(&p.expr),
            Expr::Group(g) => self.shape(&g.expr),
            Expr::Tuple(t) if !t.elems.is_empty() => Some(Want::Tuple(
                t.elems
                    .iter()
                    .map(|x| self.shape(x).unwrap_or(Want::Any(None)))
                    .collect(),
            )),
            Expr::Path(p) => {
                let i = self.tuple_var(&p.path.get_ident()?.to_string())?;
                Some(self.slot_want(i))
            }
            Expr::Field(f) => match (self.shape(&f.base)?, &f.member) {
                (Want::Tuple(ws), syn::Member::Unnamed(k)) => match ws.get(k.index as usize)? {
                    w @ Want::Tuple(_) => Some(w.clone()),
                    Want::Any(_) => None,
                },
                _ => None,
            },
            Expr::Block(b) if b.label.is_none() => self.shape(tail(&b.block)?),
            Expr::If(i) => tail(&i.then_branch)
                .and_then(|t| self.shape(t))
                .or_else(|| self.shape(&i.else_branch.as_ref()?.1)),
            Expr::Match(m) => m.arms.iter().find_map(|a| self.shape(&a.body)),
            Expr::MethodCall(m) if m.method == "sin_cos" && m.args.is_empty() => {
                Some(Want::Tuple(vec![Want::Any(None), Want::Any(None)]))
            }
            _ => None,
        }
    }

    /// The shape of a declared type: `(f64, Tensor)` gives two elements of these kinds.
    fn want_of_type(&mut self, ty: &Type) -> Want {
        match ty {
            Type::Paren(p) => self.want_of_type(&p.elem),
            Type::Group(g) => self.want_of_type(&g.elem),
            Type::Tuple(t) if !t.elems.is_empty() => {
                Want::Tuple(t.elems.iter().map(|e| self.want_of_type(e)).collect())
            }
            Type::Infer(_) => Want::Any(None),
            t => match crate::parse::classify(t) {
                Some((k @ (Ty::Float(_) | Ty::Tensor(_) | Ty::Int | Ty::Bool), _)) => {
                    Want::Any(Some(k))
                }
                _ => {
                    self.error(t, "this type is not supported in a tuple by the static path of #[differentiable]; tuple elements are `f32`, `f64`, `Tensor`, integers, `bool` and tuples of these");
                    Want::Any(None)
                }
            },
        }
    }

    /// Whether `e` is syntactically a tuple, or an element read from one (`p.0`,
    /// `g(x).1`): then its field access is lowered here.
    pub(super) fn is_tuple_expr(&self, e: &Expr) -> bool {
        match e {
            Expr::Paren(p) => self.is_tuple_expr(&p.expr),
            Expr::Group(g) => self.is_tuple_expr(&g.expr),
            Expr::Field(f) => self.is_tuple_expr(&f.base),
            Expr::Call(c) => self.tuple_callee(c).is_some(),
            e => self.shape(e).is_some(),
        }
    }

    /// The value of `e` of shape `want`: the elements of a tuple, else one value.
    pub(super) fn agg(&mut self, e: &Expr, want: &Want) -> Agg {
        let want = match self.shape(e) {
            Some(s) => want.merge(&s),
            None => want.clone(),
        };
        match e {
            Expr::Paren(p) => return self.agg(&p.expr, &want),
            Expr::Group(g) => return self.agg(&g.expr, &want),
            Expr::Tuple(t) if !t.elems.is_empty() => {
                return Agg::Many(
                    t.elems
                        .iter()
                        .enumerate()
                        .map(|(k, x)| self.agg(x, &want.elem(k)))
                        .collect(),
                )
            }
            Expr::Path(p) => {
                let tuple = p
                    .path
                    .get_ident()
                    .and_then(|i| self.tuple_var(&i.to_string()));
                if let Some(i) = tuple {
                    return match self.read_tuple(i) {
                        Some(a) => a,
                        None => {
                            let id = self.error(
                                p,
                                format!(
                                    "`{}` is used before all its elements are assigned",
                                    p.to_token_stream()
                                ),
                            );
                            Agg::One(id)
                        }
                    };
                }
            }
            Expr::Field(f) if self.is_tuple_expr(&f.base) => {
                if let Some(a) = self.field_agg(f) {
                    return a;
                }
                return Agg::One(self.push(Op::Error, Ty::Opaque, f.span()));
            }
            // `x.sin_cos()`: the two values (emitted as one `sin_cos` again).
            Expr::MethodCall(m) if m.method == "sin_cos" && m.args.is_empty() => {
                let x = self.expr(&m.receiver, None);
                if let t @ Ty::Float(_) = self.func.node(x).ty {
                    let span = m.method.span();
                    let sin = self.push(Op::Math(crate::ir::MathFn::Sin, vec![x]), t, span);
                    let cos = self.push(Op::Math(crate::ir::MathFn::Cos, vec![x]), t, span);
                    return Agg::Many(vec![Agg::One(sin), Agg::One(cos)]);
                }
                if !matches!(self.func.node(x).op, Op::Error) {
                    return Agg::One(self.error(&m.method, "`sin_cos` of a float is supported by the static path of #[differentiable], not of this value"));
                }
                return Agg::One(x);
            }
            Expr::Call(c) if matches!(want, Want::Tuple(_)) && self.tuple_callee(c).is_some() => {
                return self.tuple_call(c, &want);
            }
            Expr::Block(_) | Expr::If(_) | Expr::Match(_) if matches!(want, Want::Tuple(_)) => {
                return self.agg_by_assign(e, &want);
            }
            _ => {}
        }
        let id = match want {
            // An array or `Vec` element of a tuple result: a buffer of these floats.
            Want::Any(Some(Ty::Buf(f))) => self.expr(e, Some(Ty::Float(f))),
            Want::Any(Some(k)) => self.annotated(e, k),
            _ => self.expr(e, None),
        };
        Agg::One(id)
    }

    /// A block, `if` or `match` with a tuple value: each branch ends by assigning its
    /// tuple to a hidden tuple variable, whose elements `if` then yields as it does
    /// any variable that its branches assign.
    fn agg_by_assign(&mut self, e: &Expr, want: &Want) -> Agg {
        // Unique: a nested one is declared after this one's slots.
        let name = format!("__ad_tuple{}_{}", self.func.nodes.len(), self.env.len());
        self.declare(name.clone(), want);
        let slot = self.env.len() - count_slots(want);
        let target = proc_macro2::Ident::new(&name, e.span());
        let assigned = self.assign_tails(e, &target);
        self.expr_or_unit(&assigned, None);
        match self.read_tuple(slot) {
            Some(a) => a,
            None => Agg::One(self.error(e, "not every branch here ends with a tuple; end each one with a tuple of the same shape")),
        }
    }

    /// `e` with the value of each branch assigned to `target` instead.
    fn assign_tails(&mut self, e: &Expr, target: &proc_macro2::Ident) -> Expr {
        match e {
            Expr::Paren(p) => self.assign_tails(&p.expr, target),
            Expr::Block(b) if b.label.is_none() => {
                let mut b = b.clone();
                self.assign_block_tail(&mut b.block, target);
                Expr::Block(b)
            }
            Expr::If(i) => {
                let mut i = i.clone();
                self.assign_block_tail(&mut i.then_branch, target);
                if let Some((_, els)) = &mut i.else_branch {
                    **els = self.assign_tails(els, target);
                } else {
                    self.error(i.if_token, "an `if` used as a value needs an `else` branch");
                }
                Expr::If(i)
            }
            Expr::Match(m) => {
                let mut m = m.clone();
                for arm in &mut m.arms {
                    let body = &arm.body;
                    let span = body.span();
                    *arm.body = syn::parse_quote_spanned!(span=> { #target = #body; });
                }
                Expr::Match(m)
            }
            e => {
                let span = e.span();
                syn::parse_quote_spanned!(span=> { #target = #e; })
            }
        }
    }

    fn assign_block_tail(&mut self, b: &mut syn::Block, target: &proc_macro2::Ident) {
        let last = match b.stmts.pop() {
            Some(Stmt::Expr(Expr::Return(syn::ExprReturn { expr: Some(e), .. }), _)) => {
                Some(Stmt::Expr(*e, None))
            }
            other => other,
        };
        match last {
            Some(Stmt::Expr(e, None)) => {
                let span = e.span();
                b.stmts
                    .push(syn::parse_quote_spanned!(span=> #target = #e;));
            }
            other => {
                let span = other.as_ref().map_or_else(|| b.span(), |s| s.span());
                self.cx.error_at(
                    span,
                    "this block has no value; end it with the tuple it gives",
                );
                b.stmts.extend(other);
            }
        }
    }

    /// The element that `f` reads of a tuple (`p.0`, `g(x).1`, `(a, b).0`).
    fn field_agg(&mut self, f: &syn::ExprField) -> Option<Agg> {
        let syn::Member::Unnamed(k) = &f.member else {
            self.error(
                &f.member,
                "a tuple's elements are read by position (`.0`, `.1`)",
            );
            return None;
        };
        let k = k.index as usize;
        let base = match strip_parens(&f.base) {
            // `g(x).1`: a call of as many elements as the position read says, at least.
            Expr::Call(c) if self.shape(&f.base).is_none() => {
                let want = Want::Tuple(vec![Want::Any(None); k + 1]);
                self.tuple_call(c, &want)
            }
            base => {
                let base = base.clone();
                self.agg(&base, &Want::Any(None))
            }
        };
        match base {
            Agg::Many(mut items) if k < items.len() => Some(items.swap_remove(k)),
            _ => {
                self.error(f, format!("this value has no element `.{k}`"));
                None
            }
        }
    }

    /// `p.0` where `p` is a tuple (a variable, a call, a tuple expression).
    pub(super) fn field(&mut self, f: &syn::ExprField) -> Id {
        match self.field_agg(f) {
            Some(Agg::One(id)) => id,
            Some(Agg::Many(_)) => self.error(f, "this element is itself a tuple; read one of its elements (`.0`) or bind it with `let (a, b) = ..`"),
            None => self.push(Op::Error, Ty::Opaque, f.span()),
        }
    }

    /// `let` followed by `rest`: `let q = g(x);` binds a tuple when `rest` reads
    /// elements of `q` (`q.1`), of as many elements as the highest one read, or as a
    /// pattern `let (a, b) = q;` says.
    pub(super) fn local_before(&mut self, local: &syn::Local, rest: &[Stmt]) {
        if self.memory_local(local, rest) {
            return;
        }
        if let (Pat::Ident(pi), Some(init)) = (&local.pat, &local.init) {
            if let (Expr::Call(c), None, None) = (&*init.expr, &pi.subpat, &init.diverge) {
                if self.tuple_callee(c).is_some() && self.shape(&init.expr).is_none() {
                    if let Some(n) = arity_of_uses(&pi.ident, rest) {
                        let want = Want::Tuple(vec![Want::Any(None); n]);
                        let agg = self.tuple_call(c, &want);
                        self.bind_tuple(&local.pat, agg);
                        return;
                    }
                }
            }
        }
        self.local(local);
    }

    /// `let` with a tuple pattern or a tuple value; `false` when `local` is neither.
    pub(super) fn tuple_local(&mut self, local: &syn::Local) -> bool {
        let Some(init) = &local.init else {
            return false;
        };
        let (pat, ty) = match &local.pat {
            Pat::Type(pt) => (&*pt.pat, Some(&*pt.ty)),
            p => (p, None),
        };
        let is_tuple_pat = matches!(pat, Pat::Tuple(_) | Pat::Wild(_));
        let is_tuple_ty = ty.is_some_and(|t| matches!(t, Type::Tuple(t) if !t.elems.is_empty()));
        if !is_tuple_pat && !is_tuple_ty && self.shape(&init.expr).is_none() {
            return false;
        }
        if let Some((_, diverge)) = &init.diverge {
            self.error(
                diverge,
                "`let ... else` is not supported by the static path of #[differentiable]",
            );
            return true;
        }
        let want = match ty {
            Some(t) => self.want_of_type(t),
            None => Want::Any(None),
        };
        let want = want.merge(&want_of_pat(pat));
        let agg = self.agg(&init.expr, &want);
        self.bind_tuple(pat, agg);
        true
    }

    /// Binds a pattern (names, `_`, `mut`, tuples of these) to a value.
    fn bind_tuple(&mut self, pat: &Pat, agg: Agg) {
        match (pat, agg) {
            (Pat::Type(t), agg) => self.bind_tuple(&t.pat, agg),
            (Pat::Paren(p), agg) => self.bind_tuple(&p.pat, agg),
            (Pat::Wild(_), _) => {}
            (Pat::Ident(pi), agg) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                self.push_var(pi.ident.to_string(), &agg)
            }
            (Pat::Tuple(t), Agg::Many(items))
                if t.elems.len() == items.len()
                    && !t.elems.iter().any(|p| matches!(p, Pat::Rest(_))) =>
            {
                for (p, item) in t.elems.iter().zip(items) {
                    self.bind_tuple(p, item);
                }
            }
            (Pat::Tuple(t), Agg::Many(items)) => {
                self.error(t, format!("this pattern does not match a tuple of {} elements; name each element, or `_` for the unused ones", items.len()));
            }
            (Pat::Tuple(t), Agg::One(id)) => {
                if !matches!(self.func.node(id).op, Op::Error) {
                    self.error(t, "this value is not a tuple the static path of #[differentiable] can see; destructure a tuple expression, a tuple variable or a call");
                }
            }
            (other, _) => {
                self.error(other, "this pattern is not supported by the static path of #[differentiable]; bind names, `_` and tuples of these");
            }
        }
    }

    /// Whether `a` assigns a tuple: to a tuple variable, or destructuring `(a, b) = ..`.
    pub(super) fn is_tuple_assign(&self, a: &syn::ExprAssign) -> bool {
        match strip_parens(&a.left) {
            Expr::Tuple(t) => !t.elems.is_empty(),
            Expr::Path(p) => p
                .path
                .get_ident()
                .is_some_and(|i| self.tuple_var(&i.to_string()).is_some()),
            _ => false,
        }
    }

    /// `p = (..)` or `(a, b) = (..)`: the value first, then the places.
    pub(super) fn assign_tuple(&mut self, a: &syn::ExprAssign) {
        let want = self.place_want(&a.left);
        let value = self.agg(&a.right, &want);
        self.assign_place(&a.left, value);
    }

    fn place_want(&self, place: &Expr) -> Want {
        match strip_parens(place) {
            Expr::Tuple(t) => Want::Tuple(t.elems.iter().map(|e| self.place_want(e)).collect()),
            Expr::Path(p) => match p
                .path
                .get_ident()
                .and_then(|i| self.tuple_var(&i.to_string()))
            {
                Some(i) => self.slot_want(i),
                None => Want::Any(None),
            },
            _ => Want::Any(None),
        }
    }

    fn assign_place(&mut self, place: &Expr, value: Agg) {
        let place = strip_parens(place);
        match (place, value) {
            (Expr::Infer(_), _) => {}
            (Expr::Tuple(t), Agg::Many(items)) if t.elems.len() == items.len() => {
                for (p, v) in t.elems.iter().zip(items) {
                    self.assign_place(p, v);
                }
            }
            (Expr::Path(p), v)
                if p.path
                    .get_ident()
                    .is_some_and(|i| self.tuple_var(&i.to_string()).is_some()) =>
            {
                let name = p
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let i = self.tuple_var(&name).unwrap_or(0);
                if !self.store(i, v) {
                    self.error(
                        p,
                        format!("this value does not have the shape of the tuple `{name}`"),
                    );
                }
            }
            (place, Agg::One(id)) if !matches!(place, Expr::Tuple(_)) => {
                let place = place.clone();
                self.assign(&place, id)
            }
            (place, _) => {
                self.error(
                    place,
                    "this value does not have the shape of the place it is assigned to",
                );
            }
        }
    }

    /// The callee of `c` when it can return a tuple: a named function that is not a
    /// closure of the body, a float or integer function or a tensor constructor.
    fn tuple_callee<'c>(&self, c: &'c syn::ExprCall) -> Option<&'c syn::Path> {
        let Expr::Path(p) = &*c.func else { return None };
        if p.qself.is_some() || p.path.segments.iter().any(|s| !s.arguments.is_none()) {
            return None;
        }
        if let Some(i) = p.path.get_ident() {
            if self.lookup(&i.to_string()).is_some() {
                return None;
            }
        }
        if p.path.segments.len() == 2 {
            let first = p.path.segments[0].ident.to_string();
            if first == "f32"
                || first == "f64"
                || crate::parse::is_int_type(&first)
                || first == "Tensor"
            {
                return None;
            }
        }
        if c.args
            .iter()
            .any(|a| matches!(a, Expr::Reference(r) if r.mutability.is_some()))
        {
            return None;
        }
        Some(&p.path)
    }

    /// `g(args)` returning a tuple of the shape `want` (its elements' kinds declared, or
    /// floats of the function's width): the call and one [`Op::Elem`] per element. A
    /// wrong guess of the callee's result type is a type error of rustc at the call,
    /// never a wrong gradient.
    fn tuple_call(&mut self, c: &syn::ExprCall, want: &Want) -> Agg {
        let Some(path) = self.tuple_callee(c).cloned() else {
            return Agg::One(self.error(c, "this call cannot return a tuple on the static path of #[differentiable]; call a #[differentiable] function"));
        };
        let Want::Tuple(ws) = want else {
            return Agg::One(self.expr(&Expr::Call(c.clone()), None));
        };
        let args: Vec<Id> = c.args.iter().map(|a| self.call_arg(a)).collect();
        if let Some((_, &m)) = args
            .iter()
            .enumerate()
            .find(|&(k, &a)| !self.holds_in_reverse(c, k, a))
        {
            let at = self.func.node(m).span;
            self.cx.error_at(at, "a call with a tuple result and a local buffer argument (or one made in a branch or loop) is not supported by the static path of #[differentiable] yet; pass a parameter, a temporary (`&[a, b]`) at the top of the body, or the elements as floats");
        }
        let ws = self.companion_want(&path, &args, ws);
        let idx = self.callee(&path, c);
        let span = c.span();
        let call = self.push(
            Op::Call {
                path: idx,
                args,
                vjp: false,
            },
            Ty::Tuple,
            span,
        );
        self.tuple_elems(call, &ws, span)
    }

    /// The elements of the tuple `t` of the shape `ws`: one [`Op::Elem`] each, of the
    /// declared kind or a float of the function's width; a tuple element is itself a
    /// tuple of elements (`let (y, (g0, g1)) = f_grad(a, b)`).
    fn tuple_elems(&mut self, t: Id, ws: &[Want], span: proc_macro2::Span) -> Agg {
        let items = ws
            .iter()
            .enumerate()
            .map(|(k, w)| match w {
                Want::Any(Some(kind @ (Ty::Float(_) | Ty::Tensor(_)))) => {
                    Agg::One(self.push(Op::Elem(t, k as u32), *kind, span))
                }
                Want::Any(_) => {
                    let kind = Ty::Float(self.sig.float);
                    Agg::One(self.push(Op::Elem(t, k as u32), kind, span))
                }
                Want::Tuple(inner) => {
                    let e = self.push(Op::Elem(t, k as u32), Ty::Tuple, span);
                    self.tuple_elems(e, inner, span)
                }
            })
            .collect();
        Agg::Many(items)
    }

    /// The shape of what a companion returns, where the pattern leaves it open: the
    /// gradients of `g_grad(a..)` and `g_hvp(a..)` are one per float or tensor argument
    /// of the call (a tuple for several), so `let (y, g) = g_grad(a, b)` reads `g` as
    /// that tuple.
    fn companion_want(&self, path: &syn::Path, args: &[Id], ws: &[Want]) -> Vec<Want> {
        let mut ws = ws.to_vec();
        let Some(last) = path.segments.last() else {
            return ws;
        };
        let name = last.ident.to_string();
        let kinds: Vec<Ty> = args
            .iter()
            .map(|a| self.func.node(*a).ty)
            .filter(|t| matches!(t, Ty::Float(_) | Ty::Tensor(_)) || t.is_memory())
            .collect();
        // Memory gradients are `Vec`s and arrays, which a tuple element does not take.
        if kinds.len() < 2 || kinds.iter().any(|t| t.is_memory()) {
            return ws;
        }
        let grads = if name.ends_with("_grad") && ws.len() == 2 {
            vec![1]
        } else if name.ends_with("_hvp") && ws.len() == 3 {
            // g_hvp(x.., v..): the gradients and products are of the first half.
            vec![1, 2]
        } else {
            return ws;
        };
        let n = if name.ends_with("_hvp") {
            kinds.len() / 2
        } else {
            kinds.len()
        };
        for k in grads {
            if let Want::Any(None) = ws[k] {
                ws[k] = Want::Tuple(kinds[..n].iter().map(|&t| Want::Any(Some(t))).collect());
            }
        }
        ws
    }

    /// `let r = h(x);` where `rest` indexes `r`, or `let r: [f64; 2] = h(x);`: `h`
    /// returns an array or a `Vec` ([`Lower::memory_call`]); `false` otherwise.
    fn memory_local(&mut self, local: &syn::Local, rest: &[Stmt]) -> bool {
        let Some(init) = &local.init else {
            return false;
        };
        let Expr::Call(c) = strip_parens(&init.expr) else {
            return false;
        };
        // `Vec::new()` and `Vec::with_capacity(n)` are a `Vec` that grows (`local`).
        if init.diverge.is_some()
            || self.tuple_callee(c).is_none()
            || super::growing_vec(&init.expr).is_some()
        {
            return false;
        }
        let (pi, ty) = match &local.pat {
            Pat::Ident(pi) => (pi, None),
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) => (pi, Some(&*pt.ty)),
                _ => return false,
            },
            _ => return false,
        };
        if pi.subpat.is_some() || pi.by_ref.is_some() {
            return false;
        }
        let ft = match ty.map(crate::parse::classify) {
            Some(Some((Ty::Slice(f), false))) => f,
            None if indexed_in(&pi.ident, rest) => self.sig.float,
            _ => return false,
        };
        let r = self.memory_call(c, ft);
        self.push_var(pi.ident.to_string(), &Agg::One(r));
        true
    }

    /// `h(args)` returning an array or a `Vec` of `ft` (a guess that is wrong is a
    /// type error of rustc at the call): a buffer, whose adjoint is the seed of
    /// `h_vjp` in the reverse sweep.
    pub(super) fn memory_call(&mut self, c: &syn::ExprCall, ft: crate::ir::FloatTy) -> Id {
        let Some(path) = self.tuple_callee(c).cloned() else {
            return self.error(
                c,
                "only a call of a #[differentiable] function can give an array here",
            );
        };
        let args: Vec<Id> = c.args.iter().map(|a| self.call_arg(a)).collect();
        if let Some((_, &m)) = args
            .iter()
            .enumerate()
            .find(|&(k, &a)| !self.holds_in_reverse(c, k, a))
        {
            let at = self.func.node(m).span;
            self.cx.error_at(at, "a call with an array or `Vec` result and a local buffer argument (or one made in a branch or loop) is not supported by the static path of #[differentiable] yet; pass a parameter, a temporary (`&[a, b]`) at the top of the body, or the elements as floats");
        }
        let idx = self.callee(&path, c);
        self.push(
            Op::Call {
                path: idx,
                args,
                vjp: false,
            },
            Ty::Buf(ft),
            c.span(),
        )
    }

    /// `h(x)[i]`: the buffer `h(x)` when `e` is such a call, else `None`.
    pub(super) fn indexed_call(&mut self, e: &Expr) -> Option<Id> {
        match strip_parens(e) {
            Expr::Call(c) if self.tuple_callee(c).is_some() => {
                Some(self.memory_call(c, self.sig.float))
            }
            _ => None,
        }
    }

    /// The body of a function with a tuple result: its value as the tuple of the
    /// result's elements ([`Op::Pack`]), each of the declared kind.
    pub(super) fn tuple_body(&mut self, block: &syn::Block) -> Id {
        let want = Want::Tuple(
            self.sig
                .ret_elems
                .iter()
                .map(|&k| Want::Any(Some(if let Ty::Slice(f) = k { Ty::Buf(f) } else { k })))
                .collect(),
        );
        let body = Expr::Block(syn::ExprBlock {
            attrs: Vec::new(),
            label: None,
            block: block.clone(),
        });
        let agg = match tail(block) {
            Some(_) => self.agg_by_assign(&body, &want),
            None => {
                let span = block
                    .stmts
                    .last()
                    .map_or_else(|| block.span(), |s| s.span());
                self.cx.error_at(
                    span,
                    "the body of a #[differentiable] function must end with the value it returns",
                );
                Agg::One(self.push(Op::Error, Ty::Opaque, span))
            }
        };
        let items: Vec<Id> = match agg {
            Agg::Many(items) if items.iter().all(|a| matches!(a, Agg::One(_))) => items
                .into_iter()
                .filter_map(|a| match a {
                    Agg::One(id) => Some(id),
                    Agg::Many(_) => None,
                })
                .collect(),
            _ => return self.push(Op::Error, Ty::Tuple, block.span()),
        };
        if items.len() != self.sig.ret_elems.len() {
            let span = tail(block).map_or_else(|| block.span(), |t| t.span());
            self.cx.error_at(
                span,
                format!(
                    "the body ends with a tuple of {} elements; the result type has {}",
                    items.len(),
                    self.sig.ret_elems.len()
                ),
            );
            return self.push(Op::Error, Ty::Tuple, span);
        }
        let mut seen = Vec::new();
        for (&id, &k) in items.iter().zip(&self.sig.ret_elems) {
            let node = self.func.node(id);
            let span = node.span;
            if k.is_memory() && !matches!(node.ty, Ty::Buf(_) | Ty::Opaque) {
                self.cx.error_at(span, "an array or `Vec` element of a tuple result is a local buffer: an array literal `[a, b]`, `vec![..]`, or a buffer written in the body");
            } else if k.is_memory() && seen.contains(&id) {
                self.cx.error_at(span, "the same buffer is two elements of the result; build a second buffer for one of them");
            }
            seen.push(id);
        }
        self.push(Op::Pack(items), Ty::Tuple, block.span())
    }

    /// The error for a tuple variable used where one value is needed.
    pub(super) fn whole_tuple_error(&mut self, ident: &proc_macro2::Ident) -> Id {
        self.error(ident, format!("`{ident}` is a tuple; read one of its elements (`{ident}.0`), or destructure it with `let (a, b) = {ident};`"))
    }
}

/// The stand-in value of a tuple result before an early `return` sets it: zeros, for
/// a tuple of floats and tensors (`None` for the others: no early `return` then).
pub(super) fn placeholder(sig: &crate::parse::Signature) -> Option<Expr> {
    let items = sig
        .ret_elems
        .iter()
        .map(|k| match k {
            Ty::Float(_) => Some(quote::quote!(0.0)),
            Ty::Tensor(_) => Some(quote::quote!(::adjoint::Tensor::scalar(0.0))),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(syn::parse_quote!((#(#items,)*)))
}

/// The shape a pattern says: a tuple pattern has so many elements.
fn want_of_pat(pat: &Pat) -> Want {
    match pat {
        Pat::Type(t) => want_of_pat(&t.pat),
        Pat::Paren(p) => want_of_pat(&p.pat),
        Pat::Tuple(t) => Want::Tuple(t.elems.iter().map(want_of_pat).collect()),
        _ => Want::Any(None),
    }
}

/// Whether `rest` indexes `name` (`name[i]`): then `name` is memory. (Not `len` or
/// `iter`, which a tensor has too.)
fn indexed_in(name: &proc_macro2::Ident, rest: &[Stmt]) -> bool {
    struct Uses<'n>(&'n proc_macro2::Ident, bool);
    impl<'ast> syn::visit::Visit<'ast> for Uses<'_> {
        fn visit_expr_index(&mut self, ix: &'ast syn::ExprIndex) {
            self.1 |= matches!(strip_parens(&ix.expr), Expr::Path(p) if p.path.is_ident(self.0));
            syn::visit::visit_expr_index(self, ix);
        }
    }
    let mut uses = Uses(name, false);
    for s in rest {
        syn::visit::Visit::visit_stmt(&mut uses, s);
    }
    uses.1
}

/// The number of elements that `rest` shows the tuple `name` to have: one more than
/// the highest element read (`name.2`), or the arity of a pattern it is bound to
/// (`let (a, b) = name;`); `None` when `rest` reads no element of it.
fn arity_of_uses(name: &proc_macro2::Ident, rest: &[Stmt]) -> Option<usize> {
    struct Uses<'n> {
        name: &'n proc_macro2::Ident,
        arity: Option<usize>,
    }
    impl Uses<'_> {
        fn at_least(&mut self, n: usize) {
            self.arity = Some(self.arity.map_or(n, |a| a.max(n)));
        }
        fn names(&self, e: &Expr) -> bool {
            matches!(strip_parens(e), Expr::Path(p) if p.path.is_ident(self.name))
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Uses<'_> {
        fn visit_expr_field(&mut self, f: &'ast syn::ExprField) {
            if let (true, syn::Member::Unnamed(k)) = (self.names(&f.base), &f.member) {
                self.at_least(k.index as usize + 1);
            }
            syn::visit::visit_expr_field(self, f);
        }
        fn visit_local(&mut self, l: &'ast syn::Local) {
            if let (Some(init), Pat::Tuple(t)) = (&l.init, &l.pat) {
                if self.names(&init.expr) {
                    self.at_least(t.elems.len());
                }
            }
            syn::visit::visit_local(self, l);
        }
    }
    let mut uses = Uses { name, arity: None };
    for s in rest {
        syn::visit::Visit::visit_stmt(&mut uses, s);
    }
    uses.arity
}

/// How many slots [`Lower::declare`] pushes for `want`.
fn count_slots(want: &Want) -> usize {
    match want {
        Want::Any(_) => 1,
        Want::Tuple(ws) => 1 + ws.iter().map(count_slots).sum::<usize>(),
    }
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        Expr::Group(g) => strip_parens(&g.expr),
        e => e,
    }
}
