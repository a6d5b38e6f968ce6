//! User code that calls back into the tape while the tape is working for it:
//! `Function::name`, `forward`, `backward`, the `Drop` of a recorded operation,
//! `apply_fn` closures and user `Into<Value>` conversions. The arena must not
//! be borrowed while any of them runs, so each may use the tape freely (record,
//! read values and gradients, inspect, export, run nested passes, `no_grad`,
//! `profile`); the one forbidden call, `clear_graph` inside a backward pass,
//! panics with a message; and a panic in any of them leaves the tape usable.
//!
//! The tapes are leaked so that `Var<'static>`s can live inside the operations.

use ad_runtime::tape::{Function, Tape, Value, Var};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

fn leaked() -> &'static Tape {
    Box::leak(Box::new(Tape::new()))
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = err.downcast_ref::<&str>() {
        s.to_string()
    } else {
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }
}

type Hook = Box<dyn Fn()>;

fn nothing() -> Hook {
    Box::new(|| {})
}

#[derive(Default)]
struct Calls {
    name: Cell<u32>,
    forward: Cell<u32>,
    backward: Cell<u32>,
    dropped: Cell<u32>,
}

fn bump(c: &Cell<u32>) {
    c.set(c.get() + 1);
}

/// `y = 3 x`, with a hook in each callback.
struct Probe {
    calls: Rc<Calls>,
    on_name: Hook,
    on_forward: Hook,
    on_backward: Hook,
    on_drop: Hook,
}

impl Probe {
    fn new(calls: &Rc<Calls>) -> Self {
        Probe {
            calls: calls.clone(),
            on_name: nothing(),
            on_forward: nothing(),
            on_backward: nothing(),
            on_drop: nothing(),
        }
    }
}

impl Function<f64> for Probe {
    fn name(&self) -> &str {
        bump(&self.calls.name);
        (self.on_name)();
        "Probe"
    }
    fn forward(&self, inputs: &[Value]) -> Value {
        bump(&self.calls.forward);
        (self.on_forward)();
        inputs[0].map(|v| 3.0 * v)
    }
    fn backward(&self, _inputs: &[Value], _output: &Value, grad: &Value) -> Vec<Option<Value>> {
        bump(&self.calls.backward);
        (self.on_backward)();
        vec![Some(grad.map(|g| 3.0 * g))]
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        bump(&self.calls.dropped);
        (self.on_drop)();
    }
}

/// `name()` records on the tape and inspects and exports another graph; the
/// graph walks that print names (DOT export, `grad_fn`, the profiler, `Debug`)
/// then run without calling `name()` again: the tape stored it at record time.
#[test]
fn name_is_asked_once_and_may_record_inspect_and_export() {
    let tape = leaked();
    let x = tape.var(1.5);
    let w = tape.var(2.0).named("w");
    let h = (w * w).named("h");
    let calls = Rc::new(Calls::default());
    let seen = Rc::new(Cell::new(0usize));
    let mut p = Probe::new(&calls);
    let s = seen.clone();
    p.on_name = Box::new(move || {
        let c = tape.constant(1.0) * 2.0;
        assert_eq!(c.item(), 2.0);
        let dot = h.to_dot();
        assert!(dot.contains("MulBackward") && dot.contains('w'), "{dot}");
        assert_eq!(h.grad_fn().unwrap().name(), "MulBackward");
        assert_eq!(format!("{h:?}"), "Var(4, grad_fn=<MulBackward>)");
        s.set(tape.len());
    });
    let ((), prof) = tape.profile(|| {
        let y = tape.apply(p, &[x]);
        assert_eq!(y.item(), 4.5);
        assert!(y.to_dot().contains("ProbeBackward"));
        let f = y.grad_fn().unwrap();
        assert_eq!(f.name(), "ProbeBackward");
        assert_eq!(f.next_functions()[0].unwrap().name(), "AccumulateGrad");
        assert_eq!(format!("{y:?}"), "Var(4.5, grad_fn=<ProbeBackward>)");
        (y * 2.0).backward();
    });
    // x, w, h and the constant and product name() recorded.
    assert_eq!(seen.get(), 5);
    let row = prof.row("Probe").expect("the custom operation is profiled");
    assert_eq!((row.forward_count, row.backward_count), (1, 1));
    assert_eq!(x.grad_scalar(), 6.0);
    assert_eq!(calls.name.get(), 1, "name() is asked once, when recorded");
    assert_eq!((calls.forward.get(), calls.backward.get()), (1, 1));
}

/// A custom backward records on the tape, reads other `Var`s' values and
/// gradients, and runs nested backward passes and `Tape::grad`, also under
/// the profiler and inside an enclosing `Tape::grad` that wants the same leaf.
#[test]
fn custom_backward_records_reads_and_runs_nested_passes() {
    let tape = leaked();
    let x = tape.var(1.5);
    let a = tape.var(2.0);
    let b = a * a;
    let x5 = x * 5.0;
    let calls = Rc::new(Calls::default());
    let x_grads = Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut p = Probe::new(&calls);
    let xg = x_grads.clone();
    p.on_backward = Box::new(move || {
        assert_eq!((x.item(), a.item(), b.item()), (1.5, 2.0, 4.0));
        // x sits below the custom node: this pass reaches it afterwards, so
        // this reads what the earlier passes accumulated.
        xg.borrow_mut().push(x.grad().map(|g| g.item()));
        let c = a * 3.0;
        assert!(c.requires_grad());
        assert_eq!(c.item(), 6.0);
        assert_eq!(tape.grad(b, &[a])[0].item(), 4.0);
        // Wants x, which an enclosing `Tape::grad` may want too.
        assert_eq!(tape.grad(x5, &[x])[0].item(), 5.0);
        let before = a.grad_scalar();
        (a * a * a).backward();
        assert_eq!(a.grad_scalar(), before + 12.0);
    });
    let y = tape.apply(p, &[x]);
    let l = y * y;
    l.backward();
    assert_eq!(x.grad_scalar(), 27.0);
    assert_eq!(a.grad_scalar(), 12.0);
    // Again, accumulating, with the profiler on (every node is visited then).
    let ((), prof) = tape.profile(|| l.backward());
    assert_eq!(x.grad_scalar(), 54.0);
    assert_eq!(a.grad_scalar(), 24.0);
    assert_eq!(prof.row("Probe").unwrap().backward_count, 1);
    // `Tape::grad` wanting x while the nested one wants it too.
    let g = tape.grad(l, &[x, y]);
    assert_eq!((g[0].item(), g[1].item()), (27.0, 9.0));
    assert_eq!(x.grad_scalar(), 54.0, "Tape::grad accumulates nothing");
    assert_eq!(a.grad_scalar(), 36.0);
    assert_eq!(calls.backward.get(), 3);
    assert_eq!(*x_grads.borrow(), [None, Some(27.0), Some(54.0)]);
}

/// A custom forward records (also under `no_grad`), and may even clear the
/// graph: then an input it dropped is refused with the stale-`Var` message,
/// and an input the clear kept still works.
#[test]
fn custom_forward_records_and_may_clear_the_graph() {
    let tape = leaked();
    let x = tape.var(1.5);
    let calls = Rc::new(Calls::default());
    let mut p = Probe::new(&calls);
    p.on_forward = Box::new(move || {
        assert!((x * 2.0).requires_grad());
        tape.no_grad(|| assert!(!(x * 2.0).requires_grad()));
        assert!(tape.is_grad_enabled());
    });
    let y = tape.apply(p, &[x]);
    (y * y).backward();
    assert_eq!(x.grad_scalar(), 27.0);

    let clearing = || {
        let mut p = Probe::new(&calls);
        p.on_forward = Box::new(move || tape.clear_graph());
        p
    };
    let h = x * 1.0;
    let msg = panic_message(|| {
        tape.apply(clearing(), &[h]);
    });
    assert!(msg.contains("no longer on its tape"), "{msg}");
    let y = tape.apply(clearing(), &[x]);
    assert_eq!(y.item(), 4.5);
    tape.zero_grad();
    y.backward();
    assert_eq!(x.grad_scalar(), 3.0);
}

/// The `Drop` of a recorded operation runs after `clear_graph` has released
/// the arena: it records, reads, exports and even clears again. An operation
/// recorded under `no_grad` is not kept and is dropped at once, also outside
/// any borrow.
#[test]
fn drop_of_a_recorded_operation_may_use_the_tape() {
    let tape = leaked();
    let x = tape.var(1.5);
    let calls = Rc::new(Calls::default());
    let mut p = Probe::new(&calls);
    p.on_drop = Box::new(move || {
        assert_eq!((x * 2.0).item(), 3.0);
        assert!(tape.to_dot(&[x * x]).contains("MulBackward"));
        tape.clear_graph();
    });
    let y = tape.apply(p, &[x]);
    (y * 1.0).backward();
    tape.clear_graph();
    assert_eq!(calls.dropped.get(), 1);
    assert_eq!(tape.len(), 1, "only x is kept");
    assert_eq!(x.item(), 1.5);
    let msg = panic_message(|| {
        y.item();
    });
    assert!(msg.contains("no longer on its tape"), "{msg}");

    let mut p = Probe::new(&calls);
    p.on_drop = Box::new(move || {
        assert!(!tape.is_grad_enabled());
        assert!(!(x * 2.0).requires_grad());
    });
    let z = tape.no_grad(|| tape.apply(p, &[x]));
    assert_eq!(
        calls.dropped.get(),
        2,
        "an unrecorded operation is dropped at once"
    );
    assert!(!z.requires_grad());
    assert_eq!(z.item(), 4.5);
}

/// `no_grad` and `profile` inside callbacks nest with the caller's and are
/// restored; a backward pass run under `no_grad` shows it to the callback.
#[test]
fn no_grad_and_profile_inside_callbacks_nest_and_restore() {
    let tape = leaked();
    let x = tape.var(0.5);
    let calls = Rc::new(Calls::default());
    let grad_enabled = Rc::new(Cell::new(None));
    let mut p = Probe::new(&calls);
    let ge = grad_enabled.clone();
    p.on_backward = Box::new(move || {
        ge.set(Some(tape.is_grad_enabled()));
        let (k, inner) = tape.profile(|| tape.no_grad(|| x.exp() * 2.0));
        assert!(!k.requires_grad());
        assert_eq!(inner.row("exp").unwrap().forward_count, 1);
        let _ = x * 4.0;
    });
    let y = tape.apply(p, &[x]);
    let l = y * y;
    let ((), prof) = tape.profile(|| l.backward());
    assert_eq!(grad_enabled.get(), Some(true));
    assert!(tape.is_grad_enabled());
    // The inner profile is folded into the outer one.
    assert_eq!(prof.row("exp").unwrap().forward_count, 1);
    assert_eq!(prof.row("mul").unwrap().forward_count, 2);
    assert_eq!(prof.row("Probe").unwrap().backward_count, 1);
    assert_eq!(x.grad_scalar(), 9.0);
    tape.no_grad(|| l.backward());
    assert_eq!(grad_enabled.get(), Some(false));
    assert!(tape.is_grad_enabled());
    assert_eq!(x.grad_scalar(), 18.0);
}

/// A backward that panics once, for the tests of recovery.
fn panicking_once(calls: &Rc<Calls>, armed: &Rc<Cell<bool>>) -> Probe {
    let mut p = Probe::new(calls);
    let armed = armed.clone();
    p.on_backward = Box::new(move || {
        if armed.replace(false) {
            panic!("the user's backward failed");
        }
    });
    p
}

/// A panic in `name`, `forward`, `backward` (of `backward()` and of
/// `Tape::grad`) or `Drop` reaches the caller with its message and leaves the
/// tape usable: later passes give the right gradients and `clear_graph` works.
#[test]
fn a_panic_in_a_callback_leaves_the_tape_usable() {
    let tape = leaked();
    let x = tape.var(1.5);
    let calls = Rc::new(Calls::default());

    let mut p = Probe::new(&calls);
    p.on_name = Box::new(|| panic!("the user's name failed"));
    let len = tape.len();
    let msg = panic_message(|| {
        tape.apply(p, &[x]);
    });
    assert_eq!(msg, "the user's name failed");
    let mut p = Probe::new(&calls);
    p.on_forward = Box::new(|| panic!("the user's forward failed"));
    let msg = panic_message(|| {
        tape.apply(p, &[x]);
    });
    assert_eq!(msg, "the user's forward failed");
    assert_eq!(tape.len(), len, "nothing was recorded");

    let armed = Rc::new(Cell::new(true));
    let y = tape.apply(panicking_once(&calls, &armed), &[x]);
    let l = y * y;
    let msg = panic_message(|| l.backward());
    assert_eq!(msg, "the user's backward failed");
    tape.zero_grad();
    l.backward();
    assert_eq!(x.grad_scalar(), 27.0);
    armed.set(true);
    let msg = panic_message(|| {
        tape.grad(l, &[x, y]);
    });
    assert_eq!(msg, "the user's backward failed");
    let g = tape.grad(l, &[x, y]);
    assert_eq!((g[0].item(), g[1].item()), (27.0, 9.0));
    assert_eq!(x.grad_scalar(), 27.0);

    // The pass count was restored, or this would refuse to clear.
    tape.clear_graph();
    let mut p = Probe::new(&calls);
    p.on_drop = Box::new(|| panic!("the user's drop failed"));
    let y = tape.apply(p, &[x]);
    let _ = y * 2.0;
    let msg = panic_message(|| tape.clear_graph());
    assert_eq!(msg, "the user's drop failed");
    assert_eq!(tape.len(), 1);
    let msg = panic_message(|| {
        y.item();
    });
    assert!(msg.contains("no longer on its tape"), "{msg}");
    tape.zero_grad();
    (x * x).backward();
    assert_eq!(x.grad_scalar(), 3.0);
    tape.clear_graph();
    assert_eq!(tape.len(), 1);
}

/// `clear_graph` from a custom backward would drop the nodes the pass walks:
/// it panics with a message, and the tape is fine afterwards.
#[test]
fn clear_graph_inside_a_backward_pass_panics_clearly() {
    let tape = leaked();
    let x = tape.var(1.5);
    let calls = Rc::new(Calls::default());
    let mut p = Probe::new(&calls);
    p.on_backward = Box::new(move || tape.clear_graph());
    let y = tape.apply(p, &[x]);
    let l = y * y;
    let msg = panic_message(|| l.backward());
    assert!(
        msg.contains("clear_graph was called during a backward pass"),
        "{msg}"
    );
    assert_eq!(y.item(), 4.5, "nothing was dropped");
    tape.clear_graph();
    assert_eq!(tape.len(), 1);
    (x * 2.0).backward();
    assert_eq!(x.grad_scalar(), 2.0);
}

/// An `apply_fn` closure uses the tape like a `Function::backward`.
#[test]
fn apply_fn_backward_may_use_the_tape() {
    let tape = leaked();
    let x = tape.var(3.0);
    let a = tape.var(2.0);
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let y = tape.apply_fn("square", &[x], 9.0, move |g: &Value| {
        bump(&r);
        (a * a).backward();
        let xv = tape.no_grad(|| (x * 1.0).item());
        vec![Value::Scalar(2.0 * xv * g.item())]
    });
    (y * 2.0).backward();
    assert_eq!(x.grad_scalar(), 12.0);
    assert_eq!(a.grad_scalar(), 4.0);
    assert_eq!(ran.get(), 1);
    assert_eq!(y.grad_fn().unwrap().name(), "squareBackward");
}

/// A user type whose conversion into a `Value` records on the tape.
struct Recording(&'static Tape, Var<'static>, f64);

impl From<Recording> for Value {
    fn from(r: Recording) -> Value {
        let probe = r.1 * 2.0;
        assert_eq!(probe.item(), 2.0 * r.1.item());
        assert!(!r.0.is_empty());
        Value::Scalar(r.2)
    }
}

/// Every tape method taking `impl Into<Value>` converts before it borrows.
#[test]
fn user_conversions_may_use_the_tape() {
    let tape = leaked();
    let x = tape.var(1.0);
    let l = tape.leaf(Recording(tape, x, 4.0), true);
    assert_eq!(l.item(), 4.0);
    l.set_value(Recording(tape, x, 5.0));
    assert_eq!(l.item(), 5.0);
    let y = tape.apply_fn("id", &[l], Recording(tape, x, 5.0), |g: &Value| {
        vec![g.clone()]
    });
    let z = y * 3.0;
    z.backward_with(Recording(tape, x, 2.0));
    assert_eq!(l.grad_scalar(), 6.0);
    let g = tape.grad_with(z, Recording(tape, x, 1.0), &[l]).unwrap();
    assert_eq!(g[0].item(), 3.0);
}

/// `Debug` of a `Var` whose node a clear dropped says so instead of
/// printing whatever node now sits at its index.
#[test]
fn debug_of_a_stale_var_says_it_was_dropped() {
    let tape = leaked();
    let x = tape.var(1.0);
    let y = x * 7.0;
    tape.clear_graph();
    let _z = x * 3.0;
    assert_eq!(format!("{x:?}"), "Var(1, grad_fn=<AccumulateGrad>)");
    assert_eq!(format!("{y:?}"), "Var(<node 1 dropped by clear_graph>)");
}
