//! The dynamic tape: reverse-mode automatic differentiation with PyTorch
//! autograd's semantics, recorded at run time.
//!
//! A [`Tape`] owns one arena of nodes; a [`Var`] is a `Copy` handle (the tape
//! and an index). Operations on `Var`s compute their value at once and record
//! a node; [`Var::backward`] walks the arena in reverse and accumulates the
//! gradients of the leaves.
//!
//! ```
//! use ad_runtime::tape::Tape;
//!
//! let tape: Tape = Tape::new();
//! let x1 = tape.var(1.5);
//! let x2 = tape.var(0.5);
//! let f = (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2;
//! f.backward();
//! assert!((x2.grad_scalar() - 1.6165488003791768).abs() < 1e-12);
//! ```
//!
//! # What PyTorch users will recognise
//!
//! | PyTorch | here |
//! |---|---|
//! | `torch.tensor(1.5, requires_grad=True)` | `tape.var(1.5)` / `tape.tensor(t)` |
//! | `torch.tensor(3.0)` | `tape.constant(3.0)` / `tape.constant_tensor(t)`, or a plain `f64` operand |
//! | `y.backward()`, `y.backward(v)` | [`Var::backward`], [`Var::backward_with`] |
//! | `x.grad`, `x.grad.zero_()`, `opt.zero_grad()` | [`Var::grad`], [`Var::zero_grad`], [`Tape::zero_grad`] |
//! | `torch.autograd.grad(l, (a, b))` | [`Tape::grad`] |
//! | `torch.autograd.grad(l, (a, b), create_graph=True)` | [`Tape::grad_graph`], [`Tape::grad_graph_with`] |
//! | `with torch.no_grad():` | [`Tape::no_grad`] |
//! | `x.detach()`, `y.retain_grad()` | [`Var::detach`], [`Var::retain_grad`] |
//! | `with torch.no_grad(): a -= lr * a.grad` | [`Var::set_value`] |
//! | `torch.autograd.Function` | [`Function`] and [`Tape::apply`]; [`Tape::apply_fn`] for a closure |
//! | `y.grad_fn`, `.next_functions`, `x.is_leaf` | [`Var::grad_fn`], [`GradFn::next_functions`], [`Var::is_leaf`] |
//! | `torchviz.make_dot(y)` | [`Tape::to_dot`] |
//! | `torch.autograd.profiler.profile()` | [`Tape::profile`] |
//!
//! # Training loops
//!
//! The graph is kept after `backward` (PyTorch's `retain_graph=True` is the
//! only mode), so a loop that records a new forward pass on every step calls
//! [`Tape::clear_graph`] at the end of each step: it drops every recorded
//! operation and keeps the leaves created before the first operation, with
//! their values and gradients. A `Var` of a dropped node panics when used.
//!
//! ```
//! use ad_runtime::tape::Tape;
//!
//! let tape: Tape = Tape::new();
//! let a = tape.var(0.5);
//! let b = tape.var(-0.5);
//! for _ in 0..100 {
//!     let l = (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a - b).powi(2);
//!     l.backward();
//!     a.set_value(a.item() - 0.1 * a.grad_scalar());
//!     b.set_value(b.item() - 0.1 * b.grad_scalar());
//!     tape.zero_grad();
//!     tape.clear_graph();
//! }
//! assert!((a.item() - 1.0 / 3.0).abs() < 1e-6);
//! assert_eq!(tape.len(), 2);
//! ```
//!
//! A `Var` carries the generation it was made in: each `clear_graph` starts
//! a new one, and a `Var` is live while its node was kept by every clear since
//! (see `Graph::is_live`). Generations are 32-bit and `clear_graph` panics
//! rather than start generation 2³², after about 4.3 billion clears: a `Var`
//! of a dropped node is never taken for the node later recorded at its index.
//! [`Tape::clear`] (which needs `&mut`, so no `Var` is alive) starts again at 0.
//!
//! # Soundness: callbacks into the tape
//!
//! The tape runs user code in the middle of its work: a [`Function`]'s
//! `name`, `forward` and `backward`, the `backward` closure of
//! [`Tape::apply_fn`], the `Drop` of a recorded operation, the closures of
//! [`Tape::no_grad`] and [`Tape::profile`], and user `Into<Value>`
//! conversions. Any of them may call the tape again. The module has no
//! `unsafe`: the arena is a `RefCell`, and every tape method borrows it for
//! as long as it reads or writes the arena and releases it before it calls
//! user code:
//!
//! - `Function::name` is called once, by [`Tape::apply`] before the node is
//!   recorded, and the name is stored: the walks that print names (DOT
//!   export, [`GradFn`], the profiler, `Debug`) call no user code.
//! - `forward` runs before the node is recorded, with nothing borrowed; the
//!   inputs are checked again afterwards, as `forward` may have cleared them.
//! - A custom `backward` runs with the walk's borrow released: the walk takes
//!   its own `Rc` of the operation, drops the borrow, calls the user and
//!   borrows anew. The walk owns its scratch buffers, so a nested backward
//!   pass or [`Tape::grad`] works; what the user records lands above the
//!   root, off the walk's path. The one call that would pull nodes from under
//!   the walk, [`Tape::clear_graph`], panics while a pass is running.
//! - [`Tape::grad_graph`] records with ordinary `Var` operations, each of
//!   which borrows the arena on its own; a custom `backward_graph` runs with
//!   nothing borrowed, and `clear_graph` panics inside it as inside a pass.
//! - `clear_graph` cuts the graph, releases the borrow and only then drops
//!   the removed operations; an operation not recorded (no input needs a
//!   gradient) is dropped after the borrow too.
//! - `Into<Value>` arguments are converted before the borrow.
//!
//! A second borrow therefore only happens if a [`Float`] implementation's
//! arithmetic calls back into the tape; it panics with "the tape is in use".
//! A panic in a callback unwinds through no borrow and leaves the tape usable:
//! the pass count and the `Tape::grad` marks are restored by a guard, though
//! a backward pass that panicked may have accumulated part of its gradients.
//! `tests/tape_reentrancy.rs` exercises each of these paths (Miri, which
//! would check the rest, cannot be installed on the project's machines).

mod backward;
mod create_graph;
mod dot;
mod elementwise;
mod error;
mod function;
mod graph;
mod inspect;
mod operators;
mod profile;
mod rules;
mod value;
mod var;

pub use error::TapeError;
pub use function::Function;
pub use inspect::GradFn;
pub use operators::{Arg, Operand};
pub use profile::{Profile, ProfileRow};
pub use value::Value;
pub use var::Var;

use crate::float::Float;
use crate::tensor::Tensor;
use graph::{Ext, Graph, REQUIRES_GRAD};
use rules::Op;
use std::cell::{Cell, RefCell, RefMut};

/// `Tape::mode` bit: inside `no_grad`.
const NO_GRAD: u8 = 1;
/// `Tape::mode` bit: inside `profile`.
const PROFILING: u8 = 2;

/// A recording of operations: one arena of nodes, shared by the [`Var`]s
/// that point into it.
///
/// A tape is used from one thread (it is not `Sync`); operations take `&self`.
pub struct Tape<T: Float = f64> {
    /// The arena, borrowed by each tape method for as long as it reads or
    /// writes it and released before it calls user code (see the module docs).
    graph: RefCell<Graph<T>>,
    /// `NO_GRAD` and `PROFILING` bits, read once per recorded operation.
    mode: Cell<u8>,
    /// How many backward passes are running (nested ones from custom
    /// backwards count too); `clear_graph` refuses to run inside one.
    walks: Cell<u32>,
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A tape method found its arena already borrowed. The tape itself never
/// calls user code while it holds the borrow, so this is a `Float`
/// implementation whose arithmetic (or `Debug`) calls back into the tape.
#[cold]
#[inline(never)]
#[track_caller]
fn busy() -> ! {
    panic!(
        "the tape is in use: a tape method was called while another one was reading \
         the recorded graph (from a Float implementation that calls back into the tape)"
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn epochs_exhausted() -> ! {
    panic!(
        "clear_graph: this tape was cleared {} times, the most a Var can tell apart; \
         call Tape::clear (which needs no Var to be alive) or record on a new tape",
        u32::MAX
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn clear_in_backward() -> ! {
    panic!(
        "clear_graph was called during a backward pass (from a custom operation's \
         backward): it would drop the nodes the pass is walking; clear after backward returns"
    )
}

impl<T: Float> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Tape {
            graph: RefCell::new(Graph::new()),
            mode: Cell::new(0),
            walks: Cell::new(0),
        }
    }

    /// An empty tape with room for `n` nodes.
    pub fn with_capacity(n: usize) -> Self {
        let tape = Self::new();
        tape.g().nodes.reserve(n);
        tape
    }

    /// The arena. The borrow must end before the caller runs user code or
    /// another tape method; a second borrow panics with a clear message.
    #[inline(always)]
    #[track_caller]
    fn g(&self) -> RefMut<'_, Graph<T>> {
        match self.graph.try_borrow_mut() {
            Ok(g) => g,
            Err(_) => busy(),
        }
    }

    /// A scalar leaf that requires a gradient.
    #[inline]
    pub fn var(&self, x: T) -> Var<'_, T> {
        self.scalar_leaf(x, Op::Leaf, REQUIRES_GRAD | graph::LEAF)
    }

    #[inline(always)]
    fn scalar_leaf(&self, x: T, op: Op, flags: u8) -> Var<'_, T> {
        let mut g = self.g();
        let idx = g.push(Graph::leaf(x, op, flags));
        Var::from_parts(self, idx, g.epoch)
    }

    /// Scalar leaves that require gradients, one per value.
    pub fn vars(&self, xs: &[T]) -> Vec<Var<'_, T>> {
        xs.iter().map(|&x| self.var(x)).collect()
    }

    /// A tensor leaf that requires a gradient. A 0-d tensor becomes a scalar leaf.
    pub fn tensor(&self, t: Tensor<T>) -> Var<'_, T> {
        self.leaf(Value::Tensor(t), true)
    }

    /// A scalar constant: no gradient flows into it.
    #[inline]
    pub fn constant(&self, x: T) -> Var<'_, T> {
        self.scalar_leaf(x, Op::Constant, 0)
    }

    /// A tensor constant.
    pub fn constant_tensor(&self, t: Tensor<T>) -> Var<'_, T> {
        self.leaf(Value::Tensor(t), false)
    }

    /// A leaf holding `value`, requiring a gradient or not
    /// (PyTorch's `torch.tensor(value, requires_grad=...)`).
    pub fn leaf(&self, value: impl Into<Value<T>>, requires_grad: bool) -> Var<'_, T> {
        let (op, flags) = if requires_grad {
            (Op::Leaf, REQUIRES_GRAD | graph::LEAF)
        } else {
            (Op::Constant, 0)
        };
        // A user's `Into` runs before the arena is borrowed.
        let value = value.into().normalized();
        let mut g = self.g();
        let idx = match value {
            Value::Scalar(x) => g.push(Graph::leaf(x, op, flags)),
            Value::Tensor(t) => g.push_ext(Graph::leaf(T::zero(), op, flags), Ext::new(Some(t))),
        };
        Var::from_parts(self, idx, g.epoch)
    }

    /// Runs `f` with recording switched off: every result computed inside is a
    /// constant (PyTorch's `with torch.no_grad():`). Nests; restores the previous
    /// state even if `f` panics.
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// let tape: Tape = Tape::new();
    /// let x = tape.var(2.0);
    /// let y = tape.no_grad(|| x * 2.0);
    /// assert!(!y.requires_grad());
    /// assert_eq!(y.item(), 4.0);
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a Cell<u8>, u8);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                // Restore the recording state only; a profile started inside stays its own business.
                self.0.set(self.0.get() & !NO_GRAD | self.1 & NO_GRAD);
            }
        }
        let _restore = Restore(&self.mode, self.mode.get());
        self.mode.set(self.mode.get() | NO_GRAD);
        f()
    }

    /// Whether operations are being recorded (false inside [`Tape::no_grad`]).
    pub fn is_grad_enabled(&self) -> bool {
        self.mode.get() & NO_GRAD == 0
    }

    /// Whether a [`Tape::profile`] scope is active.
    #[inline(always)]
    pub(crate) fn is_profiling(&self) -> bool {
        self.mode.get() & PROFILING != 0
    }

    /// Sets every accumulated gradient to none (PyTorch's `optimizer.zero_grad()`).
    pub fn zero_grad(&self) {
        let mut g = self.g();
        for n in g.nodes.iter_mut() {
            n.flags &= !graph::HAS_GRAD;
        }
        for e in g.ext.iter_mut() {
            e.grad = None;
        }
    }

    /// The number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.g().nodes.len()
    }

    /// Whether the tape holds no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every node, leaves included, keeping the allocated memory: the
    /// fastest way to record anew. Taking `&mut self` guarantees that no `Var`
    /// of the old recording is alive, so the generation count restarts.
    pub fn clear(&mut self) {
        let g = self.graph.get_mut();
        let mut removed = g.truncate(0);
        g.epoch = 0;
        g.kept.clear();
        g.always_kept = 0;
        // Keep the side storage's allocation. Custom operations dropped here
        // cannot reach the tape: `&mut self` means nothing else refers to it.
        removed.clear();
        g.ext = removed;
    }

    /// Drops every recorded operation and keeps the leaves (and constants)
    /// created before the first operation, with their values and gradients:
    /// what a training loop calls at the end of each step. Using a `Var` of a
    /// dropped node afterwards panics.
    ///
    /// Each call starts a new generation, which every `Var` carries so that a
    /// `Var` of a dropped node is told apart from the node later recorded at
    /// its index. There are `u32::MAX` generations: at the next call (after
    /// about 4.3 billion clears, hours of doing nothing else), this panics
    /// and drops nothing, rather than let a stale `Var` alias a new node.
    /// [`Tape::clear`] starts the count again.
    ///
    /// # Panics
    /// When the generations are used up, and when called from a custom
    /// operation's backward during a backward pass.
    #[track_caller]
    pub fn clear_graph(&self) {
        if self.walks.get() != 0 {
            clear_in_backward();
        }
        let removed = {
            let mut g = self.g();
            let Some(next) = g.epoch.checked_add(1) else {
                epochs_exhausted()
            };
            let start = g.leaf_prefix();
            g.note_kept(start);
            g.epoch = next;
            g.truncate(start)
        };
        // The dropped side records may hold custom operations whose `Drop` is
        // user code: it runs here, with the arena released.
        drop(removed);
    }

    /// The sum of the `Var`s of an iterator; an empty iterator gives the constant 0.
    pub fn sum<'t>(&'t self, vars: impl IntoIterator<Item = Var<'t, T>>) -> Var<'t, T> {
        let mut it = vars.into_iter();
        match it.next() {
            None => self.constant(T::zero()),
            Some(first) => it.fold(first, |acc, v| acc + v),
        }
    }

    /// Stacks values of one shape along a new leading axis: `n` scalars give a
    /// `[n]` tensor, `n` tensors of shape `s` give `[n, s...]` (PyTorch's `torch.stack`).
    ///
    /// # Panics
    /// If `vars` is empty or the shapes differ.
    #[track_caller]
    pub fn stack<'t>(&'t self, vars: &[Var<'t, T>]) -> Var<'t, T> {
        var::stack(self, vars)
    }
}

#[cfg(test)]
mod tests {
    use super::Tape;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn panic_message(f: impl FnOnce()) -> String {
        let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
        match err.downcast_ref::<String>() {
            Some(s) => s.clone(),
            None => err.downcast_ref::<&str>().unwrap_or(&"").to_string(),
        }
    }

    /// The last generation: the next `clear_graph` panics and drops nothing,
    /// so no stale `Var` can alias; `clear` starts the count again.
    #[test]
    fn clear_graph_panics_instead_of_wrapping_the_generation() {
        let mut tape: Tape = Tape::new();
        tape.g().epoch = u32::MAX - 1;
        {
            let x = tape.var(2.0);
            let y = x * 3.0;
            tape.clear_graph();
            assert_eq!(tape.g().epoch, u32::MAX);
            let msg = panic_message(|| {
                y.item();
            });
            assert!(msg.contains("no longer on its tape"), "{msg}");
            let z = x * 4.0;
            let msg = panic_message(|| tape.clear_graph());
            assert!(msg.contains("cleared 4294967295 times"), "{msg}");
            // Nothing was dropped, and the tape still records.
            assert_eq!(z.item(), 8.0);
            (z * x).backward();
            assert_eq!(x.grad_scalar(), 16.0);
        }
        tape.clear();
        assert_eq!(tape.g().epoch, 0);
        let x = tape.var(1.0);
        let _ = x * 2.0;
        tape.clear_graph();
        assert_eq!(tape.len(), 1);
    }

    /// A tape method reached while the arena is borrowed (only a `Float`
    /// implementation calling back into the tape could do that) panics with
    /// a message instead of aliasing the borrow, and the tape is fine after.
    #[test]
    fn a_second_borrow_of_the_arena_panics_with_a_message() {
        let tape: Tape = Tape::new();
        let x = tape.var(1.0);
        let g = tape.g();
        let msg = panic_message(|| {
            let _ = x * 2.0;
        });
        assert!(msg.contains("the tape is in use"), "{msg}");
        drop(g);
        assert_eq!((x * 2.0).item(), 2.0);
    }
    /// `floor`, `signum`, ...: the value of `f64`'s method, a node that requires a
    /// gradient, and nothing back to the input, even from an infinite adjoint.
    #[test]
    fn piecewise_constant_operations_give_exactly_zero() {
        let tape: Tape = Tape::new();
        let x = tape.var(-2.5);
        type Op = fn(super::Var<'_>) -> super::Var<'_>;
        let ops: [(Op, f64); 5] = [
            (|v| v.floor(), -3.0),
            (|v| v.ceil(), -2.0),
            (|v| v.round(), -3.0),
            (|v| v.trunc(), -2.0),
            (|v| v.signum(), -1.0),
        ];
        for (f, want) in ops {
            let y = f(x);
            assert_eq!(y.item(), want);
            assert!(y.requires_grad());
            x.zero_grad();
            (y * f64::INFINITY + x * 2.0).backward();
            assert_eq!(x.grad_scalar(), 2.0);
        }
        let t = tape.tensor(crate::Tensor::from_vec(vec![-0.5, 0.5, 1.5], &[3]));
        let y = t.round();
        assert_eq!(y.tensor().as_slice(), &[-1.0, 1.0, 2.0]);
        (y * f64::INFINITY + t).sum().backward();
        assert_eq!(t.grad_tensor().as_slice(), &[1.0, 1.0, 1.0]);
        let n = format!("{:?}", t.floor());
        assert!(n.contains("FloorBackward"), "{n}");
    }

    /// `max_axis`/`min_axis` on the tape split a tie's gradient evenly, also
    /// when a 1-d tensor reduces to a scalar.
    #[test]
    fn axis_extrema_split_ties() {
        let tape: Tape = Tape::new();
        let x = tape.tensor(crate::Tensor::from_vec(
            vec![2.0, 5.0, 5.0, 1.0, 5.0, 0.0],
            &[2, 3],
        ));
        let w = crate::Tensor::from_vec(vec![1.0, 10.0], &[2]);
        (x.max_axis(1) * &w).sum().backward();
        assert_eq!(x.grad_tensor().as_slice(), &[0.0, 0.5, 0.5, 0.0, 10.0, 0.0]);
        x.zero_grad();
        let c = crate::Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        (x.min_axis(0) * &c).sum().backward();
        // Column 1 ties (5, 5): its weight 2 splits into 1 and 1.
        assert_eq!(x.grad_tensor().as_slice(), &[0.0, 1.0, 0.0, 1.0, 1.0, 3.0]);
        let v = tape.tensor(crate::Tensor::from_vec(vec![3.0, 1.0, 3.0], &[3]));
        let m = v.max_axis(0);
        assert!(m.is_scalar());
        m.backward();
        assert_eq!(v.grad_tensor().as_slice(), &[0.5, 0.0, 0.5]);
        let msg = panic_message(|| {
            let _ = v.max_axis(1);
        });
        assert!(msg.contains("max_axis") && msg.contains("[3]"), "{msg}");
    }

    /// `maximum`/`minimum` broadcast; equal elements split the gradient evenly.
    #[test]
    fn maximum_broadcasts_and_splits_ties() {
        let tape: Tape = Tape::new();
        let a = tape.tensor(crate::Tensor::from_vec(vec![1.0, 4.0, 2.0, 3.0], &[2, 2]));
        let b = tape.tensor(crate::Tensor::from_vec(vec![2.0, 3.0], &[2]));
        let y = a.maximum(b);
        assert_eq!(y.tensor().as_slice(), &[2.0, 4.0, 2.0, 3.0]);
        y.sum().backward();
        assert_eq!(a.grad_tensor().as_slice(), &[0.0, 1.0, 0.5, 0.5]);
        assert_eq!(b.grad_tensor().as_slice(), &[1.5, 0.5]);
        let z = a.minimum(2.5);
        assert_eq!(z.tensor().as_slice(), &[1.0, 2.5, 2.0, 2.5]);
    }
}
