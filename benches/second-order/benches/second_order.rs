//! Forward mode and Hessian-vector products side by side (issue 13): the primal, adjoint's
//! `_jvp`/`_hvp`, num-dual, echidna, and a hand-written floor, on
//! the seed function and Rosenbrock at n = 1000. Every row's result is checked against
//! the hand-written one before it is timed.

mod peers;

use std::time::Duration;

use adjoint_second_order::{
    assert_close, direction, point, rosenbrock, rosenbrock_hvp_hand, rosenbrock_jvp_hand, seed,
    seed_hvp_hand, seed_jvp_hand, N, SEED_V, SEED_X,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};

fn jvp_seed(c: &mut Criterion) {
    let ((x1, x2), (d1, d2)) = (SEED_X, SEED_V);
    let (f, df) = seed_jvp_hand(x1, x2, d1, d2);
    let want = [f, df];
    let (f, df) = peers::num_dual_seed_jvp(x1, x2, d1, d2);
    assert_close("jvp/seed num-dual", &[f, df], &want);
    let (f, df) = peers::echidna_seed_jvp(x1, x2, d1, d2);
    assert_close("jvp/seed echidna", &[f, df], &want);
    {
        let (f, df) = adjoint_second_order::seed_jvp(x1, x2, d1, d2);
        assert_close("jvp/seed adjoint", &[f, df], &want);
    }

    let mut g = c.benchmark_group("jvp/seed");
    g.bench_function("primal", |b| b.iter(|| seed(black_box(x1), black_box(x2))));
    g.bench_function("adjoint", |b| {
        b.iter(|| {
            adjoint_second_order::seed_jvp(
                black_box(x1),
                black_box(x2),
                black_box(d1),
                black_box(d2),
            )
        })
    });
    g.bench_function("num-dual", |b| {
        b.iter(|| {
            peers::num_dual_seed_jvp(black_box(x1), black_box(x2), black_box(d1), black_box(d2))
        })
    });
    g.bench_function("echidna", |b| {
        b.iter(|| {
            peers::echidna_seed_jvp(black_box(x1), black_box(x2), black_box(d1), black_box(d2))
        })
    });
    g.bench_function("hand", |b| {
        b.iter(|| seed_jvp_hand(black_box(x1), black_box(x2), black_box(d1), black_box(d2)))
    });
    g.finish();
}

fn jvp_rosenbrock(c: &mut Criterion) {
    let (x, dx) = (point(N), direction(N));
    let (f, df) = rosenbrock_jvp_hand(&x, &dx);
    let want = [f, df];
    let mut nd = Vec::new();
    let mut ec = Vec::new();
    let (f, df) = peers::num_dual_rosenbrock_jvp(&x, &dx, &mut nd);
    assert_close("jvp/rosenbrock1000 num-dual", &[f, df], &want);
    let (f, df) = peers::echidna_rosenbrock_jvp(&x, &dx, &mut ec);
    assert_close("jvp/rosenbrock1000 echidna", &[f, df], &want);
    {
        let (f, df) = adjoint_second_order::rosenbrock_jvp(&x, &dx);
        assert_close("jvp/rosenbrock1000 adjoint", &[f, df], &want);
    }

    let mut g = c.benchmark_group("jvp/rosenbrock1000");
    g.bench_function("primal", |b| b.iter(|| rosenbrock(black_box(&x))));
    g.bench_function("adjoint", |b| {
        b.iter(|| adjoint_second_order::rosenbrock_jvp(black_box(&x), black_box(&dx)))
    });
    g.bench_function("num-dual", |b| {
        b.iter(|| peers::num_dual_rosenbrock_jvp(black_box(&x), black_box(&dx), &mut nd))
    });
    g.bench_function("echidna", |b| {
        b.iter(|| peers::echidna_rosenbrock_jvp(black_box(&x), black_box(&dx), &mut ec))
    });
    g.bench_function("hand", |b| {
        b.iter(|| rosenbrock_jvp_hand(black_box(&x), black_box(&dx)))
    });
    g.finish();
}

fn hvp_seed(c: &mut Criterion) {
    let ((x1, x2), (v1, v2)) = (SEED_X, SEED_V);
    let (f, (g1, g2), (h1, h2)) = seed_hvp_hand(x1, x2, v1, v2);
    let want = [f, g1, g2, h1, h2];
    let (f, (g1, g2), (h1, h2)) = peers::num_dual_seed_hvp(x1, x2, v1, v2);
    assert_close("hvp/seed num-dual", &[f, g1, g2, h1, h2], &want);
    let (f, (g1, g2), (h1, h2)) = peers::num_dual_seed_hessian_hvp(x1, x2, v1, v2);
    assert_close("hvp/seed num-dual-hessian", &[f, g1, g2, h1, h2], &want);
    let ((g1, g2), (h1, h2)) = peers::echidna_seed_hvp(x1, x2, v1, v2);
    assert_close("hvp/seed echidna", &[g1, g2, h1, h2], &want[1..]);
    let mut replay = peers::echidna_record(&[x1, x2], |x| peers::seed(x[0], x[1]));
    let (g, h) = replay.hvp(&[x1, x2], &[v1, v2]);
    assert_close("hvp/seed echidna-replay", &[g, h].concat(), &want[1..]);
    {
        let (f, (g1, g2), (h1, h2)) = adjoint_second_order::seed_hvp(x1, x2, v1, v2);
        assert_close("hvp/seed adjoint", &[f, g1, g2, h1, h2], &want);
    }

    let mut g = c.benchmark_group("hvp/seed");
    g.bench_function("primal", |b| b.iter(|| seed(black_box(x1), black_box(x2))));
    g.bench_function("adjoint", |b| {
        b.iter(|| {
            adjoint_second_order::seed_hvp(
                black_box(x1),
                black_box(x2),
                black_box(v1),
                black_box(v2),
            )
        })
    });
    g.bench_function("num-dual", |b| {
        b.iter(|| {
            peers::num_dual_seed_hvp(black_box(x1), black_box(x2), black_box(v1), black_box(v2))
        })
    });
    g.bench_function("num-dual-hessian", |b| {
        b.iter(|| {
            peers::num_dual_seed_hessian_hvp(
                black_box(x1),
                black_box(x2),
                black_box(v1),
                black_box(v2),
            )
        })
    });
    g.bench_function("echidna", |b| {
        b.iter(|| {
            peers::echidna_seed_hvp(black_box(x1), black_box(x2), black_box(v1), black_box(v2))
        })
    });
    g.bench_function("echidna-replay", |b| {
        b.iter(|| replay.hvp(black_box(&[x1, x2]), black_box(&[v1, v2])))
    });
    g.bench_function("hand", |b| {
        b.iter(|| seed_hvp_hand(black_box(x1), black_box(x2), black_box(v1), black_box(v2)))
    });
    g.finish();
}

fn hvp_rosenbrock(c: &mut Criterion) {
    let (x, v) = (point(N), direction(N));
    let (f, grad, hv) = rosenbrock_hvp_hand(&x, &v);
    let mut nd = Vec::new();
    let (nf, ng, nh) = peers::num_dual_rosenbrock_hvp(&x, &v, &mut nd);
    assert_close("hvp/rosenbrock1000 num-dual value", &[nf], &[f]);
    assert_close("hvp/rosenbrock1000 num-dual gradient", &ng, &grad);
    assert_close("hvp/rosenbrock1000 num-dual H·v", &nh, &hv);
    let (eg, eh) = peers::echidna_rosenbrock_hvp(&x, &v);
    assert_close("hvp/rosenbrock1000 echidna gradient", &eg, &grad);
    assert_close("hvp/rosenbrock1000 echidna H·v", &eh, &hv);
    let mut replay = peers::echidna_record(&x, peers::rosenbrock);
    let (rg, rh) = replay.hvp(&x, &v);
    assert_close("hvp/rosenbrock1000 echidna-replay gradient", &rg, &grad);
    assert_close("hvp/rosenbrock1000 echidna-replay H·v", &rh, &hv);
    {
        let (af, ag, ah) = adjoint_second_order::rosenbrock_hvp(&x, &v);
        assert_close("hvp/rosenbrock1000 adjoint value", &[af], &[f]);
        assert_close("hvp/rosenbrock1000 adjoint gradient", &ag, &grad);
        assert_close("hvp/rosenbrock1000 adjoint H·v", &ah, &hv);
    }

    let mut g = c.benchmark_group("hvp/rosenbrock1000");
    g.bench_function("primal", |b| b.iter(|| rosenbrock(black_box(&x))));
    g.bench_function("adjoint", |b| {
        b.iter(|| adjoint_second_order::rosenbrock_hvp(black_box(&x), black_box(&v)))
    });
    g.bench_function("echidna", |b| {
        b.iter(|| peers::echidna_rosenbrock_hvp(black_box(&x), black_box(&v)))
    });
    g.bench_function("echidna-replay", |b| {
        b.iter(|| replay.hvp(black_box(&x), black_box(&v)))
    });
    g.bench_function("hand", |b| {
        b.iter(|| rosenbrock_hvp_hand(black_box(&x), black_box(&v)))
    });
    // n passes of a scalar hyper-dual: milliseconds a call, so few samples.
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.bench_function("num-dual", |b| {
        b.iter(|| peers::num_dual_rosenbrock_hvp(black_box(&x), black_box(&v), &mut nd))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = jvp_seed, jvp_rosenbrock, hvp_seed, hvp_rosenbrock
}
criterion_main!(benches);
