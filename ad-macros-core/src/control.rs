//! Bodies with loops, slices and early exits -> a small tree of statements for
//! [`crate::loops`], which reverses it Tapenade's way.
//!
//! Normalizing does four things:
//! - every binding gets its own name (`__ad_x_3`), so shadowing is gone and every
//!   variable can live at function scope (the reverse sweep runs after the forward
//!   sweep has left the blocks that declared them);
//! - `if`, blocks and `loop { .. break v }` in value position become statements that
//!   assign a temporary;
//! - `break`, `continue` and early `return` become flags: the rest of a statement
//!   list after a statement that may exit runs under `if !(flags)`, a `while` tests
//!   `!brk && !ret` first, and a `for` loop that may stop early becomes a `while` over
//!   its index. Only structured `if`/`for`/`while` remain;
//! - `for x in s.iter()` / `for (i, &x) in s.iter().enumerate()` over a slice become
//!   index loops, and `s.iter().sum()` a summing loop.
//!
//! Before/after, for `for i in 0..n { if x[i] > t { y = x[i]; break; } }`:
//!
//! ```text
//! brk_1 = false
//! i_2 = 0; hi_3 = n
//! while !brk_1 && i_2 < hi_3 {
//!     if x[i_2] > t { y = x[i_2]; brk_1 = true }
//!     i_2 = i_2 + 1
//! }
//! ```

use crate::ctxt::Ctxt;
use crate::ir::{FloatTy, Ty};
use crate::parse::{self, Signature};
use proc_macro2::Span;
use quote::{format_ident, quote, ToTokens};
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident, Pat};

/// What a variable holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A float: it has an adjoint when it depends on a differentiated parameter.
    Float(FloatTy),
    /// An integer.
    Int,
    /// A `bool`.
    Bool,
    /// A slice, `Vec` or array parameter of floats.
    Slice(FloatTy),
    /// A tensor: an owned local, or a parameter (`&Tensor` or `Tensor`) that keeps
    /// its own name and is never assigned.
    Tensor(FloatTy),
    /// Not known yet (a constant from outside, an untyped `let x;`).
    Other,
}

/// One variable of the normalized body.
#[derive(Clone, Debug)]
pub struct Var {
    /// Its name in emitted code (the parameter's own name for slices).
    pub ident: Ident,
    /// What it holds.
    pub kind: Kind,
    /// The parameter it is (hoisted from), if any.
    pub param: Option<usize>,
    /// Whether a `for` binds it (it is then never assigned).
    pub loop_var: bool,
    /// A local array of scalars (`let p = [x, y, x * y];`): the variables of its
    /// elements. The array itself is never declared; its uses are rewritten to them.
    pub elems: Option<Vec<usize>>,
}

/// An argument of a lifted call (see [`Call`]).
#[derive(Clone, Debug)]
pub enum CallArg {
    /// A scalar, computed into this variable first. A float gets a gradient from the
    /// callee's `_vjp`; an integer or another constant does not.
    Scalar(usize),
    /// A slice variable as written (`s`, `&s`, `s.clone()`), or a sub-slice
    /// `&s[lo..hi]` whose bounds were computed into variables.
    Slice {
        /// The slice.
        var: usize,
        /// For a sub-slice, the variables of its bounds (`None` for an open end).
        range: Option<(Option<usize>, Option<usize>)>,
    },
    /// An array literal or a local array: its elements' variables.
    Array(Vec<usize>),
}

/// A call with a slice or array argument, lifted into its own assignment
/// `tmp = f(args)` whose arguments are variables. Its local adjoint calls `f_vjp` on
/// the same arguments in the reverse sweep and adds each gradient to its argument's
/// adjoint, element by element for slices and arrays.
#[derive(Clone, Debug)]
pub struct Call {
    /// The called function's path, as written.
    pub func: syn::Path,
    /// Each argument, with the expression that passes it (`&s[lo..hi]`, `[a, b]`).
    pub args: Vec<(CallArg, Expr)>,
    /// The call's span.
    pub span: Span,
}

/// How an assignment combines with the old value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AssignOp {
    /// `v = e`
    Set,
    /// `v += e`
    Add,
    /// `v -= e`
    Sub,
    /// `v *= e`
    Mul,
    /// `v /= e`
    Div,
}

/// A statement of the normalized body. Expressions are the user's, renamed, with no
/// control flow inside.
#[derive(Clone, Debug)]
pub enum S {
    /// `var op= expr`.
    Assign {
        /// The variable written.
        var: usize,
        /// The right-hand side.
        expr: Expr,
        /// `=` or a compound operator.
        op: AssignOp,
        /// Whether this is the declaration (`let`): the old value is then never needed
        /// outside loops.
        decl: bool,
    },
    /// `if cond { then } else { else_ }`.
    If {
        /// The condition.
        cond: Expr,
        /// Taken when `cond` holds.
        then: Vec<S>,
        /// Taken otherwise.
        else_: Vec<S>,
    },
    /// `for var in lo..hi` (`..=` when `inclusive`, reversed when `rev`).
    For {
        /// The index.
        var: usize,
        /// The first bound.
        lo: Expr,
        /// The second bound.
        hi: Expr,
        /// `lo..=hi`.
        inclusive: bool,
        /// `(lo..hi).rev()`.
        rev: bool,
        /// The body.
        body: Vec<S>,
    },
    /// `while cond { body }`.
    While {
        /// The condition, flags included.
        cond: Expr,
        /// The body.
        body: Vec<S>,
    },
}

/// A normalized body.
#[derive(Clone, Debug)]
pub struct Body {
    /// Every variable, parameters first.
    pub vars: Vec<Var>,
    /// The statements.
    pub stmts: Vec<S>,
    /// The variable holding the result.
    pub ret: usize,
    /// Emitted name -> variable.
    pub by_ident: HashMap<String, usize>,
    /// The lifted calls, by the variable they assign.
    pub calls: HashMap<usize, Call>,
}

/// Normalizes `block`; errors go to `cx` on their spans.
pub fn normalize(cx: &Ctxt, sig: &Signature, block: &syn::Block) -> Body {
    let mut n = Norm {
        cx,
        sig,
        vars: Vec::new(),
        env: Vec::new(),
        loops: Vec::new(),
        ret_flag: None,
        out: vec![Vec::new()],
        by_ident: HashMap::new(),
        calls: HashMap::new(),
        no_lift: None,
    };
    for (i, p) in sig.params.iter().enumerate() {
        let kind = match p.kind {
            Ty::Float(f) => Kind::Float(f),
            Ty::Slice(f) => Kind::Slice(f),
            Ty::Tensor(f) => Kind::Tensor(f),
            Ty::Int => Kind::Int,
            Ty::Bool => Kind::Bool,
            _ => Kind::Other,
        };
        let id = if matches!(kind, Kind::Slice(_) | Kind::Tensor(_)) {
            n.var_named(p.ident.clone(), kind)
        } else {
            n.fresh(&p.ident.to_string(), p.ident.span(), kind)
        };
        n.vars[id].param = Some(i);
        n.env.push((p.ident.to_string(), id));
    }
    let ret_kind = match sig.ret_kind {
        Ty::Float(f) => Kind::Float(f),
        Ty::Tensor(f) => Kind::Tensor(f),
        _ => Kind::Other,
    };
    let ret = n.fresh("ret", Span::call_site(), ret_kind);
    if has_early_return(block) {
        let flag = n.fresh("returned", Span::call_site(), Kind::Bool);
        n.emit(S::Assign {
            var: flag,
            expr: syn::parse_quote!(false),
            op: AssignOp::Set,
            decl: true,
        });
        n.ret_flag = Some(flag);
    }
    let ret_target = Target {
        var: ret,
        decl: true,
    };
    n.stmts(&block.stmts, Some(ret_target));
    n.infer_kinds();
    let stmts = n.out.pop().unwrap_or_default();
    Body {
        vars: n.vars,
        stmts,
        ret,
        by_ident: n.by_ident,
        calls: n.calls,
    }
}

/// Where a value goes.
#[derive(Clone, Copy)]
struct Target {
    var: usize,
    decl: bool,
}

/// The flags of one loop being lowered.
#[derive(Clone, Copy)]
struct LoopCtx {
    brk: Option<usize>,
    cont: Option<usize>,
    /// Where `break value` goes (`loop` in value position).
    value: Option<Target>,
}

struct Norm<'a> {
    cx: &'a Ctxt,
    sig: &'a Signature,
    vars: Vec<Var>,
    /// User name -> variable, innermost last.
    env: Vec<(String, usize)>,
    loops: Vec<LoopCtx>,
    ret_flag: Option<usize>,
    /// The statement lists being built, innermost last.
    out: Vec<Vec<S>>,
    by_ident: HashMap<String, usize>,
    calls: HashMap<usize, Call>,
    /// Set while renaming a `while` condition, which runs once per iteration: nothing
    /// may be lifted out of it into a statement that would run once.
    no_lift: Option<&'static str>,
}

const TAPE_HINT: &str = "remove `static` to run the function on the tape";

impl Norm<'_> {
    fn fresh(&mut self, name: &str, span: Span, kind: Kind) -> usize {
        let name = name.trim_start_matches("r#");
        let ident = format_ident!("__ad_{}_{}", name, self.vars.len(), span = span);
        self.var_named(ident, kind)
    }

    fn var_named(&mut self, ident: Ident, kind: Kind) -> usize {
        let id = self.vars.len();
        self.by_ident.insert(ident.to_string(), id);
        self.vars.push(Var {
            ident,
            kind,
            param: None,
            loop_var: false,
            elems: None,
        });
        id
    }

    fn emit(&mut self, s: S) {
        if let Some(out) = self.out.last_mut() {
            out.push(s);
        }
    }

    /// Lowers statements into a new list.
    fn collect(&mut self, f: impl FnOnce(&mut Self)) -> Vec<S> {
        self.out.push(Vec::new());
        f(self);
        self.out.pop().unwrap_or_default()
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    fn path_of(&self, var: usize) -> Expr {
        let ident = &self.vars[var].ident;
        syn::parse_quote!(#ident)
    }

    fn error(&self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        self.cx.error_spanned_by(tokens, msg);
    }

    /// A statement list in the current scope; the last expression goes to `tail`.
    /// After a statement that may exit, the rest runs under `if !(flags)`.
    fn stmts(&mut self, stmts: &[syn::Stmt], tail: Option<Target>) {
        let n = stmts.len();
        for (i, stmt) in stmts.iter().enumerate() {
            let last = i + 1 == n;
            self.stmt(stmt, if last { tail } else { None });
            if last {
                break;
            }
            let flags = self.exit_flags(stmt);
            if !flags.is_empty() {
                let cond = self.none_set(&flags);
                let rest = self.collect(|n| n.stmts(&stmts[i + 1..], tail));
                self.emit(S::If {
                    cond,
                    then: rest,
                    else_: Vec::new(),
                });
                return;
            }
        }
    }

    /// `!(f1 || f2 ..)`.
    fn none_set(&self, flags: &[usize]) -> Expr {
        let idents = flags.iter().map(|&f| &self.vars[f].ident);
        syn::parse_quote!(!(false #(|| #idents)*))
    }

    /// The flags a statement may set: early `return`, and `break`/`continue` of the
    /// innermost loop being lowered.
    fn exit_flags(&self, stmt: &syn::Stmt) -> Vec<usize> {
        let mut scan = ExitScan::default();
        scan.visit_stmt(stmt);
        let mut flags = Vec::new();
        if scan.ret {
            flags.extend(self.ret_flag);
        }
        if let Some(l) = self.loops.last() {
            if scan.brk {
                flags.extend(l.brk);
            }
            if scan.cont {
                flags.extend(l.cont);
            }
        }
        flags
    }

    fn stmt(&mut self, stmt: &syn::Stmt, tail: Option<Target>) {
        match stmt {
            syn::Stmt::Local(local) => self.local(local),
            syn::Stmt::Expr(e, None) if tail.is_some() => {
                if let Some(t) = tail {
                    self.value(e, t);
                }
            }
            syn::Stmt::Expr(e, _) => self.effect(e),
            syn::Stmt::Item(item) => self.error(
                item,
                "items inside a #[differentiable] function are not supported; move the item out of the function",
            ),
            syn::Stmt::Macro(m) => self.error(
                &m.mac,
                format!("macro calls are not supported by the static path of #[differentiable]; {TAPE_HINT}"),
            ),
        }
    }

    fn local(&mut self, local: &syn::Local) {
        if let Some((ident, elems)) = local_array(local) {
            // `let p = [a, b, c];`: one scalar variable per element.
            let vars = elems
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    let v = self.fresh(&format!("{ident}_{k}"), e.span(), Kind::Other);
                    self.value(e, Target { var: v, decl: true });
                    v
                })
                .collect();
            let array = self.fresh(&ident.to_string(), ident.span(), Kind::Other);
            self.vars[array].elems = Some(vars);
            self.env.push((ident.to_string(), array));
            return;
        }
        let (ident, ty) = match &local.pat {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => (&pi.ident, None),
            Pat::Type(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    (&pi.ident, Some(&*pt.ty))
                }
                other => {
                    return self.error(other, format!("this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`, or {TAPE_HINT}"));
                }
            },
            other => {
                return self.error(other, format!("this `let` pattern is not supported by the static path of #[differentiable]; bind one name per `let`, or {TAPE_HINT}"));
            }
        };
        let kind = match ty.map(parse::classify) {
            None => Kind::Other,
            Some(Some((Ty::Float(f), false))) => Kind::Float(f),
            Some(Some((Ty::Int, false))) => Kind::Int,
            Some(Some((Ty::Bool, false))) => Kind::Bool,
            Some(Some((Ty::Tensor(f), false))) => Kind::Tensor(f),
            Some(_) => {
                self.error(ty, format!("locals of this type are not supported by the static path of #[differentiable] in a body with loops or slices; locals are `f32`, `f64`, `Tensor`, integers and `bool`, or {TAPE_HINT}"));
                Kind::Other
            }
        };
        let var = self.fresh(&ident.to_string(), ident.span(), kind);
        if let Some(init) = &local.init {
            if let Some((else_token, _)) = &init.diverge {
                self.error(else_token, format!("`let ... else` is not supported by the static path of #[differentiable]; {TAPE_HINT}"));
            }
            // The initializer sees the variable it shadows, so bind after lowering it.
            self.value(&init.expr, Target { var, decl: true });
        }
        self.env.push((ident.to_string(), var));
    }

    /// Lowers `e` for its value, assigned to `t`.
    fn value(&mut self, e: &Expr, t: Target) {
        match e {
            Expr::Paren(p) => self.value(&p.expr, t),
            Expr::Group(g) => self.value(&g.expr, t),
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                self.scoped(|n| n.stmts(&b.block.stmts, Some(t)))
            }
            Expr::If(i) => self.if_(i, Some(t)),
            Expr::Loop(l) => self.loop_(l, Some(t)),
            Expr::Return(_) | Expr::Break(_) | Expr::Continue(_) => self.effect(e),
            _ => {
                let expr = self.operand(e);
                self.emit(S::Assign {
                    var: t.var,
                    expr,
                    op: AssignOp::Set,
                    decl: t.decl,
                });
            }
        }
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        let scope = self.env.len();
        f(self);
        self.env.truncate(scope);
    }

    /// Lowers `e` for its effect.
    fn effect(&mut self, e: &Expr) {
        match e {
            Expr::Paren(p) => self.effect(&p.expr),
            Expr::Assign(a) => {
                if let Some(var) = self.place(&a.left) {
                    let expr = self.operand(&a.right);
                    self.emit(S::Assign {
                        var,
                        expr,
                        op: AssignOp::Set,
                        decl: false,
                    });
                }
            }
            Expr::Binary(b) if compound(&b.op).is_some() => {
                if let (Some(var), Some(op)) = (self.place(&b.left), compound(&b.op)) {
                    let expr = self.operand(&b.right);
                    self.emit(S::Assign {
                        var,
                        expr,
                        op,
                        decl: false,
                    });
                }
            }
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                self.scoped(|n| n.stmts(&b.block.stmts, None))
            }
            Expr::If(i) => self.if_(i, None),
            Expr::ForLoop(f) => self.for_(f),
            Expr::While(w) => self.while_(w),
            Expr::Loop(l) => self.loop_(l, None),
            Expr::Break(b) => {
                if let Some(label) = &b.label {
                    return self.error(label, format!("labeled `break` is not supported by the static path of #[differentiable]; {TAPE_HINT}"));
                }
                let Some(l) = self.loops.last().copied() else {
                    return self.error(b, "`break` outside of a loop");
                };
                match (&b.expr, l.value) {
                    (Some(v), Some(t)) => self.value(v, Target { decl: false, ..t }),
                    (Some(v), None) => {
                        return self.error(v, "`break` with a value is supported only in a `loop` whose value is used");
                    }
                    _ => {}
                }
                if let Some(flag) = l.brk {
                    self.set_flag(flag);
                }
            }
            Expr::Continue(c) => {
                if let Some(label) = &c.label {
                    return self.error(label, format!("labeled `continue` is not supported by the static path of #[differentiable]; {TAPE_HINT}"));
                }
                match self.loops.last().and_then(|l| l.cont) {
                    Some(flag) => self.set_flag(flag),
                    None => self.error(c, "`continue` outside of a loop"),
                }
            }
            Expr::Return(r) => {
                let ret = match r.expr.as_deref() {
                    Some(v) => v,
                    None => {
                        return self.error(r, "`return` without a value in a #[differentiable] function; return the float result");
                    }
                };
                // The result variable is the second one created, after the parameters.
                let ret_var = self.sig.params.len();
                self.value(
                    ret,
                    Target {
                        var: ret_var,
                        decl: false,
                    },
                );
                if let Some(flag) = self.ret_flag {
                    self.set_flag(flag);
                }
            }
            Expr::Macro(m) => self.error(
                &m.mac,
                format!("macro calls are not supported by the static path of #[differentiable]; {TAPE_HINT}"),
            ),
            other => self.error(
                other,
                "this statement has no effect on the result of a #[differentiable] function; remove it or assign its value",
            ),
        }
    }

    fn set_flag(&mut self, flag: usize) {
        self.emit(S::Assign {
            var: flag,
            expr: syn::parse_quote!(true),
            op: AssignOp::Set,
            decl: false,
        });
    }

    fn place(&mut self, e: &Expr) -> Option<usize> {
        match e {
            Expr::Paren(p) => self.place(&p.expr),
            Expr::Index(ix) if self.array_elem(ix).is_some() => self.array_elem(ix),
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let name = p.path.segments[0].ident.to_string();
                match self.lookup(&name) {
                    Some(v) if self.vars[v].elems.is_some() => {
                        self.error(e, format!("the static path of #[differentiable] assigns to a local array element by element (`{name}[0] = ..`); {TAPE_HINT}"));
                        None
                    }
                    Some(v) if matches!(self.vars[v].kind, Kind::Slice(_)) => {
                        self.error(e, format!("cannot assign to the slice `{name}`"));
                        None
                    }
                    Some(v)
                        if matches!(self.vars[v].kind, Kind::Tensor(_))
                            && self.vars[v].param.is_some() =>
                    {
                        self.error(e, format!("the static path of #[differentiable] does not assign to the tensor parameter `{name}`; copy it into a local first (`let mut t = {name}.clone();`), or {TAPE_HINT}"));
                        None
                    }
                    Some(v) => Some(v),
                    None => {
                        self.error(e, format!("cannot assign to `{name}`: only local variables and parameters can be assigned in a #[differentiable] function"));
                        None
                    }
                }
            }
            other => {
                self.error(other, format!("assignment to this place is not supported by the static path of #[differentiable]; assign to a local variable, or {TAPE_HINT}"));
                None
            }
        }
    }

    /// The local array a path names, if it names one.
    fn array_of(&self, e: &Expr) -> Option<usize> {
        let Expr::Path(p) = strip(e) else { return None };
        let v = self.lookup(&p.path.get_ident()?.to_string())?;
        self.vars[v].elems.is_some().then_some(v)
    }

    /// `p[k]` with `p` a local array and `k` an integer literal: the element's
    /// variable.
    fn array_elem(&self, ix: &syn::ExprIndex) -> Option<usize> {
        let elems = self.vars[self.array_of(&ix.expr)?].elems.as_ref()?;
        let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(k),
            ..
        }) = strip(&ix.index)
        else {
            return None;
        };
        elems.get(k.base10_parse::<usize>().ok()?).copied()
    }

    /// Whether a call argument passes a slice or an array: a slice variable (`s`,
    /// `&s`, `s.clone()`), a sub-slice `&s[a..b]`, an array literal or a local array.
    fn aggregate_arg(&self, a: &Expr) -> bool {
        match strip(a) {
            Expr::Reference(r) => self.aggregate_arg(&r.expr),
            Expr::Array(_) => true,
            Expr::Path(_) => self.slice_of(a).is_some() || self.array_of(a).is_some(),
            Expr::Index(ix) => {
                matches!(strip(&ix.index), Expr::Range(_)) && self.slice_of(&ix.expr).is_some()
            }
            Expr::MethodCall(m) if is_copy_method(m) => self.aggregate_arg(&m.receiver),
            _ => false,
        }
    }

    /// The slice variable a path names, if it names one.
    fn slice_of(&self, e: &Expr) -> Option<usize> {
        let Expr::Path(p) = strip(e) else { return None };
        let v = self.lookup(&p.path.get_ident()?.to_string())?;
        matches!(self.vars[v].kind, Kind::Slice(_)).then_some(v)
    }

    /// A scalar computed into a new variable (a call argument, a bound).
    fn lift_value(&mut self, e: &Expr, name: &str) -> usize {
        let v = self.fresh(name, e.span(), Kind::Other);
        self.value(e, Target { var: v, decl: true });
        v
    }

    /// Lifts `f(args)` with a slice or array argument into `tmp = f(args)`, its
    /// arguments into variables; returns `tmp`.
    fn lift_call(&mut self, c: &syn::ExprCall, func: &syn::Path) -> Option<usize> {
        let mut args = Vec::new();
        for a in &c.args {
            args.push(self.call_arg(a)?);
        }
        let span = c.span();
        let tmp = self.fresh("call", span, Kind::Float(self.sig.float));
        let passed = args.iter().map(|(_, e)| e);
        let expr: Expr = syn::parse_quote_spanned!(span=> #func(#(#passed),*));
        self.emit(S::Assign {
            var: tmp,
            expr,
            op: AssignOp::Set,
            decl: true,
        });
        self.calls.insert(
            tmp,
            Call {
                func: func.clone(),
                args,
                span,
            },
        );
        Some(tmp)
    }

    fn call_arg(&mut self, a: &Expr) -> Option<(CallArg, Expr)> {
        let (inner, by_ref) = match strip(a) {
            Expr::Reference(r) if r.mutability.is_none() => (strip(&r.expr), true),
            e => (e, false),
        };
        let amp = by_ref.then(|| quote!(&));
        if let Expr::Array(arr) = inner {
            let vars: Vec<usize> = arr
                .elems
                .iter()
                .map(|e| self.lift_value(e, "elem"))
                .collect();
            let idents = vars.iter().map(|&v| self.vars[v].ident.clone());
            let expr = syn::parse_quote_spanned!(a.span()=> #amp [#(#idents),*]);
            return Some((CallArg::Array(vars), expr));
        }
        if let Some(v) = self.array_of(inner) {
            let vars = self.vars[v].elems.clone().unwrap_or_default();
            let idents = vars.iter().map(|&v| self.vars[v].ident.clone());
            let expr = syn::parse_quote_spanned!(a.span()=> #amp [#(#idents),*]);
            return Some((CallArg::Array(vars), expr));
        }
        if let Expr::Index(ix) = inner {
            if let (Expr::Range(r), Some(v)) = (strip(&ix.index), self.slice_of(&ix.expr)) {
                if !by_ref || matches!(r.limits, syn::RangeLimits::Closed(_)) {
                    self.error(a, format!("the static path of #[differentiable] passes a sub-slice as `&s[a..b]`, `&s[a..]` or `&s[..b]`; {TAPE_HINT}"));
                    return None;
                }
                let lo = r.start.as_deref().map(|e| self.lift_value(e, "lo"));
                let hi = r.end.as_deref().map(|e| self.lift_value(e, "hi"));
                let s = self.vars[v].ident.clone();
                let (lo_i, hi_i) = (
                    lo.map(|v| self.vars[v].ident.clone()),
                    hi.map(|v| self.vars[v].ident.clone()),
                );
                let expr = syn::parse_quote_spanned!(a.span()=> &#s[#lo_i..#hi_i]);
                return Some((
                    CallArg::Slice {
                        var: v,
                        range: Some((lo, hi)),
                    },
                    expr,
                ));
            }
        }
        let slice = match inner {
            Expr::MethodCall(m) if is_copy_method(m) => self.slice_of(&m.receiver),
            e => self.slice_of(e),
        };
        if let Some(v) = slice {
            return Some((
                CallArg::Slice {
                    var: v,
                    range: None,
                },
                self.operand(a),
            ));
        }
        let v = self.lift_value(a, "arg");
        let ident = self.vars[v].ident.clone();
        Some((CallArg::Scalar(v), syn::parse_quote!(#ident)))
    }

    fn if_(&mut self, i: &syn::ExprIf, t: Option<Target>) {
        let cond = self.condition(&i.cond);
        let then = self.collect(|n| n.scoped(|n| n.stmts(&i.then_branch.stmts, t)));
        let else_ = match &i.else_branch {
            None => Vec::new(),
            Some((_, e)) => self.collect(|n| match t {
                Some(t) => n.value(e, t),
                None => n.effect(e),
            }),
        };
        self.emit(S::If { cond, then, else_ });
    }

    /// A condition: renamed, with no control flow inside.
    fn condition(&mut self, e: &Expr) -> Expr {
        let mut flow = FlowScan(None);
        flow.visit_expr(e);
        if let Some(span) = flow.0 {
            self.cx.error_at(span, format!("control flow inside a condition is not supported by the static path of #[differentiable]; compute it into a variable first, or {TAPE_HINT}"));
        }
        self.operand(e)
    }

    /// Creates the flags a loop body needs.
    fn loop_ctx(&mut self, body: &syn::Block, value: Option<Target>) -> LoopCtx {
        let mut scan = ExitScan::default();
        scan.visit_block(body);
        let brk = scan
            .brk
            .then(|| self.fresh("brk", Span::call_site(), Kind::Bool));
        let cont = scan
            .cont
            .then(|| self.fresh("cont", Span::call_site(), Kind::Bool));
        LoopCtx { brk, cont, value }
    }

    fn init_flag(&mut self, flag: Option<usize>) {
        if let Some(flag) = flag {
            self.emit(S::Assign {
                var: flag,
                expr: syn::parse_quote!(false),
                op: AssignOp::Set,
                decl: true,
            });
        }
    }

    /// `!brk && !ret && (cond)`, with the flags that exist.
    fn loop_cond(&self, l: &LoopCtx, may_return: bool, cond: Option<Expr>) -> Expr {
        let mut flags: Vec<usize> = l.brk.into_iter().collect();
        if may_return {
            flags.extend(self.ret_flag);
        }
        let idents: Vec<_> = flags.iter().map(|&f| &self.vars[f].ident).collect();
        match cond {
            Some(c) => syn::parse_quote!(#(!#idents &&)* (#c)),
            None => syn::parse_quote!(#(!#idents &&)* true),
        }
    }

    /// The body of a loop: `cont = false` first, then the statements.
    fn loop_body(&mut self, l: LoopCtx, prologue: Vec<S>, body: &syn::Block) -> Vec<S> {
        self.loops.push(l);
        let stmts = self.collect(|n| {
            n.scoped(|n| {
                if let Some(c) = l.cont {
                    n.emit(S::Assign {
                        var: c,
                        expr: syn::parse_quote!(false),
                        op: AssignOp::Set,
                        decl: false,
                    });
                }
                for s in prologue {
                    n.emit(s);
                }
                n.stmts(&body.stmts, None)
            })
        });
        self.loops.pop();
        stmts
    }

    fn while_(&mut self, w: &syn::ExprWhile) {
        if let Some(label) = &w.label {
            return self.error(label, format!("loop labels are not supported by the static path of #[differentiable]; {TAPE_HINT}"));
        }
        let l = self.loop_ctx(&w.body, None);
        self.init_flag(l.brk);
        self.no_lift = Some("a `while` condition");
        let user = self.condition(&w.cond);
        self.no_lift = None;
        let cond = self.loop_cond(&l, has_return(&w.body), Some(user));
        let body = self.loop_body(l, Vec::new(), &w.body);
        self.emit(S::While { cond, body });
    }

    fn loop_(&mut self, lp: &syn::ExprLoop, t: Option<Target>) {
        if let Some(label) = &lp.label {
            return self.error(label, format!("loop labels are not supported by the static path of #[differentiable]; {TAPE_HINT}"));
        }
        let l = self.loop_ctx(&lp.body, t);
        self.init_flag(l.brk);
        let cond = self.loop_cond(&l, has_return(&lp.body), None);
        let body = self.loop_body(l, Vec::new(), &lp.body);
        self.emit(S::While { cond, body });
    }

    fn for_(&mut self, f: &syn::ExprForLoop) {
        if let Some(label) = &f.label {
            return self.error(label, format!("loop labels are not supported by the static path of #[differentiable]; {TAPE_HINT}"));
        }
        let Some(iter) = self.iteration(&f.pat, &f.expr) else {
            return;
        };
        let l = self.loop_ctx(&f.body, None);
        let stops = l.brk.is_some() || has_return(&f.body);
        let index_name = iter.index_name.clone().unwrap_or_else(|| "i".into());
        let index = self.fresh(&index_name, iter.span, Kind::Int);
        // The element binding of `for x in s.iter()`: `let x = s[i]` first in the body.
        let mut prologue = Vec::new();
        let mut bind_elem = None;
        if let Some((name, span, slice)) = &iter.elem {
            let kind = match self.vars[*slice].kind {
                Kind::Slice(f) => Kind::Float(f),
                k => k,
            };
            let elem = self.fresh(name, *span, kind);
            let s = &self.vars[*slice].ident;
            let i = &self.vars[index].ident;
            prologue.push(S::Assign {
                var: elem,
                expr: syn::parse_quote!(#s[#i]),
                op: AssignOp::Set,
                decl: true,
            });
            bind_elem = Some((name.clone(), elem));
        }
        let scope = self.env.len();
        if iter.index_name.is_some() {
            self.env.push((index_name, index));
        }
        if let Some(b) = bind_elem {
            self.env.push(b);
        }
        let (lo, hi) = (iter.lo, iter.hi);
        if !stops {
            self.vars[index].loop_var = true;
            let body = self.loop_body(l, prologue, &f.body);
            self.env.truncate(scope);
            self.emit(S::For {
                var: index,
                lo,
                hi,
                inclusive: iter.inclusive,
                rev: iter.rev,
                body,
            });
            return;
        }
        // A loop that may stop early: a `while` over its index, so the reverse sweep
        // replays exactly the iterations that ran.
        self.init_flag(l.brk);
        let end = self.fresh("end", Span::call_site(), Kind::Int);
        let i = self.vars[index].ident.clone();
        let e = self.vars[end].ident.clone();
        let (start, bound, user_cond, step_first, step_last) = match (iter.rev, iter.inclusive) {
            (false, false) => (lo, hi, quote!(#i < #e), None, Some(quote!(#i + 1))),
            (false, true) => (lo, hi, quote!(#i <= #e), None, Some(quote!(#i + 1))),
            (true, false) => (hi, lo, quote!(#i > #e), Some(quote!(#i - 1)), None),
            (true, true) => (
                syn::parse_quote!((#hi) + 1),
                lo,
                quote!(#i > #e),
                Some(quote!(#i - 1)),
                None,
            ),
        };
        self.emit(S::Assign {
            var: index,
            expr: start,
            op: AssignOp::Set,
            decl: true,
        });
        self.emit(S::Assign {
            var: end,
            expr: bound,
            op: AssignOp::Set,
            decl: true,
        });
        let cond = self.loop_cond(&l, has_return(&f.body), Some(syn::parse_quote!(#user_cond)));
        if let Some(step) = step_first {
            prologue.insert(
                0,
                S::Assign {
                    var: index,
                    expr: syn::parse_quote!(#step),
                    op: AssignOp::Set,
                    decl: false,
                },
            );
        }
        let mut body = self.loop_body(l, prologue, &f.body);
        self.env.truncate(scope);
        if let Some(step) = step_last {
            body.push(S::Assign {
                var: index,
                expr: syn::parse_quote!(#step),
                op: AssignOp::Set,
                decl: false,
            });
        }
        self.emit(S::While { cond, body });
    }

    /// What a `for` iterates over.
    fn iteration(&mut self, pat: &Pat, e: &Expr) -> Option<Iteration> {
        let name_of = |p: &Pat| -> Option<(Option<String>, Span)> {
            match p {
                Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                    Some((Some(pi.ident.to_string()), pi.ident.span()))
                }
                Pat::Wild(w) => Some((None, w.underscore_token.span)),
                Pat::Reference(r) if r.mutability.is_none() => match &*r.pat {
                    Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                        Some((Some(pi.ident.to_string()), pi.ident.span()))
                    }
                    Pat::Wild(w) => Some((None, w.underscore_token.span)),
                    _ => None,
                },
                _ => None,
            }
        };
        let unsupported = |n: &Self| {
            n.error(e, format!("the static path of #[differentiable] iterates over ranges (`a..b`, `a..=b`, `(a..b).rev()`) and over slices (`s.iter()`, `s.iter().enumerate()`); {TAPE_HINT}"));
            None
        };
        // A range, maybe reversed.
        let (range, rev) = match strip(e) {
            Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                (strip(&m.receiver), true)
            }
            other => (other, false),
        };
        if let Expr::Range(r) = range {
            let (Some(lo), Some(hi)) = (&r.start, &r.end) else {
                return unsupported(self);
            };
            let Some((index_name, span)) = (match pat {
                Pat::Ident(_) | Pat::Wild(_) => name_of(pat),
                _ => None,
            }) else {
                self.error(pat, "bind the index of a range loop to one name");
                return None;
            };
            return Some(Iteration {
                index_name,
                span,
                elem: None,
                lo: self.operand(lo),
                hi: self.operand(hi),
                inclusive: matches!(r.limits, syn::RangeLimits::Closed(_)),
                rev,
            });
        }
        if rev {
            return unsupported(self);
        }
        // `s.iter()`, `&s`, `s`, `s.iter().enumerate()` over a slice parameter.
        let (inner, enumerate) = match strip(e) {
            Expr::MethodCall(m) if m.method == "enumerate" && m.args.is_empty() => {
                (strip(&m.receiver), true)
            }
            other => (other, false),
        };
        let slice_expr = match inner {
            Expr::MethodCall(m) if m.method == "iter" && m.args.is_empty() => strip(&m.receiver),
            Expr::Reference(r) if r.mutability.is_none() && !enumerate => strip(&r.expr),
            other if !enumerate => other,
            _ => return unsupported(self),
        };
        let slice = match slice_expr {
            Expr::Path(p) => p
                .path
                .get_ident()
                .and_then(|i| self.lookup(&i.to_string()))
                .filter(|&v| matches!(self.vars[v].kind, Kind::Slice(_))),
            _ => None,
        };
        let Some(slice) = slice else {
            return unsupported(self);
        };
        let (index_name, elem_pat) = if enumerate {
            match pat {
                Pat::Tuple(t) if t.elems.len() == 2 => {
                    let Some((index, _)) = name_of(&t.elems[0]) else {
                        self.error(&t.elems[0], "bind the index to one name");
                        return None;
                    };
                    (index, &t.elems[1])
                }
                _ => {
                    self.error(
                        pat,
                        "bind `(index, element)` of `enumerate()` as a pair of names",
                    );
                    return None;
                }
            }
        } else {
            (None, pat)
        };
        let Some((elem_name, span)) = name_of(elem_pat) else {
            self.error(
                elem_pat,
                "bind the element of a slice loop to one name (`x` or `&x`)",
            );
            return None;
        };
        let s = &self.vars[slice].ident;
        Some(Iteration {
            index_name,
            span,
            elem: elem_name.map(|n| (n, span, slice)),
            lo: syn::parse_quote!(0),
            hi: syn::parse_quote!(#s.len()),
            inclusive: false,
            rev: false,
        })
    }

    /// Renames an expression and lifts the control flow and slice sums inside it into
    /// statements that assign temporaries.
    fn operand(&mut self, e: &Expr) -> Expr {
        let mut e = e.clone();
        Rename { n: self }.visit_expr_mut(&mut e);
        e
    }

    /// Gives every variable the kind of what is assigned to it, until nothing changes.
    fn infer_kinds(&mut self) {
        let stmts = self.out.last().cloned().unwrap_or_default();
        loop {
            let mut changed = false;
            self.infer_in(&stmts, &mut changed);
            if !changed {
                break;
            }
        }
    }

    fn infer_in(&mut self, stmts: &[S], changed: &mut bool) {
        for s in stmts {
            match s {
                S::Assign { var, expr, .. } => {
                    if self.vars[*var].kind == Kind::Other {
                        let k = kind_of(expr, &self.vars, &self.by_ident, self.sig.float);
                        if k != Kind::Other {
                            self.vars[*var].kind = k;
                            *changed = true;
                        }
                    }
                }
                S::If { then, else_, .. } => {
                    self.infer_in(then, changed);
                    self.infer_in(else_, changed);
                }
                S::For { body, .. } | S::While { body, .. } => self.infer_in(body, changed),
            }
        }
    }
}

struct Iteration {
    /// The user's name of the index (`None` for `_` or an element loop).
    index_name: Option<String>,
    span: Span,
    /// For a slice loop: the element's name, its span and the slice.
    elem: Option<(String, Span, usize)>,
    lo: Expr,
    hi: Expr,
    inclusive: bool,
    rev: bool,
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        e => e,
    }
}

fn compound(op: &syn::BinOp) -> Option<AssignOp> {
    match op {
        syn::BinOp::AddAssign(_) => Some(AssignOp::Add),
        syn::BinOp::SubAssign(_) => Some(AssignOp::Sub),
        syn::BinOp::MulAssign(_) => Some(AssignOp::Mul),
        syn::BinOp::DivAssign(_) => Some(AssignOp::Div),
        _ => None,
    }
}

/// Renames variables and lifts what must become statements.
struct Rename<'n, 'a> {
    n: &'n mut Norm<'a>,
}

impl VisitMut for Rename<'_, '_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Path(_) if self.n.array_of(e).is_some() => self.n.error(
                &*e,
                format!("the static path of #[differentiable] takes a local array as a call argument, as `p[k]` with a literal `k`, or as `p.len()`; {TAPE_HINT}"),
            ),
            Expr::Path(p) if p.qself.is_none() => {
                if let Some(ident) = p.path.get_ident() {
                    if let Some(v) = self.n.lookup(&ident.to_string()) {
                        let mut new = self.n.vars[v].ident.clone();
                        new.set_span(ident.span());
                        *e = syn::parse_quote!(#new);
                    }
                }
            }
            Expr::Block(b) if b.label.is_some() || !b.attrs.is_empty() => self.n.error(
                &*e,
                format!("labeled blocks are not supported by the static path of #[differentiable]; {TAPE_HINT}"),
            ),
            Expr::If(_) | Expr::Block(_) | Expr::Loop(_) => {
                let span = e.span();
                let tmp = self.n.fresh("tmp", span, Kind::Other);
                let t = Target {
                    var: tmp,
                    decl: true,
                };
                let taken = std::mem::replace(e, syn::parse_quote!(()));
                self.n.value(&taken, t);
                *e = self.n.path_of(tmp);
            }
            Expr::Index(ix) if self.n.array_of(&ix.expr).is_some() => {
                match self.n.array_elem(ix) {
                    Some(v) => *e = self.n.path_of(v),
                    None => self.n.error(&ix.index, format!("the static path of #[differentiable] indexes a local array with integer literals only (`p[0]`); {TAPE_HINT}")),
                }
            }
            Expr::MethodCall(m)
                if m.method == "len" && m.args.is_empty() && self.n.array_of(&m.receiver).is_some() =>
            {
                let n = self.n.array_of(&m.receiver).and_then(|v| self.n.vars[v].elems.as_ref()).map_or(0, Vec::len);
                let lit = proc_macro2::Literal::usize_unsuffixed(n);
                *e = syn::parse_quote!(#lit);
            }
            Expr::Call(c) if user_call(c).is_some() && c.args.iter().any(|a| self.n.aggregate_arg(a)) => {
                if let Some(what) = self.n.no_lift {
                    return self.n.error(&*e, format!("a call with a slice or array argument in {what} is not supported by the static path of #[differentiable]; compute it into a variable first, or {TAPE_HINT}"));
                }
                let Some(func) = user_call(c).cloned() else { return };
                if let Some(tmp) = self.n.lift_call(c, &func) {
                    *e = self.n.path_of(tmp);
                }
            }
            Expr::MethodCall(m) if is_slice_sum(m) && self.n.no_lift.is_some() => {
                self.n.error(&*e, format!("`.iter().sum()` in a `while` condition is not supported by the static path of #[differentiable]; compute it into a variable first, or {TAPE_HINT}"));
            }
            Expr::MethodCall(m) if is_slice_sum(m) => {
                // `s.iter().sum()`: a summing loop over the slice.
                let Expr::MethodCall(iter) = strip(&m.receiver) else {
                    return;
                };
                let mut slice = (*iter.receiver).clone();
                self.visit_expr_mut(&mut slice);
                let kind = match strip(&slice) {
                    Expr::Path(p) => p
                        .path
                        .get_ident()
                        .and_then(|i| self.n.by_ident.get(&i.to_string()).copied())
                        .map(|v| self.n.vars[v].kind),
                    _ => None,
                };
                let Some(Kind::Slice(f)) = kind else {
                    self.n.error(&iter.receiver, format!("`.iter().sum()` is supported over slice parameters only; {TAPE_HINT}"));
                    return;
                };
                let span = m.method.span();
                let acc = self.n.fresh("sum", span, Kind::Float(f));
                let k = self.n.fresh("k", span, Kind::Int);
                self.n.vars[k].loop_var = true;
                let (acc_i, k_i) = (self.n.vars[acc].ident.clone(), self.n.vars[k].ident.clone());
                let zero = crate::emit::float_lit(0.0, f, span);
                self.n.emit(S::Assign {
                    var: acc,
                    expr: syn::parse_quote!(#zero),
                    op: AssignOp::Set,
                    decl: true,
                });
                self.n.emit(S::For {
                    var: k,
                    lo: syn::parse_quote!(0),
                    hi: syn::parse_quote!(#slice.len()),
                    inclusive: false,
                    rev: false,
                    body: vec![S::Assign {
                        var: acc,
                        expr: syn::parse_quote!(#slice[#k_i]),
                        op: AssignOp::Add,
                        decl: false,
                    }],
                });
                *e = syn::parse_quote!(#acc_i);
            }
            Expr::Closure(c) => self.n.error(
                c,
                format!("closures are not supported by the static path of #[differentiable]; {TAPE_HINT}"),
            ),
            Expr::Macro(m) => self.n.error(
                &m.mac,
                format!("macro calls are not supported by the static path of #[differentiable]; {TAPE_HINT}"),
            ),
            Expr::Match(m) => self.n.error(
                m.match_token,
                format!("`match` is not supported by the static path of #[differentiable]; use `if`/`else`, or {TAPE_HINT}"),
            ),
            Expr::ForLoop(_) | Expr::While(_) | Expr::Return(_) | Expr::Break(_) | Expr::Continue(_) => self.n.error(
                &*e,
                "this control flow is not supported inside an expression by the static path of #[differentiable]; make it a statement",
            ),
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
}

/// `s.clone()`, `s.to_vec()`, `s.to_owned()`: copies, the identity for gradients.
fn is_copy_method(m: &syn::ExprMethodCall) -> bool {
    m.args.is_empty()
        && matches!(
            m.method.to_string().as_str(),
            "clone" | "to_vec" | "to_owned"
        )
}

/// The path of a call of a user function (`g(..)`, `m::g(..)`), as opposed to a
/// tensor constructor or a float or integer type's associated function.
pub fn user_call(c: &syn::ExprCall) -> Option<&syn::Path> {
    let Expr::Path(p) = strip(&c.func) else {
        return None;
    };
    if p.qself.is_some() || p.path.segments.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let lower = |s: &String| s.starts_with(|ch: char| ch.is_lowercase() || ch == '_');
    let typed = segs[..segs.len() - 1]
        .iter()
        .any(|s| !lower(s) || s == "f32" || s == "f64" || parse::is_int_type(s));
    (segs.last().is_some_and(lower) && !typed && segs[0] != "std" && segs[0] != "core")
        .then_some(&p.path)
}

/// `let p = [a, b, ..];` (optionally typed): the name and the elements.
fn local_array(
    local: &syn::Local,
) -> Option<(&Ident, &syn::punctuated::Punctuated<Expr, syn::Token![,]>)> {
    let pat = match &local.pat {
        Pat::Type(pt) => &*pt.pat,
        p => p,
    };
    let Pat::Ident(pi) = pat else { return None };
    if pi.subpat.is_some() || pi.by_ref.is_some() {
        return None;
    }
    let init = local.init.as_ref().filter(|i| i.diverge.is_none())?;
    match strip(&init.expr) {
        Expr::Array(a) => Some((&pi.ident, &a.elems)),
        _ => None,
    }
}

fn is_slice_sum(m: &syn::ExprMethodCall) -> bool {
    m.method == "sum"
        && m.args.is_empty()
        && matches!(strip(&m.receiver), Expr::MethodCall(i) if i.method == "iter" && i.args.is_empty())
}

/// The kind of a renamed expression.
pub fn kind_of(
    e: &Expr,
    vars: &[Var],
    by_ident: &HashMap<String, usize>,
    default: FloatTy,
) -> Kind {
    let k = |e: &Expr| kind_of(e, vars, by_ident, default);
    match e {
        Expr::Lit(l) => match &l.lit {
            syn::Lit::Float(f) => Kind::Float(match f.suffix() {
                "f32" => FloatTy::F32,
                "f64" => FloatTy::F64,
                _ => default,
            }),
            syn::Lit::Int(i) => match i.suffix() {
                "f32" => Kind::Float(FloatTy::F32),
                "f64" => Kind::Float(FloatTy::F64),
                _ => Kind::Int,
            },
            syn::Lit::Bool(_) => Kind::Bool,
            _ => Kind::Other,
        },
        Expr::Paren(p) => k(&p.expr),
        Expr::Group(g) => k(&g.expr),
        Expr::Reference(r) => k(&r.expr),
        Expr::Path(p) => match p.path.get_ident() {
            Some(i) => by_ident
                .get(&i.to_string())
                .map_or(Kind::Other, |&v| vars[v].kind),
            None => p
                .path
                .segments
                .iter()
                .find_map(|s| match s.ident.to_string().as_str() {
                    "f32" => Some(Kind::Float(FloatTy::F32)),
                    "f64" => Some(Kind::Float(FloatTy::F64)),
                    _ => None,
                })
                .unwrap_or(Kind::Other),
        },
        Expr::Unary(u) => match u.op {
            syn::UnOp::Not(_) => match k(&u.expr) {
                Kind::Int => Kind::Int,
                _ => Kind::Bool,
            },
            _ => k(&u.expr),
        },
        Expr::Binary(b) => {
            use syn::BinOp as B;
            match b.op {
                B::Lt(_)
                | B::Le(_)
                | B::Gt(_)
                | B::Ge(_)
                | B::Eq(_)
                | B::Ne(_)
                | B::And(_)
                | B::Or(_) => Kind::Bool,
                _ => match (k(&b.left), k(&b.right)) {
                    (t @ Kind::Tensor(_), _) | (_, t @ Kind::Tensor(_)) => t,
                    (f @ Kind::Float(_), _) | (_, f @ Kind::Float(_)) => f,
                    (Kind::Int, _) | (_, Kind::Int) => Kind::Int,
                    (Kind::Bool, Kind::Bool) => Kind::Bool,
                    _ => Kind::Other,
                },
            }
        }
        Expr::Cast(c) => match parse::classify(&c.ty) {
            Some((Ty::Float(f), false)) => Kind::Float(f),
            Some((Ty::Int, false)) => Kind::Int,
            _ => Kind::Other,
        },
        Expr::Index(i) => match k(&i.expr) {
            Kind::Slice(f) => Kind::Float(f),
            _ => Kind::Other,
        },
        Expr::MethodCall(m) => {
            let name = m.method.to_string();
            match name.as_str() {
                "len" => Kind::Int,
                "is_nan" | "is_finite" | "is_infinite" | "is_sign_positive"
                | "is_sign_negative" => Kind::Bool,
                "powi" | "powf" => match k(&m.receiver) {
                    t @ Kind::Tensor(_) => t,
                    Kind::Float(f) => Kind::Float(f),
                    _ => Kind::Float(default),
                },
                // Full reductions of a tensor give its element type (`min` and `max`
                // with an argument are the float methods, a float as well).
                "sum" | "mean" | "norm" | "max" | "min" | "dot" => match k(&m.receiver) {
                    Kind::Tensor(f) | Kind::Slice(f) | Kind::Float(f) => Kind::Float(f),
                    other => other,
                },
                "clone" | "detach" => k(&m.receiver),
                _ => match k(&m.receiver) {
                    Kind::Slice(f) => Kind::Float(f),
                    other => other,
                },
            }
        }
        // A tensor constructor (`Tensor::zeros(..)`).
        Expr::Call(c) if matches!(&*c.func, Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor")) => {
            Kind::Tensor(default)
        }
        // A call of a user function: a float (`_vjp` companions return floats).
        Expr::Call(_) => Kind::Float(default),
        _ => Kind::Other,
    }
}

/// Which exits a statement may take, not counting those of loops nested inside it.
#[derive(Default)]
struct ExitScan {
    ret: bool,
    brk: bool,
    cont: bool,
    depth: usize,
}

impl<'ast> Visit<'ast> for ExitScan {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::Return(_) => self.ret = true,
            Expr::Break(_) if self.depth == 0 => self.brk = true,
            Expr::Continue(_) if self.depth == 0 => self.cont = true,
            Expr::ForLoop(_) | Expr::While(_) | Expr::Loop(_) => {
                self.depth += 1;
                visit::visit_expr(self, e);
                self.depth -= 1;
                return;
            }
            Expr::Closure(_) => return,
            _ => {}
        }
        visit::visit_expr(self, e);
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Whether a `return` occurs anywhere but as the last statement of the body.
fn has_early_return(block: &syn::Block) -> bool {
    let mut scan = ExitScan::default();
    crate::route::visit_body(block, &mut scan);
    scan.ret
}

fn has_return(block: &syn::Block) -> bool {
    let mut scan = ExitScan::default();
    scan.visit_block(block);
    scan.ret
}

/// Finds control flow in an expression (where lifting would change when it runs): what
/// a condition may not contain on this path, which the router also asks.
pub struct FlowScan(pub Option<Span>);

impl<'ast> Visit<'ast> for FlowScan {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.0.is_none()
            && matches!(
                e,
                Expr::If(_)
                    | Expr::Block(_)
                    | Expr::Loop(_)
                    | Expr::ForLoop(_)
                    | Expr::While(_)
                    | Expr::Return(_)
                    | Expr::Break(_)
                    | Expr::Continue(_)
            )
        {
            self.0 = Some(e.span());
        }
        visit::visit_expr(self, e);
    }
}
