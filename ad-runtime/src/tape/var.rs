//! [`Var`]: a handle to a value on a tape, and every operation it records.

use super::elementwise::{self, Arg as EArg};
use super::graph::{
    Ext, Graph, Node, HAS_GRAD, NAMED, NONE, REQUIRES_GRAD, RETAIN, STRUCT, TENSOR,
};
use super::operators::{Arg, Operand};
use super::rules::{self, Op};
use super::{Tape, TapeError, Value, NO_GRAD, PROFILING};
use crate::float::Float;
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::fmt;

/// A value recorded on a [`Tape`]: a scalar or a tensor. `Copy`: a reference
/// to the tape and an index into its arena.
///
/// Arithmetic with `+ - * /` works between `Var`s, `&Var`s, plain floats on
/// either side and constant tensors; every float method of `f64` that
/// `#[differentiable]` knows and every tensor method of [`Tensor`] is here too.
///
/// ```
/// use ad_runtime::tape::Tape;
/// let tape: Tape = Tape::new();
/// let x = tape.var(3.0);
/// let y = 2.0 * x * x + 1.0;       // 19
/// y.backward();
/// assert_eq!(y.item(), 19.0);
/// assert_eq!(x.grad_scalar(), 12.0);
/// ```
#[derive(Clone, Copy)]
pub struct Var<'t, T: Float = f64> {
    pub(crate) tape: &'t Tape<T>,
    /// The node index (low 32 bits) and the `clear_graph` generation it was
    /// made in (high 32 bits), in one word so that a `Var` travels in two
    /// registers. `clear_graph` panics before the generation could wrap.
    key: u64,
}

#[cold]
#[inline(never)]
#[track_caller]
fn stale(idx: u32) -> ! {
    panic!(
        "this Var (node {idx}) is no longer on its tape: it was recorded before \
         Tape::clear_graph, which keeps only the leaves created before the first operation"
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn other_tape() -> ! {
    panic!("an operation mixes Vars of two different tapes")
}

#[cold]
#[inline(never)]
#[track_caller]
fn shape_panic(e: crate::error::ShapeError) -> ! {
    panic!("{e}")
}

impl<'t, T: Float> Var<'t, T> {
    #[inline(always)]
    pub(crate) fn from_parts(tape: &'t Tape<T>, idx: u32, epoch: u32) -> Self {
        Var {
            tape,
            key: idx as u64 | (epoch as u64) << 32,
        }
    }

    /// The index of the node in the arena.
    #[inline(always)]
    pub(crate) fn idx(self) -> u32 {
        self.key as u32
    }

    #[inline(always)]
    fn epoch(self) -> u32 {
        (self.key >> 32) as u32
    }

    /// The node, checked to be still on the tape.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn node(self, g: &Graph<T>) -> Node<T> {
        *self.node_ref(g)
    }

    /// The node's value and flags (the hot paths read only these).
    #[inline(always)]
    #[track_caller]
    fn value_flags(self, g: &Graph<T>) -> (T, u8) {
        let n = self.node_ref(g);
        (n.value, n.flags)
    }

    #[inline(always)]
    #[track_caller]
    pub(crate) fn node_ref(self, g: &Graph<T>) -> &Node<T> {
        if !g.is_live(self.idx(), self.epoch()) {
            stale(self.idx())
        }
        &g.nodes[self.idx() as usize]
    }

    #[inline(always)]
    fn wrap(self, idx: u32, g: &Graph<T>) -> Self {
        Var::from_parts(self.tape, idx, g.epoch)
    }

    #[inline(always)]
    fn same_tape(self, other: Var<'t, T>) {
        if !std::ptr::eq(self.tape, other.tape) {
            other_tape()
        }
    }

    #[inline(always)]
    fn enabled(self) -> bool {
        self.tape.mode.get() & NO_GRAD == 0
    }

    /// Records a forward operation, timing it when the tape is profiling.
    #[inline(always)]
    fn timed(self, op: Op, f: impl FnOnce() -> Self) -> Self {
        if self.tape.is_profiling() {
            self.tape.time_forward(op.forward_name(), f)
        } else {
            f()
        }
    }

    // ----- recording ------------------------------------------------------

    /// A one-input elementwise operation.
    #[inline(always)]
    pub(crate) fn unary(self, op: Op, p: [T; 2]) -> Self {
        let mode = self.tape.mode.get();
        if mode & PROFILING != 0 {
            return self.unary_profiled(op, p);
        }
        self.unary_rec(op, p, mode)
    }

    #[cold]
    #[inline(never)]
    fn unary_profiled(self, op: Op, p: [T; 2]) -> Self {
        let mode = self.tape.mode.get();
        self.tape
            .time_forward(op.forward_name(), || self.unary_rec(op, p, mode))
    }

    #[inline(always)]
    fn unary_rec(self, op: Op, p: [T; 2], mode: u8) -> Self {
        let mut g = self.tape.g();
        let (x, flags) = self.value_flags(&g);
        if flags & TENSOR != 0 {
            drop(g);
            return self.unary_tensor(op, p);
        }
        let (y, d) = rules::unary(op, x, p);
        let rg = flags & REQUIRES_GRAD != 0 && mode & NO_GRAD == 0;
        // Backward reads both parent slots unchecked: the absent second input is a
        // self-edge, harmless as a node's adjoint is consumed first. Its partial
        // slot keeps the parameter (an exponent), which `grad_graph` reads.
        let own = g.nodes.len() as u32;
        // A piecewise-constant operation (`floor`, ...) keeps no edge to its input:
        // nothing flows back, even from an infinite adjoint (0 * inf would be NaN).
        let from = if rules::is_flat(op) { own } else { self.idx() };
        let idx = g.push(scalar_node(y, [d, p[0]], [from, own], op, rg));
        self.wrap(idx, &g)
    }

    #[inline(never)]
    fn unary_tensor(self, op: Op, p: [T; 2]) -> Self {
        let mut g = self.tape.g();
        let n = self.node(&g);
        let rg = n.flags & REQUIRES_GRAD != 0 && self.enabled();
        let x = g.tensor(self.idx()).expect("tensor node");
        let (y, saved) = elementwise::unary(op, x, p, rg);
        let mut ext = Ext::new(None);
        ext.saved[0] = saved;
        let idx = push_result(&mut g, op, Value::Tensor(y), [self.idx(), NONE], rg, p, ext);
        self.wrap(idx, &g)
    }

    /// A two-input elementwise operation between two `Var`s.
    #[inline(always)]
    pub(crate) fn binary(self, op: Op, rhs: Var<'t, T>) -> Self {
        self.same_tape(rhs);
        let mode = self.tape.mode.get();
        if mode & PROFILING != 0 {
            return self.binary_profiled(op, rhs);
        }
        self.binary_rec(op, rhs, mode)
    }

    #[cold]
    #[inline(never)]
    fn binary_profiled(self, op: Op, rhs: Var<'t, T>) -> Self {
        let mode = self.tape.mode.get();
        self.tape
            .time_forward(op.forward_name(), || self.binary_rec(op, rhs, mode))
    }

    #[inline(always)]
    fn binary_rec(self, op: Op, rhs: Var<'t, T>, mode: u8) -> Self {
        let mut g = self.tape.g();
        let (va, fa) = self.value_flags(&g);
        let (vb, fb) = rhs.value_flags(&g);
        if (fa | fb) & TENSOR != 0 {
            drop(g);
            return self.binary_tensor(op, rhs);
        }
        let en = mode & NO_GRAD == 0;
        let ra = fa & REQUIRES_GRAD != 0 && en;
        let rb = fb & REQUIRES_GRAD != 0 && en;
        let (y, da, db) = rules::binary(op, va, vb);
        // An input that needs no gradient is not recorded; its slot becomes a
        // self-edge (see `unary_rec`) whose partial keeps the input's value, for
        // `grad_graph`.
        let own = g.nodes.len() as u32;
        let (parents, partials) = match (ra, rb) {
            (true, true) => ([self.idx(), rhs.idx()], [da, db]),
            (true, false) => ([self.idx(), own], [da, vb]),
            _ => ([own, rhs.idx()], [va, db]),
        };
        let idx = g.push(scalar_node(y, partials, parents, op, ra || rb));
        self.wrap(idx, &g)
    }

    #[inline(never)]
    #[track_caller]
    fn binary_tensor(self, op: Op, rhs: Var<'t, T>) -> Self {
        let mut g = self.tape.g();
        let na = self.node(&g);
        let nb = rhs.node(&g);
        let en = self.enabled();
        let ra = na.flags & REQUIRES_GRAD != 0 && en;
        let rb = nb.flags & REQUIRES_GRAD != 0 && en;
        let a = arg_of(&g, na);
        let b = arg_of(&g, nb);
        let (y, saved) = match elementwise::binary(op, a, b, [ra, rb]) {
            Ok(r) => r,
            Err(e) => shape_panic(e),
        };
        let mut ext = Ext::new(None);
        ext.saved = saved;
        let idx = push_result(
            &mut g,
            op,
            Value::Tensor(y),
            [self.idx(), rhs.idx()],
            ra || rb,
            [T::zero(); 2],
            ext,
        );
        self.wrap(idx, &g)
    }

    /// A two-input elementwise operation with a constant scalar `c`, on the
    /// left (`c op self`) or the right (`self op c`).
    #[inline(always)]
    pub(crate) fn binary_const(self, op: Op, c: T, const_left: bool) -> Self {
        let mode = self.tape.mode.get();
        if mode & PROFILING != 0 {
            return self.binary_const_profiled(op, c, const_left);
        }
        self.binary_const_rec(op, c, const_left, mode)
    }

    #[cold]
    #[inline(never)]
    fn binary_const_profiled(self, op: Op, c: T, const_left: bool) -> Self {
        let mode = self.tape.mode.get();
        self.tape.time_forward(op.forward_name(), || {
            self.binary_const_rec(op, c, const_left, mode)
        })
    }

    #[inline(always)]
    fn binary_const_rec(self, op: Op, c: T, const_left: bool, mode: u8) -> Self {
        let mut g = self.tape.g();
        let (x, flags) = self.value_flags(&g);
        if flags & TENSOR != 0 {
            drop(g);
            return self.binary_const_tensor(op, c, const_left);
        }
        let (y, d) = if const_left {
            let (y, _, d) = rules::binary(op, c, x);
            (y, d)
        } else {
            let (y, d, _) = rules::binary(op, x, c);
            (y, d)
        };
        let rg = flags & REQUIRES_GRAD != 0 && mode & NO_GRAD == 0;
        // The constant's slot is a self-edge (see `binary_rec`) keeping `c`.
        let own = g.nodes.len() as u32;
        let (parents, partials) = if const_left {
            ([own, self.idx()], [c, d])
        } else {
            ([self.idx(), own], [d, c])
        };
        let idx = g.push(scalar_node(y, partials, parents, op, rg));
        self.wrap(idx, &g)
    }

    #[inline(never)]
    fn binary_const_tensor(self, op: Op, c: T, const_left: bool) -> Self {
        let mut g = self.tape.g();
        let n = self.node(&g);
        let rg = n.flags & REQUIRES_GRAD != 0 && self.enabled();
        let x = EArg::Tensor(g.tensor(self.idx()).expect("tensor node"));
        let r = if const_left {
            elementwise::binary(op, EArg::Scalar(c), x, [false, rg])
        } else {
            elementwise::binary(op, x, EArg::Scalar(c), [rg, false])
        };
        let (y, [sa, sb]) = match r {
            Ok(r) => r,
            Err(e) => shape_panic(e),
        };
        let mut ext = Ext::new(None);
        ext.saved[0] = if const_left { sb } else { sa };
        // The parameters keep the constant and its side, for `grad_graph`.
        let side = if const_left { T::one() } else { T::zero() };
        let idx = push_result(
            &mut g,
            op,
            Value::Tensor(y),
            [self.idx(), NONE],
            rg,
            [c, side],
            ext,
        );
        self.wrap(idx, &g)
    }

    /// Dispatches a binary operation on any operand.
    #[inline(always)]
    pub(crate) fn binary_any(self, op: Op, rhs: Arg<'t, T>, rhs_left: bool) -> Self {
        match rhs {
            Arg::Var(v) => {
                if rhs_left {
                    v.binary(op, self)
                } else {
                    self.binary(op, v)
                }
            }
            Arg::Scalar(c) => self.binary_const(op, c, rhs_left),
            Arg::Tensor(t) => {
                let v = self.tape.constant_tensor(t);
                if rhs_left {
                    v.binary(op, self)
                } else {
                    self.binary(op, v)
                }
            }
        }
    }

    /// A structural operation with one input, whose value `f` computes from the
    /// input's value.
    fn structural(
        self,
        op: Op,
        axis: usize,
        f: impl FnOnce(&Tensor<T>) -> Result<Value<T>, crate::error::ShapeError>,
    ) -> Self {
        self.timed(op, || {
            let mut g = self.tape.g();
            let n = self.node(&g);
            let rg = n.flags & REQUIRES_GRAD != 0 && self.enabled();
            let y = with_tensor(&g, self.idx(), n, f);
            let y = match y {
                Ok(y) => y.normalized(),
                Err(e) => shape_panic(e),
            };
            let mut ext = Ext::new(None);
            ext.axis = axis;
            let idx = push_result(&mut g, op, y, [self.idx(), NONE], rg, [T::zero(); 2], ext);
            self.wrap(idx, &g)
        })
    }

    /// A structural operation with two inputs.
    fn structural2(
        self,
        op: Op,
        rhs: Var<'t, T>,
        f: impl FnOnce(&Tensor<T>, &Tensor<T>) -> Result<Value<T>, crate::error::ShapeError>,
    ) -> Self {
        self.same_tape(rhs);
        self.timed(op, || {
            let mut g = self.tape.g();
            let na = self.node(&g);
            let nb = rhs.node(&g);
            let rg = (na.flags | nb.flags) & REQUIRES_GRAD != 0 && self.enabled();
            let y = with_tensor(&g, self.idx(), na, |a| {
                with_tensor(&g, rhs.idx(), nb, |b| f(a, b))
            });
            let y = match y {
                Ok(y) => y.normalized(),
                Err(e) => shape_panic(e),
            };
            let idx = push_result(
                &mut g,
                op,
                y,
                [self.idx(), rhs.idx()],
                rg,
                [T::zero(); 2],
                Ext::new(None),
            );
            self.wrap(idx, &g)
        })
    }

    // ----- values ---------------------------------------------------------

    /// The value: a scalar, or the one element of a one-element tensor.
    ///
    /// # Panics
    /// If the value is a tensor of more than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        let g = self.tape.g();
        let n = self.node(&g);
        match g.tensor(self.idx()) {
            Some(t) => t.item(),
            None => n.value,
        }
    }

    /// The value.
    pub fn value(&self) -> Value<T> {
        let g = self.tape.g();
        let n = self.node(&g);
        match g.tensor(self.idx()) {
            Some(t) => Value::Tensor(t.clone()),
            None => Value::Scalar(n.value),
        }
    }

    /// The value as a tensor (a scalar gives a 0-d tensor).
    pub fn tensor(&self) -> Tensor<T> {
        self.value().into_tensor()
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> Vec<usize> {
        let g = self.tape.g();
        self.node(&g);
        g.shape(self.idx()).to_vec()
    }

    /// Whether the value is a scalar.
    pub fn is_scalar(&self) -> bool {
        let g = self.tape.g();
        self.node(&g).flags & TENSOR == 0
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Sets the value of a leaf in place (PyTorch's `with torch.no_grad(): a -= lr * a.grad`).
    /// Operations recorded before keep the values they saw; record the next
    /// step anew (see [`Tape::clear_graph`]).
    ///
    /// # Panics
    /// If this is not a leaf, or the new value's shape differs from the old one's.
    #[track_caller]
    pub fn set_value(&self, value: impl Into<Value<T>>) {
        // A user's `Into` runs before the arena is borrowed.
        let value = value.into().normalized();
        let mut g = self.tape.g();
        let n = self.node(&g);
        if !matches!(n.op, Op::Leaf | Op::Constant) || n.parents[0] != NONE {
            let name = g.op_name(self.idx());
            panic!(
                "set_value: only a leaf's value can be set, and this Var is the output of {name}"
            );
        }
        let old = g.shape(self.idx()).to_vec();
        if value.shape() != old.as_slice() {
            panic!(
                "set_value: the new value has shape {:?} but the leaf has shape {old:?}",
                value.shape()
            );
        }
        match value {
            Value::Scalar(x) => g.nodes[self.idx() as usize].value = x,
            Value::Tensor(t) => g.ext[n.ext as usize].value = Some(t),
        }
    }

    // ----- gradients ------------------------------------------------------

    /// Backpropagates from this scalar result with seed 1, accumulating into
    /// the `grad` of every leaf it depends on (PyTorch's `y.backward()`).
    ///
    /// # Panics
    /// With the message of [`TapeError`]: if the result has more than one
    /// element ("a gradient can be created implicitly only for a scalar result")
    /// or requires no gradient. See [`Var::try_backward`].
    #[track_caller]
    pub fn backward(&self) {
        self.try_backward()
            .unwrap_or_else(|e| panic!("backward: {e}"))
    }

    /// [`Var::backward`], returning an error instead of panicking.
    pub fn try_backward(&self) -> Result<(), TapeError> {
        if self.is_scalar() {
            return self
                .tape
                .run_backward(*self, Value::Scalar(T::one()), None)
                .map(|_| ());
        }
        let shape = self.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(TapeError::NonScalarResult { shape });
        }
        let seed = Value::Tensor(Tensor::ones(&shape));
        self.tape.run_backward(*self, seed, None).map(|_| ())
    }

    /// Backpropagates the vector-Jacobian product with `seed` (of this result's
    /// shape), accumulating into the leaves' `grad` (PyTorch's `y.backward(seed)`).
    ///
    /// # Panics
    /// If the seed's shape is not the result's (the message names both shapes)
    /// or the result requires no gradient; see [`Var::try_backward_with`].
    #[track_caller]
    pub fn backward_with(&self, seed: impl Into<Value<T>>) {
        self.try_backward_with(seed)
            .unwrap_or_else(|e| panic!("backward_with: {e}"))
    }

    /// [`Var::backward_with`], returning an error instead of panicking.
    pub fn try_backward_with(&self, seed: impl Into<Value<T>>) -> Result<(), TapeError> {
        self.tape.run_backward(*self, seed.into(), None).map(|_| ())
    }

    /// The accumulated gradient: `None` before any backward pass reached this
    /// variable, and for intermediate results unless [`Var::retain_grad`] was called.
    pub fn grad(&self) -> Option<Value<T>> {
        let g = self.tape.g();
        let n = self.node(&g);
        if n.flags & HAS_GRAD == 0 {
            return None;
        }
        if n.flags & TENSOR != 0 {
            g.ext[n.ext as usize].grad.clone().map(Value::Tensor)
        } else {
            Some(Value::Scalar(scalar_grad(&g, self.idx())))
        }
    }

    /// The accumulated gradient of a scalar, 0 if there is none.
    ///
    /// # Panics
    /// If the variable is a tensor of more than one element.
    #[track_caller]
    #[inline(always)]
    pub fn grad_scalar(&self) -> T {
        let g = self.tape.g();
        let n = self.node_ref(&g);
        if n.flags & HAS_GRAD == 0 {
            return T::zero();
        }
        if n.flags & TENSOR != 0 {
            return g.ext[n.ext as usize]
                .grad
                .as_ref()
                .map_or(T::zero(), |t| t.item());
        }
        scalar_grad(&g, self.idx())
    }

    /// The accumulated gradient as a tensor of this variable's shape, zeros if there is none.
    pub fn grad_tensor(&self) -> Tensor<T> {
        match self.grad() {
            Some(v) => v.into_tensor(),
            None => Tensor::zeros(&self.shape()),
        }
    }

    /// Drops this variable's accumulated gradient (PyTorch's `x.grad = None`).
    pub fn zero_grad(&self) {
        let mut g = self.tape.g();
        let n = self.node(&g);
        g.nodes[self.idx() as usize].flags &= !HAS_GRAD;
        if n.ext != NONE {
            g.ext[n.ext as usize].grad = None;
        }
    }

    /// Makes this intermediate result keep its gradient in backward passes, like a leaf.
    pub fn retain_grad(&self) {
        let mut g = self.tape.g();
        self.node(&g);
        g.nodes[self.idx() as usize].flags |= RETAIN;
    }

    /// Whether a gradient flows into this variable.
    pub fn requires_grad(&self) -> bool {
        let g = self.tape.g();
        self.node(&g).flags & REQUIRES_GRAD != 0
    }

    /// Whether this is a leaf: created by the user, or requiring no gradient
    /// (PyTorch's `is_leaf`).
    pub fn is_leaf(&self) -> bool {
        let g = self.tape.g();
        let n = self.node(&g);
        n.flags & REQUIRES_GRAD == 0 || n.op == Op::Leaf
    }

    /// The same value as a constant: no gradient flows back through the result
    /// (PyTorch's `detach`, JAX's `stop_gradient`).
    pub fn detach(&self) -> Var<'t, T> {
        self.tape.leaf(self.value(), false)
    }

    /// Names this variable, for [`Tape::to_dot`] and [`GradFn`](super::GradFn) output.
    pub fn set_name(&self, name: &str) {
        let mut g = self.tape.g();
        self.node(&g);
        g.nodes[self.idx() as usize].flags |= NAMED;
        g.names.push((self.idx(), name.to_string()));
    }

    /// [`Var::set_name`], returning the variable.
    pub fn named(self, name: &str) -> Self {
        self.set_name(name);
        self
    }

    /// The name given with [`Var::set_name`].
    pub fn name(&self) -> Option<String> {
        let g = self.tape.g();
        self.node(&g);
        g.name(self.idx()).map(str::to_string)
    }

    /// The index of this variable's node on the tape.
    pub fn index(&self) -> usize {
        self.idx() as usize
    }

    // ----- scalar float methods ------------------------------------------

    /// `e^x`.
    #[inline]
    pub fn exp(self) -> Self {
        self.unary(Op::Exp, [T::zero(); 2])
    }
    /// `2^x`.
    #[inline]
    pub fn exp2(self) -> Self {
        self.unary(Op::Exp2, [T::zero(); 2])
    }
    /// The natural logarithm.
    #[inline]
    pub fn ln(self) -> Self {
        self.unary(Op::Ln, [T::zero(); 2])
    }
    /// The base-2 logarithm.
    #[inline]
    pub fn log2(self) -> Self {
        self.unary(Op::Log2, [T::zero(); 2])
    }
    /// The base-10 logarithm.
    #[inline]
    pub fn log10(self) -> Self {
        self.unary(Op::Log10, [T::zero(); 2])
    }
    /// The sine.
    #[inline]
    pub fn sin(self) -> Self {
        self.unary(Op::Sin, [T::zero(); 2])
    }
    /// The cosine.
    #[inline]
    pub fn cos(self) -> Self {
        self.unary(Op::Cos, [T::zero(); 2])
    }
    /// The tangent.
    #[inline]
    pub fn tan(self) -> Self {
        self.unary(Op::Tan, [T::zero(); 2])
    }
    /// The arcsine.
    #[inline]
    pub fn asin(self) -> Self {
        self.unary(Op::Asin, [T::zero(); 2])
    }
    /// The arccosine.
    #[inline]
    pub fn acos(self) -> Self {
        self.unary(Op::Acos, [T::zero(); 2])
    }
    /// The arctangent.
    #[inline]
    pub fn atan(self) -> Self {
        self.unary(Op::Atan, [T::zero(); 2])
    }
    /// The hyperbolic sine.
    #[inline]
    pub fn sinh(self) -> Self {
        self.unary(Op::Sinh, [T::zero(); 2])
    }
    /// The hyperbolic cosine.
    #[inline]
    pub fn cosh(self) -> Self {
        self.unary(Op::Cosh, [T::zero(); 2])
    }
    /// The hyperbolic tangent.
    #[inline]
    pub fn tanh(self) -> Self {
        self.unary(Op::Tanh, [T::zero(); 2])
    }
    /// The square root.
    #[inline]
    pub fn sqrt(self) -> Self {
        self.unary(Op::Sqrt, [T::zero(); 2])
    }
    /// The cube root.
    #[inline]
    pub fn cbrt(self) -> Self {
        self.unary(Op::Cbrt, [T::zero(); 2])
    }
    /// `1/x`.
    #[inline]
    pub fn recip(self) -> Self {
        self.unary(Op::Recip, [T::zero(); 2])
    }
    /// The absolute value (gradient 0 at 0).
    #[inline]
    pub fn abs(self) -> Self {
        self.unary(Op::Abs, [T::zero(); 2])
    }
    /// `max(x, 0)` (gradient 0 at 0).
    #[inline]
    pub fn relu(self) -> Self {
        self.unary(Op::Relu, [T::zero(); 2])
    }
    /// The logistic function.
    #[inline]
    pub fn sigmoid(self) -> Self {
        self.unary(Op::Sigmoid, [T::zero(); 2])
    }
    /// `ln(1 + e^x)`.
    #[inline]
    pub fn softplus(self) -> Self {
        self.unary(Op::Softplus, [T::zero(); 2])
    }
    /// The sign, as `f64::signum` (`1` at `+0`, `-1` at `-0`); gradient 0.
    #[inline]
    pub fn signum(self) -> Self {
        self.unary(Op::Signum, [T::zero(); 2])
    }
    /// The largest integer not above the value; gradient 0.
    #[inline]
    pub fn floor(self) -> Self {
        self.unary(Op::Floor, [T::zero(); 2])
    }
    /// The smallest integer not below the value; gradient 0.
    #[inline]
    pub fn ceil(self) -> Self {
        self.unary(Op::Ceil, [T::zero(); 2])
    }
    /// The nearest integer, halves away from zero (as `f64::round`); gradient 0.
    #[inline]
    pub fn round(self) -> Self {
        self.unary(Op::Round, [T::zero(); 2])
    }
    /// The integer part (rounded toward zero); gradient 0.
    #[inline]
    pub fn trunc(self) -> Self {
        self.unary(Op::Trunc, [T::zero(); 2])
    }
    /// `-x` (also the `-` operator).
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn neg(self) -> Self {
        self.unary(Op::Neg, [T::zero(); 2])
    }
    /// `x^n`.
    #[inline]
    pub fn powi(self, n: i32) -> Self {
        self.unary(Op::Powi, [T::from_f64(n as f64), T::zero()])
    }
    /// `x^e`, `e` a float or another variable.
    #[inline]
    pub fn powf(self, e: impl Operand<'t, T>) -> Self {
        match e.into_arg() {
            Arg::Scalar(c) => self.unary(Op::Powf, [c, T::zero()]),
            other => self.binary_any(Op::Pow, other, false),
        }
    }
    /// `atan2(self, other)`: the angle of the point `(other, self)`.
    #[inline]
    pub fn atan2(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Atan2, other.into_arg(), false)
    }
    /// `sqrt(self^2 + other^2)`.
    #[inline]
    pub fn hypot(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Hypot, other.into_arg(), false)
    }
    /// The elementwise maximum (a tie splits the gradient evenly). For the
    /// largest element of a tensor, see [`Var::max_all`].
    #[inline]
    pub fn max(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Max, other.into_arg(), false)
    }
    /// The elementwise minimum (a tie splits the gradient evenly). For the
    /// smallest element of a tensor, see [`Var::min_all`].
    #[inline]
    pub fn min(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Min, other.into_arg(), false)
    }
    /// The elementwise maximum with broadcasting, `Tensor::maximum` (the same
    /// as [`Var::max`]; a tie splits the gradient evenly).
    #[inline]
    #[track_caller]
    pub fn maximum(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Max, other.into_arg(), false)
    }
    /// The elementwise minimum with broadcasting, `Tensor::minimum` (the same
    /// as [`Var::min`]; a tie splits the gradient evenly).
    #[inline]
    #[track_caller]
    pub fn minimum(self, other: impl Operand<'t, T>) -> Self {
        self.binary_any(Op::Min, other.into_arg(), false)
    }
    /// Clamps to `[lo, hi]`; the gradient passes on the closed interval.
    ///
    /// # Panics
    /// If `lo > hi`.
    #[inline]
    #[track_caller]
    pub fn clamp(self, lo: T, hi: T) -> Self {
        assert!(
            lo <= hi,
            "clamp: lower bound {lo} is above upper bound {hi}"
        );
        self.unary(Op::Clamp, [lo, hi])
    }
    /// `self * a + b`, recorded as a multiplication and an addition. For scalars the
    /// result's value is the fused `mul_add` (one rounding), as `f64::mul_add` gives
    /// it, so a tape function's value matches the plain function's bit for bit; the
    /// partials (`a`, `self`, 1) do not depend on the rounding.
    #[inline]
    pub fn mul_add(self, a: impl Operand<'t, T>, b: impl Operand<'t, T>) -> Self {
        let (a, b) = (a.into_arg(), b.into_arg());
        let scalar = |x: &Arg<'t, T>| match x {
            Arg::Var(v) if v.is_scalar() => Some(v.item()),
            Arg::Scalar(c) => Some(*c),
            _ => None,
        };
        let fused = match (self.is_scalar(), scalar(&a), scalar(&b)) {
            (true, Some(av), Some(bv)) => Some(num_traits::Float::mul_add(self.item(), av, bv)),
            _ => None,
        };
        let r = self
            .binary_any(Op::Mul, a, false)
            .binary_any(Op::Add, b, false);
        if let Some(v) = fused {
            // `r` is the addition just recorded, a scalar node of this tape.
            self.tape.g().nodes[r.idx() as usize].value = v;
        }
        r
    }

    // ----- tensor methods -------------------------------------------------

    /// The sum of all elements, a scalar (a scalar's sum is itself).
    pub fn sum(self) -> Self {
        if self.is_scalar() {
            return self;
        }
        self.structural(Op::Sum, 0, |x| Ok(Value::Scalar(x.sum())))
    }

    /// The mean of all elements, a scalar.
    pub fn mean(self) -> Self {
        if self.is_scalar() {
            return self;
        }
        self.structural(Op::Mean, 0, |x| Ok(Value::Scalar(x.mean())))
    }

    /// The Euclidean norm of all elements, a scalar (the gradient at 0 is 0).
    pub fn norm(self) -> Self {
        self.structural(Op::Norm, 0, |x| Ok(Value::Scalar(x.norm())))
    }

    /// The largest element, a scalar (ties split the gradient evenly). This is
    /// `Tensor::max()`; `Var::max(o)` is the elementwise maximum.
    ///
    /// # Panics
    /// If the tensor is empty.
    pub fn max_all(self) -> Self {
        self.structural(Op::MaxAll, 0, |x| {
            let s = x.as_slice();
            assert!(!s.is_empty(), "max_all: the tensor is empty");
            Ok(Value::Scalar(
                s.iter().copied().fold(T::neg_infinity(), T::max),
            ))
        })
    }

    /// The smallest element, a scalar (ties split the gradient evenly).
    ///
    /// # Panics
    /// If the tensor is empty.
    pub fn min_all(self) -> Self {
        self.structural(Op::MinAll, 0, |x| {
            let s = x.as_slice();
            assert!(!s.is_empty(), "min_all: the tensor is empty");
            Ok(Value::Scalar(s.iter().copied().fold(T::infinity(), T::min)))
        })
    }

    /// The sum over axis `k`, which is removed from the shape.
    #[track_caller]
    pub fn sum_axis(self, k: usize) -> Self {
        self.structural(Op::SumAxis, k, |x| x.try_sum_axis(k).map(Value::Tensor))
    }

    /// The mean over axis `k`, which is removed from the shape.
    #[track_caller]
    pub fn mean_axis(self, k: usize) -> Self {
        self.structural(Op::MeanAxis, k, |x| x.try_mean_axis(k).map(Value::Tensor))
    }

    /// The largest element along axis `k`, which is removed from the shape
    /// (`Tensor::max_axis`); the elements tied for the maximum of a line split
    /// its gradient evenly.
    #[track_caller]
    pub fn max_axis(self, k: usize) -> Self {
        self.structural(Op::MaxAxis, k, |x| x.try_max_axis(k).map(Value::Tensor))
    }

    /// The smallest element along axis `k`, which is removed from the shape
    /// (`Tensor::min_axis`); ties split the gradient evenly.
    #[track_caller]
    pub fn min_axis(self, k: usize) -> Self {
        self.structural(Op::MinAxis, k, |x| x.try_min_axis(k).map(Value::Tensor))
    }

    /// The transpose of a 2-d tensor (0-d and 1-d values are unchanged).
    #[track_caller]
    pub fn t(self) -> Self {
        if self.shape().len() < 2 {
            return self;
        }
        self.structural(Op::Transpose, 0, |x| Ok(Value::Tensor(x.t())))
    }

    /// The same elements under a new shape.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Self {
        self.structural(Op::Reshape, 0, |x| x.try_reshape(shape).map(Value::Tensor))
    }

    /// The value broadcast to `shape` (NumPy's rules).
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Self {
        self.structural(Op::Broadcast, 0, |x| {
            x.try_broadcast_to(shape).map(Value::Tensor)
        })
    }

    /// Element `i` (row-major) of a tensor, as a scalar.
    ///
    /// # Panics
    /// If `i` is out of range.
    #[track_caller]
    pub fn select(self, i: usize) -> Self {
        let n = self.shape().iter().product::<usize>();
        assert!(i < n, "select: index {i} is out of range for {n} elements");
        self.structural(Op::Select, i, |x| Ok(Value::Scalar(x.as_slice()[i])))
    }

    /// The matrix product: `[m,k]·[k,n]`, `[m,k]·[k]` or `[k]·[k,n]`.
    #[track_caller]
    pub fn matmul(self, other: impl Operand<'t, T>) -> Self {
        let o = other.into_arg().into_var(self.tape);
        self.structural2(Op::Matmul, o, |a, b| a.try_matmul(b).map(Value::Tensor))
    }

    /// The inner product of two 1-d tensors, a scalar.
    #[track_caller]
    pub fn dot(self, other: impl Operand<'t, T>) -> Self {
        let o = other.into_arg().into_var(self.tape);
        self.structural2(Op::Dot, o, |a, b| a.try_dot(b).map(Value::Scalar))
    }
}

/// The accumulated gradient of a scalar node that has one: a leaf keeps it in
/// its first partial, a retained intermediate in `Graph::grads`.
#[inline(always)]
fn scalar_grad<T: Float>(g: &Graph<T>, idx: u32) -> T {
    let n = &g.nodes[idx as usize];
    if n.op == Op::Leaf {
        n.partials[0]
    } else {
        g.grads[idx as usize]
    }
}

/// A scalar elementwise node; a constant (no parents, no gradient) unless `rg`.
/// Built without branches so that the hot paths stay in registers.
#[inline(always)]
fn scalar_node<T: Float>(
    value: T,
    partials: [T; 2],
    parents: [u32; 2],
    op: Op,
    rg: bool,
) -> Node<T> {
    Node {
        value,
        partials,
        parents: if rg { parents } else { [NONE; 2] },
        ext: NONE,
        op: if rg { op } else { Op::Constant },
        flags: if rg { REQUIRES_GRAD } else { 0 },
    }
}

/// An elementwise operand read from the graph.
#[inline]
fn arg_of<T: Float>(g: &Graph<T>, n: Node<T>) -> EArg<'_, T> {
    if n.flags & TENSOR != 0 {
        EArg::Tensor(g.ext[n.ext as usize].value.as_ref().expect("tensor node"))
    } else {
        EArg::Scalar(n.value)
    }
}

/// Calls `f` with a node's value as a tensor (a scalar as a 0-d tensor).
fn with_tensor<T: Float, R>(
    g: &Graph<T>,
    idx: u32,
    n: Node<T>,
    f: impl FnOnce(&Tensor<T>) -> R,
) -> R {
    match g.tensor(idx) {
        Some(t) => f(t),
        None => f(&Tensor::scalar(n.value)),
    }
}

/// Pushes the result of an operation that involves tensors: a constant if no
/// input requires a gradient, else a node with its side record.
pub(crate) fn push_result<T: Float>(
    g: &mut Graph<T>,
    op: Op,
    value: Value<T>,
    parents: [u32; 2],
    rg: bool,
    params: [T; 2],
    mut ext: Ext<T>,
) -> u32 {
    if !rg {
        return match value {
            Value::Scalar(y) => g.push(Graph::leaf(y, Op::Constant, 0)),
            Value::Tensor(t) => {
                g.push_ext(Graph::leaf(T::zero(), Op::Constant, 0), Ext::new(Some(t)))
            }
        };
    }
    let (scalar, tensor) = match value {
        Value::Scalar(y) => (y, None),
        Value::Tensor(t) => (T::zero(), Some(t)),
    };
    let node = Node {
        value: scalar,
        partials: params,
        parents,
        ext: NONE,
        op,
        flags: REQUIRES_GRAD | STRUCT,
    };
    ext.value = tensor;
    g.push_ext(node, ext)
}

/// [`Tape::stack`].
#[track_caller]
pub(crate) fn stack<'t, T: Float>(tape: &'t Tape<T>, vars: &[Var<'t, T>]) -> Var<'t, T> {
    assert!(!vars.is_empty(), "stack: no values to stack");
    let first = vars[0].shape();
    for v in vars {
        v.same_tape(vars[0]);
        let s = v.shape();
        assert!(s == first, "stack: shapes {first:?} and {s:?} differ");
    }
    let op = Op::Stack;
    let f = || {
        let mut data = Vec::with_capacity(vars.len() * first.iter().product::<usize>());
        let mut rg = false;
        for v in vars {
            let val = v.value();
            data.extend_from_slice(val.as_slice());
            rg |= v.requires_grad();
        }
        rg &= tape.is_grad_enabled();
        let mut dims = vec![vars.len()];
        dims.extend_from_slice(&first);
        let y = Tensor::from_parts(data, Shape::new(&dims));
        let mut g = tape.g();
        let mut ext = Ext::new(None);
        ext.inputs = vars.iter().map(|v| v.idx()).collect();
        let idx = push_result(
            &mut g,
            op,
            Value::Tensor(y),
            [NONE, NONE],
            rg,
            [T::zero(); 2],
            ext,
        );
        Var::from_parts(tape, idx, g.epoch)
    };
    if tape.is_profiling() {
        tape.time_forward(op.forward_name(), f)
    } else {
        f()
    }
}

impl<T: Float> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read what is printed, then print with the arena released.
        let (value, grad_fn) = {
            let g = self.tape.g();
            if !g.is_live(self.idx(), self.epoch()) {
                return write!(f, "Var(<node {} dropped by clear_graph>)", self.idx());
            }
            let n = g.nodes[self.idx() as usize];
            let value = match g.tensor(self.idx()) {
                Some(t) => Value::Tensor(t.clone()),
                None => Value::Scalar(n.value),
            };
            let grad_fn = (n.flags & REQUIRES_GRAD != 0).then(|| g.op_name(self.idx()));
            (value, grad_fn)
        };
        let value = match value {
            Value::Tensor(t) => format!("{t:?}"),
            Value::Scalar(x) => format!("{x}"),
        };
        match grad_fn {
            Some(name) => write!(f, "Var({value}, grad_fn=<{name}>)"),
            None => write!(f, "Var({value})"),
        }
    }
}

impl<T: Float> fmt::Display for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Value::Scalar(x) => fmt::Display::fmt(&x, f),
            Value::Tensor(t) => write!(f, "{t:?}"),
        }
    }
}
