//! Elementwise `add`, `mul` and `tanh` on 10⁶ elements: tensor operations
//! against plain `for` loops over slices, writing into a preallocated `Vec`
//! and into a freshly allocated one.

use ad_runtime::Tensor;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const N: usize = 1_000_000;

fn elementwise(c: &mut Criterion) {
    let a = Tensor::<f64>::randn(&[1000, 1000], 1);
    let b = Tensor::<f64>::randn(&[1000, 1000], 2);
    let (sa, sb) = (a.as_slice(), b.as_slice());
    let mut out = vec![0.0f64; N];

    let mut group = c.benchmark_group("elementwise_f64_1e6");
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("add/tensor_ref_ref", |bench| {
        bench.iter(|| black_box(&a) + black_box(&b))
    });
    group.bench_function("add/tensor_owned_ref", |bench| {
        bench.iter_batched(|| a.clone(), |a| a + black_box(&b), BatchSize::LargeInput)
    });
    group.bench_function("add/tensor_row_broadcast", |bench| {
        let row = Tensor::<f64>::randn(&[1000], 3);
        bench.iter(|| black_box(&a) + black_box(&row))
    });
    group.bench_function("add/loop_prealloc", |bench| {
        bench.iter(|| {
            for ((o, &x), &y) in out.iter_mut().zip(black_box(sa)).zip(black_box(sb)) {
                *o = x + y;
            }
        })
    });
    group.bench_function("add/loop_alloc", |bench| {
        bench.iter(|| {
            let mut o = vec![0.0; N];
            for ((o, &x), &y) in o.iter_mut().zip(black_box(sa)).zip(black_box(sb)) {
                *o = x + y;
            }
            o
        })
    });

    group.bench_function("mul/tensor_ref_ref", |bench| {
        bench.iter(|| black_box(&a) * black_box(&b))
    });
    group.bench_function("mul/tensor_owned_ref", |bench| {
        bench.iter_batched(|| a.clone(), |a| a * black_box(&b), BatchSize::LargeInput)
    });
    group.bench_function("mul/loop_prealloc", |bench| {
        bench.iter(|| {
            for ((o, &x), &y) in out.iter_mut().zip(black_box(sa)).zip(black_box(sb)) {
                *o = x * y;
            }
        })
    });
    group.bench_function("mul/loop_alloc", |bench| {
        bench.iter(|| {
            let mut o = vec![0.0; N];
            for ((o, &x), &y) in o.iter_mut().zip(black_box(sa)).zip(black_box(sb)) {
                *o = x * y;
            }
            o
        })
    });

    group.bench_function("tanh/tensor", |bench| bench.iter(|| black_box(&a).tanh()));
    group.bench_function("tanh/loop_prealloc", |bench| {
        bench.iter(|| {
            for (o, &x) in out.iter_mut().zip(black_box(sa)) {
                *o = x.tanh();
            }
        })
    });
    group.bench_function("tanh/loop_alloc", |bench| {
        bench.iter(|| {
            let mut o = vec![0.0; N];
            for (o, &x) in o.iter_mut().zip(black_box(sa)) {
                *o = x.tanh();
            }
            o
        })
    });
    group.finish();
}

criterion_group!(benches, elementwise);
criterion_main!(benches);
