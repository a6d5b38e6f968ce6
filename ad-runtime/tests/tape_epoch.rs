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

/// A random mix of leaves, constants, operations (recorded and under
/// `no_grad`) and clears, against a model that knows which node every `Var`
/// was made for: a `Var` works exactly while its node is on the tape, and
/// reports itself dropped (without panicking, through `Debug`) afterwards.
#[test]
fn liveness_matches_a_model_of_random_recordings_and_clears() {
    struct Entry<'t> {
        var: Var<'t>,
        value: f64,
        index: usize,
        live: bool,
    }
    let tape: Tape = Tape::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut entries: Vec<Entry<'_>> = Vec::new();
    // Per node on the tape: whether it has inputs (ends the kept prefix).
    let mut nodes: Vec<bool> = Vec::new();
    // The entries whose node is on the tape.
    let mut live: Vec<usize> = Vec::new();
    let mut clears = 0;
    for step in 0..20_000u32 {
        match next(20) {
            0..=3 => {
                let value = f64::from(step);
                let var = if next(2) == 0 {
                    tape.var(value)
                } else {
                    tape.constant(value)
                };
                live.push(entries.len());
                entries.push(Entry {
                    var,
                    value,
                    index: nodes.len(),
                    live: true,
                });
                nodes.push(false);
            }
            4..=15 => {
                if live.is_empty() {
                    continue;
                }
                let a = live[next(live.len() as u64) as usize];
                let b = live[next(live.len() as u64) as usize];
                let (va, vb) = (entries[a].var, entries[b].var);
                let quiet = next(4) == 0;
                let var = if quiet {
                    tape.no_grad(|| va.max(vb))
                } else {
                    va.max(vb)
                };
                let has_inputs = var.requires_grad();
                assert_eq!(
                    has_inputs,
                    !quiet && (va.requires_grad() || vb.requires_grad())
                );
                live.push(entries.len());
                entries.push(Entry {
                    var,
                    value: entries[a].value.max(entries[b].value),
                    index: nodes.len(),
                    live: true,
                });
                nodes.push(has_inputs);
            }
            _ => {
                tape.clear_graph();
                clears += 1;
                let kept = nodes.iter().position(|&h| h).unwrap_or(nodes.len());
                nodes.truncate(kept);
                live.retain(|&i| {
                    let e = &mut entries[i];
                    e.live = e.index < kept;
                    e.live
                });
            }
        }
        if step % 1000 == 999 {
            assert_eq!(tape.len(), nodes.len());
            // A dropped node's index may hold a newer node: the cases that
            // could alias. Beyond the tape's length nothing can.
            for e in entries.iter().filter(|e| e.index < nodes.len()) {
                let shown = format!("{:?}", e.var);
                if e.live {
                    assert_eq!(e.var.item(), e.value, "step {step}, node {}", e.index);
                    assert!(!shown.contains("dropped"), "step {step}: {shown}");
                } else {
                    assert!(shown.contains("dropped"), "step {step}: {shown}");
                }
            }
        }
    }
    assert!(clears > 3000, "{clears} clears");
    assert!(live.len() > 10, "{} live", live.len());
    let reused = entries
        .iter()
        .filter(|e| !e.live && e.index < nodes.len())
        .count();
    assert!(reused > 100, "{reused} dropped Vars whose index was reused");
}

// Empty tensors with huge other extents (found by the runtime's robustness test): the
// tape multiplied the extents to count elements, which overflows in debug builds
// although the count is 0.
#[test]
fn tape_ops_on_empty_tensors_with_huge_extents() {
    use ad_runtime::tape::Tape;
    use ad_runtime::Tensor;
    let huge = [usize::MAX, usize::MAX, 0];
    let tape = Tape::<f64>::new();
    let a = tape.tensor(Tensor::zeros(&huge));
    let b = tape.tensor(Tensor::zeros(&[usize::MAX, 1, 0]));
    let y = (a + b).mean() + (a * 2.0).sum();
    y.backward();
    assert_eq!(a.grad_tensor().shape(), &huge);
    assert_eq!(b.grad_tensor().shape(), &[usize::MAX, 1, 0]);
}

// Found by the random-program tester: the tape's `mul_add` rounded twice, so a tape
// function's value differed from the plain function's by an ulp.
#[test]
fn mul_add_value_is_fused_and_its_gradient_unchanged() {
    use ad_runtime::tape::Tape;
    let (x1, x0) = (1.0060190352618712f64, 0.5968794942549145f64);
    let tape = Tape::<f64>::new();
    let (a, b) = (tape.var(x1), tape.var(x0));
    let y = a.mul_add(b, 0.5);
    assert_eq!(y.item().to_bits(), x1.mul_add(x0, 0.5).to_bits());
    assert_ne!(x1.mul_add(x0, 0.5).to_bits(), (x1 * x0 + 0.5).to_bits());
    y.backward();
    assert_eq!((a.grad_scalar(), b.grad_scalar()), (x0, x1));
    let c = tape.var(0.25);
    let z = a.mul_add(b, c);
    assert_eq!(z.item().to_bits(), x1.mul_add(x0, 0.25).to_bits());
}
