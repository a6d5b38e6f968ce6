//! The 64×1000×100×10 networks of the tensor tutorials, `f32` and `f64` side by
//! side in one group per network: the primal loss, then one gradient each way
//! (`hand`: op by op with the tensor operations; `fused`: the fused kernels
//! and in-place products; `tape`: the dynamic tape, recording anew per call;
//! and every further row of `tanh_rows`/`relu_rows`).
//!
//! `cargo bench --bench mlp -- --warm-up-time 1 --measurement-time 3`

#[path = "common/mlp.rs"]
mod mlp;

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkGroup, Criterion};
use mlp::{double, single, ReluNet, TanhNet};

/// A named gradient of a network `N`: the loss `T` and the gradients `G`.
type Row<N, T, G> = (&'static str, fn(&N) -> (T, G));

/// Benchmarks the primal and every gradient row of one network in one precision.
fn rows<N, T, G>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    precision: &str,
    net: &N,
    primal: fn(&N) -> T,
    grads: Vec<Row<N, T, G>>,
) {
    g.bench_function(format!("primal/{precision}"), |b| {
        b.iter(|| primal(black_box(net)))
    });
    for (name, grad) in grads {
        g.bench_function(format!("{name}/{precision}"), |b| {
            b.iter(|| grad(black_box(net)))
        });
    }
}

fn tanh_net(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_tanh");
    let (n32, n64) = (TanhNet::<f32>::new(1), TanhNet::<f64>::new(1));
    rows(&mut g, "f32", &n32, single::tanh_loss, single::tanh_rows());
    rows(&mut g, "f64", &n64, double::tanh_loss, double::tanh_rows());
    g.finish();
}

fn relu_net(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_relu");
    let (n32, n64) = (ReluNet::<f32>::new(1), ReluNet::<f64>::new(1));
    rows(&mut g, "f32", &n32, single::relu_loss, single::relu_rows());
    rows(&mut g, "f64", &n64, double::relu_loss, double::relu_rows());
    g.finish();
}

criterion_group!(benches, tanh_net, relu_net);
criterion_main!(benches);
