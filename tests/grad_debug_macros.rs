//! Debug macros in a `#[differentiable(tape)]` body (`println!`, `print!`, `eprintln!`,
//! `eprint!`, `assert!`, `assert_eq!`, `assert_ne!`, `debug_assert!`,
//! `debug_assert_eq!`): they run in the forward pass on the values, a `Var` printing
//! and comparing as the float or tensor it holds, and change nothing in the gradient.
//! Each function is checked against central finite differences and against the same
//! body without the macros; what they print is read back from a child process.

#![allow(dead_code)] // some primals are used only through their companions

use adjoint::check::{gradcheck, gradcheck_scalar, gradcheck_tensor, Tolerance};
use adjoint::prelude::*;
use std::process::Command;

fn tol() -> Tolerance {
    Tolerance::default().atol(1e-6).rtol(1e-5)
}

#[differentiable]
fn triple(x: f64) -> f64 {
    x * 3.0
}

// Every macro once, on a parameter, locals, a slice, a call and `f64::sin`.
#[differentiable(tape)]
fn noisy(x: f64, v: &[f64], n: usize) -> f64 {
    let y = x * 2.0;
    println!("y = {y} {} {:?} {:.3} n = {n} v = {:?}", y, y, y, v);
    println!("triple = {}, sin = {:.6}", triple(y), f64::sin(y));
    print!("print {y:?}; ");
    eprintln!("eprintln {y:?}");
    eprint!("eprint {}; ", y * 10.0);
    assert!(y > 0.0);
    assert!(0.0 < y, "y = {y:?}");
    assert_eq!(y, 2.0 * x);
    assert_eq!(v.len(), 2);
    assert_ne!(y, 0.0);
    debug_assert!(y < 100.0);
    debug_assert_eq!(y, x + x, "twice {}", x);
    y * v[0] + v[1].sin()
}

#[differentiable(tape)]
fn quiet(x: f64, v: &[f64], n: usize) -> f64 {
    let _ = n;
    let y = x * 2.0;
    y * v[0] + v[1].sin()
}

#[test]
fn gradients_are_unchanged() {
    let flat = |z: &[f64]| (z[0], [z[1], z[2]]);
    let f = |z: &[f64]| {
        let (x, v) = flat(z);
        noisy(x, &v, 3)
    };
    let g = |z: &[f64]| {
        let (x, v) = flat(z);
        let (_, (gx, gv)) = noisy_grad(x, &v, 3);
        vec![gx, gv[0], gv[1]]
    };
    for z in [[1.0, 0.5, -0.3], [0.25, -2.0, 1.1]] {
        gradcheck(f, g, &z, tol()).unwrap();
        let (x, v) = flat(&z);
        assert_eq!(noisy_grad(x, &v, 3), quiet_grad(x, &v, 3));
        assert_eq!(noisy_vjp(x, &v, 3, -1.5), quiet_vjp(x, &v, 3, -1.5));
    }
}

// A tensor `Var` prints as its tensor, a scalar reduced from it as its value.
#[differentiable(tape)]
fn tensor_noisy(a: &Tensor) -> f64 {
    let b = a * 2.0;
    println!("b = {b:?}, sum = {}", b.sum());
    assert!(b.sum() > 0.0);
    assert_eq!(b.sum(), a.sum() * 2.0);
    b.sum() * a.sum()
}

#[test]
fn tensor_gradient_is_unchanged() {
    let a = Tensor::from_vec(vec![1.0, 2.0, 0.5], &[3]);
    let (v, g) = tensor_noisy_grad(&a);
    assert_eq!(v, 7.0 * 3.5);
    gradcheck_tensor(tensor_noisy, |a: &Tensor| tensor_noisy_grad(a).1, &a, tol()).unwrap();
    assert_eq!(g.to_vec(), vec![14.0; 3]);
}

// In a loop and a branch, with a loop-carried `Var`.
#[differentiable(tape)]
fn looped(x: f64) -> f64 {
    let mut s = x;
    for i in 0..3 {
        s *= x;
        if s > 1.0 {
            println!("step {i}: s = {s}");
        }
        assert!(s.abs() < 1e6, "s = {s} at {i}");
    }
    s
}

#[test]
fn in_loops_and_branches() {
    for x in [0.7, 1.3, -0.9] {
        gradcheck_scalar(looped, |x| looped_grad(x).1, x, tol()).unwrap();
        let (v, g) = looped_grad(x);
        assert_eq!(v.to_bits(), looped(x).to_bits());
        assert!((g - 4.0 * x.powi(3)).abs() <= 1e-12 * g.abs(), "{g} at {x}");
    }
}

// A failing assertion panics in the forward pass, with the values in its message.
#[differentiable(tape)]
fn checked(x: f64) -> f64 {
    let y = x * 2.0;
    assert!(y > 0.0, "y must be positive, y = {y:?}, x = {:?}", x);
    y.ln()
}

#[test]
fn assert_passes_on_values() {
    assert_eq!(checked_grad(1.5).1, 1.0 / 1.5);
}

#[test]
#[should_panic(expected = "y must be positive, y = -2.0, x = -1.0")]
fn assert_fails_with_values() {
    checked_grad(-1.0);
}

#[differentiable(tape)]
fn equal(x: f64) -> f64 {
    let y = x * 2.0;
    assert_eq!(y, 3.0, "y vs 3");
    y
}

#[test]
#[should_panic(expected = "assertion `left == right` failed: y vs 3\n  left: 2.0\n right: 3.0")]
fn assert_eq_fails_with_values() {
    equal_grad(1.0);
}

#[differentiable(tape)]
fn different(x: f64, y: f64) -> f64 {
    assert_ne!(x, y);
    x * y
}

#[test]
#[should_panic(expected = "assertion `left != right` failed\n  left: 0.5\n right: 0.5")]
fn assert_ne_fails_with_values() {
    different_grad(0.5, 0.5);
}

#[differentiable(tape)]
fn debug_checked(x: f64) -> f64 {
    debug_assert!(x < 1.0, "x = {x}");
    debug_assert_eq!(x * 0.0, 0.0);
    x * x
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "x = 2"))]
fn debug_assert_runs_in_debug_builds() {
    assert_eq!(debug_checked_grad(2.0), (4.0, 4.0));
}

/// What `noisy` prints, read from a child run of this test binary.
#[test]
fn prints_the_values() {
    if std::env::var_os("ADJOINT_DEBUG_MACROS_CHILD").is_some() {
        noisy_grad(1.0, &[1.5, 2.0], 3);
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "prints_the_values",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ADJOINT_DEBUG_MACROS_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for line in [
        "y = 2 2 2.0 2.000 n = 3 v = [1.5, 2.0]\n",
        &format!("triple = 6, sin = {:.6}\n", 2.0f64.sin()),
        "print 2.0; ",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout:?}");
    }
    for line in ["eprintln 2.0\n", "eprint 20; "] {
        assert!(stderr.contains(line), "{line:?} not in {stderr:?}");
    }
    assert!(!stdout.contains("Var"), "{stdout}");
}
