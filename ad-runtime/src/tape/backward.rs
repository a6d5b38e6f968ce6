//! The backward pass: a reverse walk over the arena that accumulates adjoints
//! with `+=`, and the one `match` holding the rules of the structural operations.

use super::elementwise::{self, add_assign};
use super::graph::{
    Graph, Node, Saved, HAS_GRAD, LEAF, NONE, REQUIRES_GRAD, RETAIN, STRUCT, TENSOR, WANTED,
};
use super::rules::{self, Op};
use super::{Tape, TapeError, Value, Var};
use crate::float::Float;
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::cell::RefMut;
use std::time::Instant;

/// The mark of a node the backward walk reached.
const REACHED: u8 = 1;

/// Ends a backward pass, also when a custom backward panics: the tape leaves
/// the pass count and clears the `WANTED` marks this pass set, so that the
/// tape stays usable.
struct WalkGuard<'a, T: Float> {
    tape: &'a Tape<T>,
    /// The nodes this pass marked `WANTED` (not those an enclosing pass marked).
    wanted: Vec<u32>,
}

impl<T: Float> WalkGuard<'_, T> {
    fn unmark(&mut self, g: &mut Graph<T>) {
        for i in self.wanted.drain(..) {
            if let Some(n) = g.nodes.get_mut(i as usize) {
                n.flags &= !WANTED;
            }
        }
    }
}

impl<T: Float> Drop for WalkGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.walks.set(self.tape.walks.get() - 1);
        if !self.wanted.is_empty() {
            // Only after a panic: the pass itself unmarks on success. The
            // arena is free then (the pass's borrow was dropped first); if it
            // were not, the marks would stay, costing time but no correctness.
            if let Ok(mut g) = self.tape.graph.try_borrow_mut() {
                self.unmark(&mut g);
            }
        }
    }
}

impl<T: Float> Tape<T> {
    /// Runs a backward pass from `root` with `seed`. Without `wanted`, it
    /// accumulates into the leaves' (and retained nodes') gradients; with
    /// `wanted`, it returns the gradients of those variables and touches no
    /// accumulated gradient (`torch.autograd.grad`).
    ///
    /// The arena stays borrowed for the whole walk except while a custom
    /// operation's backward runs (see [`Tape::visit`]).
    pub(crate) fn run_backward(
        &self,
        root: Var<'_, T>,
        seed: Value<T>,
        wanted: Option<&[Var<'_, T>]>,
    ) -> Result<Vec<Value<T>>, TapeError> {
        // Declared before the borrow, so that it is dropped after it.
        self.walks.set(self.walks.get() + 1);
        let mut guard = WalkGuard {
            tape: self,
            wanted: Vec::new(),
        };
        let mut g = self.g();
        let rn = root.node(&g);
        let seed = seed.normalized();
        let root_shape = g.shape(root.idx());
        if seed.shape() != root_shape {
            return Err(TapeError::SeedShape {
                expected: root_shape.to_vec(),
                got: seed.shape().to_vec(),
            });
        }
        if rn.flags & REQUIRES_GRAD == 0 {
            return Err(TapeError::NoGradient);
        }
        let r = root.idx() as usize;
        let profiling = self.is_profiling();
        // The common case, a scalar result whose graph holds only scalar
        // nodes, runs on the scratch buffers in place.
        let mut start = r + 1;
        let fast = wanted.is_none() && !profiling && matches!(seed, Value::Scalar(_));
        if let (true, Value::Scalar(s)) = (fast, &seed) {
            let Graph {
                nodes, adj, marks, ..
            } = &mut *g;
            adj.clear();
            adj.resize(r + 1, T::zero());
            marks.clear();
            marks.resize(r + 1, 0);
            adj[r] = *s;
            marks[r] = REACHED;
            match fast_walk(nodes, adj, marks, r + 1, 0, true) {
                None => return Ok(Vec::new()),
                Some(j) => start = j + 1,
            }
        }
        // The walk owns its buffers: a nested pass started by a custom
        // backward finds the graph's slots empty and uses its own.
        let mut adj = std::mem::take(&mut g.adj);
        let mut marks = std::mem::take(&mut g.marks);
        let mut tadj = std::mem::take(&mut g.tadj);
        tadj.clear();
        tadj.resize_with(g.ext.len(), || None);
        if !fast {
            adj.clear();
            adj.resize(r + 1, T::zero());
            marks.clear();
            marks.resize(r + 1, 0);
            match seed {
                Value::Scalar(s) => adj[r] = s,
                Value::Tensor(t) => tadj[rn.ext as usize] = Some(t),
            }
            marks[r] = REACHED;
        }
        let mut lowest = 0usize;
        if let Some(w) = wanted {
            lowest = r;
            for v in w {
                v.node(&g);
                let i = v.idx() as usize;
                if i <= r {
                    let n = &mut g.nodes[i];
                    if n.flags & WANTED == 0 {
                        n.flags |= WANTED;
                        guard.wanted.push(i as u32);
                    }
                    lowest = lowest.min(i);
                }
            }
        }
        let mut w = Walk {
            adj,
            marks,
            tadj,
            found: Vec::new(),
            accumulate: wanted.is_none(),
            profiling,
        };
        let mut i = start;
        loop {
            // The hot loop runs over scalar nodes; anything else is visited.
            let next = if w.profiling {
                // Every reached node is visited, to be timed; unreached ones
                // have no gradient to propagate and are skipped.
                (lowest..i).rev().find(|&j| w.marks[j] != 0)
            } else {
                fast_walk(
                    &mut g.nodes,
                    &mut w.adj,
                    &mut w.marks,
                    i,
                    lowest,
                    w.accumulate,
                )
            };
            let Some(j) = next else { break };
            g = self.visit(g, j, &mut w);
            i = j;
        }
        let Walk {
            adj,
            marks,
            tadj,
            found,
            ..
        } = w;
        g.adj = adj;
        g.marks = marks;
        g.tadj = tadj;
        if !guard.wanted.is_empty() {
            guard.unmark(&mut g);
        }
        let Some(w) = wanted else {
            return Ok(Vec::new());
        };
        Ok(w.iter()
            .map(|v| match found.iter().find(|(i, _)| *i == v.idx()) {
                Some((_, val)) => val.clone(),
                None => Value::Tensor(Tensor::zeros(g.shape(v.idx()))).normalized(),
            })
            .collect())
    }
}

/// Walks down from node `i - 1` to `lowest` over the nodes the hot path
/// handles: reached scalar elementwise nodes (their partials were stored when
/// they were recorded: adj[p] += ∂y/∂p · adj[y]) and scalar leaves (their
/// adjoint is added to their gradient, kept in their first partial). Returns
/// the first node that needs [`Tape::visit`], if any.
#[inline(never)]
fn fast_walk<T: Float>(
    nodes: &mut [Node<T>],
    adj: &mut [T],
    marks: &mut [u8],
    mut i: usize,
    lowest: usize,
    accumulate: bool,
) -> Option<usize> {
    while i > lowest {
        i -= 1;
        let m = marks[i];
        if m == 0 {
            continue;
        }
        let n = &mut nodes[i];
        if n.flags == REQUIRES_GRAD {
            // Parents come before their node (or are the node itself, for an
            // absent input), so clamping to `i` changes nothing and lets the
            // compiler drop the bounds checks.
            let adj = &mut adj[..=i];
            let marks = &mut marks[..=i];
            let gi = adj[i];
            let [p0, p1] = n.parents;
            let (p0, p1) = ((p0 as usize).min(i), (p1 as usize).min(i));
            let [d0, d1] = n.partials;
            // A zero adjoint contributes exactly 0 (see `rules::scale`).
            adj[p0] += rules::scale(gi, d0);
            marks[p0] = REACHED;
            adj[p1] += rules::scale(gi, d1);
            marks[p1] = REACHED;
            continue;
        }
        if n.flags & !HAS_GRAD == REQUIRES_GRAD | LEAF && accumulate {
            let had = n.flags & HAS_GRAD != 0;
            n.partials[0] = if had { n.partials[0] + adj[i] } else { adj[i] };
            n.flags |= HAS_GRAD;
            continue;
        }
        return Some(i);
    }
    None
}

/// The state of a backward walk.
struct Walk<T: Float> {
    adj: Vec<T>,
    marks: Vec<u8>,
    tadj: Vec<Option<Tensor<T>>>,
    found: Vec<(u32, Value<T>)>,
    accumulate: bool,
    profiling: bool,
}

impl<T: Float> Tape<T> {
    /// Visits a reached node off the hot path: leaves, retained and wanted
    /// nodes, tensor and custom operations, and everything while profiling.
    /// It takes the walk's borrow of the arena and gives it back, so that it
    /// can release it around a custom operation's backward.
    #[inline(never)]
    fn visit<'a>(
        &'a self,
        mut g: RefMut<'a, Graph<T>>,
        i: usize,
        w: &mut Walk<T>,
    ) -> RefMut<'a, Graph<T>> {
        let n = g.nodes[i];
        let t0 = w.profiling.then(Instant::now);
        if n.flags & WANTED != 0 {
            let v = if n.flags & TENSOR != 0 {
                Value::Tensor(
                    w.tadj[n.ext as usize]
                        .clone()
                        .expect("a reached tensor has a gradient"),
                )
            } else {
                Value::Scalar(w.adj[i])
            };
            w.found.push((i as u32, v));
        }
        if w.accumulate && (n.op == Op::Leaf || n.flags & RETAIN != 0) {
            store_grad(&mut g, i, &w.adj, &mut w.tadj, n.op == Op::Leaf);
        }
        if n.flags & STRUCT == 0 {
            // A scalar elementwise node: adj[p] += ∂y/∂p · adj[y].
            let gi = w.adj[i];
            for k in 0..2 {
                let p = n.parents[k];
                if p != NONE {
                    w.adj[p as usize] += rules::scale(gi, n.partials[k]);
                    w.marks[p as usize] |= REACHED;
                }
            }
        } else {
            let gout = if n.flags & TENSOR != 0 {
                let e = n.ext as usize;
                let keep = n.flags & (WANTED | RETAIN) != 0;
                let t = if keep {
                    w.tadj[e].clone()
                } else {
                    w.tadj[e].take()
                };
                Value::Tensor(t.expect("a reached tensor has a gradient"))
            } else {
                Value::Scalar(w.adj[i])
            };
            let contributions = if n.op == Op::Custom {
                // User code runs here: take a handle of its own, release the
                // arena, call the user, and borrow the arena anew. The user may
                // have recorded nodes (above the root, so not on this walk's
                // path) or changed values and gradients; it cannot have dropped
                // any node, as `clear_graph` refuses to run during a pass.
                let e = n.ext as usize;
                let backward = g.ext[e]
                    .custom
                    .as_ref()
                    .expect("a custom node has its operation")
                    .backward
                    .clone();
                drop(g);
                let grads = backward.backward(&gout);
                drop(backward);
                g = self.g();
                debug_assert!(i < g.nodes.len() && g.nodes[i].op == Op::Custom);
                let ext = &g.ext[e];
                let name = ext.custom.as_ref().map_or("", |c| &c.name);
                check_custom_grads(&g, name, &ext.inputs, grads)
            } else {
                rule(&g, i, &gout)
            };
            for (p, v) in contributions {
                let pn = g.nodes[p as usize];
                if pn.flags & REQUIRES_GRAD == 0 {
                    continue;
                }
                w.marks[p as usize] |= REACHED;
                match v {
                    Value::Scalar(s) => w.adj[p as usize] += s,
                    Value::Tensor(t) if pn.flags & TENSOR == 0 => {
                        w.adj[p as usize] += t.as_slice().iter().copied().sum::<T>()
                    }
                    Value::Tensor(t) => match &mut w.tadj[pn.ext as usize] {
                        Some(acc) => add_assign(acc, &t),
                        slot @ None => *slot = Some(t),
                    },
                }
            }
        }
        if let Some(t0) = t0 {
            let name = g.profile_name(i as u32);
            let dt = t0.elapsed();
            if let Some(p) = g.profile.as_mut() {
                p.record_backward(&name, dt);
            }
        }
        g
    }
}

/// Adds node `i`'s adjoint to its accumulated gradient.
fn store_grad<T: Float>(
    g: &mut Graph<T>,
    i: usize,
    adj: &[T],
    tadj: &mut [Option<Tensor<T>>],
    is_leaf: bool,
) {
    let n = g.nodes[i];
    let had = n.flags & HAS_GRAD != 0;
    if n.flags & TENSOR != 0 {
        let e = n.ext as usize;
        // A leaf has no parents, so its adjoint is not needed any more.
        let t = if is_leaf {
            tadj[e].take()
        } else {
            tadj[e].clone()
        };
        let Some(t) = t else { return };
        match (&mut g.ext[e].grad, had) {
            (Some(acc), true) => add_assign(acc, &t),
            (slot, _) => *slot = Some(t),
        }
    } else if is_leaf {
        // A scalar leaf keeps its gradient in its (otherwise unused) first partial.
        let slot = &mut g.nodes[i].partials[0];
        *slot = if had { *slot + adj[i] } else { adj[i] };
    } else {
        if g.grads.len() <= i {
            let len = g.nodes.len();
            g.grads.resize(len, T::zero());
        }
        if had {
            g.grads[i] += adj[i];
        } else {
            g.grads[i] = adj[i];
        }
    }
    g.nodes[i].flags |= HAS_GRAD;
}

/// Checks a custom operation's input gradients against the inputs' shapes.
fn check_custom_grads<T: Float>(
    g: &Graph<T>,
    name: &str,
    inputs: &[u32],
    grads: Vec<Option<Value<T>>>,
) -> Vec<(u32, Value<T>)> {
    assert!(
        grads.len() == inputs.len(),
        "custom operation {name}: backward returned {} gradients for {} inputs",
        grads.len(),
        inputs.len()
    );
    let mut out = Vec::with_capacity(inputs.len());
    for (k, (&p, gr)) in inputs.iter().zip(grads).enumerate() {
        let Some(gr) = gr else { continue };
        let gr = gr.normalized();
        let shape = g.shape(p);
        assert!(
            gr.shape() == shape,
            "custom operation {name}: the gradient of input {k} has shape {:?} but the input has shape {shape:?}",
            gr.shape()
        );
        out.push((p, gr));
    }
    out
}

/// The value of node `p` as a tensor (a scalar as a 0-d tensor).
fn tensor_of<T: Float>(g: &Graph<T>, p: u32) -> Tensor<T> {
    match g.tensor(p) {
        Some(t) => t.clone(),
        None => Tensor::scalar(g.nodes[p as usize].value),
    }
}

/// A tensor-valued gradient for node `p`, as a scalar if `p` is a scalar.
fn for_input<T: Float>(g: &Graph<T>, p: u32, t: Tensor<T>) -> Value<T> {
    if g.nodes[p as usize].flags & TENSOR == 0 {
        Value::Scalar(t.as_slice().iter().copied().sum())
    } else {
        Value::Tensor(t)
    }
}

/// The backward rule of a structural node `i` (and of an elementwise node
/// that involves a tensor): the gradient contribution to each input, given the
/// output's gradient `gy`. `x` is the (first) input, `y` the output, `n` an
/// element count; products `⊙` are elementwise.
fn rule<T: Float>(g: &Graph<T>, i: usize, gy: &Value<T>) -> Vec<(u32, Value<T>)> {
    let n = g.nodes[i];
    let [a, b] = n.parents;
    let ext = &g.ext[n.ext as usize];
    let needs = |p: u32| p != NONE && g.nodes[p as usize].flags & REQUIRES_GRAD != 0;
    let mut out = Vec::with_capacity(2);
    match n.op {
        Op::Leaf | Op::Constant => {}
        // Elementwise (tensor): dx_k = sum over broadcast dims of (gy ⊙ ∂y/∂x_k),
        // with the partials ∂y/∂x_k computed at record time from `rules.rs`.
        Op::Neg
        | Op::Exp
        | Op::Exp2
        | Op::Ln
        | Op::Log2
        | Op::Log10
        | Op::Sin
        | Op::Cos
        | Op::Tan
        | Op::Asin
        | Op::Acos
        | Op::Atan
        | Op::Sinh
        | Op::Cosh
        | Op::Tanh
        | Op::Sqrt
        | Op::Cbrt
        | Op::Recip
        | Op::Abs
        | Op::Relu
        | Op::Sigmoid
        | Op::Softplus
        | Op::Powi
        | Op::Powf
        | Op::Clamp
        | Op::Signum
        | Op::Floor
        | Op::Ceil
        | Op::Round
        | Op::Trunc
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Atan2
        | Op::Hypot
        | Op::Max
        | Op::Min
        | Op::Scale => {
            let gt = gy.to_tensor();
            for (k, p) in [a, b].into_iter().enumerate() {
                if !needs(p) || matches!(ext.saved[k], Saved::None) {
                    continue;
                }
                let dx = elementwise::reduce_grad(g.shape(p), &gt, &ext.saved[k]);
                out.push((p, Value::Tensor(dx).normalized()));
            }
        }
        // y = sum(x):            dx = gy broadcast to x's shape
        Op::Sum => {
            if needs(a) {
                out.push((a, Value::Tensor(Tensor::full(g.shape(a), gy.item()))));
            }
        }
        // y = mean(x):           dx = gy / n
        Op::Mean => {
            if needs(a) {
                let s = g.shape(a);
                let cnt = T::from_usize(super::elementwise::numel(s));
                out.push((a, Value::Tensor(Tensor::full(s, gy.item() / cnt))));
            }
        }
        // y = ||x||:             dx = gy x / y  (0 when y = 0)
        Op::Norm => {
            if needs(a) {
                let y = n.value;
                let x = tensor_of(g, a);
                let c = if y == T::zero() {
                    T::zero()
                } else {
                    gy.item() / y
                };
                out.push((a, Value::Tensor(x.map(|v| v * c))));
            }
        }
        // y = max(x) / min(x):   dx = gy / m at the m elements equal to y, 0 elsewhere
        Op::MaxAll | Op::MinAll => {
            if needs(a) {
                let y = n.value;
                let x = tensor_of(g, a);
                let m = x.as_slice().iter().filter(|&&v| v == y).count();
                let share = gy.item() / T::from_usize(m.max(1));
                out.push((
                    a,
                    Value::Tensor(x.map(|v| if v == y { share } else { T::zero() })),
                ));
            }
        }
        // y = sum_axis(x, k):    dx = gy with axis k re-inserted, broadcast along it
        // y = mean_axis(x, k):   dx = the same / x.shape[k]
        Op::SumAxis | Op::MeanAxis => {
            if needs(a) {
                let xs = g.shape(a).to_vec();
                let k = ext.axis;
                let mut kept = xs.clone();
                kept[k] = 1;
                let gk = gy.to_tensor().reshape(&kept);
                let mut dx = elementwise::expand(&gk, &xs);
                if n.op == Op::MeanAxis {
                    let c = T::one() / T::from_usize(xs[k]);
                    dx = dx.map(|v| v * c);
                }
                out.push((a, Value::Tensor(dx)));
            }
        }
        // y = max_axis(x, k) / min_axis(x, k): along each line of axis k, gy / m
        //                     at the m elements equal to y there, 0 elsewhere
        Op::MaxAxis | Op::MinAxis => {
            if needs(a) {
                let x = tensor_of(g, a);
                // A 1-d tensor reduces to a scalar node: read it as a 0-d tensor.
                let y = tensor_of(g, i as u32);
                let dx = crate::kernels::emit_support::extremum_axis_grad(
                    &x,
                    &y,
                    &gy.to_tensor(),
                    ext.axis,
                );
                out.push((a, Value::Tensor(dx)));
            }
        }
        // y = A B:   [m,k]·[k,n]: dA = gy Bᵀ, dB = Aᵀ gy
        //            [m,k]·[k]:   dA = gy ⊗ b, db = Aᵀ gy
        //            [k]·[k,n]:   da = B gy,   dB = a ⊗ gy
        Op::Matmul => {
            let at = tensor_of(g, a);
            let bt = tensor_of(g, b);
            let gt = gy.to_tensor();
            let (da, db) = match (at.ndim(), bt.ndim()) {
                (2, 2) => (
                    needs(a).then(|| gt.matmul_t(&bt)),
                    needs(b).then(|| at.t_matmul(&gt)),
                ),
                (2, 1) => (
                    needs(a).then(|| gt.outer(&bt)),
                    needs(b).then(|| at.t_matmul(&gt)),
                ),
                (1, 2) => (
                    needs(a).then(|| bt.matmul(&gt)),
                    needs(b).then(|| at.outer(&gt)),
                ),
                (ra, rb) => unreachable!("matmul of ranks {ra} and {rb} was recorded"),
            };
            if let Some(d) = da {
                out.push((a, Value::Tensor(d)));
            }
            if let Some(d) = db {
                out.push((b, Value::Tensor(d)));
            }
        }
        // y = a·b:                da = gy b, db = gy a
        Op::Dot => {
            let s = gy.item();
            if needs(a) {
                out.push((a, Value::Tensor(tensor_of(g, b).map(|v| v * s))));
            }
            if needs(b) {
                out.push((b, Value::Tensor(tensor_of(g, a).map(|v| v * s))));
            }
        }
        // y = xᵀ:                 dx = gyᵀ
        Op::Transpose => {
            if needs(a) {
                out.push((a, Value::Tensor(gy.to_tensor().t())));
            }
        }
        // y = reshape(x):         dx = reshape(gy, x's shape)
        Op::Reshape => {
            if needs(a) {
                out.push((a, for_input(g, a, gy.to_tensor().reshape(g.shape(a)))));
            }
        }
        // y = broadcast_to(x):    dx = gy summed over the broadcast dimensions
        Op::Broadcast => {
            if needs(a) {
                let dx =
                    elementwise::reduce_grad(g.shape(a), &gy.to_tensor(), &Saved::Const(T::one()));
                out.push((a, Value::Tensor(dx).normalized()));
            }
        }
        // y = stack(x_1..x_m):    dx_j = gy[j]
        Op::Stack => {
            let gt = gy.to_tensor();
            let m = ext.inputs.len();
            let chunk = gt.len() / m.max(1);
            for (j, &p) in ext.inputs.iter().enumerate() {
                if needs(p) {
                    let part = gt.as_slice()[j * chunk..(j + 1) * chunk].to_vec();
                    let t = Tensor::from_parts(part, Shape::new(g.shape(p)));
                    out.push((p, Value::Tensor(t).normalized()));
                }
            }
        }
        // y = x[i]:               dx = gy at element i, 0 elsewhere
        Op::Select => {
            if needs(a) {
                let mut dx = Tensor::zeros(g.shape(a));
                dx.as_mut_slice()[ext.axis] = gy.item();
                out.push((a, Value::Tensor(dx)));
            }
        }
        // Custom operations run in `run_backward`, outside the arena's borrow.
        Op::Custom => unreachable!("custom operations are handled by the walk"),
    }
    out
}
