//! The typed SSA IR of the static path: a flat arena of nodes whose operands point backwards.
//!
//! A [`Func`] is a list of [`Node`]s; a node's operands always have smaller [`Id`]s than
//! the node itself (egg's `RecExpr` invariant), so push order is already a topological
//! order: the reverse sweep is a reverse walk and needs no DFS. [`Func::verify`] checks
//! this in debug builds.
//!
//! Every node has a [`Ty`]. Only float kinds (floats, tensors, and with issue 6,
//! slices and arrays) carry gradients; integers and bools are constants of the adjoint.
//!
//! Structured control flow lives in [`Region`]s: the body of a function is a region, and
//! an [`Op::If`] owns two regions whose nodes are listed there rather than in the
//! enclosing region. A region ends with the values it yields; [`Op::Proj`] reads the
//! `k`-th yielded value of a structured node. Nodes inside a region may refer to any
//! earlier node of an enclosing region; adjoint code may also refer to a value defined
//! inside a region (a saved value), which the emitter exports from that region.
//!
//! Tensors (`Ty::Tensor`) reuse the elementwise ops above, with scalars broadcasting
//! against them, and add products, layout, reductions and the shape-only nodes the
//! reverse sweep needs ([`Op::ShapeOf`], [`Op::Fill`], [`Op::SumToShape`], ...). A
//! comparison with a tensor operand is an elementwise mask of kind `bool`: it only
//! lives inside a fused pass (see `emit.rs`).
//!
//! How the later issues plug in:
//! - loops (issue 6): `Op::For`/`Op::While` own a body region with loop-carried values as
//!   region arguments; the adjoint pushes overwritten values on stacks in the forward
//!   region and pops them in the reversed region, exactly like `If` records its branch.

use proc_macro2::{Span, TokenStream};
use std::fmt;

/// The index of a node in [`Func::nodes`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Id(pub u32);

impl Id {
    /// The index as `usize`.
    pub fn idx(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// A float width.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FloatTy {
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl FloatTy {
    /// The Rust name of the type.
    pub fn name(self) -> &'static str {
        match self {
            FloatTy::F32 => "f32",
            FloatTy::F64 => "f64",
        }
    }

    /// Rounds an `f64` to this width (exact for `f64`).
    pub fn round(self, x: f64) -> f64 {
        match self {
            FloatTy::F32 => x as f32 as f64,
            FloatTy::F64 => x,
        }
    }
}

/// The kind of a value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Ty {
    /// A float scalar: differentiable.
    Float(FloatTy),
    /// An integer of some Rust integer type (rustc infers which): a constant.
    Int,
    /// A `bool`: a constant.
    Bool,
    /// A constant whose Rust type only rustc knows (an outside `const`, an int literal).
    Opaque,
    /// A `Tensor<f32/f64>`.
    Tensor(FloatTy),
    /// A slice, `Vec` or array of floats (issue 6).
    Slice(FloatTy),
    /// The tuple a structured node ([`Op::If`], [`Op::For`]) yields; read with
    /// [`Op::Proj`].
    Tuple,
    /// A local buffer of floats (`vec![0.0; n]`, `[0.0; N]`, `[a, b]`): memory that
    /// [`Op::Load`] reads and [`Op::Store`] writes in place.
    Buf(FloatTy),
    /// The kind of an effect ([`Op::Store`], [`Op::Push`]): no value.
    Unit,
}

impl Ty {
    /// Whether values of this kind can carry a gradient.
    pub fn is_differentiable(self) -> bool {
        matches!(
            self,
            Ty::Float(_) | Ty::Tensor(_) | Ty::Slice(_) | Ty::Buf(_)
        )
    }

    /// Whether values of this kind are memory: slices (read only) and buffers.
    pub fn is_memory(self) -> bool {
        matches!(self, Ty::Slice(_) | Ty::Buf(_))
    }

    /// The float width of a float kind.
    pub fn float(self) -> Option<FloatTy> {
        match self {
            Ty::Float(t) | Ty::Tensor(t) | Ty::Slice(t) | Ty::Buf(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Float(t) => f.write_str(t.name()),
            Ty::Int => f.write_str("int"),
            Ty::Bool => f.write_str("bool"),
            Ty::Opaque => f.write_str("const"),
            Ty::Tensor(t) => write!(f, "Tensor<{}>", t.name()),
            Ty::Slice(t) => write!(f, "[{}]", t.name()),
            Ty::Tuple => f.write_str("tuple"),
            Ty::Buf(t) => write!(f, "buf<{}>", t.name()),
            Ty::Unit => f.write_str("()"),
        }
    }
}

/// A binary operator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` (integers only)
    Rem,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// The operator as Rust spells it.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    /// Whether the result is a `bool`.
    pub fn is_comparison(self) -> bool {
        !matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
        )
    }
}

macro_rules! math_fns {
    ($($variant:ident $name:literal $arity:literal $ext:literal,)*) => {
        /// A float method (or `FloatExt` method) with a derivative rule in `rules.rs`.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum MathFn {
            $(
                #[doc = concat!("`x.", $name, "(..)`")]
                $variant,
            )*
        }

        impl MathFn {
            /// Every function, in declaration order.
            pub const ALL: &'static [MathFn] = &[$(MathFn::$variant),*];

            /// The method name.
            pub fn name(self) -> &'static str {
                match self { $(MathFn::$variant => $name,)* }
            }

            /// The number of operands, the receiver included.
            pub fn arity(self) -> usize {
                match self { $(MathFn::$variant => $arity,)* }
            }

            /// Whether the method comes from the runtime's `FloatExt` rather than `std`.
            pub fn is_ext(self) -> bool {
                match self { $(MathFn::$variant => $ext,)* }
            }
        }
    };
}

math_fns! {
    Sin "sin" 1 false,
    Cos "cos" 1 false,
    Tan "tan" 1 false,
    Asin "asin" 1 false,
    Acos "acos" 1 false,
    Atan "atan" 1 false,
    Atan2 "atan2" 2 false,
    Sinh "sinh" 1 false,
    Cosh "cosh" 1 false,
    Tanh "tanh" 1 false,
    Exp "exp" 1 false,
    Exp2 "exp2" 1 false,
    Ln "ln" 1 false,
    Log10 "log10" 1 false,
    Log2 "log2" 1 false,
    Sqrt "sqrt" 1 false,
    Cbrt "cbrt" 1 false,
    Powi "powi" 2 false,
    Powf "powf" 2 false,
    Recip "recip" 1 false,
    Abs "abs" 1 false,
    Hypot "hypot" 2 false,
    Min "min" 2 false,
    Max "max" 2 false,
    Clamp "clamp" 3 false,
    MulAdd "mul_add" 3 false,
    Signum "signum" 1 false,
    Floor "floor" 1 false,
    Ceil "ceil" 1 false,
    Round "round" 1 false,
    Trunc "trunc" 1 false,
    Relu "relu" 1 true,
    Sigmoid "sigmoid" 1 true,
    Softplus "softplus" 1 true,
}

impl MathFn {
    /// Looks a method up by name.
    pub fn from_name(name: &str) -> Option<MathFn> {
        MathFn::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// An operation. Operand ids always point to earlier nodes.
#[derive(Clone, PartialEq, Debug)]
pub enum Op {
    /// The function's parameter number `.0` (index into the signature's parameters).
    Param(u32),
    /// The `seed` parameter of `_vjp`.
    Seed,
    /// A float constant (its value rounded to the node's width).
    Const(f64),
    /// A constant expression kept as tokens (`Func::opaque[.0]`): int and bool literals,
    /// paths to outside constants.
    Opaque(u32),
    /// `-a` (floats and ints).
    Neg(Id),
    /// `!a` (bools and ints).
    Not(Id),
    /// `a op b`.
    Binary(BinOp, Id, Id),
    /// A float method; `args[0]` is the receiver.
    Math(MathFn, Vec<Id>),
    /// `a as T`: `T` is the node's kind; `Func::opaque[.1]` holds the type as written.
    Cast(Id, u32),
    /// `x.detach()`: the value of `x`; no gradient flows back.
    Detach(Id),
    /// A constant expression as written (`idx[i]`, `cfg.n`, `obs.len()`, `k.pow(2)`):
    /// `Func::opaque[.0]` holds its tokens, where `__ad_hole_K` stands for `args[K]`.
    /// Its arguments and result are never differentiable (integers, `bool`s, constant
    /// parameters), and it reads nothing that the body writes.
    Apply(u32, Vec<Id>),
    /// `if c { a } else { b }` on values already computed (adjoint code only).
    Select(Id, Id, Id),
    /// A call of a user function `Func::paths[path](args)` returning a float. When `vjp`,
    /// it is emitted as `path_vjp(args, 1)` whose partials [`Op::CallGrad`] reads.
    Call {
        /// Index into `Func::paths`.
        path: u32,
        /// The arguments.
        args: Vec<Id>,
        /// Whether some partial of the call is used (set by the simplifier).
        vjp: bool,
    },
    /// The partial derivative of a [`Op::Call`] with respect to its float argument number
    /// `index` of `of` float arguments.
    CallGrad {
        /// The call node.
        call: Id,
        /// Which float argument.
        index: u32,
        /// How many float arguments the call has (1 means a bare gradient).
        of: u32,
    },
    /// `if cond { then } else { else_ }`: yields the values its regions yield.
    If {
        /// The condition (a bool).
        cond: Id,
        /// The branch taken when `cond` holds.
        then: Region,
        /// The other branch.
        else_: Region,
    },
    /// The `.1`-th value yielded by the structured node `.0`.
    Proj(Id, u32),
    /// A node that failed to lower; an error has been reported for it.
    Error,

    // ----- tensors -----
    /// `a.matmul(b)`: `[m,k]·[k,n]`, `[m,k]·[k]`, `[k]·[k,n]`.
    MatMul(Id, Id),
    /// `a.dot(b)`: a scalar.
    Dot(Id, Id),
    /// `a.t()`.
    Transpose(Id),
    /// `a.reshape(&[dims..])` with integer extents.
    Reshape(Id, Vec<Id>),
    /// A full reduction to a scalar: `sum`, `mean`, `norm`, `max`, `min`.
    Reduce(Reduction, Id),
    /// `a.sum_axis(k)`, `a.mean_axis(k)`, `a.max_axis(k)`, `a.min_axis(k)` (`.2` is
    /// the integer axis).
    ReduceAxis(Reduction, Id, Id),
    /// The runtime shape of a tensor (a small inline value, kind `const`); lowering
    /// places one after each tensor value, so the reverse sweep can shape its
    /// gradients without keeping the tensor alive.
    ShapeOf(Id),
    /// The number of elements of a shape, as a float.
    Numel(Id),
    /// The extent of axis `.1` of shape `.0`, as a float.
    AxisLen(Id, Id),
    /// A tensor of shape `.1` with every element the scalar `.0`.
    Fill(Id, Id),
    /// `g.sum_to_shape(shape)`: a broadcast result's gradient summed onto an operand's
    /// shape (free when the shapes are equal).
    SumToShape(Id, Id),
    /// `g.reshape(shape)` back to an operand's shape.
    ReshapeTo(Id, Id),
    /// `g` repeated along axis `.2` to shape `.1`: the pullback of `sum_axis`.
    ExpandAxis(Id, Id, Id),
    /// The pullback of `y = x.max_axis(k)` (`min_axis`): `g` split evenly along axis
    /// `k` among the elements of `x` equal to `y` there. Operands `(x, y, g, k)`.
    ExtremumAxisGrad(Id, Id, Id, Id),
    /// The gradient of one operand of `a.matmul(b)`: of `a` (`lhs`) from `(g, b)`, or
    /// of `b` from `(a, g)`. `shape` is the operand's shape (it only names the result's
    /// shape class; the runtime dispatches on ranks).
    MatMulGrad {
        /// Whether this is the left operand's gradient.
        lhs: bool,
        /// `g` for the left operand's gradient, `a` for the right one's.
        x: Id,
        /// `b` for the left operand's gradient, `g` for the right one's.
        y: Id,
        /// The shape of the operand whose gradient this is.
        shape: Id,
    },
    // ----- loops and memory -----
    /// A region argument: the loop index (`.0 == 0`) or carried value number `.0 - 1`
    /// of the [`Op::For`] whose body lists it in [`Region::args`].
    Arg(u32),
    /// `for i in lo..hi` (or `lo..=hi`, stepped, reversed): the body region's
    /// arguments are the index and the carried values, which start as `inits`; the
    /// body yields their next values; [`Op::Proj`] reads their final values.
    For {
        /// The first index (or the range's start when reversed).
        lo: Id,
        /// The range's end.
        hi: Id,
        /// Whether the range includes `hi`.
        inclusive: bool,
        /// `step_by(step)` (an integer), if any.
        step: Option<Id>,
        /// Whether the range is walked from its end (`.rev()`, before `step_by`).
        rev: bool,
        /// Whether the whole sequence of indices is walked backwards (the reverse
        /// sweep's loops).
        back: bool,
        /// The carried values' initial values.
        inits: Vec<Id>,
        /// The body.
        body: Region,
        /// `while`, `loop` and loops with `break`: the carried `bool` (its number among
        /// the carried values) that must be true for the next iteration to run; it is
        /// checked before each iteration, and [`Op::Proj`] number `inits.len()` reads the
        /// number of iterations that ran.
        exit: Option<u32>,
        /// The reverse sweep of a loop with an `exit`: only the first `trips` indices of
        /// the range are walked (backwards).
        trips: Option<Id>,
    },
    /// `vec![init; len]` (`array: false`) or `[init; len]` (`array: true`): a buffer.
    Alloc {
        /// The element count (an integer; a constant expression for an array).
        len: Id,
        /// Every element's initial value.
        init: Id,
        /// Whether it is an array rather than a `Vec`.
        array: bool,
    },
    /// `[a, b, c]` (`array: true`) or `vec![a, b, c]`: a buffer of these elements.
    Elems(Vec<Id>, bool),
    /// `matches!(x, pat)` for a `match` arm on an integer, `bool` or field-less enum
    /// (`Func::opaque[.1]` holds the pattern): a `bool`.
    Matches(Id, u32),
    /// The `seed` parameter of `_vjp` for a vector result `.0`, moved into a mutable
    /// buffer: the adjoint of the result.
    SeedBuf(Id),
    /// A buffer of zeros as long as the slice or buffer `.0`, of the same kind (an
    /// array for an array): the adjoint of memory.
    ZerosLike(Id),
    /// `b[i]`: an element of a slice or buffer.
    Load(Id, Id),
    /// `b[i] = v` on a buffer (an effect, kind `()`).
    Store(Id, Id, Id),
    /// `b.len()` (an integer).
    Len(Id),
    /// `v.push(0.0)` on a `Vec` that grows (an effect): the element it adds is then
    /// written by an [`Op::Store`]. The lowering keeps the length itself in an integer
    /// variable, so nothing reads [`Op::Len`] of such a buffer; its adjoint, made in
    /// the reverse sweep, has the final length.
    Grow(Id),
    /// `&b[lo..hi]` (`hi` absent: to the end) passed to a call: a read-only view.
    View(Id, Id, Option<Id>),
    /// `d[lo..] += s * g` elementwise (an effect): a callee's gradient `g` for a
    /// slice argument, scaled by the call's adjoint `s`, added into the adjoint `d`
    /// of the memory passed (from `lo` when a view was passed).
    AccMem {
        /// The adjoint buffer.
        dst: Id,
        /// Where the view passed starts, if a view was passed.
        lo: Option<Id>,
        /// The callee's gradient.
        g: Id,
        /// The call's adjoint.
        scale: Id,
    },
    /// A statement that only shows or checks values (`println!`, `assert!`, ...):
    /// the macro `Func::opaque[mac]` run in the forward sweep with each name it
    /// mentions bound to its value (`names[k]` to `args[k]`).
    Effect {
        /// The macro call as written, in `Func::opaque`.
        mac: u32,
        /// The values of the names it mentions.
        args: Vec<Id>,
        /// The names, in `Func::opaque` (one ident each).
        names: Vec<u32>,
    },
    /// Saves `.1` on stack `.0` in the forward sweep (an effect).
    Push(u32, Id),
    /// The last value saved on stack `.0`, taken off it in the reverse sweep.
    Pop(u32),
    /// Writes the snapshot of buffer `.1` last saved on stack `.0` (a [`Op::Push`] of
    /// the buffer) back into it, and takes it off the stack (an effect of the reverse
    /// sweep).
    Restore(u32, Id),
    // ----- `&mut` parameters and calls that write through them (issue 11) -----
    /// The seed of `_vjp` for the final value of `&mut` parameter `.0`: a scalar, or
    /// (kind `buf`) a mutable copy of the seed slice.
    MutSeed(u32),
    /// An owned copy of memory (a buffer, or a view of one) taken before a call that
    /// may write it: what the reverse sweep passes to the callee's `_vjp`.
    Snapshot(Id),
    /// `path(args)` where argument `k` is passed `&mut` when `muts[k]`: memory (a
    /// buffer or a view of one) written in place, or a scalar whose new value
    /// [`Op::MutOut`] reads. The node's value is the call's result (an effect).
    MutCall {
        /// Index into `Func::paths`.
        path: u32,
        /// The arguments.
        args: Vec<Id>,
        /// Which arguments are passed `&mut`.
        muts: Vec<bool>,
    },
    /// The value of the scalar passed as `&mut` argument number `.1` of the
    /// [`Op::MutCall`] `.0`, after the call.
    MutOut(Id, u32),
    /// `path_vjp(args, dmut.., seed)` in the reverse sweep of a [`Op::MutCall`]: `args`
    /// are the values at the call (snapshots of memory), `dmut` the adjoint of each
    /// `&mut` argument's final value (a view of adjoint memory, or a scalar). It
    /// writes the gradient of each `&mut` memory argument's initial value back into
    /// that adjoint memory (an effect); [`Op::CallGrad`] reads the other gradients.
    MutCallVjp {
        /// Index into `Func::paths`.
        path: u32,
        /// The arguments' values at the call.
        args: Vec<Id>,
        /// Which arguments were passed `&mut`.
        muts: Vec<bool>,
        /// One adjoint per `&mut` argument, in order.
        dmut: Vec<Id>,
        /// The adjoint of the call's result.
        seed: Id,
    },
    /// `path_vjp(args, seed)` in the reverse sweep, for a call whose result is a
    /// tensor; [`Op::CallGrad`] reads its gradients.
    CallVjp {
        /// Index into `Func::paths`.
        path: u32,
        /// The arguments.
        args: Vec<Id>,
        /// The adjoint of the call's result.
        seed: Id,
    },
    // ----- tuples (issue 11) -----
    /// `(a, b, ..)`, kind `tuple`: a tuple result of the function, or the seed of a
    /// call with a tuple result (adjoint code).
    Pack(Vec<Id>),
    /// `.1`-th element of the tuple a [`Op::Call`] returned.
    Elem(Id, u32),
    /// `seed.0` of `_vjp` for a tuple result: the adjoint of the result's element `.0`;
    /// for a buffer element `.1` is that buffer (the seed is moved into a mutable
    /// buffer, checked to be as long).
    SeedElem(u32, Option<Id>),
}

/// A reduction of a tensor, full or along an axis.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Reduction {
    /// `sum`
    Sum,
    /// `mean`
    Mean,
    /// `norm` (L2; full reductions only)
    Norm,
    /// `max`
    Max,
    /// `min`
    Min,
}

impl Reduction {
    /// The method name (with `_axis` for the axis forms).
    pub fn name(self, axis: bool) -> &'static str {
        match (self, axis) {
            (Reduction::Sum, false) => "sum",
            (Reduction::Mean, false) => "mean",
            (Reduction::Norm, _) => "norm",
            (Reduction::Max, false) => "max",
            (Reduction::Min, false) => "min",
            (Reduction::Sum, true) => "sum_axis",
            (Reduction::Mean, true) => "mean_axis",
            (Reduction::Max, true) => "max_axis",
            (Reduction::Min, true) => "min_axis",
        }
    }
}

impl Op {
    /// The operands of the node, in order; for structured nodes, only the ones it reads
    /// directly (the condition), not the nodes of its regions.
    pub fn operands(&self) -> Vec<Id> {
        match self {
            Op::Param(_) | Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::MutSeed(_) => {
                vec![]
            }
            Op::Snapshot(a) | Op::MutOut(a, _) => vec![*a],
            Op::MutCall { args, .. } => args.clone(),
            Op::MutCallVjp {
                args, dmut, seed, ..
            } => args.iter().chain(dmut).copied().chain([*seed]).collect(),
            Op::Neg(a) | Op::Not(a) | Op::Cast(a, _) | Op::Detach(a) | Op::Proj(a, _) => vec![*a],
            Op::Binary(_, a, b) => vec![*a, *b],
            Op::Math(_, args) | Op::Call { args, .. } | Op::Apply(_, args) => args.clone(),
            Op::Select(c, a, b) => vec![*c, *a, *b],
            Op::CallGrad { call, .. } => vec![*call],
            Op::Transpose(a) | Op::Reduce(_, a) | Op::ShapeOf(a) | Op::Numel(a) => vec![*a],
            Op::MatMul(a, b)
            | Op::Dot(a, b)
            | Op::ReduceAxis(_, a, b)
            | Op::AxisLen(a, b)
            | Op::Fill(a, b)
            | Op::SumToShape(a, b)
            | Op::ReshapeTo(a, b) => vec![*a, *b],
            Op::ExpandAxis(a, b, c) => vec![*a, *b, *c],
            Op::ExtremumAxisGrad(a, b, c, d) => vec![*a, *b, *c, *d],
            Op::MatMulGrad { x, y, shape, .. } => vec![*x, *y, *shape],
            Op::Reshape(a, dims) => std::iter::once(*a).chain(dims.iter().copied()).collect(),
            Op::CallVjp { args, seed, .. } => args.iter().copied().chain([*seed]).collect(),
            Op::Pack(items) => items.clone(),
            Op::Elem(a, _) => vec![*a],
            Op::SeedElem(_, r) => r.iter().copied().collect(),
            Op::If { cond, then, else_ } => {
                let mut v = vec![*cond];
                v.extend(then.yields.iter().copied());
                v.extend(else_.yields.iter().copied());
                v
            }
            Op::Arg(_) | Op::Pop(_) => vec![],
            Op::For {
                lo,
                hi,
                step,
                inits,
                body,
                trips,
                ..
            } => {
                let mut v = vec![*lo, *hi];
                v.extend(step.iter().copied());
                v.extend(trips.iter().copied());
                v.extend(inits.iter().copied());
                v.extend(body.yields.iter().copied());
                v
            }
            Op::Alloc { len, init, .. } => vec![*len, *init],
            Op::Elems(items, _) => items.clone(),
            Op::ZerosLike(a)
            | Op::Len(a)
            | Op::Push(_, a)
            | Op::Restore(_, a)
            | Op::SeedBuf(a)
            | Op::Matches(a, _) => {
                vec![*a]
            }
            Op::Load(b, i) => vec![*b, *i],
            Op::Grow(b) => vec![*b],
            Op::Store(b, i, v) => vec![*b, *i, *v],
            Op::View(b, lo, hi) => std::iter::once(*b).chain([*lo]).chain(*hi).collect(),
            Op::Effect { args, .. } => args.clone(),
            Op::AccMem { dst, lo, g, scale } => std::iter::once(*dst)
                .chain(*lo)
                .chain([*g, *scale])
                .collect(),
        }
    }

    /// Whether the node does something besides computing its value (writes memory,
    /// saves a value), so it is kept even when nothing reads it.
    pub fn has_effect(&self) -> bool {
        matches!(
            self,
            Op::Store(..)
                | Op::Grow(_)
                | Op::Push(..)
                | Op::Pop(_)
                | Op::Restore(..)
                | Op::AccMem { .. }
                | Op::Effect { .. }
                | Op::MutCall { .. }
                | Op::MutCallVjp { .. }
        )
    }

    /// The regions a structured node owns.
    pub fn regions(&self) -> Vec<&Region> {
        match self {
            Op::If { then, else_, .. } => vec![then, else_],
            Op::For { body, .. } => vec![body],
            _ => vec![],
        }
    }

    /// The regions a structured node owns, to rewrite.
    pub fn regions_mut(&mut self) -> Vec<&mut Region> {
        match self {
            Op::If { then, else_, .. } => vec![then, else_],
            Op::For { body, .. } => vec![body],
            _ => vec![],
        }
    }

    /// Applies `f` to every operand (including region yields).
    pub fn map_operands(&mut self, f: &mut impl FnMut(Id) -> Id) {
        match self {
            Op::Param(_) | Op::Seed | Op::Const(_) | Op::Opaque(_) | Op::Error | Op::MutSeed(_) => {
            }
            Op::Snapshot(a) | Op::MutOut(a, _) => *a = f(*a),
            Op::MutCall { args, .. } => args.iter_mut().for_each(|a| *a = f(*a)),
            Op::MutCallVjp {
                args, dmut, seed, ..
            } => {
                args.iter_mut().chain(dmut).for_each(|a| *a = f(*a));
                *seed = f(*seed);
            }
            Op::Neg(a) | Op::Not(a) | Op::Cast(a, _) | Op::Detach(a) | Op::Proj(a, _) => *a = f(*a),
            Op::Binary(_, a, b) => {
                *a = f(*a);
                *b = f(*b);
            }
            Op::Math(_, args) | Op::Call { args, .. } | Op::Apply(_, args) => {
                args.iter_mut().for_each(|a| *a = f(*a))
            }
            Op::Select(c, a, b) => {
                *c = f(*c);
                *a = f(*a);
                *b = f(*b);
            }
            Op::CallGrad { call, .. } => *call = f(*call),
            Op::Transpose(a) | Op::Reduce(_, a) | Op::ShapeOf(a) | Op::Numel(a) => *a = f(*a),
            Op::MatMul(a, b)
            | Op::Dot(a, b)
            | Op::ReduceAxis(_, a, b)
            | Op::AxisLen(a, b)
            | Op::Fill(a, b)
            | Op::SumToShape(a, b)
            | Op::ReshapeTo(a, b) => {
                *a = f(*a);
                *b = f(*b);
            }
            Op::ExpandAxis(a, b, c) => {
                *a = f(*a);
                *b = f(*b);
                *c = f(*c);
            }
            Op::ExtremumAxisGrad(a, b, c, d) => {
                for x in [a, b, c, d] {
                    *x = f(*x);
                }
            }
            Op::MatMulGrad { x, y, shape, .. } => {
                *x = f(*x);
                *y = f(*y);
                *shape = f(*shape);
            }
            Op::Reshape(a, dims) => {
                *a = f(*a);
                dims.iter_mut().for_each(|d| *d = f(*d));
            }
            Op::CallVjp { args, seed, .. } => {
                args.iter_mut().for_each(|a| *a = f(*a));
                *seed = f(*seed);
            }
            Op::Pack(items) => items.iter_mut().for_each(|a| *a = f(*a)),
            Op::Elem(a, _) => *a = f(*a),
            Op::SeedElem(_, r) => {
                if let Some(r) = r {
                    *r = f(*r);
                }
            }
            Op::If { cond, then, else_ } => {
                *cond = f(*cond);
                for r in [then, else_] {
                    r.nodes.iter_mut().for_each(|a| *a = f(*a));
                    r.yields.iter_mut().for_each(|a| *a = f(*a));
                }
            }
            Op::Arg(_) | Op::Pop(_) => {}
            Op::For {
                lo,
                hi,
                step,
                inits,
                body,
                trips,
                ..
            } => {
                *lo = f(*lo);
                *hi = f(*hi);
                if let Some(s) = step {
                    *s = f(*s);
                }
                if let Some(t) = trips {
                    *t = f(*t);
                }
                inits.iter_mut().for_each(|a| *a = f(*a));
                body.args.iter_mut().for_each(|a| *a = f(*a));
                body.nodes.iter_mut().for_each(|a| *a = f(*a));
                body.yields.iter_mut().for_each(|a| *a = f(*a));
            }
            Op::Alloc { len, init, .. } => {
                *len = f(*len);
                *init = f(*init);
            }
            Op::Elems(items, _) => items.iter_mut().for_each(|a| *a = f(*a)),
            Op::ZerosLike(a)
            | Op::Len(a)
            | Op::Grow(a)
            | Op::Push(_, a)
            | Op::Restore(_, a)
            | Op::SeedBuf(a)
            | Op::Matches(a, _) => *a = f(*a),
            Op::Load(b, i) => {
                *b = f(*b);
                *i = f(*i);
            }
            Op::Store(b, i, v) => {
                *b = f(*b);
                *i = f(*i);
                *v = f(*v);
            }
            Op::Effect { args, .. } => args.iter_mut().for_each(|a| *a = f(*a)),
            Op::View(b, lo, hi) => {
                *b = f(*b);
                *lo = f(*lo);
                if let Some(h) = hi {
                    *h = f(*h);
                }
            }
            Op::AccMem { dst, lo, g, scale } => {
                *dst = f(*dst);
                if let Some(l) = lo {
                    *l = f(*l);
                }
                *g = f(*g);
                *scale = f(*scale);
            }
        }
    }
}

/// A straight-line list of nodes (in push order) and the values it yields.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Region {
    /// The region's arguments ([`Op::Arg`] nodes, not listed in `nodes`): a loop
    /// body's index and carried values.
    pub args: Vec<Id>,
    /// The nodes executed by this region, in order.
    pub nodes: Vec<Id>,
    /// The values the region yields to its structured node.
    pub yields: Vec<Id>,
}

/// Whether a node computes the primal value or belongs to the reverse sweep.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// Part of the user's computation: never rewritten by algebraic identities, so the
    /// value of `_grad` is bit-identical to the primal's.
    Primal,
    /// Created by the adjoint builder.
    Adjoint,
}

/// One operation with its kind and the span of the source it comes from.
#[derive(Clone, Debug)]
pub struct Node {
    /// What it computes.
    pub op: Op,
    /// The kind of its value.
    pub ty: Ty,
    /// The user's source span (adjoint nodes get the span of the primal node they
    /// differentiate), so errors in emitted code point at the user's code.
    pub span: Span,
    /// Primal or adjoint.
    pub origin: Origin,
    /// A name the emitter may use in the variable name (the user's `let` name).
    pub hint: Option<String>,
}

/// A function in IR form.
///
/// Invariant: every operand of `nodes[i]` is an id `< i`; the ids in a region are
/// increasing; the ids in a region's `yields` are defined before the region ends.
#[derive(Clone, Debug, Default)]
pub struct Func {
    /// The arena.
    pub nodes: Vec<Node>,
    /// The top-level region.
    pub body: Region,
    /// The token side table of [`Op::Opaque`].
    pub opaque: Vec<TokenStream>,
    /// The callee side table of [`Op::Call`].
    pub paths: Vec<syn::Path>,
    /// For each entry of `paths`: which arguments the call wrote as `&x`.
    pub arg_refs: Vec<Vec<bool>>,
    /// The kind of each stack of saved values ([`Op::Push`], [`Op::Pop`]).
    pub stacks: Vec<Ty>,
    /// What the function returns: for a primal the result; after `adjoint::build` the
    /// result followed by one gradient per differentiated parameter. Both end with the
    /// final value of each `&mut` scalar parameter, which the companions write back.
    pub outputs: Vec<Id>,
}

impl Func {
    /// Appends a node to the arena (not to any region).
    pub fn push(&mut self, node: Node) -> Id {
        let id = Id(self.nodes.len() as u32);
        self.nodes.push(node);
        id
    }

    /// The node of an id.
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id.idx()]
    }

    /// The value of an integer literal kept as tokens ([`Op::Opaque`]).
    pub fn int_literal(&self, id: Id) -> Option<i64> {
        match self.node(id).op {
            Op::Opaque(i) => syn::parse2::<syn::LitInt>(self.opaque[i as usize].clone())
                .ok()?
                .base10_parse()
                .ok(),
            _ => None,
        }
    }

    /// Checks the backward-pointing invariant; returns a description of the first
    /// violation.
    pub fn verify(&self) -> Result<(), String> {
        for (i, node) in self.nodes.iter().enumerate() {
            let mut ops = node.op.operands();
            // A region's nodes come before the node that owns it, except the saves
            // that the adjoint appends to a forward region once it knows what the
            // reverse sweep reads (they are the region's last nodes).
            for r in node.op.regions() {
                ops.extend(r.nodes.iter().chain(&r.args).copied().filter(|&n| {
                    !matches!(self.nodes.get(n.idx()).map(|n| &n.op), Some(Op::Push(..)))
                }));
            }
            for op in ops {
                if op.idx() >= i {
                    return Err(format!("node %{i} refers forward to {op}"));
                }
            }
        }
        fn check_region(r: &Region, len: usize) -> Result<(), String> {
            if r.nodes.windows(2).any(|w| w[0] >= w[1]) {
                return Err("region nodes are not increasing".into());
            }
            if r.nodes.iter().chain(&r.yields).any(|id| id.idx() >= len) {
                return Err("region refers past the arena".into());
            }
            Ok(())
        }
        check_region(&self.body, self.nodes.len())?;
        if self.outputs.iter().any(|id| id.idx() >= self.nodes.len()) {
            return Err("output refers past the arena".into());
        }
        Ok(())
    }

    fn fmt_region(&self, f: &mut fmt::Formatter<'_>, region: &Region, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for &id in &region.nodes {
            let node = self.node(id);
            write!(f, "{pad}{id}: {} = ", node.ty)?;
            match &node.op {
                Op::Param(i) => write!(f, "param {i}")?,
                Op::Seed => write!(f, "seed")?,
                Op::Const(v) => write!(f, "{v:?}")?,
                Op::Opaque(i) => write!(f, "`{}`", self.opaque[*i as usize])?,
                Op::Neg(a) => write!(f, "neg {a}")?,
                Op::Not(a) => write!(f, "not {a}")?,
                Op::Binary(op, a, b) => write!(f, "{a} {} {b}", op.symbol())?,
                Op::Math(m, args) => {
                    write!(f, "{}", m.name())?;
                    for a in args {
                        write!(f, " {a}")?;
                    }
                }
                Op::Cast(a, t) => write!(f, "{a} as {}", self.opaque[*t as usize])?,
                Op::Detach(a) => write!(f, "detach {a}")?,
                Op::Apply(code, args) => {
                    write!(f, "apply `{}`", self.opaque[*code as usize])?;
                    for a in args {
                        write!(f, " {a}")?;
                    }
                }
                Op::Select(c, a, b) => write!(f, "select {c} {a} {b}")?,
                Op::Call { path, args, vjp } => {
                    let p = &self.paths[*path as usize];
                    write!(
                        f,
                        "call{} {}",
                        if *vjp { "_vjp" } else { "" },
                        quote::quote!(#p)
                    )?;
                    for a in args {
                        write!(f, " {a}")?;
                    }
                }
                Op::CallGrad { call, index, of } => write!(f, "callgrad {call} {index}/{of}")?,
                Op::Proj(a, k) => write!(f, "{a}.{k}")?,
                Op::Error => write!(f, "error")?,
                Op::MatMul(a, b) => write!(f, "matmul {a} {b}")?,
                Op::Dot(a, b) => write!(f, "dot {a} {b}")?,
                Op::Transpose(a) => write!(f, "t {a}")?,
                Op::Reshape(a, dims) => write!(f, "reshape {a} [{}]", list(dims))?,
                Op::Reduce(r, a) => write!(f, "{} {a}", r.name(false))?,
                Op::ReduceAxis(r, a, k) => write!(f, "{} {a} {k}", r.name(true))?,
                Op::ShapeOf(a) => write!(f, "shape {a}")?,
                Op::Numel(s) => write!(f, "numel {s}")?,
                Op::AxisLen(s, k) => write!(f, "axis_len {s} {k}")?,
                Op::Fill(v, s) => write!(f, "fill {v} {s}")?,
                Op::SumToShape(g, s) => write!(f, "sum_to {g} {s}")?,
                Op::ReshapeTo(g, s) => write!(f, "reshape_to {g} {s}")?,
                Op::ExpandAxis(g, s, k) => write!(f, "expand_axis {g} {s} {k}")?,
                Op::ExtremumAxisGrad(x, y, g, k) => {
                    write!(f, "extremum_axis_grad {x} {y} {g} {k}")?
                }
                Op::MatMulGrad { lhs, x, y, shape } => write!(
                    f,
                    "matmul_grad_{} {x} {y} {shape}",
                    if *lhs { "lhs" } else { "rhs" }
                )?,
                Op::CallVjp { path, args, seed } => {
                    let p = &self.paths[*path as usize];
                    write!(f, "call_vjp {}", quote::quote!(#p))?;
                    for a in args {
                        write!(f, " {a}")?;
                    }
                    write!(f, " seed {seed}")?;
                }
                Op::Arg(k) => write!(f, "arg {k}")?,
                Op::Pack(items) => write!(f, "({})", list(items))?,
                Op::Elem(a, k) => write!(f, "elem {a}.{k}")?,
                Op::SeedElem(k, r) => match r {
                    Some(r) => write!(f, "seed.{k} for {r}")?,
                    None => write!(f, "seed.{k}")?,
                },
                Op::For {
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
                } => {
                    let range = if *inclusive { "..=" } else { ".." };
                    write!(
                        f,
                        "for {} in {lo}{range}{hi}",
                        list(&body.args[..1.min(body.args.len())])
                    )?;
                    if let Some(s) = step {
                        write!(f, " step {s}")?;
                    }
                    if *rev {
                        write!(f, " rev")?;
                    }
                    if *back {
                        write!(f, " back")?;
                    }
                    if let Some(t) = trips {
                        write!(f, " take {t}")?;
                    }
                    if let Some(k) = exit {
                        write!(f, " while carried {k}")?;
                    }
                    writeln!(
                        f,
                        " carry {} = {} {{",
                        list(body.args.get(1..).unwrap_or(&[])),
                        list(inits)
                    )?;
                    self.fmt_region(f, body, depth + 1)?;
                    writeln!(f, "{pad}  yield {}", list(&body.yields))?;
                    write!(f, "{pad}}}")?;
                }
                Op::Alloc { len, init, array } => {
                    let what = if *array { "array" } else { "vec" };
                    write!(f, "{what} [{init}; {len}]")?
                }
                Op::Elems(items, array) => {
                    let what = if *array { "array" } else { "vec" };
                    write!(f, "{what} [{}]", list(items))?
                }
                Op::ZerosLike(a) => write!(f, "zeros_like {a}")?,
                Op::SeedBuf(a) => write!(f, "seed_buf {a}")?,
                Op::Matches(a, p) => write!(f, "matches {a} `{}`", self.opaque[*p as usize])?,
                Op::Load(b, i) => write!(f, "{b}[{i}]")?,
                Op::Store(b, i, v) => write!(f, "{b}[{i}] <- {v}")?,
                Op::Grow(b) => write!(f, "grow {b}")?,
                Op::Len(b) => write!(f, "len {b}")?,
                Op::View(b, lo, hi) => match hi {
                    Some(h) => write!(f, "view {b}[{lo}..{h}]")?,
                    None => write!(f, "view {b}[{lo}..]")?,
                },
                Op::AccMem { dst, lo, g, scale } => match lo {
                    Some(l) => write!(f, "{dst}[{l}..] += {scale} * {g}")?,
                    None => write!(f, "{dst} += {scale} * {g}")?,
                },
                Op::Effect { mac, args, .. } => {
                    let m = &self.opaque[*mac as usize];
                    write!(f, "effect `{}` {}", m, list(args))?
                }
                Op::MutSeed(k) => write!(f, "mut_seed {k}")?,
                Op::Snapshot(a) => write!(f, "snapshot {a}")?,
                Op::MutCall { path, args, muts }
                | Op::MutCallVjp {
                    path, args, muts, ..
                } => {
                    let p = &self.paths[*path as usize];
                    let vjp = matches!(node.op, Op::MutCallVjp { .. });
                    write!(
                        f,
                        "mut_call{} {}",
                        if vjp { "_vjp" } else { "" },
                        quote::quote!(#p)
                    )?;
                    for (a, m) in args.iter().zip(muts) {
                        write!(f, " {}{a}", if *m { "&mut " } else { "" })?;
                    }
                    if let Op::MutCallVjp { dmut, seed, .. } = &node.op {
                        write!(f, " dmut [{}] seed {seed}", list(dmut))?;
                    }
                }
                Op::MutOut(c, k) => write!(f, "{c}.mut{k}")?,
                Op::Push(k, v) => write!(f, "push s{k} {v}")?,
                Op::Pop(k) => write!(f, "pop s{k}")?,
                Op::Restore(k, b) => write!(f, "restore {b} s{k}")?,
                Op::If { cond, then, else_ } => {
                    writeln!(f, "if {cond} {{")?;
                    self.fmt_region(f, then, depth + 1)?;
                    writeln!(f, "{pad}  yield {}", list(&then.yields))?;
                    writeln!(f, "{pad}}} else {{")?;
                    self.fmt_region(f, else_, depth + 1)?;
                    writeln!(f, "{pad}  yield {}", list(&else_.yields))?;
                    write!(f, "{pad}}}")?;
                }
            }
            if node.origin == Origin::Adjoint {
                write!(f, "  ; adj")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn list(ids: &[Id]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_region(f, &self.body, 0)?;
        write!(f, "return {}", list(&self.outputs))
    }
}
