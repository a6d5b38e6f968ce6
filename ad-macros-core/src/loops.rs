//! The static path for bodies with loops, slices and early exits: Tapenade's
//! reversal at the level of statements, with the SSA pipeline for each statement.
//!
//! The body is first normalized ([`control`]) into assignments, `if`, `for` over a
//! range and `while`. Then:
//!
//! - every assignment `v op= e` whose target is active gets its local adjoint from
//!   the pipeline of straight-line code ([`lower`], [`adjoint`], [`simplify`],
//!   [`emit`]): `e` with each float variable, slice element `s[i]` and integer cast
//!   replaced by a parameter is a small function whose `_vjp` body is inlined in the
//!   reverse sweep. Its IR also says which inputs the gradient actually reads (`s` in
//!   `s += x * x` is not read, `x` is);
//! - a variable is *needed* when the reverse sweep reads its value: a gradient input,
//!   an index, an integer the adjoint uses. An assignment that overwrites a needed
//!   value saves the old value first (a [`Stack`] inside loops, a local outside) and
//!   the reverse sweep restores it before differentiating the assignment. Values that
//!   are not needed (accumulators like `s += ..`) and values assigned once outside
//!   loops are never saved;
//! - a `let` at the top of a loop body whose inputs the loop does not change
//!   (`let d = x[i] - x[j]`) is recomputed at the start of each reverse iteration
//!   instead of saved;
//! - each `if` records its condition, each `for` its bounds, each `while` its trip
//!   count (locals outside loops, stacks inside), and the reverse sweep replays them:
//!   `for i in (lo..hi).rev()`, `for _ in 0..n`, `if c`.
//!
//! Tensors take the same path. A tensor variable's adjoint is an `Option<Tensor>`,
//! `None` until a contribution reaches it (then that gradient's buffer is moved in,
//! later ones are summed in place by `emit_support::acc_adj`), and a statement whose
//! target's adjoint is still `None` is skipped in reverse. The forward sweep reads
//! tensor variables through references (`b * 2.0` -> `(&b) * 2.0`) so that it never
//! moves a value the reverse sweep reads; an overwritten tensor that is needed moves
//! onto a `Stack<Tensor>` (`push(mem::replace(&mut b, new))`, no copy). A tensor
//! statement's local adjoint drops the statement's value, so the reverse sweep
//! recomputes only what the gradients read.
//!
//! Before/after, for `let mut x = x0; for _ in 0..n { x = r * x * (1.0 - x); } x`
//! (the reverse sweep, simplified):
//!
//! ```text
//! for i in lo..hi {                      for i in (lo..hi).rev() {
//!     stack.push(x);                         let g = x_d; x_d = 0.0;
//!     x = r * x * (1.0 - x);                 x = stack.pop();
//! }                                          // the vjp of r·x·(1-x), inlined
//!                                            x_d += g * r * (1.0 - 2.0 * x);
//!                                            r_d += g * x * (1.0 - x);
//!                                        }
//! ```
//!
//! [`control`]: crate::control
//! [`lower`]: crate::lower
//! [`adjoint`]: crate::adjoint
//! [`simplify`]: crate::simplify
//! [`emit`]: crate::emit
//! [`Stack`]: https://docs.rs/ad-runtime

use crate::control::{self, AssignOp, Body, Kind, S};
use crate::ctxt::Ctxt;
use crate::emit::{self, Which};
use crate::ir::{FloatTy, Func, Id, Node, Op, Origin, Ty};
use crate::parse::{Param, Signature};
use crate::{adjoint, lower, simplify};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use std::collections::{HashMap, HashSet};
use syn::visit::Visit;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident};

/// Whether a body needs this path rather than the straight-line one: loops, `break`,
/// `continue`, an early `return`, indexing, an array literal (a call's argument or a
/// local array), or a slice parameter.
pub fn applies(sig: &Signature, block: &syn::Block) -> bool {
    if sig.params.iter().any(|p| matches!(p.kind, Ty::Slice(_))) {
        return true;
    }
    let mut scan = Uses::default();
    crate::route::visit_body(block, &mut scan);
    scan.control
}

#[derive(Default)]
struct Uses {
    control: bool,
}

impl<'ast> Visit<'ast> for Uses {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if matches!(
            e,
            Expr::ForLoop(_)
                | Expr::While(_)
                | Expr::Loop(_)
                | Expr::Break(_)
                | Expr::Continue(_)
                | Expr::Return(_)
                | Expr::Index(_)
        ) {
            self.control = true;
        }
        // A call with an array literal argument is lifted into its own statement.
        if let Expr::Call(c) = e {
            let array = |a: &Expr| match a {
                Expr::Reference(r) => matches!(&*r.expr, Expr::Array(_)),
                a => matches!(a, Expr::Array(_)),
            };
            if control::user_call(c).is_some() && c.args.iter().any(array) {
                self.control = true;
            }
            // Tensor constructors (`Tensor::ones(&[3])`): taken by this path only.
            if matches!(&*c.func, Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor"))
            {
                self.control = true;
            }
        }
        syn::visit::visit_expr(self, e);
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        // `let p = [..];`: a local array, one variable per element.
        if l.init
            .as_ref()
            .is_some_and(|i| matches!(&*i.expr, Expr::Array(_)))
        {
            self.control = true;
        }
        syn::visit::visit_local(self, l);
    }
}

/// Expands `NAME_grad` (for a float result) and `NAME_vjp`; errors go to `cx`.
pub fn expand(cx: &Ctxt, sig: &Signature, block: &syn::Block) -> TokenStream {
    if !matches!(sig.ret_kind, Ty::Float(_) | Ty::Tensor(_)) {
        cx.error_spanned_by(&sig.ret, "a body with loops, indexing or an early `return` returns a float or a tensor on the static path of #[differentiable]; remove `static` to run the function on the tape");
        return TokenStream::new();
    }
    let body = control::normalize(cx, sig, block);
    if cx.has_errors() {
        return TokenStream::new();
    }
    check_tensor_body(cx, &body);
    if cx.has_errors() {
        return TokenStream::new();
    }
    let plan = Plan::build(cx, sig, &body);
    if cx.has_errors() {
        return TokenStream::new();
    }
    // `_grad` exists for a float result only.
    let grad = match sig.ret_kind {
        Ty::Float(_) => plan.function(Which::Grad),
        _ => TokenStream::new(),
    };
    let vjp = plan.function(Which::Vjp);
    quote!(#grad #vjp)
}

/// Among tensors, the statement-level path takes neither calls of other functions
/// (it types every call as a float) nor indexing of anything but a slice parameter;
/// the router sends such bodies to the tape unless `static` was asked for.
fn check_tensor_body(cx: &Ctxt, body: &Body) {
    if !body.vars.iter().any(|v| matches!(v.kind, Kind::Tensor(_))) {
        return;
    }
    struct Scan<'b> {
        cx: &'b Ctxt,
        body: &'b Body,
    }
    impl<'ast> Visit<'ast> for Scan<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Call(c) if !matches!(&*c.func, Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor")) =>
                {
                    self.cx.error_spanned_by(&c.func, "calls of other functions in a body with loops and tensors are not supported by the static path of #[differentiable]; remove `static` to run the function on the tape");
                    return;
                }
                Expr::Index(i) => {
                    let slice = var_of(&self.body.by_ident, &i.expr)
                        .is_some_and(|v| matches!(self.body.vars[v].kind, Kind::Slice(_)));
                    if !slice {
                        self.cx.error_spanned_by(i, "the static path of #[differentiable] indexes only slice, `Vec` and array parameters in a body with tensors; remove `static` to run the function on the tape");
                        return;
                    }
                }
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
    }
    let mut scan = Scan { cx, body };
    walk(&body.stmts, &mut |s| match s {
        S::Assign { expr, .. } => scan.visit_expr(expr),
        S::If { cond, .. } | S::While { cond, .. } => scan.visit_expr(cond),
        S::For { lo, hi, .. } => {
            scan.visit_expr(lo);
            scan.visit_expr(hi);
        }
    });
}

/// Where a recorded value lives.
#[derive(Clone)]
struct Record {
    ident: Ident,
    /// A [`Stack`] (inside loops) or a local (executed at most once).
    stack: bool,
}

/// One input of a statement's local adjoint.
#[derive(Clone)]
enum Input {
    /// A float variable.
    Var(usize),
    /// An element `s[idx]` of a slice parameter.
    Elem(usize, Expr),
    /// A constant computed by the forward expression (`i as f64`, a `powi` exponent).
    Value(Expr),
    /// A constant tensor (`Tensor::ones(&[3])`), passed by reference.
    TensorValue(Expr),
}

/// The local adjoint of one assignment.
struct StmtAd {
    inputs: Vec<Input>,
    /// The inputs with a gradient, in the order the `_vjp` returns them.
    diff: Vec<usize>,
    /// The `let` bindings of the inlined `_vjp` body: (pattern, type) per input, seed last.
    params: Vec<(TokenStream, TokenStream)>,
    body: Vec<syn::Stmt>,
    /// `v -= e`: the seed is negated.
    negate: bool,
}

/// How the reverse sweep differentiates one assignment.
enum Local {
    /// The inlined `_vjp` of the right-hand side.
    Expr(StmtAd),
    /// A lifted call ([`control::Call`]) of the assigned variable: `f_vjp` on the
    /// call's arguments.
    Call(usize),
}

#[derive(Default)]
struct Info {
    /// Assignments: where the old value goes before it is overwritten.
    save: Option<Record>,
    /// Assignments to an active variable: the local adjoint (`None` when no input is
    /// active).
    ad: Option<Local>,
    /// `if`/`for`/`while`: where the condition, bounds or trip count go.
    record: Option<Record>,
    /// Loops: the `let`s of the body recomputed at the start of a reverse iteration.
    recompute: Vec<usize>,
}

struct Plan<'a> {
    sig: &'a Signature,
    body: &'a Body,
    active: Vec<bool>,
    needed: Vec<bool>,
    /// Keyed by the statement's address in `body` (which is not moved meanwhile).
    info: HashMap<*const S, Info>,
    stacks: Vec<Ident>,
    slots: Vec<Ident>,
}

impl<'a> Plan<'a> {
    fn build(cx: &Ctxt, sig: &'a Signature, body: &'a Body) -> Plan<'a> {
        let n = body.vars.len();
        let mut plan = Plan {
            sig,
            body,
            active: vec![false; n],
            needed: vec![false; n],
            info: HashMap::new(),
            stacks: Vec::new(),
            slots: Vec::new(),
        };
        plan.activity();
        let mut counts = vec![0usize; n];
        count_assigns(&body.stmts, &mut counts);
        let mut recomputable = vec![false; n];
        plan.local_adjoints(cx, &body.stmts);
        plan.loops(&body.stmts, &counts, &mut recomputable, &mut Vec::new());
        plan.records(&body.stmts, false, &recomputable);
        plan
    }

    fn vars_in(&self, e: &Expr) -> Vec<usize> {
        let mut f = VarsIn {
            by_ident: &self.body.by_ident,
            found: Vec::new(),
        };
        f.visit_expr(e);
        f.found
    }

    /// Active: a float that depends on a differentiated parameter.
    fn activity(&mut self) {
        for (v, var) in self.body.vars.iter().enumerate() {
            if let Some(p) = var.param {
                self.active[v] = self.sig.params[p].diff;
            }
        }
        loop {
            let mut changed = false;
            walk(&self.body.stmts, &mut |s| {
                if let S::Assign { var, expr, .. } = s {
                    let float =
                        matches!(self.body.vars[*var].kind, Kind::Float(_) | Kind::Tensor(_));
                    if float
                        && !self.active[*var]
                        && self.vars_in(expr).iter().any(|&u| self.active[u])
                    {
                        self.active[*var] = true;
                        changed = true;
                    }
                }
            });
            if !changed {
                break;
            }
        }
    }

    /// Builds the local adjoint of every assignment to an active variable.
    fn local_adjoints(&mut self, cx: &Ctxt, stmts: &'a [S]) {
        for s in stmts {
            match s {
                S::Assign { var, expr, op, .. } => {
                    if !self.active[*var] {
                        continue;
                    }
                    if let Some(call) = self.body.calls.get(var) {
                        // The reverse sweep passes the arguments again.
                        for (arg, _) in &call.args {
                            match arg {
                                control::CallArg::Scalar(v) => self.needed[*v] = true,
                                control::CallArg::Array(vs) => {
                                    vs.iter().for_each(|&v| self.needed[v] = true)
                                }
                                control::CallArg::Slice { range, .. } => {
                                    let (lo, hi) = range.unwrap_or((None, None));
                                    lo.into_iter().chain(hi).for_each(|v| self.needed[v] = true)
                                }
                            }
                        }
                        self.info.entry(s as *const S).or_default().ad = Some(Local::Call(*var));
                        continue;
                    }
                    let ad = self.local_adjoint(cx, *var, expr, *op);
                    if let Some((ad, needed)) = &ad {
                        for (input, &needed) in ad.inputs.iter().zip(needed) {
                            match input {
                                Input::Var(u) if needed => self.needed[*u] = true,
                                Input::Var(_) => {}
                                Input::Elem(_, idx) => self.mark_needed(idx),
                                Input::Value(e) | Input::TensorValue(e) => self.mark_needed(e),
                            }
                        }
                    }
                    // Integers and constants the expression reads stay as they are
                    // and are read again in the reverse sweep.
                    for u in self.vars_in(expr) {
                        if !matches!(self.body.vars[u].kind, Kind::Float(_) | Kind::Tensor(_)) {
                            self.needed[u] = true;
                        }
                    }
                    self.info.entry(s as *const S).or_default().ad = ad.map(|a| Local::Expr(a.0));
                }
                S::If { then, else_, .. } => {
                    self.local_adjoints(cx, then);
                    self.local_adjoints(cx, else_);
                }
                S::For { body, .. } | S::While { body, .. } => self.local_adjoints(cx, body),
            }
        }
    }

    fn mark_needed(&mut self, e: &Expr) {
        for u in self.vars_in(e) {
            self.needed[u] = true;
        }
    }

    fn local_adjoint(
        &self,
        cx: &Ctxt,
        var: usize,
        expr: &Expr,
        op: AssignOp,
    ) -> Option<(StmtAd, Vec<bool>)> {
        let target = &self.body.vars[var].ident;
        let (width, tensor) = match self.body.vars[var].kind {
            Kind::Float(f) => (f, false),
            Kind::Tensor(f) => (f, true),
            _ => return None,
        };
        let expr: Expr = match op {
            AssignOp::Set => expr.clone(),
            // A scalar accumulator keeps its adjoint and passes it to `e`. A tensor one
            // may broadcast `e` (`acc += b` with `b: [3]`, `acc -= x` with `x: f64`), so
            // the whole `acc ± e` is differentiated: its pullback sums the seed down to
            // each operand's shape.
            AssignOp::Add | AssignOp::Sub if !tensor => expr.clone(),
            AssignOp::Add => syn::parse_quote!(#target + (#expr)),
            AssignOp::Sub => syn::parse_quote!(#target - (#expr)),
            AssignOp::Mul => syn::parse_quote!(#target * (#expr)),
            AssignOp::Div => syn::parse_quote!(#target / (#expr)),
        };
        let mut sub = Substitute {
            plan: self,
            cx,
            inputs: Vec::new(),
            params: Vec::new(),
            keys: HashMap::new(),
        };
        let mut e = expr;
        sub.visit_expr_mut(&mut e);
        let Substitute { inputs, params, .. } = sub;
        if !params.iter().any(|p| p.diff) {
            return None;
        }
        let (ret, ret_kind): (syn::Type, Ty) = if tensor {
            let f = format_ident!("{}", width.name());
            (
                syn::parse_quote!(::adjoint::__private::Tensor<#f>),
                Ty::Tensor(width),
            )
        } else {
            (syn::parse_str(width.name()).ok()?, Ty::Float(width))
        };
        let ssig = Signature {
            vis: syn::Visibility::Inherited,
            ident: format_ident!("__ad_stmt"),
            params: params.clone(),
            ret,
            ret_kind,
            float: width,
        };
        let block: syn::Block = syn::parse_quote!({ #e });
        let primal = lower::lower(cx, &ssig, &block);
        if cx.has_errors() {
            return None;
        }
        let mut func = adjoint::build(&primal, &ssig, adjoint::Seed::Adjoint);
        if tensor {
            // The reverse sweep discards the statement's value: a float zero in its
            // place lets `simplify` drop the primal tensor work the gradients do not
            // read, instead of recomputing the value in every reverse iteration.
            let zero = func.push(Node {
                op: Op::Const(0.0),
                ty: Ty::Float(width),
                span: Span::call_site(),
                origin: Origin::Adjoint,
                hint: None,
            });
            func.body.nodes.push(zero);
            if let Some(value) = func.outputs.first_mut() {
                *value = zero;
            }
        }
        let func = simplify::run(&func);
        let needed = params_read_by_gradients(&func, params.len());
        let item: syn::ItemFn = syn::parse2(emit::emit(&func, &ssig, Which::Vjp)).ok()?;
        let mut bindings = Vec::new();
        for input in &item.sig.inputs {
            if let syn::FnArg::Typed(pt) = input {
                let (pat, ty) = (&pt.pat, &pt.ty);
                bindings.push((quote!(#pat), quote!(#ty)));
            }
        }
        let diff = (0..params.len()).filter(|&k| params[k].diff).collect();
        Some((
            StmtAd {
                inputs,
                diff,
                params: bindings,
                body: item.block.stmts,
                negate: op == AssignOp::Sub && !tensor,
            },
            needed,
        ))
    }

    /// Finds the `let`s each loop recomputes in reverse instead of saving.
    fn loops(
        &mut self,
        stmts: &'a [S],
        counts: &[usize],
        recomputable: &mut [bool],
        loop_vars: &mut Vec<usize>,
    ) {
        for s in stmts {
            match s {
                S::Assign { .. } => {}
                S::If { then, else_, .. } => {
                    self.loops(then, counts, recomputable, loop_vars);
                    self.loops(else_, counts, recomputable, loop_vars);
                }
                S::For { var, .. } => {
                    loop_vars.push(*var);
                    self.loop_body(s, counts, recomputable, loop_vars);
                    loop_vars.pop();
                }
                S::While { .. } => self.loop_body(s, counts, recomputable, loop_vars),
            }
        }
    }

    fn loop_body(
        &mut self,
        s: &'a S,
        counts: &[usize],
        recomputable: &mut [bool],
        loop_vars: &mut Vec<usize>,
    ) {
        let body = match s {
            S::For { body, .. } | S::While { body, .. } => body,
            _ => return,
        };
        let mut changed = vec![0usize; counts.len()];
        count_assigns(body, &mut changed);
        let mut recompute = Vec::new();
        for b in body {
            let S::Assign {
                var,
                expr,
                op: AssignOp::Set,
                decl: true,
            } = b
            else {
                continue;
            };
            if counts[*var] != 1 {
                continue;
            }
            let ok = self.vars_in(expr).iter().all(|&u| {
                loop_vars.contains(&u)
                    || matches!(self.body.vars[u].kind, Kind::Slice(_))
                    || changed[u] == 0
                    || recompute.contains(&u)
            });
            if ok {
                recompute.push(*var);
                recomputable[*var] = true;
            }
        }
        for &v in &recompute {
            for s in body {
                if let S::Assign { var, expr, .. } = s {
                    if *var == v {
                        let expr = expr.clone();
                        self.mark_needed(&expr);
                    }
                }
            }
        }
        self.info.entry(s as *const S).or_default().recompute = recompute;
        self.loops(body, counts, recomputable, loop_vars);
    }

    fn new_record(&mut self, in_loop: bool) -> Record {
        if in_loop {
            let ident = format_ident!("__ad_stack{}", self.stacks.len());
            self.stacks.push(ident.clone());
            Record { ident, stack: true }
        } else {
            let ident = format_ident!("__ad_saved{}", self.slots.len());
            self.slots.push(ident.clone());
            Record {
                ident,
                stack: false,
            }
        }
    }

    /// Decides what each statement records.
    fn records(&mut self, stmts: &'a [S], in_loop: bool, recomputable: &[bool]) {
        for s in stmts {
            let key = s as *const S;
            match s {
                S::Assign { var, decl, .. } => {
                    let v = &self.body.vars[*var];
                    let overwrites = in_loop || !*decl;
                    if self.needed[*var] && !recomputable[*var] && overwrites && !v.loop_var {
                        // A tensor goes on a stack even outside loops: it has no
                        // `Default` to declare a local with, and one push costs nothing.
                        let tensor = matches!(v.kind, Kind::Tensor(_));
                        let r = self.new_record(in_loop || tensor);
                        self.info.entry(key).or_default().save = Some(r);
                    }
                }
                S::If { then, else_, .. } => {
                    let r = self.new_record(in_loop);
                    self.info.entry(key).or_default().record = Some(r);
                    self.records(then, in_loop, recomputable);
                    self.records(else_, in_loop, recomputable);
                }
                S::For { body, .. } | S::While { body, .. } => {
                    let r = self.new_record(in_loop);
                    self.info.entry(key).or_default().record = Some(r);
                    self.records(body, true, recomputable);
                }
            }
        }
    }

    fn info(&self, s: &S) -> Option<&Info> {
        self.info.get(&(s as *const S))
    }

    fn ident(&self, v: usize) -> &Ident {
        &self.body.vars[v].ident
    }

    fn adj(&self, v: usize) -> Ident {
        format_ident!("{}_d", self.body.vars[v].ident)
    }

    /// The element type of a tensor variable.
    fn tensor(&self, v: usize) -> Option<FloatTy> {
        match self.body.vars[v].kind {
            Kind::Tensor(f) => Some(f),
            _ => None,
        }
    }

    /// A tensor variable as a `&Tensor`: parameters taken by reference are one already.
    fn borrow(&self, v: usize) -> TokenStream {
        let ident = self.ident(v);
        match self.body.vars[v].param {
            Some(p) if self.sig.params[p].by_ref => quote!(#ident),
            _ => quote!(&#ident),
        }
    }

    /// An expression of the forward sweep. Tensor variables are read through
    /// references (`b * 2.0` -> `(&b) * 2.0`), so that the forward sweep never moves
    /// a value the reverse sweep or a later iteration reads.
    fn fwd(&self, e: &Expr) -> Expr {
        let mut e = e.clone();
        Borrow { plan: self }.visit_expr_mut(&mut e);
        e
    }

    /// The value of an assignment to a tensor: a bare tensor variable (`ret = b`,
    /// `let c = &b`) is cloned, anything else computes a new tensor.
    fn owned(&self, e: &Expr) -> Expr {
        let mut inner = e;
        loop {
            match inner {
                Expr::Paren(p) => inner = &p.expr,
                Expr::Group(g) => inner = &g.expr,
                Expr::Reference(r) => inner = &r.expr,
                _ => break,
            }
        }
        if let Some(v) = var_of(&self.body.by_ident, inner) {
            if self.tensor(v).is_some() {
                let ident = self.ident(v);
                return syn::parse_quote!(#ident.clone());
            }
        }
        self.fwd(e)
    }

    /// The zero an adjoint starts from: `-0.0`, the exact identity of `+`, so that a
    /// reset followed by a first contribution (`v_d = -0.0; v_d += g`) folds into a
    /// plain assignment. Gradients of parameters start from `+0.0`.
    fn zero(&self, v: usize) -> TokenStream {
        let f = match self.body.vars[v].kind {
            Kind::Float(f) | Kind::Slice(f) => f,
            _ => self.sig.float,
        };
        let z = if self.body.vars[v].param.is_some() {
            0.0
        } else {
            -0.0
        };
        emit::float_lit(z, f, Span::call_site())
    }

    /// The whole companion function.
    fn function(&self, which: Which) -> TokenStream {
        let attrs = emit::attrs(self.sig, which);
        let signature = emit::signature(self.sig, which);
        let mut decls = TokenStream::new();
        for (v, var) in self.body.vars.iter().enumerate() {
            let ident = &var.ident;
            match (var.param, var.kind) {
                (Some(_), Kind::Slice(_) | Kind::Tensor(_)) => {}
                (Some(p), _) => {
                    let name = &self.sig.params[p].ident;
                    decls.extend(quote!(let mut #ident = #name;));
                }
                (None, _) if var.loop_var || var.elems.is_some() => {}
                (None, Kind::Tensor(f)) => {
                    let f = format_ident!("{}", f.name());
                    decls.extend(quote!(let mut #ident: ::adjoint::__private::Tensor<#f> = ::adjoint::__private::emit_support::empty();));
                }
                (None, _) => {
                    decls.extend(quote!(let mut #ident = ::core::default::Default::default();))
                }
            }
            if let (true, Some(f)) = (self.active[v], self.tensor(v)) {
                // A tensor's adjoint is `None` until something reaches it.
                let d = self.adj(v);
                let f = format_ident!("{}", f.name());
                decls.extend(quote!(let mut #d: ::core::option::Option<::adjoint::__private::Tensor<#f>> = ::core::option::Option::None;));
            } else if self.active[v] {
                let d = self.adj(v);
                let zero = self.zero(v);
                let init = match var.param.map(|p| &self.sig.params[p]) {
                    Some(p) if matches!(p.kind, Ty::Slice(_)) => slice_zeros(p, &zero),
                    _ => zero,
                };
                decls.extend(quote!(let mut #d = #init;));
            }
        }
        for s in &self.stacks {
            decls.extend(quote!(let mut #s = ::adjoint::__private::Stack::new();));
        }
        for s in &self.slots {
            decls.extend(quote!(let mut #s = ::core::default::Default::default();));
        }
        let forward = self.forward(&self.body.stmts);
        let reverse = self.reverse(&self.body.stmts);
        let ret_i = self.ident(self.body.ret);
        // The reverse sweep may restore and read the result's variable.
        let ret = match self.tensor(self.body.ret) {
            Some(_) if self.needed[self.body.ret] => quote!(#ret_i.clone()),
            _ => quote!(#ret_i),
        };
        let seed = match which {
            Which::Grad => emit::float_lit(1.0, self.sig.float, Span::call_site()),
            Which::Vjp => {
                let s = emit::seed_ident(self.sig);
                quote!(#s)
            }
        };
        let ret_d = self.adj(self.body.ret);
        let grads: Vec<TokenStream> = self
            .sig
            .diff_params()
            .map(
                |(p, _)| match self.body.vars.iter().position(|v| v.param == Some(p)) {
                    Some(v) if self.active[v] && self.tensor(v).is_some() => {
                        let d = self.adj(v);
                        let x = self.borrow(v);
                        quote!(::adjoint::__private::emit_support::adj_or_zeros(#d, #x))
                    }
                    Some(v) if self.active[v] => {
                        let d = self.adj(v);
                        quote!(#d)
                    }
                    Some(v) if self.tensor(v).is_some() => {
                        let x = self.borrow(v);
                        quote!(::adjoint::__private::emit_support::adj_or_zeros(::core::option::Option::None, #x))
                    }
                    _ => quote!(::core::default::Default::default()),
                },
            )
            .collect();
        let grads = if grads.len() == 1 {
            grads[0].clone()
        } else {
            quote!((#(#grads),*))
        };
        let seed_reverse = if self.active[self.body.ret] && self.tensor(self.body.ret).is_some() {
            quote!(#ret_d = ::core::option::Option::Some(#seed);)
        } else if self.active[self.body.ret] {
            quote!(#ret_d = #seed;)
        } else {
            quote!()
        };
        quote! {
            #attrs
            #[allow(unused_assignments, unreachable_code, while_true, clippy::all)]
            #signature {
                #decls
                #forward
                let __ad_value = #ret;
                #seed_reverse
                #reverse
                (__ad_value, #grads)
            }
        }
    }

    fn save(r: &Record, value: TokenStream) -> TokenStream {
        let s = &r.ident;
        if r.stack {
            quote!(#s.push(#value);)
        } else {
            quote!(#s = #value;)
        }
    }

    fn restore(r: &Record) -> TokenStream {
        let s = &r.ident;
        if r.stack {
            quote!(#s.pop())
        } else {
            quote!(#s)
        }
    }

    /// The forward sweep: the statements as written, plus what they record.
    fn forward(&self, stmts: &[S]) -> TokenStream {
        let mut out = TokenStream::new();
        for s in stmts {
            let info = self.info(s);
            let record = info.and_then(|i| i.record.as_ref());
            match s {
                S::Assign { var, expr, op, .. } if self.tensor(*var).is_some() => {
                    let v = self.ident(*var);
                    let e = self.fwd(expr);
                    let new = match op {
                        AssignOp::Set => self.owned(expr).to_token_stream(),
                        AssignOp::Add => quote!(&#v + (#e)),
                        AssignOp::Sub => quote!(&#v - (#e)),
                        AssignOp::Mul => quote!(&#v * (#e)),
                        AssignOp::Div => quote!(&#v / (#e)),
                    };
                    // The old value moves to the stack; nothing is copied.
                    out.extend(match info.and_then(|i| i.save.as_ref()) {
                        Some(r) => {
                            let save =
                                Self::save(r, quote!(::core::mem::replace(&mut #v, __ad_new)));
                            quote!({ let __ad_new = #new; #save })
                        }
                        None => quote!(#v = #new;),
                    });
                }
                S::Assign { var, expr, op, .. } => {
                    let v = self.ident(*var);
                    let expr = &self.fwd(expr);
                    if let Some(r) = info.and_then(|i| i.save.as_ref()) {
                        out.extend(Self::save(r, quote!(#v)));
                    }
                    out.extend(match op {
                        AssignOp::Set => quote!(#v = #expr;),
                        AssignOp::Add => quote!(#v += #expr;),
                        AssignOp::Sub => quote!(#v -= #expr;),
                        AssignOp::Mul => quote!(#v *= #expr;),
                        AssignOp::Div => quote!(#v /= #expr;),
                    });
                }
                S::If { cond, then, else_ } => {
                    let cond = self.fwd(cond);
                    let save = record.map(|r| Self::save(r, quote!(__ad_c)));
                    let (then, else_) = (self.forward(then), self.forward(else_));
                    out.extend(quote!({
                        let __ad_c: bool = #cond;
                        #save
                        if __ad_c { #then } else { #else_ }
                    }));
                }
                S::For {
                    var,
                    lo,
                    hi,
                    inclusive,
                    rev,
                    body,
                } => {
                    let i = self.ident(*var);
                    let (lo, hi) = (self.fwd(lo), self.fwd(hi));
                    let save = record.map(|r| Self::save(r, quote!((__ad_lo, __ad_hi))));
                    let range = range(*inclusive, *rev);
                    let body = self.forward(body);
                    out.extend(quote!({
                        let __ad_lo = #lo;
                        let __ad_hi = #hi;
                        #save
                        for #i in #range { #body }
                    }));
                }
                S::While { cond, body } => {
                    let cond = self.fwd(cond);
                    let save = record.map(|r| Self::save(r, quote!(__ad_n)));
                    let body = self.forward(body);
                    out.extend(quote!({
                        let mut __ad_n: usize = 0;
                        while #cond {
                            __ad_n += 1;
                            #body
                        }
                        #save
                    }));
                }
            }
        }
        out
    }

    /// The reverse sweep: the statements backwards, each restoring what it recorded
    /// and propagating adjoints.
    fn reverse(&self, stmts: &[S]) -> TokenStream {
        let mut out = TokenStream::new();
        for s in stmts.iter().rev() {
            let info = self.info(s);
            let record = info.and_then(|i| i.record.as_ref());
            match s {
                S::Assign { var, op, .. } => {
                    let v = self.ident(*var);
                    let restore = info
                        .and_then(|i| i.save.as_ref())
                        .map(|r| {
                            let r = Self::restore(r);
                            quote!(#v = #r;)
                        })
                        .unwrap_or_default();
                    if !self.active[*var] {
                        out.extend(restore);
                        continue;
                    }
                    let d = self.adj(*var);
                    if self.tensor(*var).is_some() {
                        // A tensor adjoint that nothing reached is `None`: the local
                        // adjoint is skipped rather than fed zeros.
                        // Every tensor assignment's local adjoint covers the old value
                        // too (see `local_adjoint`), so the adjoint is taken, not kept.
                        let take = quote!(#d.take());
                        let local = info
                            .and_then(|i| i.ad.as_ref())
                            .map(|ad| self.apply(ad))
                            .unwrap_or_default();
                        out.extend(quote!({
                            let __ad_g = #take;
                            #restore
                            if let ::core::option::Option::Some(__ad_g) = __ad_g { #local }
                        }));
                        continue;
                    }
                    let zero = self.zero(*var);
                    let reset = match op {
                        AssignOp::Add | AssignOp::Sub => quote!(),
                        _ => quote!(#d = #zero;),
                    };
                    let local = info
                        .and_then(|i| i.ad.as_ref())
                        .map(|ad| self.apply(ad))
                        .unwrap_or_default();
                    out.extend(quote!({
                        let __ad_g = #d;
                        #reset
                        #restore
                        #local
                    }));
                }
                S::If { then, else_, .. } => {
                    let (then, else_) = (self.reverse(then), self.reverse(else_));
                    let c = record.map(Self::restore);
                    out.extend(quote!({
                        let __ad_c: bool = #c;
                        if __ad_c { #then } else { #else_ }
                    }));
                }
                S::For {
                    var,
                    inclusive,
                    rev,
                    body,
                    ..
                } => {
                    let i = self.ident(*var);
                    let bounds = record.map(Self::restore);
                    let range = range(*inclusive, !*rev);
                    let recompute = self.recompute(s, body);
                    let body = self.reverse(body);
                    out.extend(quote!({
                        let (__ad_lo, __ad_hi) = #bounds;
                        for #i in #range { #recompute #body }
                    }));
                }
                S::While { body, .. } => {
                    let n = record.map(Self::restore);
                    let recompute = self.recompute(s, body);
                    let body = self.reverse(body);
                    out.extend(quote!({
                        let __ad_n: usize = #n;
                        for _ in 0..__ad_n { #recompute #body }
                    }));
                }
            }
        }
        out
    }

    fn recompute(&self, s: &S, body: &[S]) -> TokenStream {
        let Some(info) = self.info(s) else {
            return TokenStream::new();
        };
        let mut out = TokenStream::new();
        for b in body {
            if let S::Assign { var, expr, .. } = b {
                if info.recompute.contains(var) && self.needed[*var] {
                    let v = self.ident(*var);
                    let expr = match self.tensor(*var) {
                        Some(_) => self.owned(expr),
                        None => self.fwd(expr),
                    };
                    out.extend(quote!(#v = #expr;));
                }
            }
        }
        out
    }

    /// The local adjoint of one assignment, with seed `__ad_g`.
    fn apply(&self, local: &Local) -> TokenStream {
        match local {
            Local::Expr(ad) => self.apply_expr(ad),
            Local::Call(var) => self.apply_call(*var),
        }
    }

    /// A lifted call's adjoint: `f_vjp(args, __ad_g)`, whose gradients (one per float,
    /// slice or array argument, in order) are added to the arguments' adjoints. The
    /// binding is typed where the caller knows the type (a float), so a callee whose
    /// gradients do not match the arguments (`wrt(..)` on it) is a type error at the
    /// call, never a gradient given to the wrong argument.
    fn apply_call(&self, var: usize) -> TokenStream {
        use control::CallArg;
        let Some(call) = self.body.calls.get(&var) else {
            return TokenStream::new();
        };
        let span = call.span;
        let mut vjp = call.func.clone();
        if let Some(last) = vjp.segments.last_mut() {
            last.ident = format_ident!("{}_vjp", last.ident, span = last.ident.span());
        }
        let passed = call.args.iter().map(|(_, e)| e);
        let float = |v: usize| match self.body.vars[v].kind {
            Kind::Float(f) => Some(f),
            _ => None,
        };
        let mut names = Vec::new();
        let mut types = Vec::new();
        let mut accumulate = TokenStream::new();
        for (arg, _) in &call.args {
            let g = format_ident!("__ad_cg{}", names.len());
            match arg {
                CallArg::Scalar(v) => {
                    let Some(f) = float(*v) else {
                        if !matches!(self.body.vars[*v].kind, Kind::Int | Kind::Bool) {
                            let x = self.ident(*v);
                            accumulate.extend(
                                quote_spanned!(span=> ::adjoint::__private::not_a_float(&#x);),
                            );
                        }
                        continue;
                    };
                    let t = format_ident!("{}", f.name());
                    types.push(quote!(#t));
                    if self.active[*v] {
                        let d = self.adj(*v);
                        accumulate.extend(quote!(#d += #g;));
                    }
                }
                CallArg::Slice { var: s, range } => {
                    types.push(quote!(_));
                    if self.active[*s] {
                        let d = self.adj(*s);
                        let (lo, hi) = range.unwrap_or((None, None));
                        let (lo, hi) = (lo.map(|v| self.ident(v)), hi.map(|v| self.ident(v)));
                        accumulate.extend(quote! {
                            ::adjoint::__private::acc_slice(&mut #d[#lo..#hi], &#g[..]);
                        });
                    }
                }
                CallArg::Array(vs) => {
                    types.push(quote!(_));
                    for (k, &v) in vs.iter().enumerate() {
                        if self.active[v] {
                            let d = self.adj(v);
                            accumulate.extend(quote!(#d += #g[#k];));
                        }
                    }
                }
            }
            names.push(g);
        }
        let (pattern, ty) = if names.len() == 1 {
            (quote!(#(#names)*), quote!(#(#types)*))
        } else {
            (quote!((#(#names),*)), quote!((#(#types),*)))
        };
        // The call carries the user's span, so that a missing or mismatched `_vjp` is
        // reported on the call.
        let call = quote_spanned!(span=> #vjp(#(#passed,)*));
        let call: TokenStream = {
            let mut c = call.into_iter().collect::<Vec<_>>();
            // Append the seed inside the call's parentheses, with the local hygiene.
            if let Some(proc_macro2::TokenTree::Group(g)) = c.pop() {
                let mut inner = g.stream();
                inner.extend(quote!(__ad_g));
                let mut ng = proc_macro2::Group::new(g.delimiter(), inner);
                ng.set_span(g.span());
                c.push(proc_macro2::TokenTree::Group(ng));
            }
            c.into_iter().collect()
        };
        let check = quote_spanned!(span=> ::adjoint::__private::call_grads::<#ty, _, _>);
        quote! {
            let (_, #pattern) = #check(#call);
            #accumulate
        }
    }

    /// The inlined local adjoint of one assignment, with seed `__ad_g`.
    fn apply_expr(&self, ad: &StmtAd) -> TokenStream {
        let mut pre = TokenStream::new();
        let mut args = Vec::new();
        let mut sinks = Vec::new();
        for (k, input) in ad.inputs.iter().enumerate() {
            match input {
                Input::Var(u) if self.tensor(*u).is_some() => {
                    args.push(self.borrow(*u));
                    let d = self.adj(*u);
                    sinks.push(self.active[*u].then(|| (quote!(#d), true)));
                }
                Input::Var(u) => {
                    let u_i = self.ident(*u);
                    args.push(quote!(#u_i));
                    let d = self.adj(*u);
                    sinks.push(self.active[*u].then(|| (quote!(#d), false)));
                }
                Input::Elem(s, idx) => {
                    let at = format_ident!("__ad_at{}", k);
                    let idx = self.fwd(idx);
                    pre.extend(quote!(let #at = #idx;));
                    let s_i = self.ident(*s);
                    args.push(quote!(#s_i[#at]));
                    let d = self.adj(*s);
                    sinks.push(self.active[*s].then(|| (quote!(#d[#at]), false)));
                }
                Input::Value(e) => {
                    args.push(self.fwd(e).to_token_stream());
                    sinks.push(None);
                }
                Input::TensorValue(e) => {
                    let e = self.fwd(e);
                    args.push(quote!(&(#e)));
                    sinks.push(None);
                }
            }
        }
        let seed = if ad.negate {
            quote!(-__ad_g)
        } else {
            quote!(__ad_g)
        };
        args.push(seed);
        let lets = ad
            .params
            .iter()
            .zip(&args)
            .map(|((pat, ty), arg)| quote!(let #pat: #ty = #arg;));
        let body = &ad.body;
        let grads: Vec<Ident> = (0..ad.diff.len())
            .map(|k| format_ident!("__ad_grad{}", k))
            .collect();
        let pattern = if grads.len() == 1 {
            quote!(#(#grads)*)
        } else {
            quote!((#(#grads),*))
        };
        let accumulate = ad.diff.iter().zip(&grads).filter_map(|(&k, g)| {
            let (sink, tensor) = sinks[k].as_ref()?;
            Some(if *tensor {
                quote!(::adjoint::__private::emit_support::acc_adj(&mut #sink, #g);)
            } else {
                quote!(#sink += #g;)
            })
        });
        quote! {
            #pre
            let (_, #pattern) = { #(#lets)* #(#body)* };
            #(#accumulate)*
        }
    }
}

/// `lo..hi` forwards or backwards, on the locals `__ad_lo`/`__ad_hi`.
fn range(inclusive: bool, rev: bool) -> TokenStream {
    let r = if inclusive {
        quote!(__ad_lo..=__ad_hi)
    } else {
        quote!(__ad_lo..__ad_hi)
    };
    if rev {
        quote!((#r).rev())
    } else {
        r
    }
}

/// The zero gradient of a slice parameter: `[0.0; N]` for arrays, a `Vec` otherwise.
fn slice_zeros(p: &Param, zero: &TokenStream) -> TokenStream {
    let name = &p.ident;
    match crate::parse::strip_ref(&p.ty) {
        syn::Type::Array(a) => {
            let len = &a.len;
            quote!([#zero; #len])
        }
        _ => quote!(::std::vec![#zero; #name.len()]),
    }
}

/// Which parameters of a simplified `_vjp` the gradients (outputs after the first) read.
fn params_read_by_gradients(func: &Func, n_params: usize) -> Vec<bool> {
    let mut read = vec![false; n_params];
    let mut seen = HashSet::new();
    let mut todo: Vec<Id> = func.outputs.iter().skip(1).copied().collect();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let node = func.node(id);
        if let Op::Param(p) = node.op {
            if let Some(r) = read.get_mut(p as usize) {
                *r = true;
            }
        }
        todo.extend(node.op.operands());
        if let Op::If { then, else_, .. } = &node.op {
            todo.extend(then.nodes.iter().chain(&else_.nodes));
        }
    }
    read
}

/// Replaces the float reads of an expression by parameters.
struct Substitute<'p, 'a> {
    plan: &'p Plan<'a>,
    cx: &'p Ctxt,
    inputs: Vec<Input>,
    params: Vec<Param>,
    /// Tokens of an input -> its index, so `x[i]` read twice is one input.
    keys: HashMap<String, usize>,
}

impl Substitute<'_, '_> {
    fn input(&mut self, key: String, input: Input, kind: Ty, diff: bool, span: Span) -> Expr {
        let k = match self.keys.get(&key) {
            Some(&k) => k,
            None => {
                let k = self.inputs.len();
                let ident = format_ident!("__ad_in{}", k, span = span);
                let ty: syn::Type = match kind {
                    Ty::Float(f) => {
                        syn::parse_str(f.name()).unwrap_or_else(|_| syn::parse_quote!(f64))
                    }
                    Ty::Tensor(f) => {
                        let f = format_ident!("{}", f.name());
                        syn::parse_quote!(&::adjoint::__private::Tensor<#f>)
                    }
                    _ => syn::parse_quote!(i32),
                };
                self.params.push(Param {
                    ident,
                    ty,
                    kind,
                    by_ref: matches!(kind, Ty::Tensor(_)),
                    diff,
                    mutable: false,
                });
                self.inputs.push(input);
                self.keys.insert(key, k);
                k
            }
        };
        let ident = &self.params[k].ident;
        syn::parse_quote!(#ident)
    }

    fn var_of(&self, e: &Expr) -> Option<usize> {
        match e {
            Expr::Path(p) => p
                .path
                .get_ident()
                .and_then(|i| self.plan.body.by_ident.get(&i.to_string()).copied()),
            Expr::Paren(p) => self.var_of(&p.expr),
            _ => None,
        }
    }

    fn kind(&self, e: &Expr) -> Kind {
        control::kind_of(
            e,
            &self.plan.body.vars,
            &self.plan.body.by_ident,
            self.plan.sig.float,
        )
    }
}

impl VisitMut for Substitute<'_, '_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        let span = syn::spanned::Spanned::span(&*e);
        match e {
            Expr::Path(_) => {
                if let Some(v) = self.var_of(e) {
                    let kind = match self.plan.body.vars[v].kind {
                        Kind::Float(f) => Ty::Float(f),
                        Kind::Tensor(f) => Ty::Tensor(f),
                        // An active slice used whole, other than through `s[i]`,
                        // `s.len()` or as a call argument: its value would be read as a
                        // constant, and its gradient silently lost.
                        Kind::Slice(_) if self.plan.active[v] => {
                            let name = &self.plan.body.vars[v].ident;
                            self.cx.error_at(span, format!("the static path of #[differentiable] differentiates a slice through `{name}[i]`, `{name}.iter().sum()`, loops over it and calls that take it; this use of `{name}` is not one of them: index it, or use #[differentiable(tape)]"));
                            return;
                        }
                        _ => return,
                    };
                    let key = self.plan.body.vars[v].ident.to_string();
                    let diff = self.plan.active[v];
                    *e = self.input(key, Input::Var(v), kind, diff, span);
                }
            }
            Expr::Index(ix) => {
                if let Some(s) = self.var_of(&ix.expr) {
                    if let Kind::Slice(f) = self.plan.body.vars[s].kind {
                        let idx = (*ix.index).clone();
                        let key = format!(
                            "{}[{}]",
                            self.plan.body.vars[s].ident,
                            idx.to_token_stream()
                        );
                        let diff = self.plan.active[s];
                        *e = self.input(key, Input::Elem(s, idx), Ty::Float(f), diff, span);
                        return;
                    }
                }
                visit_mut::visit_expr_mut(self, e);
            }
            Expr::Cast(c) => {
                let to = crate::parse::classify(&c.ty);
                match (self.kind(&c.expr), to) {
                    (Kind::Float(_), _) | (_, None) => visit_mut::visit_expr_mut(self, e),
                    (_, Some((Ty::Float(f), false))) => {
                        let key = e.to_token_stream().to_string();
                        let value = e.clone();
                        *e = self.input(key, Input::Value(value), Ty::Float(f), false, span);
                    }
                    _ => {}
                }
            }
            // A tensor constructor (`Tensor::ones(&[3])`) of constants: a constant.
            Expr::Call(c)
                if matches!(&*c.func, Expr::Path(p) if p.path.segments.iter().any(|s| s.ident == "Tensor"))
                    && !c
                        .args
                        .iter()
                        .any(|a| self.plan.vars_in(a).iter().any(|&v| self.plan.active[v])) =>
            {
                let key = e.to_token_stream().to_string();
                let value = e.clone();
                let f = self.plan.sig.float;
                *e = self.input(key, Input::TensorValue(value), Ty::Tensor(f), false, span);
            }
            // The length of a slice is an integer, not a use of its values.
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && matches!(m.method.to_string().as_str(), "len" | "is_empty")
                    && self
                        .var_of(&m.receiver)
                        .is_some_and(|v| matches!(self.plan.body.vars[v].kind, Kind::Slice(_))) => {
            }
            // `t.clone()` is the identity for differentiation.
            Expr::MethodCall(m) if m.method == "clone" && m.args.is_empty() => {
                let mut inner = (*m.receiver).clone();
                self.visit_expr_mut(&mut inner);
                *e = syn::parse_quote!((#inner));
            }
            Expr::MethodCall(m) if m.method == "powi" && m.args.len() == 1 => {
                self.visit_expr_mut(&mut m.receiver);
                if let Some(arg) = m.args.first_mut() {
                    if !matches!(arg, Expr::Lit(_)) {
                        let key = arg.to_token_stream().to_string();
                        let value = arg.clone();
                        *arg = self.input(key, Input::Value(value), Ty::Int, false, span);
                    }
                }
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
}

/// The variable a renamed expression names, through parentheses.
fn var_of(by_ident: &HashMap<String, usize>, e: &Expr) -> Option<usize> {
    match e {
        Expr::Path(p) => p
            .path
            .get_ident()
            .and_then(|i| by_ident.get(&i.to_string()).copied()),
        Expr::Paren(p) => var_of(by_ident, &p.expr),
        Expr::Group(g) => var_of(by_ident, &g.expr),
        _ => None,
    }
}

/// Reads owned tensor variables through a reference (see [`Plan::fwd`]).
struct Borrow<'p, 'a> {
    plan: &'p Plan<'a>,
}

impl VisitMut for Borrow<'_, '_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            // `&b` stays as written.
            Expr::Reference(r) if var_of(&self.plan.body.by_ident, &r.expr).is_some() => {}
            Expr::Path(_) => {
                if let Some(v) = var_of(&self.plan.body.by_ident, e) {
                    if self.plan.tensor(v).is_some() {
                        let b = self.plan.borrow(v);
                        *e = syn::parse_quote!((#b));
                    }
                }
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }
}

/// The variables a renamed expression reads.
struct VarsIn<'b> {
    by_ident: &'b HashMap<String, usize>,
    found: Vec<usize>,
}

impl<'ast> Visit<'ast> for VarsIn<'_> {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if let Some(i) = p.path.get_ident() {
            if let Some(&v) = self.by_ident.get(&i.to_string()) {
                if !self.found.contains(&v) {
                    self.found.push(v);
                }
            }
        }
    }
}

fn walk<'s>(stmts: &'s [S], f: &mut impl FnMut(&'s S)) {
    for s in stmts {
        f(s);
        match s {
            S::Assign { .. } => {}
            S::If { then, else_, .. } => {
                walk(then, f);
                walk(else_, f);
            }
            S::For { body, .. } | S::While { body, .. } => walk(body, f),
        }
    }
}

fn count_assigns(stmts: &[S], counts: &mut [usize]) {
    walk(stmts, &mut |s| {
        if let S::Assign { var, .. } = s {
            counts[*var] += 1;
        }
    });
}
