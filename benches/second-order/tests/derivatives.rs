//! The bench's references and peers, checked: the hand-written derivatives against
//! central differences and against adjoint's `_grad`; every peer against the hand-written
//! derivatives; adjoint's `_jvp` and `_hvp` too.

#[path = "../benches/peers/mod.rs"]
mod peers;

use adjoint_second_order::{
    assert_close, direction, point, rosenbrock, rosenbrock_grad, rosenbrock_hvp_hand,
    rosenbrock_jvp_hand, seed, seed_grad, seed_hvp_hand, seed_jvp_hand, N, SEED_V, SEED_X, TOL,
};

/// The step of the central differences.
const H: f64 = 1e-5;

/// (f(h) - f(-h)) / 2h, where f(t) evaluates at x + t v.
fn central(f: impl Fn(f64) -> f64) -> f64 {
    (f(H) - f(-H)) / (2.0 * H)
}

/// [`central`] per component.
fn central_vec(f: impl Fn(f64) -> Vec<f64>) -> Vec<f64> {
    let (a, b) = (f(H), f(-H));
    a.iter().zip(&b).map(|(a, b)| (a - b) / (2.0 * H)).collect()
}

fn shifted(x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(a, b)| a + t * b).collect()
}

/// |got - want| <= tol (1 + |want|) per component.
#[track_caller]
fn near(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} against {w}"
        );
    }
}

fn points() -> [((f64, f64), (f64, f64)); 3] {
    [
        (SEED_X, SEED_V),
        ((-0.4, 2.2), (1.0, 0.5)),
        ((0.3, -0.2), (-0.6, 0.8)),
    ]
}

#[test]
fn hand_seed_matches_central_differences_and_grad() {
    for ((x1, x2), (v1, v2)) in points() {
        let (f, df) = seed_jvp_hand(x1, x2, v1, v2);
        let fd = central(|t| seed(x1 + t * v1, x2 + t * v2));
        near("seed jvp value", &[f], &[seed(x1, x2)], 1e-15);
        near("seed jvp", &[df], &[fd], 1e-8);

        let (f, (g1, g2), (h1, h2)) = seed_hvp_hand(x1, x2, v1, v2);
        let (fs, (s1, s2)) = seed_grad(x1, x2);
        near("seed hvp value", &[f], &[fs], 1e-15);
        near("seed hvp gradient", &[g1, g2], &[s1, s2], 1e-13);
        assert_close("seed jvp = <grad, v>", &[df], &[g1 * v1 + g2 * v2]);
        let fd = central_vec(|t| {
            let (_, (a, b)) = seed_grad(x1 + t * v1, x2 + t * v2);
            vec![a, b]
        });
        near("seed H·v", &[h1, h2], &fd, 1e-8);
    }
}

#[test]
fn hand_rosenbrock_matches_central_differences_and_grad() {
    for n in [2, 3, N] {
        let (x, v) = (point(n), direction(n));
        let (f, df) = rosenbrock_jvp_hand(&x, &v);
        near("rosenbrock jvp value", &[f], &[rosenbrock(&x)], 1e-14);
        let fd = central(|t| rosenbrock(&shifted(&x, &v, t)));
        near("rosenbrock jvp", &[df], &[fd], 1e-7);

        let (f, g, hv) = rosenbrock_hvp_hand(&x, &v);
        let (fs, gs) = rosenbrock_grad(&x);
        near("rosenbrock hvp value", &[f], &[fs], 1e-14);
        near("rosenbrock hvp gradient", &g, &gs, 1e-12);
        let dot: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert_close("rosenbrock jvp = <grad, v>", &[df], &[dot]);
        let fd = central_vec(|t| rosenbrock_grad(&shifted(&x, &v, t)).1);
        near("rosenbrock H·v", &hv, &fd, 1e-7);
    }
}

#[test]
fn peers_match_hand_on_seed() {
    for ((x1, x2), (v1, v2)) in points() {
        let (f, df) = seed_jvp_hand(x1, x2, v1, v2);
        let (a, b) = peers::num_dual_seed_jvp(x1, x2, v1, v2);
        assert_close("num-dual jvp", &[a, b], &[f, df]);
        let (a, b) = peers::echidna_seed_jvp(x1, x2, v1, v2);
        assert_close("echidna jvp", &[a, b], &[f, df]);

        let (f, (g1, g2), (h1, h2)) = seed_hvp_hand(x1, x2, v1, v2);
        let want = [f, g1, g2, h1, h2];
        let (a, (b, c), (d, e)) = peers::num_dual_seed_hvp(x1, x2, v1, v2);
        assert_close("num-dual hvp", &[a, b, c, d, e], &want);
        let (a, (b, c), (d, e)) = peers::num_dual_seed_hessian_hvp(x1, x2, v1, v2);
        assert_close("num-dual hessian", &[a, b, c, d, e], &want);
        let ((b, c), (d, e)) = peers::echidna_seed_hvp(x1, x2, v1, v2);
        assert_close("echidna hvp", &[b, c, d, e], &want[1..]);
        let mut replay = peers::echidna_record(&[x1, x2], |x| peers::seed(x[0], x[1]));
        let (g, h) = replay.hvp(&[x1, x2], &[v1, v2]);
        assert_close("echidna replay", &[g, h].concat(), &want[1..]);
    }
}

#[test]
fn peers_match_hand_on_rosenbrock() {
    for n in [2, 3, N] {
        let (x, v) = (point(n), direction(n));
        let (f, df) = rosenbrock_jvp_hand(&x, &v);
        let (a, b) = peers::num_dual_rosenbrock_jvp(&x, &v, &mut Vec::new());
        assert_close("num-dual jvp", &[a, b], &[f, df]);
        let (a, b) = peers::echidna_rosenbrock_jvp(&x, &v, &mut Vec::new());
        assert_close("echidna jvp", &[a, b], &[f, df]);

        let (f, g, hv) = rosenbrock_hvp_hand(&x, &v);
        let (a, b, c) = peers::num_dual_rosenbrock_hvp(&x, &v, &mut Vec::new());
        assert_close("num-dual value", &[a], &[f]);
        assert_close("num-dual gradient", &b, &g);
        assert_close("num-dual H·v", &c, &hv);
        let (b, c) = peers::echidna_rosenbrock_hvp(&x, &v);
        assert_close("echidna gradient", &b, &g);
        assert_close("echidna H·v", &c, &hv);
    }
}

/// The replayed tape is recorded at one point and swept at others, as the bench does.
#[test]
fn echidna_replay_holds_at_other_points() {
    let x0 = point(N);
    let mut replay = peers::echidna_record(&x0, peers::rosenbrock);
    for k in 1..4 {
        let x: Vec<f64> = x0.iter().map(|a| a * (1.0 + 0.1 * k as f64)).collect();
        let v = direction(N);
        let (_, g, hv) = rosenbrock_hvp_hand(&x, &v);
        let (b, c) = replay.hvp(&x, &v);
        assert_close("replay gradient", &b, &g);
        assert_close("replay H·v", &c, &hv);
    }
}

#[test]
#[should_panic(expected = "H·v[1]")]
fn assert_close_fails_on_a_wrong_component() {
    let (_, _, mut hv) = rosenbrock_hvp_hand(&point(4), &direction(4));
    let want = hv.clone();
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    hv[1] += 10.0 * TOL * scale;
    assert_close("H·v", &hv, &want);
}

#[test]
fn companions_match_hand() {
    for ((x1, x2), (v1, v2)) in points() {
        let (f, df) = seed_jvp_hand(x1, x2, v1, v2);
        let (a, b) = adjoint_second_order::seed_jvp(x1, x2, v1, v2);
        assert_close("seed_jvp", &[a, b], &[f, df]);
        let (f, (g1, g2), (h1, h2)) = seed_hvp_hand(x1, x2, v1, v2);
        let (a, (b, c), (d, e)) = adjoint_second_order::seed_hvp(x1, x2, v1, v2);
        assert_close("seed_hvp", &[a, b, c, d, e], &[f, g1, g2, h1, h2]);
    }
    for n in [2, 3, N] {
        let (x, v) = (point(n), direction(n));
        let (f, df) = rosenbrock_jvp_hand(&x, &v);
        let (a, b) = adjoint_second_order::rosenbrock_jvp(&x, &v);
        assert_close("rosenbrock_jvp", &[a, b], &[f, df]);
        let (f, g, hv) = rosenbrock_hvp_hand(&x, &v);
        let (a, b, c) = adjoint_second_order::rosenbrock_hvp(&x, &v);
        assert_close("rosenbrock_hvp value", &[a], &[f]);
        assert_close("rosenbrock_hvp gradient", &b, &g);
        assert_close("rosenbrock_hvp H·v", &c, &hv);
    }
}
