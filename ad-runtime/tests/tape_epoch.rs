//! The `clear_graph` generation of a `Var`: a `Var` of a dropped node must
//! panic when used, however many times the tape was cleared since.

use ad_runtime::tape::{Tape, Var};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = err.downcast_ref::<&str>() {
        s.to_string()
    } else {
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }
}

const STALE: &str = "is no longer on its tape";

/// A `u16` generation wraps after 65,536 clears: a stale `Var` of node 1 then
/// matched the node recorded at index 1 after the wrap and read its value.
#[test]
fn a_stale_var_panics_after_65536_clears() {
    let tape: Tape = Tape::new();
    let x = tape.var(2.0);
    let stale = x * 5.0; // node 1, dropped by the first clear
    assert_eq!(stale.index(), 1);
    for _ in 0..65_536 {
        tape.clear_graph();
    }
    // Record a new node at the old index, in the generation a u16 wraps to.
    let fresh = x * 3.0;
    assert_eq!(fresh.index(), 1);
    assert_eq!(fresh.item(), 6.0);
    let msg = panic_message(|| {
        stale.item();
    });
    assert!(msg.contains(STALE), "{msg}");
    let msg = panic_message(|| {
        let _ = stale + 1.0;
    });
    assert!(msg.contains(STALE), "{msg}");
    // The leaf kept across every clear still works, and so does the new node.
    assert_eq!(x.item(), 2.0);
    (fresh * x).backward();
    assert_eq!(x.grad_scalar(), 12.0);
}

/// Leaves created in different generations, kept by later clears, stay
/// valid; nodes recorded above them are dropped and their `Var`s panic, even
/// when a later leaf reuses their index.
#[test]
fn leaves_added_between_clears_stay_valid_and_dropped_nodes_stay_stale() {
    let tape: Tape = Tape::new();
    let a = tape.var(1.0);
    let y0 = a * 2.0; // node 1
    tape.clear_graph();
    // A leaf at index 1, created before this step's first operation: kept.
    let b = tape.var(3.0);
    assert_eq!(b.index(), 1);
    let y1 = a * b; // node 2
    tape.clear_graph();
    let c = tape.var(4.0); // index 2, reusing y1's slot
    assert_eq!(c.index(), 2);
    let mut stale = vec![y0, y1];
    let mut kept: Vec<(Var<'_>, f64)> = vec![(a, 1.0), (b, 3.0), (c, 4.0)];
    for step in 0..70_000u32 {
        if step % 10_000 == 0 {
            // Now and then a step records an operation, which a clear drops.
            stale.push(a + b + c);
        }
        tape.clear_graph();
    }
    let d = tape.var(5.0);
    kept.push((d, 5.0));
    let l = a * b * c * d;
    l.backward();
    assert_eq!(a.grad_scalar(), 60.0);
    assert_eq!(d.grad_scalar(), 12.0);
    for (v, x) in kept {
        assert_eq!(v.item(), x);
    }
    for v in stale {
        let msg = panic_message(|| {
            v.item();
        });
        assert!(msg.contains(STALE), "node {}: {msg}", v.index());
    }
}

/// A `Var` stays two words.
#[test]
fn a_var_is_two_words() {
    assert_eq!(std::mem::size_of::<Var<'_, f64>>(), 16);
    assert_eq!(std::mem::size_of::<Var<'_, f32>>(), 16);
}
