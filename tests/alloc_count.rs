//! Bytes and allocations of one gradient of the 64×1000×100×10 networks, per
//! way of computing it, by a counting global allocator.
//!
//! Run with `cargo test --release --test alloc_count -- --nocapture` to see the
//! table. Each gradient is called once before it is measured, so one-time
//! costs (thread-local buffers) are not counted.

#[path = "../benches/common/mlp.rs"]
mod mlp;

use mlp::{double, single, ReluNet, TanhNet};
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Usage;

/// Runs `f` once to warm up, then once more counting its allocations.
fn measure<R>(mut f: impl FnMut() -> R) -> Usage {
    drop(f());
    counting_alloc::measure(f)
}

/// Measures every row, prints the table, and returns the usage by row name.
fn report(title: &str, rows: Vec<(&'static str, Usage)>) -> Vec<(&'static str, Usage)> {
    println!("\n{title}");
    println!(
        "{:<8} {:>8} {:>12} {:>12} {:>10}",
        "gradient", "allocs", "bytes", "peak bytes", "bytes/fused"
    );
    let fused = rows.iter().find(|r| r.0 == "fused").map(|r| r.1.bytes);
    for (name, u) in &rows {
        let ratio = fused.map_or("-".to_string(), |f| {
            format!("{:.2}", u.bytes as f64 / f as f64)
        });
        println!(
            "{name:<8} {:>8} {:>12} {:>12} {ratio:>10}",
            u.calls, u.bytes, u.peak
        );
    }
    rows
}

fn usage(rows: &[(&str, Usage)], name: &str) -> Usage {
    rows.iter().find(|r| r.0 == name).unwrap().1
}

#[track_caller]
fn assert_fused_allocates_least(net: &str, rows: &[(&str, Usage)]) {
    let fused = usage(rows, "fused");
    for other in ["hand", "tape"] {
        let u = usage(rows, other);
        assert!(
            fused.bytes < u.bytes && fused.calls < u.calls,
            "{net}: fused ({fused:?}) does not allocate less than {other} ({u:?})"
        );
    }
}

/// The gradient `#[differentiable]` emits allocates less than the tape, in bytes
/// and in calls.
#[track_caller]
fn assert_static_allocates_less_than_the_tape(net: &str, rows: &[(&str, Usage)]) {
    let (stat, tape) = (usage(rows, "static"), usage(rows, "tape"));
    assert!(
        stat.bytes < tape.bytes && stat.calls < tape.calls,
        "{net}: static ({stat:?}) does not allocate less than the tape ({tape:?})"
    );
}

// One test, so that no other test of this binary runs during a measurement.
#[test]
fn one_gradient_allocates_least_when_fused() {
    let net = TanhNet::<f64>::new(1);
    let rows = double::tanh_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("tanh network, f64, one gradient", rows);
    assert_fused_allocates_least("tanh f64", &rows);
    assert_static_allocates_less_than_the_tape("tanh f64", &rows);

    let net = TanhNet::<f32>::new(1);
    let rows = single::tanh_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("tanh network, f32, one gradient", rows);
    assert_fused_allocates_least("tanh f32", &rows);
    assert_static_allocates_less_than_the_tape("tanh f32", &rows);

    let net = ReluNet::<f64>::new(1);
    let rows = double::relu_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("ReLU network, f64, one gradient", rows);
    assert_fused_allocates_least("relu f64", &rows);
    assert_static_allocates_less_than_the_tape("relu f64", &rows);

    let net = ReluNet::<f32>::new(1);
    let rows = single::relu_rows()
        .into_iter()
        .map(|(name, f)| (name, measure(|| f(&net))))
        .collect();
    let rows = report("ReLU network, f32, one gradient", rows);
    assert_fused_allocates_least("relu f32", &rows);
    assert_static_allocates_less_than_the_tape("relu f32", &rows);

    // The primal, for scale.
    let net = TanhNet::<f64>::new(1);
    report(
        "tanh network, f64, the primal loss",
        vec![("primal", measure(|| double::tanh_loss(&net)))],
    );
}
