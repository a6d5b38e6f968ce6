//! Matrix products: `Tensor::matmul` (through `matrixmultiply`) against the
//! `gemm` crate and ndarray's `dot`, in `f32` and `f64`, single-threaded.
//!
//! Throughput is `2·m·k·n` elements, so criterion's Gelem/s reads as GFLOP/s.

use ad_runtime::{Float, Tensor};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array2;

const SHAPES: [(usize, usize, usize); 2] = [(64, 1000, 100), (64, 100, 10)];

fn bench_type<T: Float + ndarray::LinalgScalar>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("matmul_{}", T::NAME));
    for (m, k, n) in SHAPES {
        let label = format!("{m}x{k}x{n}");
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        let a = Tensor::<T>::randn(&[m, k], 1);
        let b = Tensor::<T>::randn(&[k, n], 2);

        group.bench_with_input(
            BenchmarkId::new("adjoint_matmul", &label),
            &(),
            |bench, _| bench.iter(|| black_box(&a).matmul(black_box(&b))),
        );

        let mut out = Tensor::<T>::zeros(&[m, n]);
        group.bench_with_input(
            BenchmarkId::new("adjoint_gemm_into", &label),
            &(),
            |bench, _| {
                bench.iter(|| {
                    out.gemm_into(
                        T::one(),
                        black_box(&a),
                        false,
                        black_box(&b),
                        false,
                        T::zero(),
                    )
                })
            },
        );

        group.bench_with_input(BenchmarkId::new("gemm_crate", &label), &(), |bench, _| {
            bench.iter(|| {
                let (a, b) = (black_box(a.as_slice()), black_box(b.as_slice()));
                let mut c = vec![T::zero(); m * n];
                // SAFETY: the three buffers are row-major m×k, k×n and m×n,
                // as the strides say, and `c` is distinct from `a` and `b`.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        T::zero(),
                        T::one(),
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
                c
            })
        });

        let na = Array2::from_shape_vec((m, k), a.to_vec()).unwrap();
        let nb = Array2::from_shape_vec((k, n), b.to_vec()).unwrap();
        group.bench_with_input(BenchmarkId::new("ndarray_dot", &label), &(), |bench, _| {
            bench.iter(|| black_box(&na).dot(black_box(&nb)))
        });
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    bench_type::<f32>(c);
    bench_type::<f64>(c);
}

criterion_group!(benches, matmul);
criterion_main!(benches);
