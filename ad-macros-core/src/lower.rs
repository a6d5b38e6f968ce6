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
        });
    }
    let ret = lw.block(block, Some(sig.ret_kind));
    let ret = match ret {
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
    let mut func = lw.func;
    func.body.nodes = lw.regions.pop().unwrap_or_default();
    func.outputs = vec![ret];
    debug_assert_eq!(func.verify(), Ok(()));
    func
}

/// A variable in scope.
#[derive(Clone)]
struct Slot {
    name: String,
    /// `None` for `let x;` before its first assignment.
    id: Option<Id>,
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

const TAPE_HINT: &str = "use #[differentiable(tape)]";

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
        let tokens = tokens.into_token_stream();
        let span = tokens
            .clone()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        self.cx.error_spanned_by(tokens, msg);
        self.push(Op::Error, Ty::Opaque, span)
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
                Stmt::Local(local) => self.local(local),
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
                Stmt::Item(item) => {
                    self.error(item, "items inside a #[differentiable] function are not supported; move the item out of the function");
                }
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
        self.error(
            mac,
            format!("macro `{name}!` is not supported by the static path of #[differentiable], which cannot see through macros; compute the value outside the function or {TAPE_HINT}"),
        )
    }

    fn local(&mut self, local: &syn::Local) {
        let (ident, ty) = match &local.pat {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                (pi.ident.clone(), None)
            }
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    (pi.ident.clone(), Some(&*pt.ty))
                }
                other => {
                    self.error(other, "this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`");
                    return;
                }
            },
            other => {
                self.error(other, "this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`");
                return;
            }
        };
        let expect = match ty {
            None => None,
            Some(t) => match parse::classify(t) {
                Some((k, false)) | Some((k @ Ty::Tensor(_), true)) => Some(k),
                _ => {
                    self.error(t, "this type is not supported by the static path of #[differentiable]; locals are `f32`, `f64`, `Tensor`, integers and `bool`");
                    None
                }
            },
        };
        let id = match &local.init {
            None => None,
            Some(init) => {
                if let Some((_, diverge)) = &init.diverge {
                    self.error(
                        diverge,
                        "`let ... else` is not supported by the static path of #[differentiable]",
                    );
                }
                let id = match expect {
                    Some(k) => self.annotated(&init.expr, k),
                    None => self.expr(&init.expr, None),
                };
                self.func.nodes[id.idx()]
                    .hint
                    .get_or_insert_with(|| ident.to_string());
                Some(id)
            }
        };
        self.env.push(Slot {
            name: ident.to_string(),
            id,
        });
    }

    /// Lowers an expression that may be a statement without value (assignment, `if`
    /// without `else`).
    fn expr_or_unit(&mut self, e: &Expr, expect: Option<Ty>) -> Option<Id> {
        match e {
            Expr::Assign(a) => {
                let rhs = self.expr(&a.right, None);
                self.assign(&a.left, rhs);
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
            Expr::If(i) => self.if_(i, expect),
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
            _ => {
                self.error(place, format!("assignment to this place is not supported by the static path of #[differentiable]; assign to a local variable or {TAPE_HINT}"));
            }
        }
    }

    /// Lowers an expression that must produce a value.
    fn expr(&mut self, e: &Expr, expect: Option<Ty>) -> Id {
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
                    _ => self.error(u, "dereferencing is not supported by the static path of #[differentiable]; take parameters by value"),
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
            Expr::Closure(c) => self.error(
                c,
                format!("closures are not supported by the static path of #[differentiable]; write a separate #[differentiable] function and call it, or {TAPE_HINT}"),
            ),
            Expr::Macro(m) => self.macro_error(&m.mac),
            Expr::ForLoop(f) => self.error(
                f.for_token,
                format!("`for` loops are not supported by the static path of #[differentiable] yet; {TAPE_HINT}"),
            ),
            Expr::While(w) => self.error(
                w.while_token,
                format!("`while` loops are not supported by the static path of #[differentiable] yet; {TAPE_HINT}"),
            ),
            Expr::Loop(l) => self.error(
                l.loop_token,
                format!("`loop` is not supported by the static path of #[differentiable] yet; {TAPE_HINT}"),
            ),
            Expr::Return(r) => self.error(
                r.return_token,
                format!("early `return` is not supported by the static path of #[differentiable]; make the value the last expression of the body or {TAPE_HINT}"),
            ),
            Expr::Index(i) => self.error(
                i,
                format!("indexing is not supported by the static path of #[differentiable] yet; {TAPE_HINT}"),
            ),
            Expr::Match(m) => self.error(
                m.match_token,
                format!("`match` is not supported by the static path of #[differentiable]; use `if`/`else` or {TAPE_HINT}"),
            ),
            // `&t`: the value itself; the emitter decides between borrowing and moving.
            Expr::Reference(r) if r.mutability.is_none() => self.expr(&r.expr, expect),
            Expr::Reference(r) => self.error(
                r,
                "`&mut` references are not supported by the static path of #[differentiable]",
            ),
            Expr::Field(f) => self.error(
                f,
                format!("field access is not supported by the static path of #[differentiable]; pass the field as a parameter or {TAPE_HINT}"),
            ),
            Expr::Tuple(t) => self.error(
                t,
                "tuples are not supported by the static path of #[differentiable]; a differentiable function returns one float",
            ),
            other => self.error(
                other,
                format!("this expression is not supported by the static path of #[differentiable]; {TAPE_HINT}"),
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
        let name = m.method.to_string();
        if let Some(t) = &m.turbofish {
            return self.error(
                t,
                "turbofish arguments are not supported by the static path of #[differentiable]",
            );
        }
        let recv = self.expr(&m.receiver, expect);
        let recv_ty = self.func.node(recv).ty;
        if name == "detach" && m.args.is_empty() {
            return self.push(Op::Detach(recv), recv_ty, m.span());
        }
        if let Ty::Tensor(ft) = recv_ty {
            return self.tensor_method(m, recv, ft);
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
                // Advise the tape only for the methods it has.
                let otherwise = if TAPE_SCALAR_METHODS.contains(&name.as_str()) {
                    format!("; the tape has it: {TAPE_HINT}")
                } else {
                    String::from(" (the tape has the same ones)")
                };
                self.error(
                    &m.method,
                    format!(
                        "method `{name}` is not supported by the static path of #[differentiable]; the float methods it differentiates are {}, plus `detach`{otherwise}",
                        supported_list()
                    ),
                )
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
            "matmul" | "dot" => {
                if !want(1, self) {
                    return self.push(Op::Error, tensor, span);
                }
                let other = self.expr(&m.args[0], Some(tensor));
                if !matches!(self.func.node(other).ty, Ty::Tensor(_)) {
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
                    // Advise the tape only for the methods it has.
                    let otherwise = if TAPE_TENSOR_METHODS.contains(&name.as_str()) {
                        format!("; the tape has it: {TAPE_HINT}")
                    } else {
                        String::new()
                    };
                    self.cx.error_spanned_by(
                        &m.method,
                        format!(
                            "method `{name}` of a tensor is not supported by the static path of #[differentiable]; it differentiates `matmul`, `dot`, `t`, `reshape`, `sum`, `mean`, `norm`, `max`, `min`, `sum_axis`, `mean_axis`, `max_axis`, `min_axis`, `maximum`, `minimum`, `atan2`, `hypot`, `detach` and {fns}{otherwise}"
                        ),
                    );
                    // Taken for a tensor, so that a method called on it is not
                    // reported as well.
                    self.push(Op::Error, tensor, span)
                }
            },
        }
    }

    fn call(&mut self, c: &syn::ExprCall, expect: Option<Ty>, trusted: bool) -> Id {
        let path = match &*c.func {
            Expr::Path(p) if p.qself.is_none() => &p.path,
            other => {
                return self.error(other, format!("only calls of named functions are supported by the static path of #[differentiable]; {TAPE_HINT}"));
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
        if path.segments.iter().any(|s| !s.arguments.is_none()) {
            return self.error(path, "generic arguments on a called function are not supported by the static path of #[differentiable]");
        }
        let args: Vec<Id> = c.args.iter().map(|a| self.expr(a, None)).collect();
        let refs = c
            .args
            .iter()
            .map(|a| matches!(a, Expr::Reference(_)))
            .collect();
        let idx = self.func.paths.len() as u32;
        self.func.paths.push(path.clone());
        self.func.arg_refs.push(refs);
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
                self.cx.error_at(span, format!(
                    "the static path of #[differentiable] cannot tell whether `{callee}(..)` returns a scalar or a tensor; bind the result with its type, as in `let y: Tensor = {callee}(..);` or `let y: f64 = {callee}(..);`"
                ));
                return self.push(Op::Error, Ty::Opaque, span);
            }
        };
        if let Ty::Tensor(_) = ty {
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
            .filter(|t| matches!(t, Ty::Float(_) | Ty::Tensor(_)))
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
            yields: Vec::new(),
        };
        let mut else_ = Region {
            nodes: else_nodes,
            yields: Vec::new(),
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
