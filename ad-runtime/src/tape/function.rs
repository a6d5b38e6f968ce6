//! Custom operations with their own backward: the [`Function`] trait
//! (PyTorch's `torch.autograd.Function`) and closure-based [`Tape::apply_fn`].

use super::graph::{Custom, Ext, NONE, REQUIRES_GRAD};
use super::rules::Op;
use super::var::push_result;
use super::{Tape, Value, Var};
use crate::float::Float;
use std::rc::Rc;
use std::time::Instant;

/// A user-defined operation with its own forward and backward, recorded as one
/// node by [`Tape::apply`] (the analogue of `torch.autograd.Function`).
///
/// The tape keeps the inputs' values and the output for the backward, as
/// PyTorch's `ctx.save_for_backward` would.
///
/// ```
/// use ad_runtime::tape::{Function, Tape, Value};
///
/// /// `e^x`, whose backward reuses the output.
/// struct Exp;
///
/// impl Function<f64> for Exp {
///     fn name(&self) -> &str {
///         "Exp"
///     }
///     fn forward(&self, inputs: &[Value<f64>]) -> Value<f64> {
///         inputs[0].map(f64::exp)
///     }
///     fn backward(&self, _inputs: &[Value<f64>], output: &Value<f64>, grad: &Value<f64>) -> Vec<Option<Value<f64>>> {
///         vec![Some(grad.zip_map(output, |g, y| g * y))]
///     }
/// }
///
/// let tape: Tape = Tape::new();
/// let x = tape.var(1.0);
/// let y = tape.apply(Exp, &[x]);
/// y.backward();
/// assert_eq!(x.grad_scalar(), 1f64.exp());
/// assert_eq!(y.grad_fn().unwrap().name(), "ExpBackward");
/// ```
///
/// # Callbacks
///
/// [`Tape::apply`] calls `name` once and `forward` once, before it records the
/// node; the tape stores the name. A backward pass calls `backward` each time
/// it reaches the node. The tape holds no borrow of its arena while any of
/// them runs (nor while the operation is dropped, after
/// [`Tape::clear_graph`]), so they may use the tape freely: record on it, read
/// the values and gradients of other `Var`s, run a nested backward pass,
/// `no_grad` or `profile`. The one thing a `backward` may not do is
/// [`Tape::clear_graph`], which would drop the nodes the pass is walking: it
/// panics. A panic in a callback propagates to the caller of `apply` or of
/// the backward pass and leaves the tape usable (a backward pass that panics
/// may have accumulated part of its gradients).
pub trait Function<T: Float> {
    /// The operation's name; its node is called `NAMEBackward`. Called once,
    /// when the operation is recorded.
    fn name(&self) -> &str;

    /// The output for the given input values.
    fn forward(&self, inputs: &[Value<T>]) -> Value<T>;

    /// The gradient with respect to each input (of that input's shape), given
    /// the inputs, the output and the output's gradient; `None` for an input
    /// that gets no gradient.
    fn backward(
        &self,
        inputs: &[Value<T>],
        output: &Value<T>,
        grad_output: &Value<T>,
    ) -> Vec<Option<Value<T>>>;

    /// The backward as operations on the tape, for gradients of gradients
    /// ([`Tape::grad_graph`]): the gradient with respect to each input,
    /// computed from `inputs`, `output` and `grad_output` with [`Var`]
    /// methods (`None` for an input that gets no gradient). Its values must
    /// be those of [`Function::backward`].
    ///
    /// The default, `None`, makes the operation differentiable once:
    /// [`Tape::grad_graph`] through it returns
    /// [`TapeError::OnceDifferentiable`](super::TapeError::OnceDifferentiable)
    /// (PyTorch's `@once_differentiable`). It runs as `backward` does, with
    /// nothing of the tape borrowed.
    ///
    /// ```
    /// use ad_runtime::tape::{Function, Tape, Value, Var};
    ///
    /// struct Square;
    ///
    /// impl Function<f64> for Square {
    ///     fn name(&self) -> &str {
    ///         "Square"
    ///     }
    ///     fn forward(&self, inputs: &[Value<f64>]) -> Value<f64> {
    ///         inputs[0].map(|x| x * x)
    ///     }
    ///     fn backward(&self, inputs: &[Value<f64>], _: &Value<f64>, g: &Value<f64>) -> Vec<Option<Value<f64>>> {
    ///         vec![Some(g.zip_map(&inputs[0], |g, x| 2.0 * x * g))]
    ///     }
    ///     fn backward_graph<'t>(&self, inputs: &[Var<'t>], _: Var<'t>, g: Var<'t>) -> Option<Vec<Option<Var<'t>>>> {
    ///         Some(vec![Some(inputs[0] * 2.0 * g)])
    ///     }
    /// }
    ///
    /// let tape: Tape = Tape::new();
    /// let x = tape.var(3.0);
    /// let y = tape.apply(Square, &[x]);
    /// let dx = tape.grad_graph(y, &[x])[0];
    /// assert_eq!(dx.item(), 6.0);
    /// assert_eq!(tape.grad(dx, &[x])[0].item(), 2.0);
    /// ```
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t, T>],
        output: Var<'t, T>,
        grad_output: Var<'t, T>,
    ) -> Option<Vec<Option<Var<'t, T>>>> {
        let _ = (inputs, output, grad_output);
        None
    }
}

/// The backward of a recorded custom node.
pub(crate) trait CustomBackward<T: Float> {
    fn backward(&self, grad_output: &Value<T>) -> Vec<Option<Value<T>>>;

    /// [`Function::backward_graph`]; `None` for a closure of [`Tape::apply_fn`].
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t, T>],
        output: Var<'t, T>,
        grad_output: Var<'t, T>,
    ) -> Option<Vec<Option<Var<'t, T>>>>;
}

struct FunctionNode<T: Float, F> {
    f: F,
    inputs: Vec<Value<T>>,
    output: Value<T>,
}

impl<T: Float, F: Function<T>> CustomBackward<T> for FunctionNode<T, F> {
    fn backward(&self, grad_output: &Value<T>) -> Vec<Option<Value<T>>> {
        self.f.backward(&self.inputs, &self.output, grad_output)
    }

    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t, T>],
        output: Var<'t, T>,
        grad_output: Var<'t, T>,
    ) -> Option<Vec<Option<Var<'t, T>>>> {
        self.f.backward_graph(inputs, output, grad_output)
    }
}

struct ClosureNode<B> {
    backward: B,
}

impl<T: Float, B: Fn(&Value<T>) -> Vec<Value<T>>> CustomBackward<T> for ClosureNode<B> {
    fn backward(&self, grad_output: &Value<T>) -> Vec<Option<Value<T>>> {
        (self.backward)(grad_output).into_iter().map(Some).collect()
    }

    fn backward_graph<'t>(
        &self,
        _: &[Var<'t, T>],
        _: Var<'t, T>,
        _: Var<'t, T>,
    ) -> Option<Vec<Option<Var<'t, T>>>> {
        None
    }
}

impl<T: Float> Tape<T> {
    /// Records the custom operation `f` on `inputs` as one node.
    ///
    /// # Panics
    /// If a `Var` belongs to another tape; in backward, if `f.backward`
    /// returns the wrong number of gradients or one of the wrong shape.
    pub fn apply<'t, F: Function<T> + 'static>(
        &'t self,
        f: F,
        inputs: &[Var<'t, T>],
    ) -> Var<'t, T> {
        let t0 = self.is_profiling().then(Instant::now);
        let values: Vec<Value<T>> = inputs.iter().map(|v| v.value()).collect();
        // User code: nothing of the arena is borrowed here.
        let output = f.forward(&values).normalized();
        let name = f.name().to_string();
        let node = FunctionNode {
            f,
            inputs: values,
            output: output.clone(),
        };
        let var = self.push_custom(&name, Rc::new(node), inputs, output);
        if let Some(t0) = t0 {
            self.record_forward(&name, t0.elapsed());
        }
        var
    }

    /// Records a custom operation given by its already computed output `value`
    /// and a `backward` closure that maps the output's gradient to one gradient
    /// per input (each of that input's shape). This is how the tape expansion
    /// of `#[differentiable]` calls a function's `_vjp`. The closure may use
    /// the tape as [`Function::backward`] may.
    ///
    /// ```
    /// use ad_runtime::tape::{Tape, Value};
    /// let tape: Tape = Tape::new();
    /// let x = tape.var(3.0);
    /// let y = tape.var(4.0);
    /// // f(x, y) = x y, with its vector-Jacobian product written by hand.
    /// let (xv, yv) = (x.item(), y.item());
    /// let f = tape.apply_fn("f", &[x, y], xv * yv, move |g: &Value<f64>| {
    ///     vec![Value::Scalar(g.item() * yv), Value::Scalar(g.item() * xv)]
    /// });
    /// f.backward();
    /// assert_eq!((x.grad_scalar(), y.grad_scalar()), (4.0, 3.0));
    /// ```
    pub fn apply_fn<'t>(
        &'t self,
        name: &str,
        inputs: &[Var<'t, T>],
        value: impl Into<Value<T>>,
        backward: impl Fn(&Value<T>) -> Vec<Value<T>> + 'static,
    ) -> Var<'t, T> {
        let t0 = self.is_profiling().then(Instant::now);
        let value = value.into().normalized();
        let var = self.push_custom(name, Rc::new(ClosureNode { backward }), inputs, value);
        if let Some(t0) = t0 {
            self.record_forward(name, t0.elapsed());
        }
        var
    }

    #[track_caller]
    fn push_custom<'t>(
        &'t self,
        name: &str,
        backward: Rc<dyn CustomBackward<T>>,
        inputs: &[Var<'t, T>],
        output: Value<T>,
    ) -> Var<'t, T> {
        for v in inputs {
            assert!(std::ptr::eq(v.tape, self), "apply: a Var of another tape");
        }
        let mut g = self.g();
        // Every input is checked here, after the user's forward ran: it may
        // have cleared the graph, and a stale input must not become an edge.
        let mut rg = false;
        for v in inputs {
            rg |= v.node_ref(&g).flags & REQUIRES_GRAD != 0;
        }
        rg &= self.is_grad_enabled();
        let mut ext = Ext::new(None);
        let mut unrecorded = None;
        if rg {
            ext.inputs = inputs.iter().map(|v| v.idx()).collect();
            ext.custom = Some(Custom {
                name: name.into(),
                backward,
            });
        } else {
            unrecorded = Some(backward);
        }
        let idx = push_result(
            &mut g,
            Op::Custom,
            output,
            [NONE, NONE],
            rg,
            [T::zero(); 2],
            ext,
        );
        let var = Var::from_parts(self, idx, g.epoch);
        drop(g);
        // No input needs a gradient, so the result is a constant and the
        // operation is not kept: the user's value is dropped here, after the
        // arena is released, as its `Drop` may use the tape.
        drop(unrecorded);
        var
    }
}
