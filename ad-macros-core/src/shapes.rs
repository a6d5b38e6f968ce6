//! Shape classes: which tensor values are known, at compile time, to have the same
//! runtime shape.
//!
//! The macro never knows a shape, but it knows when two shapes are equal: `tanh(z)`
//! has `z`'s shape, `a + b` has `a`'s when `b` is a scalar or has `a`'s shape too,
//! the gradient of a value has its shape. The simplifier drops the `sum_to_shape` of
//! a gradient whose class is its operand's, and the emitter fuses elementwise chains
//! and reuses buffers by class.
//!
//! Before/after, for `h = (x.matmul(w) + b).tanh()`:
//!
//! ```text
//! %4 = matmul %0 %2        class %4
//! %6 = %4 + %1             class %6   (b may broadcast, or be the larger one)
//! %8 = tanh %6             class %6
//! ```

use crate::adjoint::tensor_of;
use crate::ir::{Func, Id, Op};

/// The class of every node: the id of the earliest node known to share its shape, or
/// `None` for values that are neither tensors, masks over tensors, nor shapes.
pub fn classes(func: &Func) -> Vec<Option<Id>> {
    let mut class: Vec<Option<Id>> = vec![None; func.nodes.len()];
    for (i, node) in func.nodes.iter().enumerate() {
        let id = Id(i as u32);
        let shaped = tensor_of(func, id).is_some() || matches!(node.op, Op::ShapeOf(_));
        if !shaped {
            continue;
        }
        let of = |x: &Id| class[x.idx()];
        let known = match &node.op {
            Op::ShapeOf(x) => of(x),
            Op::Fill(_, s)
            | Op::SumToShape(_, s)
            | Op::ReshapeTo(_, s)
            | Op::ExpandAxis(_, s, _)
            | Op::MatMulGrad { shape: s, .. } => of(s),
            Op::ExtremumAxisGrad(x, ..) => of(x),
            Op::Neg(a) | Op::Detach(a) | Op::Not(a) => of(a),
            // Two tensor operands (`atan2`, `maximum`, ...) may broadcast.
            Op::Math(_, args) => same(args, &class, func),
            Op::Binary(_, a, b) => same(&[*a, *b], &class, func),
            Op::Select(c, a, b) => same(&[*c, *a, *b], &class, func),
            _ => None,
        };
        class[i] = Some(known.unwrap_or(id));
    }
    class
}

/// The common class of the tensor operands, if they all have one.
fn same(ops: &[Id], class: &[Option<Id>], func: &Func) -> Option<Id> {
    let mut it = ops
        .iter()
        .filter(|x| tensor_of(func, **x).is_some())
        .map(|x| class[x.idx()]);
    let first = it.next()??;
    it.all(|c| c == Some(first)).then_some(first)
}
