//! Gradients recorded on the tape, as PyTorch's `create_graph=True`: a reverse
//! walk that computes every adjoint with [`Var`] operations, so that the
//! gradients it returns are `Var`s of the same tape and can be differentiated
//! again ([`Tape::grad_graph`]).
//!
//! The walk visits the nodes between the output and the wanted inputs, and
//! records each contribution `adjoint ⊙ partial` as an `Op::Scale` node: a
//! product that is exactly 0 where the adjoint is 0, as `rules::scale` makes it
//! in the backward pass. A partial is a `Var` expression of the operation's
//! inputs and output (`rules::unary_partial`, `rules::binary_partials`, beside
//! the value rules), or the recorded partial as a constant where it is locally
//! constant (`+`, `-`, `abs`, `relu`, `clamp`, `max`, `min`). The structural
//! rules below mirror the `match` of `backward.rs`; the tests at the end hold
//! the first gradients of both walks together for every operation.

use super::graph::{Saved, NONE, REQUIRES_GRAD, STRUCT};
use super::operators::{Arg, Operand};
use super::rules::{self, Op, Partial};
use super::{Tape, TapeError, Var};
use crate::float::Float;
use crate::tensor::Tensor;

/// Leaves the pass count, also when a custom `backward_graph` panics.
struct Walking<'a>(&'a std::cell::Cell<u32>);

impl Drop for Walking<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl<T: Float> Tape<T> {
    /// The gradients of the scalar `output` with respect to `inputs`, as
    /// variables recorded on this tape, so that they can enter further
    /// computation and be differentiated again (PyTorch's
    /// `torch.autograd.grad(output, inputs, create_graph=True)`). No
    /// accumulated gradient is touched. An input the output does not depend
    /// on gets a constant zero; a gradient that depends on no variable (that
    /// of a linear function) is a constant.
    ///
    /// Every operation of the tape can be differentiated twice, and so any
    /// number of times, except a custom operation without
    /// [`Function::backward_graph`](super::Function::backward_graph)
    /// ([`TapeError::OnceDifferentiable`]). Under [`Tape::no_grad`] the
    /// gradients are computed but not recorded. The partials are computed
    /// anew from the recorded values: call it before [`Var::set_value`]
    /// changes a leaf the output depends on.
    ///
    /// # Panics
    /// As [`Var::backward`]; see [`Tape::try_grad_graph`].
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// let tape: Tape = Tape::new();
    /// let (x, y) = (tape.var(2.0), tape.var(3.0));
    /// let f = x * x * y + y.sin();
    /// let g = tape.grad_graph(f, &[x, y]); // (2 x y, x² + cos y)
    /// assert_eq!(g[0].item(), 12.0);
    /// // One row of the Hessian: d(df/dx)/dx = 2 y, d(df/dx)/dy = 2 x.
    /// let h = tape.grad(g[0], &[x, y]);
    /// assert_eq!((h[0].item(), h[1].item()), (6.0, 4.0));
    /// // A gradient penalty: its gradient flows through the first gradient.
    /// let penalty = g[0] * g[0] + g[1] * g[1];
    /// penalty.backward();
    /// assert_eq!(x.grad_scalar(), 2.0 * 12.0 * 6.0 + 2.0 * (4.0 + 3f64.cos()) * 4.0);
    /// ```
    #[track_caller]
    pub fn grad_graph<'t>(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Vec<Var<'t, T>> {
        self.try_grad_graph(output, inputs)
            .unwrap_or_else(|e| panic!("grad_graph: {e}"))
    }

    /// [`Tape::grad_graph`], returning an error instead of panicking.
    pub fn try_grad_graph<'t>(
        &'t self,
        output: Var<'t, T>,
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Var<'t, T>>, TapeError> {
        let shape = output.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(TapeError::NonScalarResult { shape });
        }
        let seed = if shape.is_empty() {
            Arg::Scalar(T::one())
        } else {
            Arg::Tensor(Tensor::ones(&shape))
        };
        self.grad_graph_arg(output, seed, inputs)
    }

    /// The vector-Jacobian product of `output` with `seed` (of the output's
    /// shape) with respect to `inputs`, recorded as [`Tape::grad_graph`]
    /// records it. The seed may itself be a variable, as PyTorch's
    /// `grad_outputs`: the product is then differentiable in it too.
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// use ad_runtime::Tensor;
    /// let tape: Tape = Tape::new();
    /// let x = tape.tensor(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    /// let y = x * x; // Jacobian diag(2 x)
    /// let v = tape.tensor(Tensor::from_vec(vec![3.0, 5.0], &[2]));
    /// let jv = tape.grad_graph_with(y, v, &[x]).unwrap()[0]; // 2 x ⊙ v
    /// assert_eq!(jv.tensor().as_slice(), &[6.0, 20.0]);
    /// let d = tape.grad(jv.sum(), &[x, v]);
    /// assert_eq!(d[0].as_slice(), &[6.0, 10.0]); // 2 v
    /// assert_eq!(d[1].as_slice(), &[2.0, 4.0]); // 2 x
    /// ```
    pub fn grad_graph_with<'t>(
        &'t self,
        output: Var<'t, T>,
        seed: impl Operand<'t, T>,
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Var<'t, T>>, TapeError> {
        self.grad_graph_arg(output, seed.into_arg(), inputs)
    }

    fn grad_graph_arg<'t>(
        &'t self,
        output: Var<'t, T>,
        seed: Arg<'t, T>,
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Var<'t, T>>, TapeError> {
        assert!(
            std::ptr::eq(output.tape, self),
            "grad_graph: the output is a Var of another tape"
        );
        for v in inputs {
            assert!(
                std::ptr::eq(v.tape, self),
                "grad_graph: a Var of another tape"
            );
        }
        let seed = match seed {
            Arg::Tensor(t) if t.ndim() == 0 => Arg::Scalar(t.as_slice()[0]),
            Arg::Var(v) => {
                assert!(
                    std::ptr::eq(v.tape, self),
                    "grad_graph: the seed is a Var of another tape"
                );
                Arg::Var(v)
            }
            a => a,
        };
        let seed_shape = match &seed {
            Arg::Var(v) => v.shape(),
            Arg::Scalar(_) => Vec::new(),
            Arg::Tensor(t) => t.shape().to_vec(),
        };
        let root_shape = output.shape();
        if seed_shape != root_shape {
            return Err(TapeError::SeedShape {
                expected: root_shape,
                got: seed_shape,
            });
        }
        if !output.requires_grad() {
            return Err(TapeError::NoGradient);
        }
        self.walks.set(self.walks.get() + 1);
        let _walking = Walking(&self.walks);
        let seed = seed.into_var(self);
        let r = output.idx() as usize;
        let (lowest, needs, epoch) = self.needed(r, inputs);
        let want =
            |p: u32| (p as usize) >= lowest && (p as usize) <= r && needs[p as usize - lowest];
        let mut adj: Vec<Option<Var<'t, T>>> = vec![None; r + 1 - lowest];
        adj[r - lowest] = Some(seed);
        for i in (lowest..=r).rev() {
            if !needs[i - lowest] {
                continue;
            }
            let Some(gy) = adj[i - lowest] else { continue };
            for (p, c) in self.contributions(i as u32, epoch, gy, &want)? {
                let p = p as usize;
                let pv = Var::from_parts(self, p as u32, epoch);
                let c = if pv.is_scalar() && !c.is_scalar() {
                    c.sum()
                } else {
                    c
                };
                adj[p - lowest] = Some(match adj[p - lowest] {
                    None => c,
                    Some(acc) => acc + c,
                });
            }
        }
        Ok(inputs
            .iter()
            .map(|v| {
                let i = v.idx() as usize;
                let got = (lowest..=r).contains(&i).then(|| adj[i - lowest]).flatten();
                got.unwrap_or_else(|| {
                    let shape = v.shape();
                    if shape.is_empty() {
                        self.constant(T::zero())
                    } else {
                        self.constant_tensor(Tensor::zeros(&shape))
                    }
                })
            })
            .collect())
    }

    /// The nodes from the lowest wanted input to the root `r` that need an
    /// adjoint: those that require a gradient and are wanted or have an input
    /// that needs one. Returns the lowest index, the marks from it, and the
    /// generation.
    fn needed(&self, r: usize, inputs: &[Var<'_, T>]) -> (usize, Vec<bool>, u32) {
        let g = self.g();
        let mut lowest = r;
        for v in inputs {
            v.node(&g);
            lowest = lowest.min(v.idx() as usize);
        }
        let mut needs = vec![false; r + 1 - lowest];
        for v in inputs {
            let i = v.idx() as usize;
            if i <= r && g.nodes[i].flags & REQUIRES_GRAD != 0 {
                needs[i - lowest] = true;
            }
        }
        let on = |p: u32, needs: &[bool]| {
            p != NONE && (p as usize) >= lowest && needs[p as usize - lowest]
        };
        for i in lowest..=r {
            let n = &g.nodes[i];
            if needs[i - lowest] || n.flags & REQUIRES_GRAD == 0 {
                continue;
            }
            let many = n.ext != NONE && !g.ext[n.ext as usize].inputs.is_empty();
            needs[i - lowest] = if many {
                g.ext[n.ext as usize].inputs.iter().any(|&p| on(p, &needs))
            } else {
                n.parents.iter().any(|&p| p as usize != i && on(p, &needs))
            };
        }
        (lowest, needs, g.epoch)
    }

    /// The contributions of node `i`, whose adjoint is `gy`, to the adjoints
    /// of its inputs that `want` names, as recorded variables.
    fn contributions<'t>(
        &'t self,
        i: u32,
        epoch: u32,
        gy: Var<'t, T>,
        want: &dyn Fn(u32) -> bool,
    ) -> Result<Vec<(u32, Var<'t, T>)>, TapeError> {
        let var = |p: u32| Var::from_parts(self, p, epoch);
        let (n, axis, inputs, saved) = {
            let g = self.g();
            let n = g.nodes[i as usize];
            match g.ext.get(n.ext as usize).filter(|_| n.ext != NONE) {
                Some(e) => (n, e.axis, e.inputs.clone(), e.saved.clone()),
                None => (n, 0, Vec::new(), [Saved::None, Saved::None]),
            }
        };
        let y = var(i);
        let [a, b] = n.parents;
        let tensor_node = n.flags & STRUCT != 0;
        let mut out = Vec::with_capacity(2);
        if rules::is_unary(n.op) {
            if rules::is_flat(n.op) || !want(a) {
                return Ok(out);
            }
            let stored = if tensor_node {
                saved[0].clone()
            } else {
                Saved::Const(n.partials[0])
            };
            let param = if tensor_node {
                n.partials[0]
            } else {
                n.partials[1]
            };
            let x = var(a);
            let d = rules::unary_partial(n.op, x, y, param);
            if let Some(c) = times(gy, d, &stored) {
                out.push((a, c));
            }
            return Ok(out);
        }
        if rules::is_binary(n.op) {
            // The operands, each an input (its index) or a constant (its value),
            // and the recorded partial of each input.
            let (ops, stored) = if !tensor_node {
                let side = |k: usize| {
                    if n.parents[k] == i {
                        Err(n.partials[k])
                    } else {
                        Ok(n.parents[k])
                    }
                };
                let st = |k: usize| Saved::Const(n.partials[k]);
                ([side(0), side(1)], [st(0), st(1)])
            } else if b == NONE {
                let [s0, _] = saved;
                if n.partials[1] != T::zero() {
                    ([Err(n.partials[0]), Ok(a)], [Saved::None, s0])
                } else {
                    ([Ok(a), Err(n.partials[0])], [s0, Saved::None])
                }
            } else {
                ([Ok(a), Ok(b)], saved)
            };
            let need = [0, 1].map(|k| matches!(ops[k], Ok(p) if want(p)));
            if !need.iter().any(|&x| x) {
                return Ok(out);
            }
            let operand = |o: Result<u32, T>| match o {
                Ok(p) => var(p),
                Err(c) => self.constant(c),
            };
            let ds = if rules::has_stored_partials(n.op) {
                [Partial::Stored, Partial::Stored]
            } else {
                rules::binary_partials(n.op, operand(ops[0]), operand(ops[1]), y, need)
            };
            for (k, d) in ds.into_iter().enumerate() {
                let Ok(p) = ops[k] else { continue };
                if !need[k] {
                    continue;
                }
                if let Some(c) = times(gy, d, &stored[k]) {
                    out.push((p, sum_to(c, &var(p).shape())));
                }
            }
            return Ok(out);
        }
        let shape = |p: u32| var(p).shape();
        match n.op {
            Op::Leaf | Op::Constant => {}
            // y = sum(x):            dx = gy broadcast to x's shape
            Op::Sum => {
                if want(a) {
                    out.push((a, gy.broadcast_to(&shape(a))));
                }
            }
            // y = mean(x):           dx = gy / n
            Op::Mean => {
                if want(a) {
                    let s = shape(a);
                    let cnt = T::from_usize(super::elementwise::numel(&s));
                    out.push((a, gy.binary_const(Op::Div, cnt, false).broadcast_to(&s)));
                }
            }
            // y = ||x||:             dx = gy x / y  (0 when y = 0)
            Op::Norm => {
                if want(a) && y.item() != T::zero() {
                    out.push((a, var(a) * (gy / y)));
                }
            }
            // y = max(x) / min(x):   dx = gy / m at the m elements equal to y, 0 elsewhere
            Op::MaxAll | Op::MinAll => {
                if want(a) {
                    let yv = y.item();
                    let x = var(a).tensor();
                    let m = x.as_slice().iter().filter(|&&v| v == yv).count();
                    let share = gy.binary_const(Op::Div, T::from_usize(m.max(1)), false);
                    let mask = x.map(|v| if v == yv { T::one() } else { T::zero() });
                    out.push((a, self.constant_tensor(mask).binary(Op::Scale, share)));
                }
            }
            // y = sum_axis(x, k):    dx = gy with axis k re-inserted, broadcast along it
            // y = mean_axis(x, k):   dx = the same / x.shape[k]
            Op::SumAxis | Op::MeanAxis => {
                if want(a) {
                    let xs = shape(a);
                    let mut kept = xs.clone();
                    kept[axis] = 1;
                    let mut dx = gy.reshape(&kept).broadcast_to(&xs);
                    if n.op == Op::MeanAxis {
                        let c = T::one() / T::from_usize(xs[axis]);
                        dx = dx.binary_const(Op::Mul, c, false);
                    }
                    out.push((a, dx));
                }
            }
            // y = max_axis(x, k) / min_axis(x, k): along each line of axis k, gy / m
            //                     at the m elements equal to y there, 0 elsewhere
            Op::MaxAxis | Op::MinAxis => {
                if want(a) {
                    let x = var(a).tensor();
                    let yt = y.tensor();
                    let w = crate::kernels::emit_support::extremum_axis_grad(
                        &x,
                        &yt,
                        &Tensor::ones(yt.shape()),
                        axis,
                    );
                    let mut kept = x.shape().to_vec();
                    kept[axis] = 1;
                    let g = gy.reshape(&kept);
                    out.push((a, self.constant_tensor(w).binary(Op::Scale, g)));
                }
            }
            // y = A B:   [m,k]·[k,n]: dA = gy Bᵀ, dB = Aᵀ gy
            //            [m,k]·[k]:   dA = gy ⊗ b, db = Aᵀ gy
            //            [k]·[k,n]:   da = B gy,   dB = a ⊗ gy
            Op::Matmul => {
                let (av, bv) = (var(a), var(b));
                let (sa, sb) = (av.shape(), bv.shape());
                let outer = |u: Var<'t, T>, v: Var<'t, T>| {
                    let (m, k) = (u.shape()[0], v.shape()[0]);
                    u.reshape(&[m, 1]).matmul(v.reshape(&[1, k]))
                };
                let (da, db) = match (sa.len(), sb.len()) {
                    (2, 2) => (
                        want(a).then(|| gy.matmul(bv.t())),
                        want(b).then(|| av.t().matmul(gy)),
                    ),
                    (2, 1) => (
                        want(a).then(|| outer(gy, bv)),
                        want(b).then(|| av.t().matmul(gy)),
                    ),
                    (1, 2) => (
                        want(a).then(|| bv.matmul(gy)),
                        want(b).then(|| outer(av, gy)),
                    ),
                    (ra, rb) => unreachable!("matmul of ranks {ra} and {rb} was recorded"),
                };
                out.extend(da.map(|d| (a, d)));
                out.extend(db.map(|d| (b, d)));
            }
            // y = a·b:                da = gy b, db = gy a
            Op::Dot => {
                if want(a) {
                    out.push((a, var(b) * gy));
                }
                if want(b) {
                    out.push((b, var(a) * gy));
                }
            }
            // y = xᵀ:                 dx = gyᵀ
            Op::Transpose => {
                if want(a) {
                    out.push((a, gy.t()));
                }
            }
            // y = reshape(x):         dx = reshape(gy, x's shape)
            Op::Reshape => {
                if want(a) {
                    out.push((a, gy.reshape(&shape(a))));
                }
            }
            // y = broadcast_to(x):    dx = gy summed over the broadcast dimensions
            Op::Broadcast => {
                if want(a) {
                    out.push((a, sum_to(gy, &shape(a))));
                }
            }
            // y = stack(x_1..x_m):    dx_j = gy[j], as e_jᵀ G with G = gy as [m, rest]
            Op::Stack => {
                let m = inputs.len();
                let ys = gy.shape();
                let chunk = ys.iter().product::<usize>() / m.max(1);
                let rows = gy.reshape(&[m, chunk]);
                for (j, &p) in inputs.iter().enumerate() {
                    if want(p) {
                        let mut e = Tensor::zeros(&[m]);
                        e.as_mut_slice()[j] = T::one();
                        let part = self.constant_tensor(e).matmul(rows);
                        out.push((p, part.reshape(&ys[1..])));
                    }
                }
            }
            // y = x[i]:               dx = gy at element i, 0 elsewhere
            Op::Select => {
                if want(a) {
                    let s = shape(a);
                    if s.is_empty() {
                        out.push((a, gy));
                    } else {
                        let mut e = Tensor::zeros(&s);
                        e.as_mut_slice()[axis] = T::one();
                        out.push((a, self.constant_tensor(e).binary(Op::Scale, gy)));
                    }
                }
            }
            // A user's operation: its `backward_graph`, run with nothing borrowed.
            Op::Custom => {
                let (name, backward) = {
                    let g = self.g();
                    let c = g.ext[n.ext as usize].custom.as_ref();
                    let c = c.expect("a custom node has its operation");
                    (g.op_name(i), c.backward.clone())
                };
                let ins: Vec<Var<'t, T>> = inputs.iter().map(|&p| var(p)).collect();
                let Some(grads) = backward.backward_graph(&ins, y, gy) else {
                    return Err(TapeError::OnceDifferentiable { name });
                };
                drop(backward);
                assert!(
                    grads.len() == ins.len(),
                    "custom operation {name}: backward_graph returned {} gradients for {} inputs",
                    grads.len(),
                    ins.len()
                );
                for (k, (&p, gr)) in inputs.iter().zip(grads).enumerate() {
                    let Some(gr) = gr else { continue };
                    assert!(
                        std::ptr::eq(gr.tape, self),
                        "custom operation {name}: backward_graph returned a Var of another tape"
                    );
                    let (gs, s) = (gr.shape(), shape(p));
                    assert!(
                        gs == s,
                        "custom operation {name}: the gradient of input {k} has shape {gs:?} but the input has shape {s:?}"
                    );
                    if want(p) {
                        out.push((p, gr));
                    }
                }
            }
            op => unreachable!("{op:?} is elementwise"),
        }
        Ok(out)
    }
}

/// `gy ⊙ d`, 0 where `gy` is 0, for a partial `d` given as a `Var` or as the
/// recorded constant; `None` when nothing flows.
fn times<'t, T: Float>(gy: Var<'t, T>, d: Partial<'t, T>, stored: &Saved<T>) -> Option<Var<'t, T>> {
    match d {
        Partial::Zero => None,
        Partial::Var(d) => Some(gy.binary(Op::Scale, d)),
        Partial::Stored => match stored {
            Saved::None => None,
            Saved::Const(c) if *c == T::one() => Some(gy),
            Saved::Const(c) if *c == -T::one() => Some(-gy),
            Saved::Const(c) => Some(gy.binary_const(Op::Scale, *c, false)),
            Saved::Tensor(t) => Some(gy.binary(Op::Scale, gy.tape.constant_tensor(t.clone()))),
        },
    }
}

/// `v` summed over the dimensions along which an input of shape `target` was
/// broadcast to `v`'s shape.
fn sum_to<'t, T: Float>(v: Var<'t, T>, target: &[usize]) -> Var<'t, T> {
    let vs = v.shape();
    if vs == target {
        return v;
    }
    if target.is_empty() {
        return v.sum();
    }
    let off = vs.len() - target.len();
    let mut r = v;
    for k in (0..vs.len()).rev() {
        if k < off || (target[k - off] == 1 && vs[k] != 1) {
            r = r.sum_axis(k);
        }
    }
    if r.shape() == target {
        r
    } else {
        r.reshape(target)
    }
}

#[cfg(test)]
mod tests {
    //! The first gradients of `grad_graph` against those of the backward pass
    //! (`Tape::grad`), for every operation, scalar and tensor, with constant
    //! operands on either side and broadcasting.

    use super::super::rules::Op;
    use super::super::{Tape, Value, Var};
    use crate::tensor::Tensor;

    fn close(a: &Value<f64>, b: &Value<f64>) -> bool {
        a.shape() == b.shape()
            && a.as_slice().iter().zip(b.as_slice()).all(|(&x, &y)| {
                x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-12 * y.abs().max(1.0)
            })
    }

    /// Checks one function of two inputs on one tape: `grad` and `grad_graph`
    /// agree, for the output and for a weighted sum of it.
    fn check<'t>(tape: &'t Tape, what: &str, out: Var<'t>, ins: &[Var<'t>]) {
        let out = if out.is_scalar() {
            out
        } else {
            let w = Tensor::from_vec(
                (0..out.tensor().len())
                    .map(|k| 0.5 + k as f64 * 0.25)
                    .collect(),
                &out.shape(),
            );
            (out * w).sum()
        };
        let want = tape.grad(out, ins);
        let got = tape.grad_graph(out, ins);
        for (k, (w, g)) in want.iter().zip(&got).enumerate() {
            assert!(
                close(&g.value(), w),
                "{what}, input {k}: grad_graph {:?}, grad {w:?}",
                g.value()
            );
        }
    }

    /// A case for every operation; the `match` has no catch-all, so that a new
    /// operation does not compile without one, and `ALL` is held to the enum's
    /// length below.
    fn case<'t>(tape: &'t Tape, op: Op, x: Var<'t>, z: Var<'t>) -> Option<Var<'t>> {
        let y = match op {
            Op::Leaf | Op::Constant | Op::Custom => return None,
            Op::Neg => -x,
            Op::Exp => x.exp(),
            Op::Exp2 => x.exp2(),
            Op::Ln => x.ln(),
            Op::Log2 => x.log2(),
            Op::Log10 => x.log10(),
            Op::Sin => x.sin(),
            Op::Cos => x.cos(),
            Op::Tan => x.tan(),
            Op::Asin => (x * 0.3).asin(),
            Op::Acos => (x * 0.3).acos(),
            Op::Atan => x.atan(),
            Op::Sinh => x.sinh(),
            Op::Cosh => x.cosh(),
            Op::Tanh => x.tanh(),
            Op::Sqrt => x.sqrt(),
            Op::Cbrt => x.cbrt(),
            Op::Recip => x.recip(),
            Op::Abs => (x - 1.2).abs(),
            Op::Relu => (x - 1.2).relu(),
            Op::Sigmoid => x.sigmoid(),
            Op::Softplus => x.softplus(),
            Op::Powi => x.powi(3) + x.powi(0) + x.powi(-2),
            Op::Powf => x.powf(2.5) + x.powf(0.0),
            Op::Clamp => x.clamp(0.9, 1.6),
            Op::Signum => x.signum() * x,
            Op::Floor => x.floor() * x,
            Op::Ceil => x.ceil() * x,
            Op::Round => x.round() * x,
            Op::Trunc => x.trunc() * x,
            Op::Add => x + z + 2.0 + (3.0 + x),
            Op::Sub => x - z - 2.0 + (3.0 - x),
            Op::Mul => x * z * 2.0 + 3.0 * x,
            Op::Div => x / z / 2.0 + 3.0 / x,
            Op::Pow => {
                x.powf(z)
                    + x.powf(tape.constant(2.0))
                    + tape.constant(2.0).powf(x)
                    + x.powf(z * 0.0)
            }
            Op::Atan2 => x.atan2(z) + x.atan2(tape.constant(-1.0)) + tape.constant(0.5).atan2(x),
            Op::Hypot => x.hypot(z) + x.hypot(tape.constant(2.0)),
            Op::Max => x.max(z) + x.max(1.3),
            Op::Min => x.min(z) + x.min(1.3),
            Op::Scale => x.binary(Op::Scale, z) + x.binary_const(Op::Scale, 0.0, false),
            Op::Sum => (x * z).sum(),
            Op::Mean => (x * z).mean(),
            Op::Norm => (x * z).norm(),
            Op::MaxAll => (x * z).max_all(),
            Op::MinAll => (x * z).min_all(),
            Op::SumAxis => {
                (x * z).sum_axis(0) * (x * z).sum_axis(1).sum() + (x * z).sum_axis(0).sum_axis(0)
            }
            Op::MeanAxis => {
                (x * z).mean_axis(1) * (x * z).mean_axis(0).sum()
                    + (x * z).mean_axis(1).mean_axis(0)
            }
            Op::MaxAxis => {
                (x * z).max_axis(0) + (x * z).max_axis(1).sum() + (x * z).max_axis(0).max_axis(0)
            }
            Op::MinAxis => {
                (x * z).min_axis(1) + (x * z).min_axis(0).sum() + (x * z).min_axis(1).min_axis(0)
            }
            Op::Matmul => {
                (x.matmul(z.t()) * 1.0).sum()
                    + x.matmul(z.select(0).broadcast_to(&[3])).sum()
                    + x.select(1).broadcast_to(&[2]).matmul(z).sum()
            }
            Op::Dot => x.reshape(&[6]).dot(z.reshape(&[6])) * x.reshape(&[6]).dot(x.reshape(&[6])),
            Op::Transpose => (x.t() * z.t()).sum(),
            Op::Reshape => x.reshape(&[3, 2]) * z.reshape(&[3, 2]),
            Op::Broadcast => x.sum_axis(0).reshape(&[1, 3]).broadcast_to(&[4, 3]) * x.select(2),
            Op::Stack => tape.stack(&[x, z, x * z]) * tape.stack(&[x.select(0), z.select(5)]).sum(),
            Op::Select => x.select(4) * z.select(1) * x.select(4),
        };
        Some(y)
    }

    const ALL: &[Op] = &[
        Op::Leaf,
        Op::Constant,
        Op::Neg,
        Op::Exp,
        Op::Exp2,
        Op::Ln,
        Op::Log2,
        Op::Log10,
        Op::Sin,
        Op::Cos,
        Op::Tan,
        Op::Asin,
        Op::Acos,
        Op::Atan,
        Op::Sinh,
        Op::Cosh,
        Op::Tanh,
        Op::Sqrt,
        Op::Cbrt,
        Op::Recip,
        Op::Abs,
        Op::Relu,
        Op::Sigmoid,
        Op::Softplus,
        Op::Powi,
        Op::Powf,
        Op::Clamp,
        Op::Signum,
        Op::Floor,
        Op::Ceil,
        Op::Round,
        Op::Trunc,
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Pow,
        Op::Atan2,
        Op::Hypot,
        Op::Max,
        Op::Min,
        Op::Scale,
        Op::Sum,
        Op::Mean,
        Op::Norm,
        Op::MaxAll,
        Op::MinAll,
        Op::SumAxis,
        Op::MeanAxis,
        Op::MaxAxis,
        Op::MinAxis,
        Op::Matmul,
        Op::Dot,
        Op::Transpose,
        Op::Reshape,
        Op::Broadcast,
        Op::Stack,
        Op::Select,
        Op::Custom,
    ];

    #[test]
    fn the_list_holds_every_operation() {
        assert_eq!(ALL.len(), Op::Custom as usize + 1);
        for (k, &op) in ALL.iter().enumerate() {
            assert_eq!(op as usize, k, "{op:?}");
        }
    }

    /// Every operation: scalars, tensors of one shape, and tensors broadcast
    /// against a row, a column and a scalar variable.
    #[test]
    fn first_gradients_match_the_backward_pass_for_every_operation() {
        let xs = [0.7, 1.3, 2.1, 1.3, 0.4, 1.9];
        let zs = [1.1, 0.6, 1.7, 2.3, 0.9, 1.3];
        let mut checked = 0;
        for &op in ALL {
            let elementwise = super::rules::is_unary(op) || super::rules::is_binary(op);
            // Scalars.
            if elementwise {
                for (&a, &b) in xs.iter().zip(&zs) {
                    let tape: Tape = Tape::new();
                    let (x, z) = (tape.var(a), tape.var(b));
                    if let Some(y) = case(&tape, op, x, z) {
                        check(&tape, &format!("{op:?} at ({a}, {b})"), y, &[x, z]);
                        checked += 1;
                    }
                }
            }
            // Tensors [2, 3], and broadcast against [3], [2, 1] and a scalar.
            let tape: Tape = Tape::new();
            let x = tape.tensor(Tensor::from_vec(xs.to_vec(), &[2, 3]));
            let z = tape.tensor(Tensor::from_vec(zs.to_vec(), &[2, 3]));
            if let Some(y) = case(&tape, op, x, z) {
                check(&tape, &format!("{op:?} on [2, 3]"), y, &[x, z]);
                checked += 1;
            }
            if elementwise {
                for zshape in [&[3][..], &[2, 1], &[]] {
                    let tape: Tape = Tape::new();
                    let x = tape.tensor(Tensor::from_vec(xs.to_vec(), &[2, 3]));
                    let n = zshape.iter().product::<usize>();
                    let z = tape.leaf(Tensor::from_vec(zs[..n].to_vec(), zshape), true);
                    if let Some(y) = case(&tape, op, x, z) {
                        check(
                            &tape,
                            &format!("{op:?} on [2, 3] and {zshape:?}"),
                            y,
                            &[x, z],
                        );
                        // And with the roles swapped: the broadcast operand on the left.
                        if let Some(y) = case(&tape, op, z, x) {
                            check(
                                &tape,
                                &format!("{op:?} on {zshape:?} and [2, 3]"),
                                y,
                                &[z, x],
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 400, "{checked}");
    }
}
