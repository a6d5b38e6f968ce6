//! Inspection of the recorded graph: [`GradFn`] (PyTorch's `grad_fn` and
//! `next_functions`), and `torch.autograd.grad`-style gradients.

use super::graph::REQUIRES_GRAD;
use super::rules::Op;
use super::{Tape, TapeError, Value, Var};
use crate::float::Float;
use std::fmt;

/// A node of the backward graph: the function that propagates a result's
/// gradient to its inputs (PyTorch's `grad_fn`), or `AccumulateGrad` for a
/// leaf that requires a gradient.
///
/// ```
/// use ad_runtime::tape::Tape;
/// let tape: Tape = Tape::new();
/// let x = tape.var(1.0);
/// let s = (x.abs() * 2.0).sin();
/// let f = s.grad_fn().unwrap();
/// assert_eq!(f.name(), "SinBackward");
/// let mul = f.next_functions()[0].unwrap();
/// assert_eq!(mul.name(), "MulBackward");
/// assert_eq!(mul.next_functions()[0].unwrap().name(), "AbsBackward");
/// ```
#[derive(Clone, Copy)]
pub struct GradFn<'t, T: Float = f64> {
    var: Var<'t, T>,
}

impl<'t, T: Float> GradFn<'t, T> {
    /// The node's name: `MulBackward`, `PowBackward`, `AccumulateGrad`, ...
    pub fn name(&self) -> String {
        let g = self.var.tape.g();
        self.var.node(&g);
        g.op_name(self.var.idx())
    }

    /// The backward nodes of the inputs, in order; `None` for an input that
    /// requires no gradient. Inputs of scalar nodes that require no gradient
    /// are not recorded and so not listed.
    pub fn next_functions(&self) -> Vec<Option<GradFn<'t, T>>> {
        let g = self.var.tape.g();
        self.var.node(&g);
        // An input is older than its consumer, which is live, so it is live
        // too, and a `Var` of the current generation names it.
        g.inputs(self.var.idx())
            .into_iter()
            .map(|p| {
                let n = g.nodes[p as usize];
                (n.flags & REQUIRES_GRAD != 0).then(|| GradFn {
                    var: Var::from_parts(self.var.tape, p, g.epoch),
                })
            })
            .collect()
    }

    /// For `AccumulateGrad`, the leaf; for an operation, its result.
    pub fn variable(&self) -> Var<'t, T> {
        self.var
    }

    /// Whether this is a leaf's `AccumulateGrad`.
    pub fn is_accumulate_grad(&self) -> bool {
        let g = self.var.tape.g();
        self.var.node(&g).op == Op::Leaf
    }
}

impl<T: Float> fmt::Debug for GradFn<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.name())
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The backward function that produced this result (PyTorch's `grad_fn`):
    /// `None` for leaves and for values that require no gradient.
    pub fn grad_fn(&self) -> Option<GradFn<'t, T>> {
        let g = self.tape.g();
        let n = self.node(&g);
        (n.flags & REQUIRES_GRAD != 0 && n.op != Op::Leaf).then_some(GradFn { var: *self })
    }

    /// The backward node a consumer of this variable links to: the `grad_fn`,
    /// or `AccumulateGrad` for a leaf requiring a gradient.
    pub fn grad_node(&self) -> Option<GradFn<'t, T>> {
        self.requires_grad().then_some(GradFn { var: *self })
    }
}

impl<T: Float> Tape<T> {
    /// The gradients of the scalar `output` with respect to `inputs` (leaves or
    /// intermediate results), without touching any accumulated gradient
    /// (PyTorch's `torch.autograd.grad(output, inputs)`). An input the output
    /// does not depend on gets zeros. For gradients that can be differentiated
    /// again, see [`Tape::grad_graph`].
    ///
    /// # Panics
    /// As [`Var::backward`]; see [`Tape::try_grad`].
    ///
    /// ```
    /// use ad_runtime::tape::Tape;
    /// let tape: Tape = Tape::new();
    /// let (a, b) = (tape.var(0.5), tape.var(-0.5));
    /// let l = (a - 1.0).powi(2) + (b + 1.0).powi(2) + (a - b).powi(2);
    /// let g = tape.grad(l, &[a, b]);
    /// assert_eq!((g[0].item(), g[1].item()), (1.0, -1.0));
    /// assert!(a.grad().is_none());
    /// ```
    #[track_caller]
    pub fn grad<'t>(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Vec<Value<T>> {
        self.try_grad(output, inputs)
            .unwrap_or_else(|e| panic!("grad: {e}"))
    }

    /// [`Tape::grad`], returning an error instead of panicking.
    pub fn try_grad<'t>(
        &'t self,
        output: Var<'t, T>,
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Value<T>>, TapeError> {
        let shape = output.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(TapeError::NonScalarResult { shape });
        }
        let seed = if shape.is_empty() {
            Value::Scalar(T::one())
        } else {
            Value::Tensor(crate::Tensor::ones(&shape))
        };
        self.grad_with(output, seed, inputs)
    }

    /// The vector-Jacobian product of `output` with `seed`, with respect to
    /// `inputs`, without touching any accumulated gradient.
    pub fn grad_with<'t>(
        &'t self,
        output: Var<'t, T>,
        seed: impl Into<Value<T>>,
        inputs: &[Var<'t, T>],
    ) -> Result<Vec<Value<T>>, TapeError> {
        assert!(
            std::ptr::eq(output.tape, self),
            "grad: the output is a Var of another tape"
        );
        for v in inputs {
            assert!(std::ptr::eq(v.tape, self), "grad: a Var of another tape");
        }
        self.run_backward(output, seed.into(), Some(inputs))
    }
}
