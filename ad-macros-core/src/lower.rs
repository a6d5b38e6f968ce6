//! `syn::Block` -> [`crate::ir::Func`]: SSA form, with shadowing, `let mut`, assignment and
//! compound assignment resolved to fresh values, and `if`/`else` turned into regions.
//!
//! Every construct outside the static path is reported into the error sink on its own
//! span, and lowering goes on with an [`Op::Error`] node, so all the mistakes of one
//! function show up in one compile.
//!
//! Before/after, for `let mut y = x * 2.0; y += x.sin(); y`:
//!
//! ```text
//! %0: f64 = param 0
//! %1: f64 = 2.0
//! %2: f64 = %0 * %1
//! %3: f64 = sin %0
//! %4: f64 = %2 + %3
//! return %4
//! ```

use crate::ctxt::Ctxt;
use crate::ir::{BinOp, FloatTy, Func, Id, MathFn, Node, Op, Origin, Reduction, Region, Ty};
use crate::parse::{self, Signature};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, Lit, Pat, Stmt};

mod chains;
mod exits;
mod neither;
mod tuples;

pub use neither::check;

/// Lowers the body of `item` against its signature model. Errors go to `cx`.
pub fn lower(cx: &Ctxt, sig: &Signature, block: &syn::Block) -> Func {
    let mut lw = Lower {
        cx,
        sig,
        func: Func::default(),
        env: Vec::new(),
        regions: vec![Vec::new()],
        trust_tail: true,
    };
    for (i, p) in sig.params.iter().enumerate() {
        let id = lw.push(Op::Param(i as u32), p.kind, p.ident.span());
        lw.func.nodes[id.idx()].hint = Some(p.ident.to_string());
        lw.env.push(Slot {
            name: p.ident.to_string(),
            id: Some(id),
            closure: None,
        });
    }
    if sig.ret_kind == Ty::Unit {
        // A helper that only writes its `&mut` parameters: its tail is a statement.
        lw.trust_tail = false;
    }
    // `break`, `continue` and early `return` become flags (`exits`).
    let placeholder: Option<Expr> = match sig.ret_kind {
        Ty::Float(_) => Some(syn::parse_quote!(0.0)),
        Ty::Tensor(_) => Some(syn::parse_quote!(::adjoint::Tensor::scalar(0.0))),
        Ty::Tuple => tuples::placeholder(sig),
        _ => None,
    };
    let desugared = match exits::desugar(block, &sig.ret, placeholder) {
        Some(Ok(b)) => Some(b),
        Some(Err(errors)) => {
            cx.absorb(errors);
            None
        }
        None => None,
    };
    let block = desugared.as_ref().unwrap_or(block);
    let ret = match sig.ret_kind {
        Ty::Tuple => Some(lw.tuple_body(block)),
        _ => lw.block(block, Some(sig.ret_kind)),
    };
    let ret = match ret {
        _ if sig.ret_kind == Ty::Unit => lw.opaque(quote::quote!(()), Ty::Opaque, block.span()),
        Some(id) => id,
        None => {
            let span = block
                .stmts
                .last()
                .map_or_else(|| block.span(), |s| s.span());
            cx.error_at(
                span,
                "the body of a #[differentiable] function must end with the value it returns",
            );
            lw.push(Op::Error, sig.ret_kind, span)
        }
    };
    if sig.ret_kind.is_memory() && !matches!(lw.func.node(ret).ty, Ty::Buf(_) | Ty::Opaque) {
        let span = lw.func.node(ret).span;
        cx.error_at(span, "a function with a vector result returns a local buffer: an array literal `[a, b]`, `vec![..]`, or a buffer written in the body");
    }
    // The final value of each `&mut` scalar parameter follows the result.
    let finals: Vec<Id> = sig
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.mutable && !p.kind.is_memory())
        .map(|(k, _)| lw.env[k].id.unwrap_or(Id(k as u32)))
        .collect();
    let mut func = lw.func;
    func.body.nodes = lw.regions.pop().unwrap_or_default();
    func.outputs = std::iter::once(ret).chain(finals).collect();
    debug_assert_eq!(func.verify(), Ok(()));
    func
}

/// A variable in scope.
#[derive(Clone)]
struct Slot {
    name: String,
    /// `None` for `let x;` before its first assignment, and for a closure.
    id: Option<Id>,
    /// A closure bound by `let f = |..| ..;`, inlined where it is called.
    closure: Option<std::rc::Rc<syn::ExprClosure>>,
}

struct Lower<'a> {
    cx: &'a Ctxt,
    sig: &'a Signature,
    func: Func,
    /// The variables in scope, innermost last; shadowing pushes a new slot.
    env: Vec<Slot>,
    /// The node lists of the regions being built, innermost last.
    regions: Vec<Vec<Id>>,
    /// Whether the next block's tail has the function's declared result type (the
    /// body's tail), which tells the kind of a call there.
    trust_tail: bool,
}

impl Lower<'_> {
    fn push(&mut self, op: Op, ty: Ty, span: Span) -> Id {
        let id = self.push_one(op, ty, span);
        if matches!(ty, Ty::Tensor(_)) {
            // The reverse sweep shapes gradients from this small value; the simplifier
            // drops it when nothing reads it.
            self.push_one(Op::ShapeOf(id), Ty::Opaque, span);
        }
        id
    }

    fn push_one(&mut self, op: Op, ty: Ty, span: Span) -> Id {
        let id = self.func.push(Node {
            op,
            ty,
            span,
            origin: Origin::Primal,
            hint: None,
        });
        if let Some(r) = self.regions.last_mut() {
            r.push(id);
        }
        id
    }

    fn error(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) -> Id {
        self.refuse(tokens.into_token_stream(), msg, false)
    }

    /// Reports a refusal on `tokens` (`not_yet`: of a construct the tape takes) and
    /// stands an error node in for the value.
    fn refuse(&mut self, tokens: TokenStream, msg: impl std::fmt::Display, not_yet: bool) -> Id {
        let span = tokens
            .clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        if not_yet {
            self.cx.not_yet_spanned_by(tokens, msg);
        } else {
            self.cx.error_spanned_by(tokens, msg);
        }
        self.push(Op::Error, Ty::Opaque, span)
    }

    /// `e` as a constant expression ([`Op::Apply`]) when it reads at least one constant
    /// parameter (an enum, a `&[usize]`, a configuration struct) and otherwise only
    /// values that carry no gradient (integers, `bool`s), literals and outside paths:
    /// `idx[i]`, `obs.len()`, `cfg.n`, `cfg.scale(k)`. `None` when anything it names
    /// could carry a gradient or is not a plain value (a closure, memory); the caller
    /// then lowers it as before.
    fn constant_expr(&mut self, e: &Expr) -> Option<Id> {
        let mut args = Vec::new();
        let mut constant_param = false;
        let code = self.holes(e.to_token_stream(), &mut args, &mut constant_param)?;
        if !constant_param {
            return None;
        }
        let idx = self.func.opaque.len() as u32;
        self.func.opaque.push(code);
        Some(self.push(Op::Apply(idx, args), Ty::Opaque, e.span()))
    }

    /// The tokens of [`Lower::constant_expr`] with each name of the body replaced by a
    /// hole for its value; `param` is set when one of them is a constant parameter.
    fn holes(
        &mut self,
        tokens: TokenStream,
        args: &mut Vec<Id>,
        param: &mut bool,
    ) -> Option<TokenStream> {
        use proc_macro2::{Delimiter, TokenTree};
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let punct = |at: Option<&TokenTree>, c: char| matches!(at, Some(TokenTree::Punct(p)) if p.as_char() == c);
        let mut out = Vec::with_capacity(tokens.len());
        for (k, t) in tokens.iter().enumerate() {
            match t {
                TokenTree::Ident(i) => {
                    // A field or method name (`.n`), a path segment (`a::b`), a macro
                    // (`m!`) or a called function (`f(..)`) is not a value of the body.
                    let before = k.checked_sub(1).and_then(|j| tokens.get(j));
                    let after = tokens.get(k + 1);
                    let named = punct(before, '.')
                        || punct(before, ':')
                        || punct(after, ':')
                        || punct(after, '!')
                        || matches!(after, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
                    match self.lookup(&i.to_string()) {
                        Some(slot) if !named => {
                            if self.env[slot].closure.is_some() {
                                return None;
                            }
                            let id = self.env[slot].id?;
                            let node = self.func.node(id);
                            if node.ty.is_differentiable() {
                                return None;
                            }
                            if let Op::Param(p) = node.op {
                                *param |= self.sig.params[p as usize].kind == Ty::Opaque;
                            }
                            let hole = format!("__ad_hole_{}", args.len());
                            args.push(id);
                            out.push(TokenTree::Ident(proc_macro2::Ident::new(&hole, i.span())));
                        }
                        _ => out.push(t.clone()),
                    }
                }
                TokenTree::Group(g) => {
                    let inner = self.holes(g.stream(), args, param)?;
                    let mut group = proc_macro2::Group::new(g.delimiter(), inner);
                    group.set_span(g.span());
                    out.push(TokenTree::Group(group));
                }
                other => out.push(other.clone()),
            }
        }
        Some(out.into_iter().collect())
    }

    /// Whether `id` stands for a value already refused: a check of its kind would only
    /// repeat that refusal (and could make a construct the tape takes look invalid).
    fn refused(&self, id: Id) -> bool {
        matches!(self.func.node(id).op, Op::Error)
    }

    /// [`Lower::error`] for a construct that the tape takes ([`Ctxt::not_yet_at`]).
    fn not_yet(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) -> Id {
        self.refuse(tokens.into_token_stream(), msg, true)
    }

    fn opaque(&mut self, tokens: TokenStream, ty: Ty, span: Span) -> Id {
        let idx = self.func.opaque.len() as u32;
        self.func.opaque.push(tokens);
        self.push(Op::Opaque(idx), ty, span)
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.env.iter().rposition(|s| s.name == name)
    }

    /// Lowers a block in its own scope; returns its value, if it has a tail expression.
    fn block(&mut self, block: &syn::Block, expect: Option<Ty>) -> Option<Id> {
        let trusted = std::mem::take(&mut self.trust_tail);
        let scope = self.env.len();
        let mut value = None;
        let n = block.stmts.len();
        for (i, stmt) in block.stmts.iter().enumerate() {
            let last = i + 1 == n;
            match stmt {
                Stmt::Local(local) => self.local_before(local, &block.stmts[i + 1..]),
                Stmt::Expr(Expr::Return(ret), _) if last => match &ret.expr {
                    Some(e) => value = Some(self.expr(e, expect)),
                    None => {
                        self.error(ret, "`return` without a value in a #[differentiable] function; return the float result");
                    }
                },
                Stmt::Expr(e, None) if last && trusted => {
                    value = Some(self.annotated(e, expect.unwrap_or(Ty::Opaque)))
                }
                Stmt::Expr(e, None) if last => value = self.expr_or_unit(e, expect),
                Stmt::Expr(e, _) => {
                    self.expr_or_unit(e, None);
                }
                // `const N: T = e;` reads as `let N: T = e;` (its value is a constant).
                Stmt::Item(syn::Item::Const(c)) => {
                    let (name, ty, init) = (&c.ident, &c.ty, &c.expr);
                    let stmt: Stmt = syn::parse_quote_spanned!(c.span()=> let #name: #ty = #init;);
                    if let Stmt::Local(local) = &stmt {
                        self.local(local);
                    }
                }
                Stmt::Item(item) => {
                    self.error(item, "items inside a #[differentiable] function are not supported; move the item out of the function");
                }
                Stmt::Macro(m) if is_debug_macro(&m.mac) => self.debug_macro(&m.mac),
                Stmt::Macro(m) => {
                    self.macro_error(&m.mac);
                }
            }
        }
        self.env.truncate(scope);
        value
    }

    fn macro_error(&mut self, mac: &syn::Macro) -> Id {
        let name = mac.path.to_token_stream().to_string().replace(' ', "");
        self.not_yet(
            mac,
            format!("macro `{name}!` is not supported by the static path of #[differentiable], which cannot see through macros; compute the value outside the function"),
        )
    }

    fn local(&mut self, local: &syn::Local) {
        if self.tuple_local(local) {
            return;
        }
        // `let (a, b) = (e1, e2);`: one binding per element.
        if let (Pat::Tuple(pt), Some(init)) = (&local.pat, &local.init) {
            if let Expr::Tuple(t) = &*init.expr {
                if pt.elems.len() == t.elems.len() && init.diverge.is_none() {
                    let vals: Vec<Id> = t.elems.iter().map(|e| self.expr(e, None)).collect();
                    for (p, v) in pt.elems.iter().zip(vals) {
                        self.bind_values(p, &[v]);
                    }
                    return;
                }
            }
        }
        let (ident, ty) = match &local.pat {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                (pi.ident.clone(), None)
            }
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    (pi.ident.clone(), Some(&*pt.ty))
                }
                other => {
                    self.not_yet(other, "this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`");
                    return;
                }
            },
            other => {
                self.not_yet(other, "this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`");
                return;
            }
        };
        let expect = match ty {
            None => None,
            Some(t) => match parse::classify(t) {
                // `let b: Vec<f64> = vec![..]`, `let p: [f64; 3] = [..]`: a buffer.
                Some((Ty::Slice(f), false)) => Some(Ty::Buf(f)),
                Some((k, false)) | Some((k @ Ty::Tensor(_), true)) => Some(k),
                _ => {
                    self.not_yet(t, "this type is not supported by the static path of #[differentiable]; locals are `f32`, `f64`, `Tensor`, integers and `bool`");
                    None
                }
            },
        };
        if let Some(init) = &local.init {
            if let Some(span) = growing_vec(&init.expr).filter(|_| init.diverge.is_none()) {
                // `let mut v = Vec::new();` (or `with_capacity`): an empty buffer whose
                // length lives in its own integer variable.
                let ft = match expect {
                    Some(Ty::Buf(ft)) => ft,
                    _ => self.sig.float,
                };
                // The capacity is only a hint, but it is checked like any expression.
                if let Expr::Call(c) = &*init.expr {
                    for a in &c.args {
                        self.expr(a, Some(Ty::Int));
                    }
                }
                let zero = self.push(Op::Const(0.0), Ty::Float(ft), span);
                let len = self.opaque(quote::quote!(0usize), Ty::Int, span);
                let buf = self.alloc(zero, len, false, span);
                self.func.nodes[buf.idx()].hint = Some(ident.to_string());
                let start = self.opaque(quote::quote!(0usize), Ty::Int, span);
                self.env.push(Slot {
                    name: length_name(buf),
                    id: Some(start),
                    closure: None,
                });
                self.env.push(Slot {
                    name: ident.to_string(),
                    id: Some(buf),
                    closure: None,
                });
                return;
            }
            if let Expr::Closure(c) = &*init.expr {
                // `let f = |..| ..;`: inlined at each call.
                let mut names = Vec::new();
                assigned_in_expr(&c.body, &mut names);
                if let Some(n) = names.iter().find(|n| self.lookup(n).is_some()) {
                    self.not_yet(c, format!("this closure assigns `{n}`; the static path of #[differentiable] inlines closures that only compute a value"));
                    return;
                }
                self.env.push(Slot {
                    name: ident.to_string(),
                    id: None,
                    closure: Some(std::rc::Rc::new(c.clone())),
                });
                return;
            }
        }
        let id = match &local.init {
            None => None,
            Some(init) => {
                if let Some((_, diverge)) = &init.diverge {
                    self.not_yet(
                        diverge,
                        "`let ... else` is not supported by the static path of #[differentiable]",
                    );
                }
                let id = match expect {
                    Some(Ty::Buf(f)) => self.expr(&init.expr, Some(Ty::Float(f))),
                    Some(k) => self.annotated(&init.expr, k),
                    None => self.expr(&init.expr, None),
                };
                // `let c: f64 = cfg.scale;`: a constant expression declared a float, so
                // that a call counts it among its float arguments (it has no adjoint).
                if let Some(ft @ Ty::Float(_)) = expect {
                    let node = &mut self.func.nodes[id.idx()];
                    if matches!(node.op, Op::Apply(..)) && node.ty == Ty::Opaque {
                        node.ty = ft;
                    }
                }
                if matches!(expect, Some(Ty::Buf(_)))
                    && !self.func.node(id).ty.is_memory()
                    && !self.refused(id)
                {
                    self.not_yet(&init.expr, "a `Vec` or array local is built with `vec![..]`, `[x; N]` or `[a, b, ..]` on the static path");
                }
                self.func.nodes[id.idx()]
                    .hint
                    .get_or_insert_with(|| ident.to_string());
                Some(id)
            }
        };
        self.env.push(Slot {
            name: ident.to_string(),
            id,
            closure: None,
        });
    }

    /// Lowers an expression that may be a statement without value (assignment, `if`
    /// without `else`).
    fn expr_or_unit(&mut self, e: &Expr, expect: Option<Ty>) -> Option<Id> {
        match e {
            Expr::Assign(a) if self.is_tuple_assign(a) => {
                self.assign_tuple(a);
                None
            }
            Expr::Assign(a) => {
                let rhs = self.expr(&a.right, None);
                self.assign(&a.left, rhs);
                None
            }
            Expr::Binary(b)
                if compound_op(&b.op).is_some() && matches!(&*b.left, Expr::Index(_)) =>
            {
                let op = compound_op(&b.op).unwrap_or(BinOp::Add);
                let Expr::Index(ix) = &*b.left else {
                    return None;
                };
                let (buf, i) = self.place(ix)?;
                if !self.writable(buf, ix) {
                    return None;
                }
                let ft = self.func.node(buf).ty.float().unwrap_or(self.sig.float);
                let old = self.push(Op::Load(buf, i), Ty::Float(ft), ix.span());
                let rhs = self.expr(&b.right, Some(Ty::Float(ft)));
                let ty = result_ty(op, Ty::Float(ft), self.func.node(rhs).ty);
                let v = self.push(Op::Binary(op, old, rhs), ty, b.span());
                self.push(Op::Store(buf, i, v), Ty::Unit, b.span());
                None
            }
            Expr::ForLoop(f) => {
                self.for_loop(f);
                None
            }
            Expr::While(w) => {
                self.while_loop(w.label.as_ref(), Some(&w.cond), &w.body, w.while_token.span);
                None
            }
            Expr::Loop(l) => {
                self.while_loop(l.label.as_ref(), None, &l.body, l.loop_token.span);
                None
            }
            Expr::Binary(b) if compound_op(&b.op).is_some() => {
                let op = compound_op(&b.op).unwrap_or(BinOp::Add);
                let lhs = self.expr(&b.left, None);
                let ty = self.func.node(lhs).ty;
                let rhs = self.expr(&b.right, Some(ty));
                let ty = result_ty(op, self.func.node(lhs).ty, self.func.node(rhs).ty);
                let v = self.push(Op::Binary(op, lhs, rhs), ty, b.span());
                self.assign(&b.left, v);
                None
            }
            // `helper(&x, &mut out);`: its result, if any, is not used.
            Expr::Call(c) if has_mut_arg(c) => Some(self.call(c, Some(Ty::Unit), false)),
            Expr::If(i) => self.if_(i, expect),
            Expr::Match(m) => self.match_(m, expect),
            Expr::Paren(p) => self.expr_or_unit(&p.expr, expect),
            Expr::Block(b) if b.label.is_none() => self.block(&b.block, expect),
            _ => Some(self.expr(e, expect)),
        }
    }

    fn assign(&mut self, place: &Expr, value: Id) {
        match place {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let name = p.path.segments[0].ident.to_string();
                match self.lookup(&name) {
                    Some(i) => {
                        self.env[i].id = Some(value);
                        self.func.nodes[value.idx()].hint.get_or_insert(name);
                    }
                    None => {
                        self.error(place, format!("cannot assign to `{name}`: only local variables and parameters can be assigned in a #[differentiable] function"));
                    }
                }
            }
            Expr::Paren(p) => self.assign(&p.expr, value),
            // `*out = v` for a `&mut f64` parameter: its new value.
            Expr::Unary(u)
                if matches!(u.op, syn::UnOp::Deref(_)) && self.mut_scalar_param(&u.expr) =>
            {
                self.assign(&u.expr, value)
            }
            Expr::Index(ix) => {
                let Some((buf, i)) = self.place(ix) else {
                    return;
                };
                if self.writable(buf, ix) {
                    self.push(Op::Store(buf, i, value), Ty::Unit, ix.span());
                }
            }
            _ => {
                self.not_yet(place, "assignment to this place is not supported by the static path of #[differentiable]; assign to a local variable");
            }
        }
    }

    /// Lowers an expression that must produce a value.
    fn expr(&mut self, e: &Expr, expect: Option<Ty>) -> Id {
        // `idx[i]`, `cfg.n` over a constant parameter.
        if matches!(e, Expr::Field(_) | Expr::Index(_)) {
            if let Some(v) = self.constant_expr(e) {
                return v;
            }
        }
        match e {
            Expr::Lit(l) => self.lit(&l.lit, expect),
            Expr::Paren(p) => self.expr(&p.expr, expect),
            Expr::Group(g) => self.expr(&g.expr, expect),
            Expr::Path(p) => self.path(p, expect),
            Expr::Unary(u) => {
                let a = self.expr(&u.expr, expect);
                let ty = self.func.node(a).ty;
                match u.op {
                    syn::UnOp::Neg(_) => self.push(Op::Neg(a), ty, u.span()),
                    syn::UnOp::Not(_) => self.push(Op::Not(a), ty, u.span()),
                    // `*v` of an item or a reborrow: the value itself.
                    syn::UnOp::Deref(_) => a,
                    _ => self.error(u, "this operator is not supported by the static path of #[differentiable]"),
                }
            }
            Expr::Binary(b) => match bin_op(&b.op) {
                Some(op) => self.binary(op, &b.left, &b.right, expect, b.span()),
                None if compound_op(&b.op).is_none() => {
                    let op = b.op.to_token_stream();
                    self.error(b.op, format!("operator `{op}` is not supported by the static path of #[differentiable]"))
                }
                None => {
                    self.expr_or_unit(e, None);
                    self.error(e, "an assignment has no value; put the assigned variable after it")
                }
            },
            Expr::MethodCall(m) => self.method(m, expect),
            Expr::Call(c) => self.call(c, expect, false),
            Expr::Cast(c) => self.cast(c),
            Expr::Block(b) if b.label.is_none() => match self.block(&b.block, expect) {
                Some(v) => v,
                None => self.error(b, "this block has no value; end it with an expression"),
            },
            Expr::If(i) => match self.if_(i, expect) {
                Some(v) => v,
                None => self.error(i, "this `if` has no value; give both branches a value and add an `else`"),
            },
            Expr::Assign(_) => {
                self.expr_or_unit(e, None);
                self.error(e, "an assignment has no value; put the assigned variable after it")
            }
            Expr::Closure(c) => self.not_yet(
                c,
                "closures are not supported by the static path of #[differentiable]; write a separate #[differentiable] function and call it",
            ),
            Expr::Macro(m) if m.mac.path.is_ident("vec") => self.vec_macro(&m.mac, expect),
            Expr::Macro(m) if is_debug_macro(&m.mac) => {
                self.debug_macro(&m.mac);
                self.opaque(quote::quote!(()), Ty::Opaque, m.span())
            }
            Expr::Macro(m) => self.macro_error(&m.mac),
            Expr::ForLoop(f) => self.not_yet(
                f.for_token,
                "`for` loops are not supported by the static path of #[differentiable] yet",
            ),
            Expr::While(w) => self.not_yet(
                w.while_token,
                "`while` loops are not supported by the static path of #[differentiable] yet",
            ),
            Expr::Loop(l) => self.not_yet(
                l.loop_token,
                "`loop` is not supported by the static path of #[differentiable] yet",
            ),
            Expr::Return(r) => self.not_yet(
                r.return_token,
                "early `return` is not supported by the static path of #[differentiable]; make the value the last expression of the body",
            ),
            Expr::Index(i) if matches!(&*i.index, Expr::Range(_)) => match &*i.index {
                Expr::Range(r) => self.sub_slice(i, r),
                _ => self.push(Op::Error, Ty::Opaque, i.span()),
            },
            Expr::Index(i) => match self.place(i) {
                Some((buf, idx)) => {
                    let ft = self.func.node(buf).ty.float().unwrap_or(self.sig.float);
                    self.push(Op::Load(buf, idx), Ty::Float(ft), i.span())
                }
                None => self.push(Op::Error, Ty::Opaque, i.span()),
            },
            Expr::Array(a) => {
                let elem = expect.and_then(Ty::float).map(Ty::Float);
                let items: Vec<Id> = a.elems.iter().map(|e| self.expr(e, elem)).collect();
                self.elems(items, true, a.span())
            }
            Expr::Repeat(r) => {
                let elem = expect.and_then(Ty::float).map(Ty::Float);
                let init = self.expr(&r.expr, elem);
                let len = self.expr(&r.len, Some(Ty::Int));
                self.alloc(init, len, true, r.span())
            }
            Expr::Match(m) => match self.match_(m, expect) {
                Some(v) => v,
                None => self.error(m.match_token, "this `match` has no value; give every arm a value"),
            },
            // `&t`: the value itself; the emitter decides between borrowing and moving.
            Expr::Reference(r) if r.mutability.is_none() => self.expr(&r.expr, expect),
            Expr::Reference(r) => self.error(
                r,
                "`&mut` references are not supported by the static path of #[differentiable]",
            ),
            Expr::Field(f) if self.is_tuple_expr(&f.base) => self.field(f),
            Expr::Field(f) => self.not_yet(
                f,
                "field access is not supported by the static path of #[differentiable]; pass the field as a parameter",
            ),
            Expr::Tuple(t) => self.not_yet(
                t,
                "a tuple is not a value here on the static path of #[differentiable]; bind it with `let`, read one of its elements (`.0`), or return it",
            ),
            other => self.not_yet(
                other,
                "this expression is not supported by the static path of #[differentiable]",
            ),
        }
    }

    /// Lowers an expression whose kind is declared (`let h: Tensor = ..`, the body's
    /// tail): a call takes that kind as its result's.
    fn annotated(&mut self, e: &Expr, ty: Ty) -> Id {
        match e {
            Expr::Paren(p) => self.annotated(&p.expr, ty),
            Expr::Call(c) if ty.is_differentiable() => self.call(c, Some(ty), true),
            _ => self.expr(e, Some(ty)),
        }
    }

    fn lit(&mut self, lit: &Lit, expect: Option<Ty>) -> Id {
        match lit {
            Lit::Float(f) => {
                let ft = match f.suffix() {
                    "f32" => FloatTy::F32,
                    "f64" => FloatTy::F64,
                    _ => expect.and_then(Ty::float).unwrap_or(self.sig.float),
                };
                // Parse the digits at the literal's own width, exactly as rustc does.
                let value = match ft {
                    FloatTy::F32 => f.base10_parse::<f32>().map(f64::from),
                    FloatTy::F64 => f.base10_parse::<f64>(),
                };
                match value {
                    Ok(v) => self.push(Op::Const(v), Ty::Float(ft), f.span()),
                    Err(e) => {
                        self.cx.syn_error(e);
                        self.push(Op::Error, Ty::Float(ft), f.span())
                    }
                }
            }
            Lit::Int(i) => {
                if let Some(Ty::Float(ft)) = expect {
                    // `let y: f64 = 2;` does not compile; leave that error to rustc, but
                    // keep the kind right for the rest of the body.
                    return self.opaque(i.to_token_stream(), Ty::Float(ft), i.span());
                }
                self.opaque(i.to_token_stream(), Ty::Int, i.span())
            }
            Lit::Bool(b) => self.opaque(b.to_token_stream(), Ty::Bool, b.span()),
            other => self.error(
                other,
                "this literal is not supported in a #[differentiable] function; use a number",
            ),
        }
    }

    fn path(&mut self, p: &syn::ExprPath, expect: Option<Ty>) -> Id {
        if p.qself.is_none() {
            if let Some(ident) = p.path.get_ident() {
                if let Some(i) = self.lookup(&ident.to_string()) {
                    if self.tuple_var(&ident.to_string()).is_some() {
                        return self.whole_tuple_error(ident);
                    }
                    if self.env[i].closure.is_some() {
                        return self.not_yet(ident, format!("the closure `{ident}` is only called on the static path of #[differentiable]; call it, as in `{ident}(x)`"));
                    }
                    return match self.env[i].id {
                        Some(id) => id,
                        None => {
                            self.error(ident, format!("`{ident}` is used before it is assigned"))
                        }
                    };
                }
            }
        }
        // Anything else is a constant from outside the function (`PI`, `SCALE`, an enum
        // constant): it carries no gradient. Paths through a float module (`f64::consts::PI`)
        // are floats of that width; otherwise rustc knows the type.
        let ty = p
            .path
            .segments
            .iter()
            .find_map(|s| match s.ident.to_string().as_str() {
                "f32" => Some(Ty::Float(FloatTy::F32)),
                "f64" => Some(Ty::Float(FloatTy::F64)),
                _ => None,
            })
            .or(expect.filter(|t| matches!(t, Ty::Float(_))))
            .unwrap_or(Ty::Opaque);
        self.opaque(p.to_token_stream(), ty, p.span())
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr, expect: Option<Ty>, span: Span) -> Id {
        // `a && b` evaluates `b` only when `a` holds (`b` may index out of bounds
        // otherwise, as in `while i < n && x[i] > 0.0`): an `if` unless `b` is plain.
        if matches!(op, BinOp::And | BinOp::Or) && !is_plain(r) {
            let i: syn::ExprIf = match op {
                BinOp::And => syn::parse_quote_spanned!(span=> if #l { #r } else { false }),
                _ => syn::parse_quote_spanned!(span=> if #l { true } else { #r }),
            };
            return match self.if_(&i, Some(Ty::Bool)) {
                Some(v) => v,
                None => self.push(Op::Error, Ty::Bool, span),
            };
        }
        let operand_expect = if op.is_comparison() { None } else { expect };
        // An untyped float literal takes the kind of the other operand, so lower that first.
        let (lhs, rhs) = if is_untyped_float_lit(l) && !is_untyped_float_lit(r) {
            let rhs = self.expr(r, operand_expect);
            let lhs = self.expr(l, Some(self.func.node(rhs).ty));
            (lhs, rhs)
        } else {
            let lhs = self.expr(l, operand_expect);
            let rhs = self.expr(r, Some(self.func.node(lhs).ty));
            (lhs, rhs)
        };
        let (lt, rt) = (self.func.node(lhs).ty, self.func.node(rhs).ty);
        if matches!(lt, Ty::Tensor(_)) || matches!(rt, Ty::Tensor(_)) {
            let what = match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => None,
                BinOp::Rem => Some("`%` on tensors is not supported by the static path of #[differentiable]"),
                _ => Some("comparisons and logic on tensors are not supported by #[differentiable]; compare scalars (`t.sum()`, `t.max()`) instead"),
            };
            if let Some(msg) = what {
                self.cx.error_at(span, msg);
                return self.push(Op::Error, Ty::Bool, span);
            }
        }
        let ty = result_ty(op, lt, rt);
        if op == BinOp::Rem && ty.is_differentiable() {
            self.cx.error_at(span, "`%` on floats is not supported by the static path of #[differentiable]; it is differentiable only piecewise");
        }
        self.push(Op::Binary(op, lhs, rhs), ty, span)
    }

    fn method(&mut self, m: &syn::ExprMethodCall, expect: Option<Ty>) -> Id {
        if let Some(v) = self.chain_terminal(m, expect) {
            return v;
        }
        if let Some(e) = option_access(m) {
            return self.expr(&e, expect);
        }
        let name = m.method.to_string();
        if let Some(t) = &m.turbofish {
            return self.error(
                t,
                "turbofish arguments are not supported by the static path of #[differentiable]",
            );
        }
        let recv = self.expr(&m.receiver, expect);
        if matches!(self.func.node(recv).op, Op::Error) {
            // Already reported: no second error for the method of a value in error.
            return recv;
        }
        let recv_ty = self.func.node(recv).ty;
        if name == "detach" && m.args.is_empty() {
            return self.push(Op::Detach(recv), recv_ty, m.span());
        }
        if let Ty::Tensor(ft) = recv_ty {
            return self.tensor_method(m, recv, ft);
        }
        if recv_ty.is_memory() {
            if let Some(len) = self.lookup(&length_name(recv)) {
                if name == "push" && m.args.len() == 1 {
                    let ft = recv_ty.float().unwrap_or(self.sig.float);
                    let x = self.expr(&m.args[0], Some(Ty::Float(ft)));
                    let at = self.env[len].id.unwrap_or(Id(0));
                    self.push(Op::Grow(recv), Ty::Unit, m.span());
                    self.push(Op::Store(recv, at, x), Ty::Unit, m.span());
                    let one = self.int_lit(1, m.span());
                    let next = self.push(Op::Binary(BinOp::Add, at, one), Ty::Int, m.span());
                    self.env[len].id = Some(next);
                    return self.opaque(quote::quote!(()), Ty::Opaque, m.span());
                }
            }
            if let Some(v) = self.memory_method(m, recv) {
                return v;
            }
            return match name.as_str() {
                "len" if m.args.is_empty() => self.len_of(recv, m.span()),
                "is_empty" if m.args.is_empty() => {
                    let len = self.len_of(recv, m.span());
                    let zero = self.int_lit(0, m.span());
                    self.push(Op::Binary(BinOp::Eq, len, zero), Ty::Bool, m.span())
                }
                _ => self.not_yet(&m.method, format!("method `{name}` of a slice or buffer is not supported here by the static path of #[differentiable] yet; write a loop over its indices (`for i in 0..x.len()`) or elements (`for v in x.iter()`)")),
            };
        }
        if name == "clone" && m.args.is_empty() {
            return recv;
        }
        match MathFn::from_name(&name) {
            Some(f) => {
                if m.args.len() + 1 != f.arity() {
                    let s = if f.arity() == 2 { "" } else { "s" };
                    return self.error(
                        &m.method,
                        format!("`{name}` takes {} argument{s}", f.arity() - 1),
                    );
                }
                let mut args = vec![recv];
                for a in &m.args {
                    let want = if f == MathFn::Powi {
                        Some(Ty::Int)
                    } else {
                        Some(recv_ty)
                    };
                    args.push(self.expr(a, want));
                }
                self.push(Op::Math(f, args), recv_ty, m.method.span())
            }
            None => {
                let msg = format!(
                    "method `{name}` is not supported by the static path of #[differentiable]; the float methods it differentiates are {}, plus `detach`",
                    supported_list()
                );
                // The tape is advised only for the methods it has, and for methods of
                // values that are not floats (`v.push(x)` on a `Vec::new()`), which it
                // runs as written.
                if !matches!(recv_ty, Ty::Float(_)) {
                    if let Some(v) = self.constant_expr(&Expr::MethodCall(m.clone())) {
                        return v;
                    }
                    self.not_yet(&m.method, format!("method `{name}` of this value is not supported by the static path of #[differentiable]"))
                } else if TAPE_SCALAR_METHODS.contains(&name.as_str()) {
                    self.not_yet(&m.method, msg)
                } else {
                    self.error(&m.method, format!("{msg} (the tape has the same ones)"))
                }
            }
        }
    }

    /// A method of a tensor: products, layout, reductions, elementwise functions.
    fn tensor_method(&mut self, m: &syn::ExprMethodCall, recv: Id, ft: FloatTy) -> Id {
        let name = m.method.to_string();
        let span = m.method.span();
        let tensor = Ty::Tensor(ft);
        let scalar = Ty::Float(ft);
        let n_args = m.args.len();
        let want = |n: usize, lw: &mut Self| -> bool {
            if n_args == n {
                return true;
            }
            let s = if n == 1 { "" } else { "s" };
            lw.error(&m.method, format!("`Tensor::{name}` takes {n} argument{s}"));
            false
        };
        let reduction = match name.as_str() {
            "sum" => Some(Reduction::Sum),
            "mean" => Some(Reduction::Mean),
            "norm" => Some(Reduction::Norm),
            "max" => Some(Reduction::Max),
            "min" => Some(Reduction::Min),
            _ => None,
        };
        match name.as_str() {
            // A value, not a place: a copy is the same value.
            "clone" | "to_owned" if n_args == 0 => recv,
            "matmul" | "dot" => {
                if !want(1, self) {
                    return self.push(Op::Error, tensor, span);
                }
                let other = self.expr(&m.args[0], Some(tensor));
                if !matches!(self.func.node(other).ty, Ty::Tensor(_)) {
                    if self.refused(other) {
                        return other;
                    }
                    return self.error(
                        &m.args[0],
                        format!("the argument of `Tensor::{name}` must be a tensor"),
                    );
                }
                if name == "matmul" {
                    self.push(Op::MatMul(recv, other), tensor, span)
                } else {
                    self.push(Op::Dot(recv, other), scalar, span)
                }
            }
            "t" | "reshape" | "sum_axis" | "mean_axis" | "max_axis" | "min_axis"
                if !want(if name == "t" { 0 } else { 1 }, self) =>
            {
                self.push(Op::Error, tensor, span)
            }
            "t" => self.push(Op::Transpose(recv), tensor, span),
            "reshape" => {
                let mut arg = &m.args[0];
                if let Expr::Reference(r) = arg {
                    arg = &r.expr;
                }
                let Expr::Array(dims) = arg else {
                    return self.error(&m.args[0], "write the shape of `reshape` as a list of extents, as in `t.reshape(&[n, 3])`");
                };
                let dims = dims
                    .elems
                    .iter()
                    .map(|d| self.expr(d, Some(Ty::Int)))
                    .collect();
                self.push(Op::Reshape(recv, dims), tensor, span)
            }
            "sum_axis" | "mean_axis" | "max_axis" | "min_axis" => {
                let k = self.expr(&m.args[0], Some(Ty::Int));
                let r = match name.as_str() {
                    "sum_axis" => Reduction::Sum,
                    "mean_axis" => Reduction::Mean,
                    "max_axis" => Reduction::Max,
                    _ => Reduction::Min,
                };
                self.push(Op::ReduceAxis(r, recv, k), tensor, span)
            }
            // Elementwise with another tensor, broadcasting as the operators do.
            "atan2" | "hypot" | "maximum" | "minimum" => {
                if !want(1, self) {
                    return self.push(Op::Error, tensor, span);
                }
                let other = self.expr(&m.args[0], Some(tensor));
                if !matches!(self.func.node(other).ty, Ty::Tensor(_)) {
                    if self.refused(other) {
                        return other;
                    }
                    return self.error(&m.args[0], format!("the argument of `Tensor::{name}` must be a tensor (`Tensor::scalar(c)` for a constant)"));
                }
                let f = match name.as_str() {
                    "atan2" => MathFn::Atan2,
                    "hypot" => MathFn::Hypot,
                    "maximum" => MathFn::Max,
                    _ => MathFn::Min,
                };
                self.push(Op::Math(f, vec![recv, other]), tensor, span)
            }
            _ if reduction.is_some() && n_args == 0 => {
                let r = reduction.unwrap_or(Reduction::Sum);
                self.push(Op::Reduce(r, recv), scalar, span)
            }
            _ => match MathFn::from_name(&name).filter(|f| TENSOR_FNS.contains(f)) {
                Some(f) => {
                    if !want(f.arity() - 1, self) {
                        return self.push(Op::Error, tensor, span);
                    }
                    let mut args = vec![recv];
                    for a in &m.args {
                        let kind = if f == MathFn::Powi { Ty::Int } else { scalar };
                        let id = self.expr(a, Some(kind));
                        if matches!(self.func.node(id).ty, Ty::Tensor(_)) {
                            if self.refused(id) {
                                return id;
                            }
                            return self.error(
                                a,
                                format!("the argument of `Tensor::{name}` must be a scalar"),
                            );
                        }
                        args.push(id);
                    }
                    self.push(Op::Math(f, args), tensor, span)
                }
                None => {
                    let fns = TENSOR_FNS
                        .iter()
                        .map(|f| format!("`{}`", f.name()))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let msg = format!(
                        "method `{name}` of a tensor is not supported by the static path of #[differentiable]; it differentiates `matmul`, `dot`, `t`, `reshape`, `sum`, `mean`, `norm`, `max`, `min`, `sum_axis`, `mean_axis`, `max_axis`, `min_axis`, `maximum`, `minimum`, `atan2`, `hypot`, `detach` and {fns}"
                    );
                    // The tape is advised only for the methods it has.
                    if TAPE_TENSOR_METHODS.contains(&name.as_str()) {
                        self.cx.not_yet_spanned_by(&m.method, msg);
                    } else {
                        self.cx.error_spanned_by(&m.method, msg);
                    }
                    // Taken for a tensor, so that a method called on it is not
                    // reported as well.
                    self.push(Op::Error, tensor, span)
                }
            },
        }
    }

    fn call(&mut self, c: &syn::ExprCall, expect: Option<Ty>, trusted: bool) -> Id {
        if let Expr::Path(p) = &*c.func {
            if let Some(ident) = p.path.get_ident() {
                let closure = self
                    .lookup(&ident.to_string())
                    .and_then(|i| self.env[i].closure.clone());
                if let Some(closure) = closure {
                    if closure.inputs.len() != c.args.len() {
                        return self.error(
                            c,
                            format!("`{ident}` takes {} argument(s)", closure.inputs.len()),
                        );
                    }
                    let args: Vec<Vec<Id>> =
                        c.args.iter().map(|a| vec![self.expr(a, None)]).collect();
                    return self.inline_closure(&closure, &args);
                }
            }
        }
        let path = match &*c.func {
            Expr::Path(p) if p.qself.is_none() => &p.path,
            other => {
                return self.not_yet(other, "only calls of named functions are supported by the static path of #[differentiable]");
            }
        };
        // `f64::sin(x)`, `f32::max(a, b)`: the method form.
        if path.segments.len() == 2 {
            let first = path.segments[0].ident.to_string();
            let method = &path.segments[1].ident;
            if first == "f32" || first == "f64" {
                let ft = if first == "f32" {
                    FloatTy::F32
                } else {
                    FloatTy::F64
                };
                let f = match MathFn::from_name(&method.to_string()) {
                    Some(f) if !f.is_ext() => f,
                    _ => {
                        return self.error(method, format!("`{first}::{method}` is not supported by the static path of #[differentiable]; the float functions it differentiates are {}", supported_list()));
                    }
                };
                if c.args.len() != f.arity() {
                    return self.error(
                        c,
                        format!("`{first}::{method}` takes {} argument(s)", f.arity()),
                    );
                }
                let mut args = Vec::new();
                for (i, a) in c.args.iter().enumerate() {
                    let want = if f == MathFn::Powi && i == 1 {
                        Ty::Int
                    } else {
                        Ty::Float(ft)
                    };
                    args.push(self.expr(a, Some(want)));
                }
                return self.push(Op::Math(f, args), Ty::Float(ft), method.span());
            }
        }
        // `usize::min(n, 3)`: an integer function, a constant of the adjoint.
        const INTS: &[&str] = &[
            "usize", "isize", "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128",
        ];
        if path.segments.len() == 2 && INTS.contains(&path.segments[0].ident.to_string().as_str()) {
            let args: Vec<Id> = c.args.iter().map(|a| self.expr(a, Some(Ty::Int))).collect();
            if let Some(&bad) = args
                .iter()
                .find(|&&a| self.func.node(a).ty.is_differentiable())
            {
                let span = self.func.node(bad).span;
                self.cx.error_at(span, "an integer function takes integers");
            }
            let idx = self.func.paths.len() as u32;
            self.func.paths.push(path.clone());
            self.func.arg_refs.push(vec![false; args.len()]);
            return self.push(
                Op::Call {
                    path: idx,
                    args,
                    vjp: false,
                },
                Ty::Int,
                c.span(),
            );
        }
        if let Some(ft) = tensor_constructor(path, self.sig.float) {
            return self.tensor_constant(c, ft);
        }
        // `Vec::from(..)`, ...; `Vec::new()` and `Vec::with_capacity(n)` bound by a
        // `let` are a `Vec` that grows (`local`).
        if path.segments.len() == 2 && path.segments[0].ident == "Vec" {
            return self.not_yet(c, "this `Vec` constructor is not supported here by the static path of #[differentiable]; bind `Vec::new()`, `Vec::with_capacity(n)` or `vec![0.0; n]` to a local and write it (`v.push(x)`, `v[i] = x`)");
        }
        if path.segments.iter().any(|s| !s.arguments.is_none()) {
            return self.error(path, "generic arguments on a called function are not supported by the static path of #[differentiable]");
        }
        if has_mut_arg(c) {
            return self.mut_call(c, path, expect);
        }
        if let Some(a) = c.args.iter().find(|a| self.is_mut_param(a)) {
            let name = a.to_token_stream().to_string();
            return self.error(a, format!("pass the `&mut` parameter `{name}` on as `&mut {name}[..]` (a slice) or `&mut *{name}` (a scalar), so that the call is seen to write it"));
        }
        let args: Vec<Id> = c.args.iter().map(|a| self.call_arg(a)).collect();
        let idx = self.callee(path, c);
        let span = c.span();
        let tensor_args = args
            .iter()
            .any(|a| matches!(self.func.node(*a).ty, Ty::Tensor(_)));
        // The callee's result kind: declared by the caller, or a scalar when no tensor
        // is involved; otherwise only a type annotation can tell.
        let ty = match expect {
            Some(t @ (Ty::Float(_) | Ty::Tensor(_))) if trusted => t,
            Some(t @ Ty::Float(_)) if !tensor_args => t,
            _ if !tensor_args => Ty::Float(self.sig.float),
            _ => {
                let callee = path.to_token_stream().to_string().replace(' ', "");
                self.cx.not_yet_at(span, format!(
                    "the static path of #[differentiable] cannot tell whether `{callee}(..)` returns a scalar or a tensor; bind the result with its type, as in `let y: Tensor = {callee}(..);` or `let y: f64 = {callee}(..);`"
                ));
                return self.push(Op::Error, Ty::Opaque, span);
            }
        };
        if let Ty::Tensor(_) = ty {
            if let Some((_, &m)) = args
                .iter()
                .enumerate()
                .find(|&(k, &a)| !self.holds_in_reverse(c, k, a))
            {
                let at = self.func.node(m).span;
                self.cx.not_yet_at(at, "a call with a tensor result and a local buffer argument (or one made in a branch or loop) is not supported by the static path of #[differentiable] yet; pass a parameter, a temporary (`&[a, b]`) at the top of the body, or the elements as floats");
            }
            // The reverse sweep calls `NAME_vjp` with the result's adjoint as the seed.
            return self.push(
                Op::Call {
                    path: idx,
                    args,
                    vjp: false,
                },
                ty,
                span,
            );
        }
        let call = self.push(
            Op::Call {
                path: idx,
                args: args.clone(),
                vjp: false,
            },
            ty,
            span,
        );
        // One partial per float argument, read from `NAME_vjp`'s gradients; the simplifier
        // drops the unused ones and turns the call into a plain call when none is left.
        let floats: Vec<Ty> = args
            .iter()
            .map(|a| self.func.node(*a).ty)
            .filter(|t| matches!(t, Ty::Float(_) | Ty::Tensor(_)) || t.is_memory())
            .collect();
        let of = floats.len() as u32;
        for (index, t) in floats.into_iter().enumerate() {
            self.push(
                Op::CallGrad {
                    call,
                    index: index as u32,
                    of,
                },
                t,
                span,
            );
        }
        call
    }

    /// Whether argument `k` of `c`, lowered to `a`, still holds in the reverse sweep
    /// what the call read, so that `NAME_vjp` can be called there with it (calls with
    /// a tensor, tuple or memory result): a float, or memory that nothing writes
    /// after the call, that is a slice, `Vec` or array parameter (a local buffer may
    /// be written after the call, and a view or buffer made in a branch would have to
    /// leave it: found by the random-program tester, seed 23). A parameter passed by
    /// value is copied. At the top of the body, a view of a parameter and a temporary
    /// (an array literal, `vec![..]`, a `to_vec()`: nothing can write it) hold too.
    pub(crate) fn holds_in_reverse(&self, c: &syn::ExprCall, k: usize, a: Id) -> bool {
        let top = self.regions.len() == 1;
        let param = |id: Id| matches!(self.func.node(id).op, Op::Param(k) if !self.sig.params[k as usize].mutable);
        let node = self.func.node(a);
        !node.ty.is_memory()
            || param(a)
            || (top
                && match node.op {
                    Op::View(b, ..) => param(b),
                    _ => c.args.iter().nth(k).is_some_and(is_temporary),
                })
    }

    /// Whether `e` names a `&mut f64` parameter (or `f32`).
    fn mut_scalar_param(&self, e: &Expr) -> bool {
        self.mut_param(e)
            .is_some_and(|k| !self.sig.params[k].kind.is_memory())
    }

    /// Whether `e` is a bare `&mut` parameter (passing it on needs `&mut` written).
    fn is_mut_param(&self, e: &Expr) -> bool {
        self.mut_param(e).is_some()
    }

    /// The index of the `&mut` parameter that the path `e` names, if it does (and no
    /// local shadows it).
    fn mut_param(&self, e: &Expr) -> Option<usize> {
        let Expr::Path(p) = e else { return None };
        let name = p.path.get_ident()?.to_string();
        let k = self.lookup(&name)?;
        (k < self.sig.params.len() && self.sig.params[k].mutable).then_some(k)
    }

    /// A call with `&mut` arguments (issue 11): `g(&x, &mut buf)`, `g(&mut buf[a..b])`,
    /// `g(x, &mut s)`. Memory passed `&mut` is written in place; a scalar `s` gets the
    /// value the callee leaves in it. Each local buffer passed is copied first (a
    /// [`Op::Snapshot`]): the reverse sweep hands those values to `g_vjp`. `expect` is
    /// `Ty::Unit` when the result is not used.
    fn mut_call(&mut self, c: &syn::ExprCall, path: &syn::Path, expect: Option<Ty>) -> Id {
        let span = c.span();
        let (mut args, mut muts, mut places) = (Vec::new(), Vec::new(), Vec::new());
        for a in &c.args {
            let mut_ref = match a {
                Expr::Reference(r) if r.mutability.is_some() => Some(r),
                _ => None,
            };
            let id = match mut_ref {
                // `&mut buf[a..b]`: a view, as `&buf[a..b]` is.
                Some(r) if matches!(&*r.expr, Expr::Index(ix) if matches!(&*ix.index, Expr::Range(_))) => {
                    self.call_arg(a)
                }
                Some(r) => self.expr(&r.expr, None),
                None => self.call_arg(a),
            };
            let ty = self.func.node(id).ty;
            if matches!(self.func.node(id).op, Op::Error) {
                return id;
            }
            let base = match self.func.node(id).op {
                Op::View(b, _, _) => b,
                _ => id,
            };
            match (mut_ref, ty) {
                (Some(_), _)
                    if ty.is_memory() && !matches!(self.func.node(base).ty, Ty::Buf(_)) =>
                {
                    return self.error(a, "only a local buffer (`vec![..]`, `[x; N]`) or a `&mut` parameter can be passed `&mut` on the static path of #[differentiable]");
                }
                (Some(_), _) if ty.is_memory() => {}
                (Some(r), Ty::Float(_)) => {
                    let place = match &*r.expr {
                        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => &*u.expr,
                        e => e,
                    };
                    let local = matches!(place, Expr::Path(p) if p.path.get_ident().is_some_and(|i| self.lookup(&i.to_string()).is_some()));
                    if !local {
                        return self.error(a, "only a local variable or a `&mut` parameter can be passed as `&mut` scalar on the static path of #[differentiable]");
                    }
                    places.push((args.len(), place.clone()));
                }
                (Some(_), _) => {
                    return self.error(a, "a `&mut` argument is a float, a local buffer of floats or a sub-slice of one (`&mut buf[a..b]`) on the static path of #[differentiable]");
                }
                (None, Ty::Tensor(_)) => {
                    return self.error(a, "a call with `&mut` arguments takes floats, slices and local buffers on the static path of #[differentiable], not tensors");
                }
                // A `&[f64]` parameter is a reference already; other memory would move.
                (None, t)
                    if t.is_memory()
                        && !matches!(a, Expr::Reference(_))
                        && !matches!(self.func.node(base).op, Op::Param(k) if self.sig.params[k as usize].by_ref) =>
                {
                    return self.error(a, "in a call with `&mut` arguments, pass memory by reference (`&x`, `&x[a..b]`): the reverse sweep passes it again");
                }
                _ => {}
            }
            args.push(id);
            muts.push(mut_ref.is_some());
        }
        // The values the reverse sweep needs, taken before the call writes anything.
        for &a in &args {
            let base = match self.func.node(a).op {
                Op::View(b, _, _) => b,
                _ => a,
            };
            if let Ty::Buf(ft) = self.func.node(base).ty {
                self.push(Op::Snapshot(a), Ty::Buf(ft), self.func.node(a).span);
            }
        }
        let idx = self.callee(path, c);
        let ty = match expect {
            Some(Ty::Unit) => Ty::Opaque,
            Some(t @ Ty::Float(_)) => t,
            Some(Ty::Tensor(_) | Ty::Slice(_) | Ty::Buf(_)) => {
                return self.error(c, "a call with `&mut` arguments returns a float or nothing on the static path of #[differentiable]; write its other results into `&mut` parameters");
            }
            _ => Ty::Float(self.sig.float),
        };
        let call = self.push(
            Op::MutCall {
                path: idx,
                args: args.clone(),
                muts,
            },
            ty,
            span,
        );
        for (k, place) in places {
            let t = self.func.node(args[k]).ty;
            let out = self.push(Op::MutOut(call, k as u32), t, span);
            self.assign(&place, out);
        }
        call
    }

    fn cast(&mut self, c: &syn::ExprCast) -> Id {
        let target = match parse::classify(&c.ty) {
            Some((t @ (Ty::Float(_) | Ty::Int), false)) => t,
            _ => return self.error(&c.ty, "only casts to float and integer types are supported by the static path of #[differentiable]"),
        };
        let a = self.expr(&c.expr, None);
        let ty = self.func.opaque.len() as u32;
        self.func.opaque.push(c.ty.to_token_stream());
        self.push(Op::Cast(a, ty), target, c.span())
    }

    /// The buffer and index of `b[i]`, where `b` is a slice parameter or a buffer.
    fn place(&mut self, ix: &syn::ExprIndex) -> Option<(Id, Id)> {
        if matches!(&*ix.index, Expr::Range(_)) {
            self.not_yet(
                ix,
                "sub-slices are not supported here by the static path of #[differentiable] yet",
            );
            return None;
        }
        let buf = match self.indexed_call(&ix.expr) {
            Some(b) => b,
            None => self.expr(&ix.expr, None),
        };
        if !self.func.node(buf).ty.is_memory() {
            if !self.refused(buf) {
                self.not_yet(&ix.expr, "only slices, `Vec`s and arrays of floats can be indexed on the static path of #[differentiable]");
            }
            return None;
        }
        let i = self.expr(&ix.index, Some(Ty::Int));
        Some(self.through_view(buf, i, ix.span()))
    }

    /// `v[i]` of a view `v = &b[lo..]` is `b[lo + i]`.
    fn through_view(&mut self, buf: Id, i: Id, span: Span) -> (Id, Id) {
        match self.func.node(buf).op {
            Op::View(b, lo, _) => {
                let at = self.push(Op::Binary(BinOp::Add, lo, i), Ty::Int, span);
                (b, at)
            }
            _ => (buf, i),
        }
    }

    /// The methods of memory that copy or write it, lowered as the loops they are:
    /// `fill`, `swap`, `copy_from_slice` (statements) and `to_vec`, `to_owned`,
    /// `clone` (a new `Vec`). `None` for the other methods.
    fn memory_method(&mut self, m: &syn::ExprMethodCall, recv: Id) -> Option<Id> {
        let name = m.method.to_string();
        let span = m.span();
        let ft = self.func.node(recv).ty.float().unwrap_or(self.sig.float);
        let b = &m.receiver;
        let unit = |lw: &mut Self| lw.opaque(quote::quote!(()), Ty::Opaque, span);
        let is_array = match self.func.node(recv).op {
            Op::Param(k) => matches!(
                parse::strip_ref(&self.sig.params[k as usize].ty),
                syn::Type::Array(_)
            ),
            Op::Alloc { array, .. } | Op::Elems(_, array) => array,
            _ => false,
        };
        let by_ref_param =
            matches!(self.func.node(recv).op, Op::Param(k) if self.sig.params[k as usize].by_ref);
        let code: syn::Expr = match (name.as_str(), m.args.len()) {
            ("fill", 1) => {
                let v = &m.args[0];
                syn::parse_quote!({
                    let __ad_fill = #v;
                    for __ad_k in 0..#b.len() {
                        #b[__ad_k] = __ad_fill;
                    }
                })
            }
            ("swap", 2) => {
                let (i, j) = (&m.args[0], &m.args[1]);
                syn::parse_quote!({
                    let __ad_i = #i;
                    let __ad_j = #j;
                    let __ad_a = #b[__ad_i];
                    let __ad_b = #b[__ad_j];
                    #b[__ad_i] = __ad_b;
                    #b[__ad_j] = __ad_a;
                })
            }
            ("copy_from_slice", 1) => {
                let src = match &m.args[0] {
                    Expr::Reference(r) => &*r.expr,
                    e => e,
                };
                syn::parse_quote!({
                    assert_eq!(#b.len(), #src.len(), "copy_from_slice: the lengths differ");
                    for __ad_k in 0..#b.len() {
                        #b[__ad_k] = #src[__ad_k];
                    }
                })
            }
            // A copy into a new `Vec` (`clone` of a `&[f64]` parameter copies the
            // reference: the same memory, read only).
            ("clone", 0) if by_ref_param && !is_array => return Some(recv),
            ("to_vec" | "to_owned" | "clone", 0) => {
                let init = self.push(Op::Const(0.0), Ty::Float(ft), span);
                // `clone` of an array is an array of the same length, known to rustc.
                let array = is_array && name != "to_vec";
                let len = match self.func.node(recv).op.clone() {
                    _ if !array => self.len_of(recv, span),
                    Op::Elems(items, _) => self.int_lit(items.len(), span),
                    Op::Alloc { len, .. } => len,
                    Op::Param(k) => match parse::strip_ref(&self.sig.params[k as usize].ty) {
                        syn::Type::Array(a) => self.opaque(a.len.to_token_stream(), Ty::Int, span),
                        _ => return None,
                    },
                    _ => return None,
                };
                let c = self.alloc(init, len, array, span);
                let scope = self.env.len();
                self.env.push(Slot {
                    name: "__ad_copy".into(),
                    id: Some(c),
                    closure: None,
                });
                self.env.push(Slot {
                    name: "__ad_src".into(),
                    id: Some(recv),
                    closure: None,
                });
                let copy: syn::Expr = syn::parse_quote!(for __ad_k in 0..__ad_src.len() {
                    __ad_copy[__ad_k] = __ad_src[__ad_k];
                });
                self.expr_or_unit(&copy, None);
                self.env.truncate(scope);
                return Some(c);
            }
            _ => return None,
        };
        self.expr_or_unit(&code, None);
        Some(unit(self))
    }

    /// `x.len()`, of a view too, and of a `Vec` that grows (its length variable).
    fn len_of(&mut self, x: Id, span: Span) -> Id {
        if let Some(len) = self.lookup(&length_name(x)).and_then(|i| self.env[i].id) {
            return len;
        }
        match self.func.node(x).op {
            Op::View(b, lo, hi) => {
                let hi = match hi {
                    Some(h) => h,
                    None => self.push(Op::Len(b), Ty::Int, span),
                };
                self.push(Op::Binary(BinOp::Sub, hi, lo), Ty::Int, span)
            }
            _ => self.push(Op::Len(x), Ty::Int, span),
        }
    }

    /// `x[i]` as a value.
    fn load(&mut self, x: Id, i: Id, span: Span) -> Id {
        let ft = self.func.node(x).ty.float().unwrap_or(self.sig.float);
        let (b, i) = self.through_view(x, i, span);
        self.push(Op::Load(b, i), Ty::Float(ft), span)
    }

    /// A call argument: a value, or a view `&b[lo..hi]` of a slice or buffer.
    fn call_arg(&mut self, a: &Expr) -> Id {
        // `&mut b[lo..hi]` too: a call that writes it says so separately (`mut_call`).
        if let Expr::Reference(r) = a {
            if let Expr::Index(ix) = &*r.expr {
                if let Expr::Range(range) = &*ix.index {
                    return self.sub_slice(ix, range);
                }
            }
        }
        self.expr(a, None)
    }

    /// `b[lo..hi]` (`&b[lo..]`, `&b[..=hi]`, ...): a read-only view of a slice or
    /// buffer, read through (`v[i]` is `b[lo + i]`).
    fn sub_slice(&mut self, ix: &syn::ExprIndex, range: &syn::ExprRange) -> Id {
        let buf = self.expr(&ix.expr, None);
        if !self.func.node(buf).ty.is_memory() {
            if self.refused(buf) {
                return buf;
            }
            return self.not_yet(&ix.expr, "only slices, `Vec`s and arrays of floats have sub-slices on the static path of #[differentiable]");
        }
        let span = ix.span();
        let lo = match &range.start {
            Some(e) => self.expr(e, Some(Ty::Int)),
            None => self.opaque(quote::quote!(0), Ty::Int, span),
        };
        let hi = match &range.end {
            Some(e) => {
                let h = self.expr(e, Some(Ty::Int));
                Some(match range.limits {
                    syn::RangeLimits::Closed(_) => {
                        let one = self.opaque(quote::quote!(1), Ty::Int, span);
                        self.push(Op::Binary(BinOp::Add, h, one), Ty::Int, span)
                    }
                    syn::RangeLimits::HalfOpen(_) => h,
                })
            }
            None => None,
        };
        self.view(buf, lo, hi, span)
    }

    /// The view `buf[lo..hi]`; a view of a view is one view of the memory under it.
    fn view(&mut self, buf: Id, lo: Id, hi: Option<Id>, span: Span) -> Id {
        let ft = self.func.node(buf).ty.float().unwrap_or(self.sig.float);
        let (base, lo, hi) = match self.func.node(buf).op {
            Op::View(b, lo0, hi0) => {
                let lo1 = self.push(Op::Binary(BinOp::Add, lo0, lo), Ty::Int, span);
                let hi1 = match hi {
                    Some(h) => Some(self.push(Op::Binary(BinOp::Add, lo0, h), Ty::Int, span)),
                    None => hi0,
                };
                (b, lo1, hi1)
            }
            _ => (buf, lo, hi),
        };
        self.push(Op::View(base, lo, hi), Ty::Slice(ft), span)
    }

    /// Whether `b` is a local buffer (parameters are read only).
    fn writable(&mut self, buf: Id, place: &syn::ExprIndex) -> bool {
        if matches!(self.func.node(buf).ty, Ty::Buf(_)) {
            return true;
        }
        self.not_yet(place, "a parameter cannot be written on the static path of #[differentiable]; copy it into a local buffer first");
        false
    }

    fn elems(&mut self, items: Vec<Id>, array: bool, span: Span) -> Id {
        let ft = items
            .iter()
            .find_map(|&a| self.func.node(a).ty.float())
            .unwrap_or(self.sig.float);
        if let Some(&bad) = items
            .iter()
            .find(|&&a| !matches!(self.func.node(a).ty, Ty::Float(_) | Ty::Opaque))
        {
            let span = self.func.node(bad).span;
            self.cx.not_yet_at(span, "the elements of a local array or `Vec` must be floats on the static path of #[differentiable]");
        }
        self.push(Op::Elems(items, array), Ty::Buf(ft), span)
    }

    fn alloc(&mut self, init: Id, len: Id, array: bool, span: Span) -> Id {
        let ft = match self.func.node(init).ty {
            Ty::Float(ft) => ft,
            Ty::Opaque => self.sig.float,
            _ => {
                self.cx.not_yet_at(span, "the elements of a local array or `Vec` must be floats on the static path of #[differentiable]");
                self.sig.float
            }
        };
        self.push(Op::Alloc { len, init, array }, Ty::Buf(ft), span)
    }

    /// `println!(..)`, `assert!(..)` and the like: run in the forward sweep, with the
    /// variables they name bound to their values; they change no gradient.
    fn debug_macro(&mut self, mac: &syn::Macro) {
        let mut seen: Vec<String> = Vec::new();
        let (mut args, mut names) = (Vec::new(), Vec::new());
        let mut idents = Vec::new();
        collect_idents(mac.tokens.clone(), &mut idents);
        for ident in idents {
            let name = ident.to_string();
            if seen.contains(&name) {
                continue;
            }
            if let Some(i) = self.lookup(&name) {
                if let Some(id) = self.env[i].id {
                    seen.push(name);
                    args.push(id);
                    let n = self.func.opaque.len() as u32;
                    self.func.opaque.push(ident.to_token_stream());
                    names.push(n);
                }
            }
        }
        let m = self.func.opaque.len() as u32;
        self.func.opaque.push(mac.to_token_stream());
        self.push(
            Op::Effect {
                mac: m,
                args,
                names,
            },
            Ty::Unit,
            mac.span(),
        );
    }

    /// `vec![x; n]` and `vec![a, b, ..]`.
    fn vec_macro(&mut self, mac: &syn::Macro, expect: Option<Ty>) -> Id {
        let elem = expect.and_then(Ty::float).map(Ty::Float);
        if let Ok(r) = mac.parse_body_with(|input: syn::parse::ParseStream| {
            let e: Expr = input.parse()?;
            input.parse::<syn::Token![;]>()?;
            let n: Expr = input.parse()?;
            Ok((e, n))
        }) {
            let init = self.expr(&r.0, elem);
            let len = self.expr(&r.1, Some(Ty::Int));
            return self.alloc(init, len, false, mac.span());
        }
        match mac
            .parse_body_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        {
            Ok(items) => {
                let items = items.iter().map(|e| self.expr(e, elem)).collect();
                self.elems(items, false, mac.span())
            }
            Err(e) => {
                self.cx.syn_error(e);
                self.push(Op::Error, Ty::Opaque, mac.span())
            }
        }
    }

    /// Lowers `for pat in iter { body }` into an [`Op::For`]: the index is the body's
    /// first argument, then every outer variable the body assigns is carried.
    fn for_loop(&mut self, f: &syn::ExprForLoop) {
        if let Some(l) = &f.label {
            self.not_yet(
                l,
                "loop labels are not supported by the static path of #[differentiable] yet",
            );
            return;
        }
        let span = f.for_token.span;
        // The range, and the slice whose elements the pattern binds (if any), or a
        // stream of items for an iterator chain.
        let (header, items) = if chains::is_chain(&f.expr) {
            let Some(s) = self.stream(&f.expr) else {
                return;
            };
            let header = Header {
                lo: s.lo,
                hi: s.hi,
                inclusive: false,
                step: s.step,
                rev: s.rev,
                elems: None,
            };
            (header, Some(s.items))
        } else {
            let Some(header) = self.loop_header(&f.expr) else {
                return;
            };
            (header, None)
        };
        self.loop_(header, Walk::Pattern(&f.pat, items), None, &f.body, span);
    }

    /// `while cond { body }` and `loop { body }`: a loop over `0..usize::MAX` that
    /// stops when its exit condition turns false.
    fn while_loop(
        &mut self,
        label: Option<&syn::Label>,
        cond: Option<&Expr>,
        body: &syn::Block,
        span: Span,
    ) {
        if let Some(l) = label {
            self.not_yet(
                l,
                "loop labels are not supported by the static path of #[differentiable] yet",
            );
            return;
        }
        if let Some(Expr::Let(l)) = cond {
            self.not_yet(l, "`while let` is not supported by the static path of #[differentiable]; write a `while` over a condition, or a `for` loop");
            return;
        }
        let lo = self.int_lit(0, span);
        let hi = self.opaque(quote::quote!(usize::MAX), Ty::Int, span);
        let header = Header {
            lo,
            hi,
            inclusive: false,
            step: None,
            rev: false,
            elems: None,
        };
        self.loop_(header, Walk::Count, cond, body, span);
    }

    /// Lowers a loop into an [`Op::For`]: the index is the body's first argument, the
    /// outer variables the body assigns are carried. A body that starts with
    /// `if c { break; }` (what [`exits`] writes for `break`, `continue` and `return`),
    /// and a `while` condition, become the loop's exit: a carried `bool`, computed
    /// before the loop and at the end of each iteration, that must hold for the next
    /// iteration to run.
    fn loop_(
        &mut self,
        header: Header,
        walk: Walk<'_>,
        cond: Option<&Expr>,
        block: &syn::Block,
        span: Span,
    ) {
        let (stop, stmts) = match block.stmts.split_first() {
            Some((first, rest)) => match exit_check(first) {
                Some(c) => (Some(c), rest),
                None => (None, &block.stmts[..]),
            },
            None => (None, &block.stmts[..]),
        };
        let go: Option<Expr> = match (stop, cond) {
            (Some(c), Some(w)) => Some(syn::parse_quote_spanned!(span=> !(#c) && (#w))),
            (Some(c), None) => Some(syn::parse_quote_spanned!(span=> !(#c))),
            (None, Some(w)) => Some(w.clone()),
            (None, None) => None,
        };
        if go.is_none() && matches!(walk, Walk::Count) {
            self.error(block, "this `loop` never ends: give it a `break`");
            return;
        }
        let body = syn::Block {
            brace_token: block.brace_token,
            stmts: stmts.to_vec(),
        };
        // The outer variables the body assigns: carried.
        let mut names = Vec::new();
        assigned_in_block(&body, &mut names);
        let mut slots: Vec<usize> = Vec::new();
        for n in &names {
            // `v.push(x)` assigns the length of `v`.
            let grown;
            let n = match n.strip_prefix("push ") {
                Some(v) => match self.lookup(v).and_then(|i| self.env[i].id) {
                    Some(buf) => {
                        grown = length_name(buf);
                        &grown
                    }
                    None => continue,
                },
                None => n,
            };
            // `g(&mut x)` assigns `x` only when it is a scalar: memory is written in place.
            let (n, by_call) = match n.strip_prefix("&mut ") {
                Some(n) => (n, true),
                None => (n.as_str(), false),
            };
            // A tuple variable: its elements are carried.
            if let Some(leaves) = self.tuple_leaves(n) {
                for i in leaves {
                    if self.env[i].id.is_some() && !slots.contains(&i) {
                        slots.push(i);
                    }
                }
                continue;
            }
            if let Some(i) = self.lookup(n) {
                let memory = self.env[i]
                    .id
                    .is_some_and(|id| self.func.node(id).ty.is_memory());
                if by_call && memory {
                    continue;
                }
                if self.env[i].id.is_some() && !slots.contains(&i) {
                    slots.push(i);
                }
            }
        }
        slots.sort_unstable();
        let mut inits = Vec::new();
        for &i in &slots {
            let id = self.env[i].id.unwrap_or(Id(0));
            let ty = self.func.node(id).ty;
            if !matches!(ty, Ty::Float(_) | Ty::Int | Ty::Bool | Ty::Tensor(_)) {
                let name = self.env[i].name.clone();
                self.not_yet(&body, format!("`{name}` is assigned inside a loop; the static path of #[differentiable] carries scalars and tensors through loops, not this value"));
                return;
            }
            inits.push(id);
        }
        // The exit condition on the initial values.
        let exit = match &go {
            Some(g) => {
                let first = self.condition(g);
                inits.push(first);
                Some(slots.len() as u32)
            }
            None => None,
        };
        let index = self.push_arg(0, Ty::Int, span);
        let args: Vec<Id> = inits
            .iter()
            .enumerate()
            .map(|(k, &init)| {
                let ty = self.func.node(init).ty;
                let a = self.push_arg(k as u32 + 1, ty, span);
                if let Some(&slot) = slots.get(k) {
                    self.func.nodes[a.idx()].hint = Some(self.env[slot].name.clone());
                }
                a
            })
            .collect();
        for (&slot, &a) in slots.iter().zip(&args) {
            self.env[slot].id = Some(a);
        }
        self.regions.push(Vec::new());
        // A carried tensor's shape, as for every tensor value (the reverse sweep shapes
        // its adjoints from it, saved per iteration if the shape is read).
        for &a in &args {
            if matches!(self.func.node(a).ty, Ty::Tensor(_)) {
                self.push_one(Op::ShapeOf(a), Ty::Opaque, span);
            }
        }
        let scope = self.env.len();
        match walk {
            Walk::Pattern(pat, Some(items)) => {
                let vals = items(self, index);
                self.bind_values(pat, &vals);
            }
            Walk::Pattern(pat, None) => self.bind_loop_pattern(pat, index, header.elems),
            Walk::Count => {}
        }
        self.block(&body, None);
        self.env.truncate(scope);
        let mut yields: Vec<Id> = slots
            .iter()
            .map(|&i| self.env[i].id.unwrap_or(Id(0)))
            .collect();
        // The exit condition on the next values.
        if let Some(g) = &go {
            let next = self.condition(g);
            yields.push(next);
        }
        let nodes = self.regions.pop().unwrap_or_default();
        let body = Region {
            args: std::iter::once(index).chain(args.iter().copied()).collect(),
            nodes,
            yields,
        };
        let node = self.push(
            Op::For {
                lo: header.lo,
                hi: header.hi,
                inclusive: header.inclusive,
                step: header.step,
                rev: header.rev,
                back: false,
                inits,
                body,
                exit,
                trips: None,
            },
            Ty::Tuple,
            span,
        );
        for (k, &slot) in slots.iter().enumerate() {
            let ty = self.func.node(args[k]).ty;
            let p = self.push(Op::Proj(node, k as u32), ty, span);
            self.func.nodes[p.idx()].hint = Some(self.env[slot].name.clone());
            self.env[slot].id = Some(p);
        }
        if exit.is_some() {
            // The number of iterations that ran, for the reverse sweep.
            let n = args.len() as u32;
            let p = self.push(Op::Proj(node, n), Ty::Int, span);
            self.func.nodes[p.idx()].hint = Some("trips".to_string());
        }
    }

    /// `Tensor::ones(&[3])`, `Tensor::zeros(&[n])`: a constant tensor, as written. Its
    /// arguments may name parameters that are not differentiated, nothing else (the
    /// emitted code renames locals).
    fn tensor_constant(&mut self, c: &syn::ExprCall, ft: FloatTy) -> Id {
        let mut idents = Vec::new();
        collect_idents(c.args.to_token_stream(), &mut idents);
        for ident in &idents {
            let Some(i) = self.lookup(&ident.to_string()) else {
                continue;
            };
            let param = i < self.sig.params.len();
            let diff = self.env[i]
                .id
                .is_some_and(|id| self.func.node(id).ty.is_differentiable());
            if diff {
                return self.error(ident, format!("a tensor constructor's arguments are constants on the static path of #[differentiable]; to depend on `{ident}`, multiply: `Tensor::ones(..) * {ident}`"));
            }
            if !param {
                return self.error(ident, format!("a tensor constructor's arguments may name parameters and constants on the static path of #[differentiable], not the local `{ident}`; build the tensor from a parameter, or pass it in"));
            }
        }
        self.opaque(c.to_token_stream(), Ty::Tensor(ft), c.span())
    }

    /// Records the callee of `c` (its path, and which arguments are references).
    fn callee(&mut self, path: &syn::Path, c: &syn::ExprCall) -> u32 {
        let refs = c
            .args
            .iter()
            .map(|a| matches!(a, Expr::Reference(_)))
            .collect();
        let idx = self.func.paths.len() as u32;
        self.func.paths.push(path.clone());
        self.func.arg_refs.push(refs);
        idx
    }

    /// A loop's exit condition: a `bool` computed without effects.
    fn condition(&mut self, e: &Expr) -> Id {
        let before = self.regions.last().map_or(0, |r| r.len());
        let c = self.expr(e, Some(Ty::Bool));
        fn pure(func: &Func, nodes: &[Id]) -> bool {
            // A loop (an iterator chain's `sum`) is pure when its body is.
            nodes.iter().all(|&n| match &func.node(n).op {
                Op::For { body, .. } => pure(func, &body.nodes),
                Op::If { then, else_, .. } => pure(func, &then.nodes) && pure(func, &else_.nodes),
                op => !op.has_effect(),
            })
        }
        let pure = self
            .regions
            .last()
            .map_or(true, |r| pure(&self.func, &r[before..]));
        if !pure {
            self.not_yet(e, "a loop condition must only compute a `bool` (no writes); compute it before the loop and at the end of the body");
        }
        if self.func.node(c).ty != Ty::Bool {
            self.error(e, "a loop condition must be a `bool`");
        }
        c
    }

    fn push_arg(&mut self, k: u32, ty: Ty, span: Span) -> Id {
        self.func.push(Node {
            op: Op::Arg(k),
            ty,
            span,
            origin: Origin::Primal,
            hint: None,
        })
    }

    /// What a `for` walks: `a..b`, `a..=b`, `(..).rev()`, `(..).step_by(s)`, or the
    /// elements of a slice or buffer (`x`, `&x`, `x.iter()`, `x.iter().enumerate()`).
    fn loop_header(&mut self, e: &Expr) -> Option<Header> {
        match e {
            Expr::Paren(p) => self.loop_header(&p.expr),
            Expr::Group(g) => self.loop_header(&g.expr),
            Expr::Range(r) => {
                let (Some(a), Some(b)) = (&r.start, &r.end) else {
                    self.not_yet(
                        r,
                        "a `for` range needs both ends on the static path of #[differentiable]",
                    );
                    return None;
                };
                let lo = self.expr(a, Some(Ty::Int));
                let hi = self.expr(b, Some(Ty::Int));
                Some(Header {
                    lo,
                    hi,
                    inclusive: matches!(r.limits, syn::RangeLimits::Closed(_)),
                    step: None,
                    rev: false,
                    elems: None,
                })
            }
            Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                let mut h = self.loop_header(&m.receiver)?;
                if h.step.is_some() || h.elems.is_some_and(|e| e.1) {
                    self.not_yet(&m.method, "`rev` after `step_by` or `enumerate` is not supported by the static path of #[differentiable] yet");
                    return None;
                }
                h.rev = !h.rev;
                Some(h)
            }
            Expr::MethodCall(m) if m.method == "step_by" && m.args.len() == 1 => {
                let mut h = self.loop_header(&m.receiver)?;
                if h.step.is_some() {
                    self.not_yet(
                        &m.method,
                        "`step_by` twice is not supported by the static path of #[differentiable]",
                    );
                    return None;
                }
                h.step = Some(self.expr(&m.args[0], Some(Ty::Int)));
                Some(h)
            }
            Expr::MethodCall(m) if m.method == "enumerate" && m.args.is_empty() => {
                let mut h = self.loop_header(&m.receiver)?;
                match h.elems {
                    Some((x, false)) if !h.rev => {
                        h.elems = Some((x, true));
                        Some(h)
                    }
                    _ => {
                        self.not_yet(&m.method, "`enumerate` of this iterator is not supported by the static path of #[differentiable] yet");
                        None
                    }
                }
            }
            Expr::MethodCall(m) if m.method == "iter" && m.args.is_empty() => {
                self.slice_header(&m.receiver)
            }
            Expr::Reference(r) if r.mutability.is_none() => self.slice_header(&r.expr),
            Expr::Path(_) => self.slice_header(e),
            other => {
                self.not_yet(other, "this `for` iterator is not supported by the static path of #[differentiable] yet");
                None
            }
        }
    }

    fn slice_header(&mut self, e: &Expr) -> Option<Header> {
        let x = self.expr(e, None);
        if !self.func.node(x).ty.is_memory() {
            if !self.refused(x) {
                self.not_yet(e, "a `for` over values walks a slice, `Vec` or array of floats on the static path of #[differentiable]");
            }
            return None;
        }
        let span = e.span();
        let lo = self.opaque(quote::quote!(0), Ty::Int, span);
        let hi = self.len_of(x, span);
        Some(Header {
            lo,
            hi,
            inclusive: false,
            step: None,
            rev: false,
            elems: Some((x, false)),
        })
    }

    /// Binds a `for` pattern: the index, an element (`v`, `&v`), or both
    /// (`(i, v)` after `enumerate`).
    fn bind_loop_pattern(&mut self, pat: &Pat, index: Id, elems: Option<(Id, bool)>) {
        let bind = |lw: &mut Self, p: &Pat, id: Id| match strip_pat(p) {
            Some(Some(name)) => {
                lw.func.nodes[id.idx()]
                    .hint
                    .get_or_insert_with(|| name.clone());
                lw.env.push(Slot {
                    name,
                    id: Some(id),
                    closure: None,
                });
            }
            Some(None) => {}
            None => {
                lw.error(p, "this `for` pattern is not supported by the static path of #[differentiable]; bind one name (or a pair after `enumerate`)");
            }
        };
        let elem = |lw: &mut Self, x: Id| {
            let span = lw.func.node(x).span;
            lw.load(x, index, span)
        };
        match elems {
            None => bind(self, pat, index),
            Some((x, false)) => {
                let v = elem(self, x);
                bind(self, pat, v);
            }
            Some((x, true)) => match pat {
                Pat::Tuple(t) if t.elems.len() == 2 => {
                    bind(self, &t.elems[0], index);
                    let v = elem(self, x);
                    bind(self, &t.elems[1], v);
                }
                other => {
                    self.error(other, "after `enumerate`, bind a pair: `for (i, v) in ..`");
                }
            },
        }
    }

    /// `match` on an integer, a `bool` or a field-less enum, as an `if` chain: each
    /// arm's test (`matches!` of its pattern, and its guard) is computed first, then
    /// the arms become `if t0 { a0 } else if t1 { a1 } else { last }`.
    fn match_(&mut self, m: &syn::ExprMatch, expect: Option<Ty>) -> Option<Id> {
        let scrut = self.expr(&m.expr, None);
        // On a float, only an arm that matches everything (`_`, a name) is taken.
        let catch_all = m.arms.first().is_some_and(|a| {
            a.guard.is_none()
                && match &a.pat {
                    Pat::Wild(_) => true,
                    Pat::Ident(pi) => pi.subpat.is_none() && pi.by_ref.is_none(),
                    _ => false,
                }
        });
        if self.func.node(scrut).ty.is_differentiable() && !catch_all {
            // An error node, so that the `match` is not also reported as having no value.
            return Some(self.error(&m.expr, "`match` on a float or tensor is not supported by the static path of #[differentiable]; compare with `if`"));
        }
        let span = m.match_token.span;
        let scope = self.env.len();
        let mut tests = Vec::new();
        for (k, arm) in m.arms.iter().enumerate() {
            // A binding arm (`n => .. n ..`) sees the scrutinee under its name.
            let (test, binding) = match &arm.pat {
                Pat::Wild(_) => (None, None),
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    (None, Some(pi.ident.to_string()))
                }
                Pat::Lit(_) | Pat::Or(_) | Pat::Range(_) | Pat::Path(_) => {
                    let idx = self.func.opaque.len() as u32;
                    self.func.opaque.push(arm.pat.to_token_stream());
                    (
                        Some(self.push(Op::Matches(scrut, idx), Ty::Bool, arm.pat.span())),
                        None,
                    )
                }
                other => {
                    self.not_yet(other, "this pattern is not supported by the static path of #[differentiable]; a `match` there is on integers, `bool`s and field-less enums");
                    return None;
                }
            };
            let guard = arm.guard.as_ref().map(|(_, g)| {
                let inner = self.env.len();
                if let Some(b) = &binding {
                    self.env.push(Slot {
                        name: b.clone(),
                        id: Some(scrut),
                        closure: None,
                    });
                }
                let g = self.expr(g, Some(Ty::Bool));
                self.env.truncate(inner);
                g
            });
            let t = match (test, guard) {
                (Some(t), Some(g)) => Some(self.push(Op::Binary(BinOp::And, t, g), Ty::Bool, span)),
                (t, g) => t.or(g),
            };
            let name = format!("__ad_arm{k}");
            if let Some(t) = t {
                self.env.push(Slot {
                    name: name.clone(),
                    id: Some(t),
                    closure: None,
                });
            }
            tests.push((t.map(|_| name), binding));
        }
        self.env.push(Slot {
            name: "__ad_scrutinee".into(),
            id: Some(scrut),
            closure: None,
        });
        // The arms as blocks, a binding arm's name bound first.
        let arm_block = |arm: &syn::Arm, binding: &Option<String>| -> syn::Block {
            let body = &arm.body;
            match binding {
                Some(b) => {
                    let b = proc_macro2::Ident::new(b, arm.pat.span());
                    syn::parse_quote!({ let #b = __ad_scrutinee; #body })
                }
                None => syn::parse_quote!({ #body }),
            }
        };
        // Built from the last arm up; an arm with no test ends the chain.
        let mut chain: Option<Expr> = None;
        for (arm, (test, binding)) in m.arms.iter().zip(&tests).rev() {
            let block = arm_block(arm, binding);
            chain = Some(match (test, chain) {
                (None, _) | (_, None) => syn::parse_quote!(#block),
                (Some(t), Some(rest)) => {
                    let t = proc_macro2::Ident::new(t, span);
                    syn::parse_quote!(if #t #block else { #rest })
                }
            });
        }
        let v = match chain {
            Some(e) => self.expr_or_unit(&e, expect),
            None => None,
        };
        self.env.truncate(scope);
        v
    }

    /// Lowers `if`/`else` (statement or expression, `else if` chains) into an [`Op::If`]
    /// node whose regions yield the value (if any) and every outer variable that either
    /// branch assigns.
    fn if_(&mut self, i: &syn::ExprIf, expect: Option<Ty>) -> Option<Id> {
        let cond = self.expr(&i.cond, None);
        let before = self.env.clone();
        self.regions.push(Vec::new());
        let then_val = self.block(&i.then_branch, expect);
        let then_nodes = self.regions.pop().unwrap_or_default();
        let then_env = std::mem::replace(&mut self.env, before.clone());
        self.regions.push(Vec::new());
        let else_val = match &i.else_branch {
            Some((_, e)) => self.expr_or_unit(e, expect.or(then_val.map(|v| self.func.node(v).ty))),
            None => None,
        };
        let else_nodes = self.regions.pop().unwrap_or_default();
        let else_env = std::mem::replace(&mut self.env, before);

        let mut then = Region {
            nodes: then_nodes,
            ..Region::default()
        };
        let mut else_ = Region {
            nodes: else_nodes,
            ..Region::default()
        };
        let has_value = match (then_val, else_val) {
            (Some(a), Some(b)) => {
                then.yields.push(a);
                else_.yields.push(b);
                true
            }
            (Some(_), None) if i.else_branch.is_none() => {
                self.error(
                    &i.then_branch,
                    "an `if` used as a value needs an `else` branch",
                );
                false
            }
            _ => false,
        };
        // The variables that a branch assigned: yielded by both branches.
        let mut changed = Vec::new();
        for k in 0..self.env.len() {
            let slot = self.env[k].clone();
            let (a, b) = (then_env[k].id, else_env[k].id);
            if a != slot.id || b != slot.id {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        then.yields.push(a);
                        else_.yields.push(b);
                        changed.push(k);
                    }
                    _ => {
                        self.error(i.if_token, format!("`{}` is assigned in only one branch of this `if` and was not initialized before it", slot.name));
                    }
                }
            }
        }
        let span = i.if_token.span;
        if let Some(&m) = then
            .yields
            .iter()
            .chain(&else_.yields)
            .find(|&&y| self.func.node(y).ty.is_memory())
        {
            let at = self.func.node(m).span;
            self.cx.error_at(at, "an `if` whose value is a slice or buffer is not supported by the static path of #[differentiable]; write the buffer's elements in the branches instead");
        }
        let yields = then.yields.clone();
        let else_yields = else_.yields.clone();
        let node = self.push(Op::If { cond, then, else_ }, Ty::Tuple, span);
        let mut k = 0u32;
        let mut value = None;
        let mut proj = |lw: &mut Self, a: Id, b: Id| {
            let ty = match (lw.func.node(a).ty, lw.func.node(b).ty) {
                (t @ (Ty::Float(_) | Ty::Tensor(_)), _)
                | (_, t @ (Ty::Float(_) | Ty::Tensor(_))) => t,
                (t, _) => t,
            };
            let id = lw.push(Op::Proj(node, k), ty, span);
            k += 1;
            id
        };
        let mut pairs = yields.into_iter().zip(else_yields);
        if has_value {
            if let Some((a, b)) = pairs.next() {
                value = Some(proj(self, a, b));
            }
        }
        for (slot_idx, (a, b)) in changed.into_iter().zip(pairs) {
            let id = proj(self, a, b);
            self.func.nodes[id.idx()].hint = Some(self.env[slot_idx].name.clone());
            self.env[slot_idx].id = Some(id);
        }
        value
    }
}

/// The elementwise functions that tensors have as methods.
const TENSOR_FNS: &[MathFn] = &[
    MathFn::Exp,
    MathFn::Exp2,
    MathFn::Ln,
    MathFn::Log2,
    MathFn::Log10,
    MathFn::Sin,
    MathFn::Cos,
    MathFn::Tan,
    MathFn::Asin,
    MathFn::Acos,
    MathFn::Atan,
    MathFn::Sinh,
    MathFn::Cosh,
    MathFn::Tanh,
    MathFn::Sqrt,
    MathFn::Cbrt,
    MathFn::Abs,
    MathFn::Recip,
    MathFn::Relu,
    MathFn::Sigmoid,
    MathFn::Softplus,
    MathFn::Powi,
    MathFn::Powf,
    MathFn::Clamp,
    MathFn::Signum,
    MathFn::Floor,
    MathFn::Ceil,
    MathFn::Round,
    MathFn::Trunc,
];

/// Methods of a tensor that the tape's `Var` has and the static path does not take.
const TAPE_TENSOR_METHODS: &[&str] = &["broadcast_to", "clone"];

/// Methods of a float that the tape's `Var` has and the static path does not take.
const TAPE_SCALAR_METHODS: &[&str] = &["clone"];

fn supported_list() -> String {
    MathFn::ALL
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Literals, names, and comparisons or logic of them: nothing that can panic (integer
/// arithmetic can overflow) or has an effect.
fn is_plain(e: &Expr) -> bool {
    use syn::BinOp as B;
    match e {
        Expr::Lit(_) | Expr::Path(_) => true,
        Expr::Paren(p) => is_plain(&p.expr),
        Expr::Unary(u) => matches!(u.op, syn::UnOp::Not(_)) && is_plain(&u.expr),
        Expr::Binary(b) => {
            matches!(
                b.op,
                B::Eq(_)
                    | B::Ne(_)
                    | B::Lt(_)
                    | B::Le(_)
                    | B::Gt(_)
                    | B::Ge(_)
                    | B::And(_)
                    | B::Or(_)
            ) && is_plain(&b.left)
                && is_plain(&b.right)
        }
        _ => false,
    }
}

fn is_untyped_float_lit(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(&l.lit, Lit::Float(f) if f.suffix().is_empty()),
        Expr::Paren(p) => is_untyped_float_lit(&p.expr),
        Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)) && is_untyped_float_lit(&u.expr),
        _ => false,
    }
}

fn result_ty(op: BinOp, a: Ty, b: Ty) -> Ty {
    if op.is_comparison() {
        return Ty::Bool;
    }
    match (a, b) {
        (t @ (Ty::Tensor(_) | Ty::Slice(_)), _) | (_, t @ (Ty::Tensor(_) | Ty::Slice(_))) => t,
        (t @ Ty::Float(_), _) | (_, t @ Ty::Float(_)) => t,
        (Ty::Int, _) | (_, Ty::Int) => Ty::Int,
        (t, _) => t,
    }
}

fn bin_op(op: &syn::BinOp) -> Option<BinOp> {
    use syn::BinOp as B;
    Some(match op {
        B::Add(_) => BinOp::Add,
        B::Sub(_) => BinOp::Sub,
        B::Mul(_) => BinOp::Mul,
        B::Div(_) => BinOp::Div,
        B::Rem(_) => BinOp::Rem,
        B::Lt(_) => BinOp::Lt,
        B::Le(_) => BinOp::Le,
        B::Gt(_) => BinOp::Gt,
        B::Ge(_) => BinOp::Ge,
        B::Eq(_) => BinOp::Eq,
        B::Ne(_) => BinOp::Ne,
        B::And(_) => BinOp::And,
        B::Or(_) => BinOp::Or,
        _ => return None,
    })
}

fn compound_op(op: &syn::BinOp) -> Option<BinOp> {
    use syn::BinOp as B;
    Some(match op {
        B::AddAssign(_) => BinOp::Add,
        B::SubAssign(_) => BinOp::Sub,
        B::MulAssign(_) => BinOp::Mul,
        B::DivAssign(_) => BinOp::Div,
        B::RemAssign(_) => BinOp::Rem,
        _ => return None,
    })
}

/// What a `for` walks.
/// What a loop binds in each iteration.
enum Walk<'p> {
    /// A `for` pattern, bound to the items of a chain or to the header's index/elements.
    Pattern(&'p Pat, Option<chains::Items>),
    /// Nothing: `while` and `loop`.
    Count,
}

/// `Tensor::zeros(..)`, `Tensor::<f32>::ones(..)`, ...: a constructor of a constant
/// tensor, and its float type.
fn tensor_constructor(path: &syn::Path, float: FloatTy) -> Option<FloatTy> {
    // The tape's list ([`crate::tape::constructor`]), but for the random ones, which
    // the static path leaves to the caller as it always has.
    let (name, tensor) = crate::tape::constructor(path)?;
    if matches!(name.as_str(), "rand" | "randn") {
        return None;
    }
    let ty = tensor.arguments.to_token_stream().to_string();
    Some(match ty.as_str() {
        "" => float,
        s if s.contains("f32") => FloatTy::F32,
        _ => FloatTy::F64,
    })
}

/// `if c { break; }` with nothing else: the condition `c`.
fn exit_check(s: &Stmt) -> Option<&Expr> {
    let Stmt::Expr(Expr::If(i), _) = s else {
        return None;
    };
    if i.else_branch.is_some() || i.then_branch.stmts.len() != 1 {
        return None;
    }
    match &i.then_branch.stmts[0] {
        Stmt::Expr(Expr::Break(b), _) if b.label.is_none() && b.expr.is_none() => Some(&i.cond),
        _ => None,
    }
}

struct Header {
    lo: Id,
    hi: Id,
    inclusive: bool,
    step: Option<Id>,
    rev: bool,
    /// The slice or buffer whose elements the pattern binds, and whether the index
    /// is bound too (`enumerate`).
    elems: Option<(Id, bool)>,
}

/// The name a simple pattern binds: `Some(Some(name))` for `v`, `&v`, `mut v`,
/// `Some(None)` for `_`, `None` for anything else.
fn strip_pat(p: &Pat) -> Option<Option<String>> {
    match p {
        Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
            Some(Some(pi.ident.to_string()))
        }
        Pat::Reference(r) => strip_pat(&r.pat),
        Pat::Paren(p) => strip_pat(&p.pat),
        Pat::Wild(_) => Some(None),
        Pat::Type(t) => strip_pat(&t.pat),
        _ => None,
    }
}

/// The names assigned (`x = ..`, `x += ..`) anywhere in a block.
fn assigned_in_block(block: &syn::Block, out: &mut Vec<String>) {
    for stmt in &block.stmts {
        match stmt {
            Stmt::Local(l) => {
                if let Some(init) = &l.init {
                    assigned_in_expr(&init.expr, out);
                }
            }
            Stmt::Expr(e, _) => assigned_in_expr(e, out),
            _ => {}
        }
    }
}

fn assigned_in_expr(e: &Expr, out: &mut Vec<String>) {
    let target = |place: &Expr, out: &mut Vec<String>| {
        let mut p = place;
        loop {
            match p {
                Expr::Paren(inner) => p = &inner.expr,
                // `*out = ..` of a `&mut f64` parameter.
                Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => p = &u.expr,
                _ => break,
            }
        }
        if let Expr::Path(path) = p {
            if let Some(i) = path.path.get_ident() {
                out.push(i.to_string());
            }
        }
    };
    match e {
        Expr::Assign(a) => {
            if let Expr::Tuple(t) = &*a.left {
                tuples::targets(t, out);
            }
            target(&a.left, out);
            assigned_in_expr(&a.right, out);
        }
        Expr::Binary(b) => {
            if compound_op(&b.op).is_some() {
                target(&b.left, out);
            }
            assigned_in_expr(&b.left, out);
            assigned_in_expr(&b.right, out);
        }
        Expr::Block(b) => assigned_in_block(&b.block, out),
        Expr::If(i) => {
            assigned_in_expr(&i.cond, out);
            assigned_in_block(&i.then_branch, out);
            if let Some((_, e)) = &i.else_branch {
                assigned_in_expr(e, out);
            }
        }
        Expr::ForLoop(f) => assigned_in_block(&f.body, out),
        Expr::While(w) => {
            assigned_in_expr(&w.cond, out);
            assigned_in_block(&w.body, out);
        }
        Expr::Loop(l) => assigned_in_block(&l.body, out),
        Expr::Paren(p) => assigned_in_expr(&p.expr, out),
        // `v.push(x)` assigns the length of `v` (a `Vec` that grows): `push v`.
        Expr::MethodCall(m) if m.method == "push" => {
            if let Expr::Path(p) = &*m.receiver {
                if let Some(i) = p.path.get_ident() {
                    out.push(format!("push {i}"));
                }
            }
            m.args.iter().for_each(|a| assigned_in_expr(a, out));
        }
        // `g(&mut s)` assigns `s`.
        Expr::Call(c) => {
            for a in &c.args {
                match a {
                    Expr::Reference(r) if r.mutability.is_some() => {
                        let mut names = Vec::new();
                        target(&r.expr, &mut names);
                        out.extend(names.into_iter().map(|n| format!("&mut {n}")));
                    }
                    a => assigned_in_expr(a, out),
                }
            }
        }
        _ => {}
    }
}

/// Whether a call passes some argument as `&mut`.
fn has_mut_arg(c: &syn::ExprCall) -> bool {
    c.args
        .iter()
        .any(|a| matches!(a, Expr::Reference(r) if r.mutability.is_some()))
}

/// The macros that only show or check values.
fn is_debug_macro(mac: &syn::Macro) -> bool {
    const DEBUG: &[&str] = &[
        "println",
        "eprintln",
        "print",
        "eprint",
        "assert",
        "assert_eq",
        "assert_ne",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
    ];
    mac.path
        .get_ident()
        .is_some_and(|i| DEBUG.contains(&i.to_string().as_str()))
}

/// Every identifier in a token stream, and in the `{name}` captures of its string
/// literals (`println!("{x}")`).
fn collect_idents(tokens: TokenStream, out: &mut Vec<proc_macro2::Ident>) {
    for t in tokens {
        match t {
            proc_macro2::TokenTree::Ident(i) => out.push(i),
            proc_macro2::TokenTree::Group(g) => collect_idents(g.stream(), out),
            proc_macro2::TokenTree::Literal(l) => {
                if let Ok(s) = syn::parse2::<syn::LitStr>(quote::quote!(#l)) {
                    let text = s.value();
                    for part in text.split('{').skip(1) {
                        let name: String = part
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) {
                            out.push(proc_macro2::Ident::new(&name, l.span()));
                        }
                    }
                }
            }
            proc_macro2::TokenTree::Punct(_) => {}
        }
    }
}

/// `x.first().unwrap()`, `x.last().copied().unwrap()`, `x.get(i).unwrap()`,
/// `x.get(i).copied().unwrap_or(d)` (also `expect(..)`, `cloned()`) on a slice or
/// buffer named by a path, as the indexing they are: `x[0]`, `x[x.len() - 1]`, `x[i]`,
/// `if i < x.len() { x[i] } else { d }`. `None` for anything else.
fn option_access(m: &syn::ExprMethodCall) -> Option<Expr> {
    let name = m.method.to_string();
    match (name.as_str(), m.args.len()) {
        ("unwrap", 0) | ("expect" | "unwrap_or", 1) => {}
        _ => return None,
    }
    let mut inner = &*m.receiver;
    while let Expr::MethodCall(c) = inner {
        if (c.method == "copied" || c.method == "cloned") && c.args.is_empty() {
            inner = &c.receiver;
        } else {
            break;
        }
    }
    let Expr::MethodCall(get) = inner else {
        return None;
    };
    // The slice is read twice (its length and an element): only a name.
    let mut x = &*get.receiver;
    while let Expr::Reference(r) = x {
        x = &r.expr;
    }
    if !matches!(x, Expr::Path(p) if p.path.get_ident().is_some()) {
        return None;
    }
    let span = m.span();
    let index: Expr = match (get.method.to_string().as_str(), get.args.len()) {
        ("first", 0) => syn::parse_quote_spanned!(span=> 0),
        ("last", 0) => syn::parse_quote_spanned!(span=> #x.len() - 1),
        ("get", 1) => {
            let i = &get.args[0];
            syn::parse_quote_spanned!(span=> #i)
        }
        _ => return None,
    };
    Some(match name.as_str() {
        "unwrap_or" => {
            let d = m.args.first()?;
            match get.method.to_string().as_str() {
                "get" => syn::parse_quote_spanned!(span=> {
                    let __ad_at = #index;
                    if __ad_at < #x.len() { #x[__ad_at] } else { #d }
                }),
                _ => syn::parse_quote_spanned!(span=> if #x.len() > 0 { #x[#index] } else { #d }),
            }
        }
        _ => syn::parse_quote_spanned!(span=> #x[#index]),
    })
}

/// Whether a call argument is memory that only the call sees: an array literal,
/// `[x; N]`, `vec![..]`, or a copy (`to_vec()`, `clone()`), by value or borrowed.
fn is_temporary(e: &Expr) -> bool {
    match e {
        Expr::Reference(r) => is_temporary(&r.expr),
        Expr::Paren(p) => is_temporary(&p.expr),
        Expr::Array(_) | Expr::Repeat(_) => true,
        Expr::Macro(m) => m.mac.path.is_ident("vec"),
        Expr::MethodCall(m) => {
            matches!(
                m.method.to_string().as_str(),
                "to_vec" | "to_owned" | "clone"
            ) && m.args.is_empty()
        }
        _ => false,
    }
}

/// The name under which the lowering keeps the length of the `Vec` that grows at
/// `buf` (no user name can contain `#`).
fn length_name(buf: Id) -> String {
    format!("len#{}", buf.0)
}

/// `Vec::new()`, `Vec::with_capacity(n)` (`Vec::<f64>::` too): a `Vec` that `push`
/// grows. The capacity is a hint that the lowering does not need.
fn growing_vec(e: &Expr) -> Option<Span> {
    let Expr::Call(c) = e else {
        return None;
    };
    let Expr::Path(p) = &*c.func else {
        return None;
    };
    let segs = &p.path.segments;
    let ok = p.qself.is_none()
        && segs.len() == 2
        && segs[0].ident == "Vec"
        && matches!(
            (segs[1].ident.to_string().as_str(), c.args.len()),
            ("new", 0) | ("with_capacity", 1)
        );
    ok.then(|| c.span())
}
