//! Property tests: broadcasting and every `matmul` case against naive loops
//! on random shapes.

use ad_runtime::{broadcast_shapes, Tensor};
use proptest::prelude::*;

/// A result shape of 0 to 4 dimensions, and two operand shapes that broadcast
/// to it: each drops some leading dimensions and sets some others to 1.
fn broadcast_triple() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..5, 0..=4).prop_flat_map(|out| {
        let n = out.len();
        let operand = (0..=n, prop::collection::vec(any::<bool>(), n)).prop_map({
            let out = out.clone();
            move |(keep, ones)| {
                (n - keep..n)
                    .map(|d| if ones[d] { 1 } else { out[d] })
                    .collect::<Vec<_>>()
            }
        });
        (Just(out), operand.clone(), operand)
    })
}

fn naive_broadcast(a: &Tensor, b: &Tensor, out: &[usize], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let read = |t: &Tensor, flat: usize| {
        let (shape, pad) = (t.shape(), out.len() - t.ndim());
        let mut rem = flat;
        let mut coords = vec![0; out.len()];
        for d in (0..out.len()).rev() {
            coords[d] = rem % out[d];
            rem /= out[d];
        }
        let off = (0..shape.len()).fold(0, |o, d| {
            o * shape[d] + if shape[d] == 1 { 0 } else { coords[pad + d] }
        });
        t.as_slice()[off]
    };
    (0..out.iter().product())
        .map(|i| f(read(a, i), read(b, i)))
        .collect()
}

fn naive_matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

fn close(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= 1e-12 * (1.0 + w.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn broadcasting_matches_index_arithmetic((_, sa, sb) in broadcast_triple(), seed in any::<u64>()) {
        // Both operands may have dropped leading dimensions of the drawn shape.
        let out = broadcast_shapes("test", &sa, &sb).unwrap().dims().to_vec();
        let a = Tensor::randn(&sa, seed);
        let b = Tensor::randn(&sb, seed ^ 1);
        let want = naive_broadcast(&a, &b, &out, |x, y| x * 2.0 - y);
        let by_ref = &a * 2.0 - &b;
        prop_assert_eq!(by_ref.shape(), &out[..]);
        prop_assert_eq!(by_ref.as_slice(), &want[..]);
        let owned = a.clone() * 2.0 - b.clone();
        prop_assert_eq!(owned.as_slice(), &want[..]);
        let mixed = &(a.clone() * 2.0) - b.clone();
        prop_assert_eq!(mixed.as_slice(), &want[..]);
        // Summing back onto each operand's shape reverses the broadcast.
        let ones = Tensor::<f64>::ones(&out);
        let count = (out.iter().product::<usize>() / sa.iter().product::<usize>()) as f64;
        prop_assert!(ones.sum_to_shape(&sa).as_slice().iter().all(|&v| v == count));
        let stretched = a.broadcast_to(&out);
        prop_assert_eq!(stretched.as_slice(), &naive_broadcast(&a, &ones, &out, |x, _| x)[..]);
    }

    #[test]
    fn matmul_matches_the_triple_loop(m in 1usize..20, k in 0usize..20, n in 1usize..20, seed in any::<u64>()) {
        let a = Tensor::randn(&[m, k], seed);
        let b = Tensor::randn(&[k, n], seed ^ 1);
        let x = Tensor::randn(&[k], seed ^ 2);
        let want = naive_matmul(a.as_slice(), b.as_slice(), m, k, n);
        prop_assert!(close(a.matmul(&b).as_slice(), &want));
        prop_assert!(close(a.matmul(&x).as_slice(), &naive_matmul(a.as_slice(), x.as_slice(), m, k, 1)));
        prop_assert!(close(x.matmul(&b).as_slice(), &naive_matmul(x.as_slice(), b.as_slice(), 1, k, n)));
        prop_assert!(close(a.matmul_t(&b.t()).as_slice(), &want));
        prop_assert!(close(a.t().t_matmul(&b).as_slice(), &want));
    }

    #[test]
    fn matmul_f32_matches_the_triple_loop(m in 1usize..12, k in 1usize..12, n in 1usize..12, seed in any::<u64>()) {
        let a = Tensor::<f32>::randn(&[m, k], seed);
        let b = Tensor::<f32>::randn(&[k, n], seed ^ 1);
        let to64 = |t: &Tensor<f32>| t.as_slice().iter().map(|&v| v as f64).collect::<Vec<_>>();
        let want = naive_matmul(&to64(&a), &to64(&b), m, k, n);
        let got = to64(&a.matmul(&b));
        prop_assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-4 * (1.0 + w.abs())));
    }
}
