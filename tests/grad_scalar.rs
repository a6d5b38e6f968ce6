//! Every scalar derivative rule of the static path, checked against central finite
//! differences and against the `#[differentiable(tape)]` expansion of the same body,
//! at several points away from kinks; and the `_grad` value bit-identical to the primal.

#![allow(dead_code)]
// some primals are used only through their companions
// The bodies exercise these forms on purpose.
#![allow(clippy::assign_op_pattern, clippy::needless_return)]

use adjoint::check::{gradcheck, Flat, Tolerance};
use adjoint::prelude::*;

/// Each body twice: `$s` on the static path, `$t` on the tape.
macro_rules! twins {
    ($($s:ident / $t:ident ($($p:ident),+) $body:block at [$([$($x:expr),+]),+];)*) => {
        $(
            #[differentiable]
            fn $s($($p: f64),+) -> f64 $body

            #[differentiable(tape)]
            #[allow(dead_code)]
            fn $t($($p: f64),+) -> f64 $body
        )*

        #[test]
        fn static_gradients_match_finite_differences_and_the_tape() {
            $(
                for x in [$([$($x),+]),+] {
                    let name = stringify!($s);
                    let f = |v: &[f64]| { let [$($p),+] = v else { unreachable!() }; $s($(*$p),+) };
                    let g = |v: &[f64]| { let [$($p),+] = v else { unreachable!() }; concat_idents_grad!($s)($(*$p),+).1 };
                    let [$($p),+] = x;
                    // The value of `_grad` is the primal's, bit for bit.
                    let (value, grad) = concat_idents_grad!($s)($($p),+);
                    assert_eq!(value.to_bits(), $s($($p),+).to_bits(), "{name} value at {x:?}");
                    // The gradient agrees with central differences.
                    if let Err(report) = gradcheck(f, g, &x, tol()) {
                        panic!("{name} at {x:?}: {report}");
                    }
                    // And with the tape.
                    let (tvalue, tgrad) = concat_idents_grad!($t)($($p),+);
                    assert!(close(value, tvalue), "{name} tape value at {x:?}: {value} vs {tvalue}");
                    for (a, b) in grad.flat().into_iter().zip(tgrad.flat()) {
                        assert!(close(a, b), "{name} vs tape at {x:?}: {a} vs {b}");
                    }
                    // `_vjp` is the gradient scaled by the seed.
                    let (vvalue, vgrad) = concat_idents_vjp!($s)($($p,)+ -1.5);
                    assert_eq!(vvalue.to_bits(), value.to_bits());
                    for (a, b) in grad.flat().into_iter().zip(vgrad.flat()) {
                        assert!(close(-1.5 * a, b), "{name} vjp at {x:?}: {a} vs {b}");
                    }
                }
            )*
        }
    };
}

// `paste`-free identifier pasting for the two generated companions.
macro_rules! concat_idents_grad {
    ($s:ident) => {
        grads::$s
    };
}
macro_rules! concat_idents_vjp {
    ($s:ident) => {
        vjps::$s
    };
}

fn tol() -> Tolerance {
    Tolerance::default().eps(1e-6).atol(1e-7).rtol(1e-6)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

twins! {
    // d(a + b) = da + db; d(a - b) = da - db; d(a b) = b da + a db; d(a / b) = da/b - a db/b^2
    arith / arith_t (a, b) { (a + b) * (a - b) / (a * b + 3.0) - -a } at [[0.3, 1.2], [-1.1, 0.4], [2.0, 2.5]];
    // d sin = cos, d cos = -sin, d tan = 1 + tan^2
    trig / trig_t (x) { x.sin() * x.cos() + x.tan() } at [[0.3], [-0.9], [1.2]];
    // `sin` and `cos` of one value emitted as one `sin_cos` (emit.rs), one pair split
    // by a branch and one across primal and derivative.
    sin_cos_pairs / sin_cos_pairs_t (x, y) {
        let u = x * y;
        let s = u.sin() * y;
        let c = if x > 0.0 { u.cos() } else { x.cos() };
        s * c + x.sin() + (y - u).cos()
    } at [[0.3, 1.2], [-0.9, 0.4], [1.2, -2.0]];
    // d asin = 1/sqrt(1-x^2), d acos = -1/sqrt(1-x^2), d atan = 1/(1+x^2)
    inv_trig / inv_trig_t (x) { x.asin() + 2.0 * x.acos() + x.atan() * x } at [[0.3], [-0.6], [0.8]];
    // d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)
    atan2 / atan2_t (y, x) { y.atan2(x) } at [[0.3, 1.2], [-1.1, -0.4], [2.0, -2.5]];
    // d sinh = cosh, d cosh = sinh, d tanh = 1 - tanh^2
    hyperbolic / hyperbolic_t (x) { x.sinh() + x.cosh() * x.tanh() } at [[0.3], [-0.9], [1.7]];
    // d e^x = e^x, d 2^x = 2^x ln 2
    exps / exps_t (x) { x.exp() + x.exp2() } at [[0.3], [-0.9], [1.7]];
    // d ln = 1/x, d log10 = 1/(x ln 10), d log2 = 1/(x ln 2)
    logs / logs_t (x) { x.ln() + x.log10() * 3.0 + x.log2() } at [[0.3], [1.9], [11.0]];
    // d sqrt = 1/(2 sqrt), d cbrt = 1/(3 cbrt^2)
    roots / roots_t (x) { x.sqrt() + x.cbrt() } at [[0.3], [1.9], [11.0]];
    // d x^n = n x^(n-1)
    powi / powi_t (x) { x.powi(3) + x.powi(-2) + x.powi(0) + x.powi(1) } at [[0.3], [-1.9], [2.5]];
    // d x^p = p x^(p-1) dx + x^p ln x dp
    powf / powf_t (x, p) { x.powf(p) + x.powf(2.5) } at [[0.3, 1.5], [1.9, -0.7], [2.5, 3.0]];
    // d 1/x = -1/x^2
    recip / recip_t (x) { x.recip() } at [[0.3], [-1.9], [2.5]];
    // d |x| = sign x
    abs / abs_t (x) { x.abs() * 2.0 } at [[0.3], [-1.9], [2.5]];
    // d hypot(a, b) = (a da + b db) / hypot
    hypot / hypot_t (a, b) { a.hypot(b) } at [[0.3, 1.2], [-1.1, -0.4], [2.0, -2.5]];
    // the gradient goes to the larger (max) or smaller (min) operand
    min_max / min_max_t (a, b) { a.max(b) * 3.0 + a.min(b) } at [[0.3, 1.2], [-1.1, -1.4], [2.0, -2.5]];
    // clamp passes the gradient to x inside [lo, hi], to the bound it hit outside
    clamp / clamp_t (x) { x.clamp(-1.0, 1.0) * x } at [[0.3], [-1.9], [2.5]];
    // d (a b + c) = b da + a db + dc
    mul_add / mul_add_t (a, b, c) { a.mul_add(b, c) * c } at [[0.3, 1.2, -0.5], [-1.1, 0.4, 2.0]];
    // relu' = [x > 0], sigmoid' = s (1 - s), softplus' = sigmoid
    activations / activations_t (x) { x.relu() + x.sigmoid() * 2.0 + x.softplus() } at [[0.3], [-1.9], [2.5]];
    // let, let mut, shadowing, compound assignment, blocks
    locals / locals_t (x, y) {
        let mut s = x * y;
        s += x.sin();
        s -= y / 3.0;
        s *= x;
        s /= 2.0 + y * y;
        let s = { let t = s.exp(); t * s };
        let x = x + 1.0;
        s + x
    } at [[0.3, 1.2], [-1.1, 0.4], [0.8, -0.5]];
    // the seed function of the issue
    seed_fn / seed_fn_t (x1, x2) { (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2 } at [[1.5, 0.5], [-0.3, 2.0]];
    // Rosenbrock
    rosen / rosen_t (x, y) { (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2) } at [[-1.2, 1.0], [0.5, 0.3]];
    // one value used many times: adjoints accumulate
    reuse / reuse_t (x) { let e = x.exp(); e * e + e.tanh() * x + e.sqrt() } at [[0.3], [-0.9], [1.1]];
    // if/else on runtime values, statements and expressions, else-if chains
    branches / branches_t (x, y) {
        let mut s = x * y;
        if x > 0.5 {
            s += x.exp();
        } else if x < -0.5 {
            s = s * y;
        } else {
            s -= y.sin();
        }
        let t = if y > 0.0 { y.sqrt() * s } else { s / (1.0 + y * y) };
        s + t
    } at [[0.9, 1.2], [-1.1, 0.4], [0.2, -0.5], [0.7, -0.5], [-0.8, 2.0]];
}

mod grads {
    pub(crate) use super::{
        abs_grad as abs, activations_grad as activations, arith_grad as arith, atan2_grad as atan2,
        branches_grad as branches, clamp_grad as clamp, exps_grad as exps,
        hyperbolic_grad as hyperbolic, hypot_grad as hypot, inv_trig_grad as inv_trig,
        locals_grad as locals, logs_grad as logs, min_max_grad as min_max, mul_add_grad as mul_add,
        powf_grad as powf, powi_grad as powi, recip_grad as recip, reuse_grad as reuse,
        roots_grad as roots, rosen_grad as rosen, seed_fn_grad as seed_fn,
        sin_cos_pairs_grad as sin_cos_pairs, trig_grad as trig,
    };
    pub(crate) use super::{
        abs_t_grad as abs_t, activations_t_grad as activations_t, arith_t_grad as arith_t,
        atan2_t_grad as atan2_t, branches_t_grad as branches_t, clamp_t_grad as clamp_t,
        exps_t_grad as exps_t, hyperbolic_t_grad as hyperbolic_t, hypot_t_grad as hypot_t,
        inv_trig_t_grad as inv_trig_t, locals_t_grad as locals_t, logs_t_grad as logs_t,
        min_max_t_grad as min_max_t, mul_add_t_grad as mul_add_t, powf_t_grad as powf_t,
        powi_t_grad as powi_t, recip_t_grad as recip_t, reuse_t_grad as reuse_t,
        roots_t_grad as roots_t, rosen_t_grad as rosen_t, seed_fn_t_grad as seed_fn_t,
        sin_cos_pairs_t_grad as sin_cos_pairs_t, trig_t_grad as trig_t,
    };
}

mod vjps {
    pub(crate) use super::{
        abs_vjp as abs, activations_vjp as activations, arith_vjp as arith, atan2_vjp as atan2,
        branches_vjp as branches, clamp_vjp as clamp, exps_vjp as exps,
        hyperbolic_vjp as hyperbolic, hypot_vjp as hypot, inv_trig_vjp as inv_trig,
        locals_vjp as locals, logs_vjp as logs, min_max_vjp as min_max, mul_add_vjp as mul_add,
        powf_vjp as powf, powi_vjp as powi, recip_vjp as recip, reuse_vjp as reuse,
        roots_vjp as roots, rosen_vjp as rosen, seed_fn_vjp as seed_fn,
        sin_cos_pairs_vjp as sin_cos_pairs, trig_vjp as trig,
    };
}

// The PyTorch conventions at kinks, exactly.

#[differentiable]
fn relu1(x: f64) -> f64 {
    x.relu()
}

#[differentiable]
fn abs1(x: f64) -> f64 {
    x.abs()
}

#[differentiable]
fn clamp3(x: f64, lo: f64, hi: f64) -> f64 {
    x.clamp(lo, hi)
}

#[differentiable]
fn max2(a: f64, b: f64) -> f64 {
    a.max(b)
}

#[differentiable]
fn min2(a: f64, b: f64) -> f64 {
    a.min(b)
}

#[test]
fn kink_conventions_follow_pytorch() {
    // relu'(0) = 0
    assert_eq!(relu1_grad(0.0), (0.0, 0.0));
    assert_eq!(relu1_grad(-0.0).1, 0.0);
    assert_eq!(relu1_grad(1e-300).1, 1.0);
    // abs'(0) = 0
    assert_eq!(abs1_grad(0.0), (0.0, 0.0));
    assert_eq!(abs1_grad(-2.0).1, -1.0);
    // clamp passes the gradient on the closed interval [lo, hi]
    assert_eq!(clamp3_grad(-1.0, -1.0, 1.0).1, (1.0, 0.0, 0.0));
    assert_eq!(clamp3_grad(1.0, -1.0, 1.0).1, (1.0, 0.0, 0.0));
    assert_eq!(clamp3_grad(0.5, -1.0, 1.0).1, (1.0, 0.0, 0.0));
    assert_eq!(clamp3_grad(-3.0, -1.0, 1.0).1, (0.0, 1.0, 0.0));
    assert_eq!(clamp3_grad(3.0, -1.0, 1.0).1, (0.0, 0.0, 1.0));
    // max/min ties split evenly
    assert_eq!(max2_grad(2.0, 2.0), (2.0, (0.5, 0.5)));
    assert_eq!(min2_grad(2.0, 2.0), (2.0, (0.5, 0.5)));
    assert_eq!(max2_grad(3.0, 2.0).1, (1.0, 0.0));
    assert_eq!(min2_grad(3.0, 2.0).1, (0.0, 1.0));
    assert_eq!(max2_vjp(2.0, 2.0, 4.0).1, (2.0, 2.0));
}

// f32 bodies, casts of integer parameters, integer and bool locals as constants.

#[differentiable]
fn poly32(x: f32, n: i32, k: usize, on: bool) -> f32 {
    let m = n * 2 + 1;
    let scale = k as f32 + 0.5;
    let y = x.powi(m) * scale + (m as f32) * x;
    let flag = on && n > 0;
    if flag {
        y * 2.0
    } else {
        y
    }
}

#[test]
fn f32_with_integer_and_bool_constants() {
    for &(x, n, k, on) in &[
        (0.7f32, 1, 3usize, true),
        (-1.3, 2, 0, false),
        (0.4, 0, 7, true),
    ] {
        let (y, g) = poly32_grad(x, n, k, on);
        assert_eq!(y.to_bits(), poly32(x, n, k, on).to_bits());
        let m = n * 2 + 1;
        // d/dx [x^m s + m x] = m x^(m-1) s + m, doubled when the flag is on
        let want = (m as f32 * x.powi(m - 1) * (k as f32 + 0.5) + m as f32)
            * if on && n > 0 { 2.0 } else { 1.0 };
        assert!(
            (g - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{g} vs {want}"
        );
    }
}

// `f64::sin(x)`-style calls and outside constants.

const SCALE: f64 = 3.0;

#[differentiable]
fn paths(x: f64, y: f64) -> f64 {
    f64::sin(x) * SCALE + f64::max(x, y) * std::f64::consts::PI + f64::powi(y, 2)
}

#[test]
fn path_calls_and_constants() {
    let (x, y) = (0.4, 1.3);
    let (v, (dx, dy)) = paths_grad(x, y);
    assert_eq!(v, paths(x, y));
    assert!((dx - 3.0 * x.cos()).abs() < 1e-14);
    assert!((dy - (std::f64::consts::PI + 2.0 * y)).abs() < 1e-14);
}

// `return` as the last statement.
#[differentiable]
fn returns(x: f64) -> f64 {
    let y = x * x;
    return y * x;
}

#[test]
fn tail_return() {
    assert_eq!(returns_grad(2.0), (8.0, 12.0));
}

// A function whose gradient does not depend on some parameter: zeros.
#[differentiable]
fn ignores(x: f64, y: f64) -> f64 {
    x * 2.0 + y.detach()
}

#[test]
fn unused_and_detached_parameters_get_zero() {
    assert_eq!(ignores_grad(1.0, 5.0), (7.0, (2.0, 0.0)));
}
