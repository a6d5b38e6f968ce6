//! The arena: one vector of compact nodes, plus side storage for tensors.
//!
//! Invariant: a node's parents have smaller indices than the node itself, so
//! the push order is a topological order and backward is a reverse walk.

use super::function::CustomBackward;
use super::profile::ProfileData;
use super::rules::Op;
use crate::float::Float;
use crate::tensor::Tensor;
use std::rc::Rc;

/// "No node": an absent parent or side record.
pub(crate) const NONE: u32 = u32::MAX;

/// The node needs a gradient (it is a grad-requiring leaf or depends on one).
pub(crate) const REQUIRES_GRAD: u8 = 1;
/// `retain_grad()` was called: the node keeps its gradient like a leaf.
pub(crate) const RETAIN: u8 = 2;
/// The node has an accumulated gradient.
pub(crate) const HAS_GRAD: u8 = 4;
/// The node's value is a tensor, held in its side record.
pub(crate) const TENSOR: u8 = 8;
/// The user named the node.
pub(crate) const NAMED: u8 = 16;
/// Set during a `Tape::grad` walk on the nodes whose gradients it returns.
pub(crate) const WANTED: u8 = 128;
/// The node is a leaf that requires a gradient (`Op::Leaf`).
pub(crate) const LEAF: u8 = 64;
/// The node's backward is a rule of the `match` in `backward.rs` (not the
/// scalar fast path that uses the stored partials).
pub(crate) const STRUCT: u8 = 32;

// The backward walk streams these; keep them at five words.
const _: () = assert!(std::mem::size_of::<Node<f64>>() == 40);

/// One recorded value: 40 bytes for `f64`, no heap allocation for scalars.
/// A node carries no generation: whether a `Var` still points at the node it
/// was made for is decided by [`Graph::is_live`] from the `Var`'s generation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<T> {
    /// The value of a scalar node (unused for tensor nodes).
    pub value: T,
    /// Scalar elementwise nodes: the local partials `dy/dparent`, stored at
    /// record time. Tensor nodes: the operation's constant parameters.
    pub partials: [T; 2],
    /// The inputs (`NONE` if absent). Operations with more inputs keep them
    /// in their side record.
    pub parents: [u32; 2],
    /// Index of the side record in `Graph::ext`, or `NONE`.
    pub ext: u32,
    pub op: Op,
    pub flags: u8,
}

/// A local partial derivative of an elementwise tensor operation.
#[derive(Clone)]
pub(crate) enum Saved<T> {
    /// Not needed (the input needs no gradient).
    None,
    /// The same value at every element.
    Const(T),
    /// One value per output element (output-shaped).
    Tensor(Tensor<T>),
}

/// The side record of a node that involves tensors or custom operations.
pub(crate) struct Ext<T: Float> {
    /// The node's value when it is a tensor.
    pub value: Option<Tensor<T>>,
    /// Elementwise operations: the partials with respect to each parent.
    pub saved: [Saved<T>; 2],
    /// An axis (`sum_axis`, `mean_axis`) or element index (`select`).
    pub axis: usize,
    /// The inputs of operations with any number of them (stack, custom).
    pub inputs: Vec<u32>,
    /// A custom operation: its name and backward.
    pub custom: Option<Custom<T>>,
    /// The accumulated gradient of a tensor leaf (or a retained tensor).
    pub grad: Option<Tensor<T>>,
}

/// A recorded custom operation. The name is asked of the user once, when the
/// operation is recorded, so that walks over the graph (DOT export, the
/// profiler, `grad_fn`) never call user code while they read the arena.
pub(crate) struct Custom<T: Float> {
    pub name: Box<str>,
    /// Shared so that the backward pass can take its own handle, release the
    /// arena, and call the user's backward with nothing of the graph borrowed.
    pub backward: Rc<dyn CustomBackward<T>>,
}

impl<T: Float> Ext<T> {
    pub(crate) fn new(value: Option<Tensor<T>>) -> Self {
        Ext {
            value,
            saved: [Saved::None, Saved::None],
            axis: 0,
            inputs: Vec::new(),
            custom: None,
            grad: None,
        }
    }
}

/// Everything a tape holds.
pub(crate) struct Graph<T: Float> {
    pub nodes: Vec<Node<T>>,
    pub ext: Vec<Ext<T>>,
    /// Accumulated gradients of scalar nodes, indexed like `nodes` (grown lazily).
    pub grads: Vec<T>,
    /// Names given with `set_name`.
    pub names: Vec<(u32, String)>,
    /// The current `clear_graph` generation: the number of `clear_graph`
    /// calls since the tape was made or last `clear`ed. `clear_graph` panics
    /// rather than let it wrap.
    pub epoch: u32,
    /// How many leading nodes each `clear_graph` kept, as change points
    /// `(generation, kept)`: the clear that ended generation `g` kept the
    /// `kept` of the last entry whose generation is at most `g`. An entry is
    /// added only when the count changes, and it only grows, so there are at
    /// most as many entries as kept leaves.
    pub kept: Vec<(u32, u32)>,
    /// The count kept by the first `clear_graph` (0 before it): a node below
    /// it has survived every clear, so a `Var` of it is live in any generation.
    pub always_kept: u32,
    /// Scratch buffers of the backward pass, kept to avoid reallocating.
    pub adj: Vec<T>,
    pub marks: Vec<u8>,
    pub tadj: Vec<Option<Tensor<T>>>,
    /// The active profile, if any.
    pub profile: Option<Box<ProfileData>>,
}

impl<T: Float> Graph<T> {
    pub(crate) fn new() -> Self {
        Graph {
            nodes: Vec::new(),
            ext: Vec::new(),
            grads: Vec::new(),
            names: Vec::new(),
            epoch: 0,
            kept: Vec::new(),
            always_kept: 0,
            adj: Vec::new(),
            marks: Vec::new(),
            tadj: Vec::new(),
            profile: None,
        }
    }

    /// Appends a node and returns its index.
    #[inline(always)]
    pub(crate) fn push(&mut self, node: Node<T>) -> u32 {
        let idx = self.nodes.len() as u32;
        self.nodes.push(node);
        idx
    }

    /// Appends a node whose value is a tensor (or which needs a side record).
    pub(crate) fn push_ext(&mut self, mut node: Node<T>, ext: Ext<T>) -> u32 {
        node.ext = self.ext.len() as u32;
        if ext.value.is_some() {
            node.flags |= TENSOR;
        }
        self.ext.push(ext);
        self.push(node)
    }

    /// A new scalar node with no parents.
    #[inline(always)]
    pub(crate) fn leaf(value: T, op: Op, flags: u8) -> Node<T> {
        Node {
            value,
            partials: [T::zero(); 2],
            parents: [NONE; 2],
            ext: NONE,
            op,
            flags,
        }
    }

    /// The tensor value of node `idx`, if it has one.
    #[inline]
    pub(crate) fn tensor(&self, idx: u32) -> Option<&Tensor<T>> {
        let n = &self.nodes[idx as usize];
        if n.flags & TENSOR != 0 {
            self.ext[n.ext as usize].value.as_ref()
        } else {
            None
        }
    }

    /// The shape of node `idx` (empty for a scalar).
    pub(crate) fn shape(&self, idx: u32) -> &[usize] {
        match self.tensor(idx) {
            Some(t) => t.shape(),
            None => &[],
        }
    }

    /// The inputs of node `idx`, in order.
    pub(crate) fn inputs(&self, idx: u32) -> Vec<u32> {
        let n = &self.nodes[idx as usize];
        if n.ext != NONE && !self.ext[n.ext as usize].inputs.is_empty() {
            return self.ext[n.ext as usize].inputs.clone();
        }
        n.parents
            .iter()
            .copied()
            .filter(|&p| p != NONE && p != idx)
            .collect()
    }

    /// The name the user gave node `idx`.
    pub(crate) fn name(&self, idx: u32) -> Option<&str> {
        if self.nodes[idx as usize].flags & NAMED == 0 {
            return None;
        }
        self.names
            .iter()
            .rev()
            .find(|(i, _)| *i == idx)
            .map(|(_, s)| s.as_str())
    }

    /// The backward name of node `idx` (`MulBackward`, a custom op's name, ...).
    pub(crate) fn op_name(&self, idx: u32) -> String {
        let n = &self.nodes[idx as usize];
        if n.op == Op::Custom {
            if let Some(c) = &self.ext[n.ext as usize].custom {
                return custom_backward_name(&c.name);
            }
        }
        n.op.name().to_string()
    }

    /// The name of node `idx`'s operation in the profiler.
    pub(crate) fn profile_name(&self, idx: u32) -> String {
        let n = &self.nodes[idx as usize];
        if n.op == Op::Custom {
            if let Some(c) = &self.ext[n.ext as usize].custom {
                return c.name.to_string();
            }
        }
        n.op.forward_name().to_string()
    }

    /// The number of leading nodes without inputs: the leaves and constants
    /// created before the first operation.
    pub(crate) fn leaf_prefix(&self) -> u32 {
        self.nodes
            .iter()
            .position(|n| {
                n.parents != [NONE; 2]
                    || (n.ext != NONE && !self.ext[n.ext as usize].inputs.is_empty())
            })
            .unwrap_or(self.nodes.len()) as u32
    }

    /// Whether a `Var` made for node `idx` in generation `epoch` still points
    /// at that node. Within a generation nodes are only appended, so a `Var`
    /// of the current generation is live. A `Var` of an older generation `e`
    /// is live exactly when its node was kept by the clear that ended `e`:
    /// every later clear keeps at least as many nodes (the kept nodes have no
    /// inputs, so they open the next leaf prefix), so it never drops the node,
    /// and a node above that count was dropped, whatever was recorded at its
    /// index since. No generation is stored per node, and none can wrap.
    #[inline(always)]
    pub(crate) fn is_live(&self, idx: u32, epoch: u32) -> bool {
        let exists = (idx as usize) < self.nodes.len();
        if epoch == self.epoch {
            exists
        } else {
            // A kept leaf, used on every step of a training loop: most were
            // created before the first clear's prefix ended.
            exists && (idx < self.always_kept || self.kept_through(idx, epoch))
        }
    }

    #[cold]
    #[inline(never)]
    fn kept_through(&self, idx: u32, epoch: u32) -> bool {
        if epoch > self.epoch {
            return false;
        }
        // The last change point at or before `epoch`; the first entry is
        // generation 0, so there always is one once a clear has happened.
        let k = self.kept.partition_point(|&(e, _)| e <= epoch);
        k > 0 && idx < self.kept[k - 1].1
    }

    /// Notes that the clear ending the current generation keeps `start` nodes.
    pub(crate) fn note_kept(&mut self, start: u32) {
        debug_assert!(
            self.kept.last().map_or(true, |&(_, k)| k <= start),
            "the kept prefix shrank from {:?} to {start}",
            self.kept.last()
        );
        if self.kept.last().map(|&(_, k)| k) != Some(start) {
            self.kept.push((self.epoch, start));
        }
        if self.kept.len() == 1 {
            self.always_kept = start;
        }
    }

    /// Removes every node from `len` on. The removed side records are returned
    /// so that the caller drops them (and any custom operation in them) after
    /// it stops using the graph.
    #[must_use]
    pub(crate) fn truncate(&mut self, len: u32) -> Vec<Ext<T>> {
        let len = len as usize;
        if len == 0 {
            self.nodes.clear();
            self.grads.clear();
            self.names.clear();
            return std::mem::take(&mut self.ext);
        }
        if len >= self.nodes.len() {
            return Vec::new();
        }
        let n_ext = self.nodes[len..]
            .iter()
            .map(|n| n.ext)
            .find(|&e| e != NONE)
            .map(|e| e as usize)
            .unwrap_or(self.ext.len());
        self.nodes.truncate(len);
        self.grads.truncate(len);
        self.names.retain(|(i, _)| (*i as usize) < len);
        self.ext.split_off(n_ext)
    }
}

/// `"MyRelu"` becomes `"MyReluBackward"`; a name already ending in `Backward` stays.
pub(crate) fn custom_backward_name(name: &str) -> String {
    if name.ends_with("Backward") {
        name.to_string()
    } else {
        format!("{name}Backward")
    }
}
