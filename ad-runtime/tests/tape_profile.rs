//! The profiler's backward walk visits the nodes the pass reaches, as the
//! unprofiled walk does, and nothing else.

use ad_runtime::tape::{Tape, Value};
use ad_runtime::Tensor;
use std::cell::Cell;
use std::rc::Rc;

/// A tensor node below the root that the root does not depend on: the
/// profiled walk took its (absent) gradient and panicked.
#[test]
fn a_profiled_backward_skips_an_unreached_tensor_node() {
    let tape: Tape = Tape::new();
    let a = tape.tensor(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    let unrelated = a * 2.0;
    let s = (a * 3.0).sum();
    let ((), prof) = tape.profile(|| s.backward());
    assert_eq!(a.grad_tensor().as_slice(), &[3.0, 3.0, 3.0]);
    assert!(unrelated.grad().is_none());
    // Visited: sum, the product a * 3 and the leaf; not the unrelated product.
    assert_eq!(prof.row("mul").unwrap().backward_count, 1);
    assert_eq!(prof.row("sum").unwrap().backward_count, 1);
}

/// A custom operation the root does not depend on: its backward ran, with a
/// zero gradient, whenever the profiler was on.
#[test]
fn a_profiled_backward_does_not_call_an_unreached_custom_backward() {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let _unrelated = tape.apply_fn("side", &[x], 4.0, move |g: &Value| {
        r.set(r.get() + 1);
        vec![Value::Scalar(2.0 * g.item())]
    });
    let y = x * x * x;
    let ((), prof) = tape.profile(|| y.backward());
    assert_eq!(x.grad_scalar(), 12.0);
    assert_eq!(ran.get(), 0, "the unreached custom backward ran");
    assert!(prof.row("side").map_or(true, |r| r.backward_count == 0));
    assert_eq!(prof.row("mul").unwrap().backward_count, 2);
}
