mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::ht::{jacobian, objective, read, Problem};
use common::{assert_close, fd_jacobian_columns, uniform};
use serde_json::{json, Value};

/// The real model's bone tree: a wrist, five fingers of four bones, a forearm.
const PARENTS: [i64; 22] = [
    -1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19, 0,
];

/// A random affine 4×4 matrix, row-major, near the identity.
fn affine(seed: u64) -> Vec<Vec<f64>> {
    let r = uniform(seed, 12);
    (0..4)
        .map(|i| {
            (0..4)
                .map(|j| match i {
                    3 => f64::from(u8::from(j == 3)),
                    _ => f64::from(u8::from(i == j)) + 0.4 * r[4 * i + j],
                })
                .collect()
        })
        .collect()
}

/// A small hand in the eval's JSON layout: `n_verts` vertices, each weighted
/// on two bones, triangles over them, `n_points` points.
fn hand(n_verts: usize, n_points: usize, complicated: bool, mirrored: bool, seed: u64) -> Value {
    let n_bones = PARENTS.len();
    let r = uniform(seed, 4 * n_verts + 3 * n_points + 2 * n_points + 26);
    let positions: Vec<Vec<f64>> = (0..n_verts)
        .map(|v| vec![r[3 * v], r[3 * v + 1], r[3 * v + 2], 1.0])
        .collect();
    let weights: Vec<Vec<f64>> = (0..n_verts)
        .map(|v| {
            let mut w = vec![0.0; n_bones];
            let share = 0.5 + 0.4 * r[3 * n_verts + v];
            w[(7 * v + 3) % n_bones] += share;
            w[(5 * v + 1) % n_bones] += 1.0 - share;
            w
        })
        .collect();
    let triangles: Vec<[usize; 3]> = (0..n_verts)
        .map(|v| [v, (v + 1) % n_verts, (v + 3) % n_verts])
        .collect();
    let at = 4 * n_verts;
    let points: Vec<Vec<f64>> = (0..n_points)
        .map(|i| r[at + 3 * i..at + 3 * i + 3].to_vec())
        .collect();
    let at = at + 3 * n_points;
    let us: Vec<[f64; 2]> = if complicated {
        (0..n_points)
            .map(|i| [0.5 + 0.4 * r[at + 2 * i], 0.3 + 0.2 * r[at + 2 * i + 1]])
            .collect()
    } else {
        Vec::new()
    };
    let theta: Vec<f64> = r[at + 2 * n_points..].iter().map(|t| 0.8 * t).collect();
    let targets = if complicated {
        triangles.len()
    } else {
        n_verts
    };
    let correspondences: Vec<usize> = (0..n_points).map(|i| (3 * i + 1) % targets).collect();
    json!({
        "theta": theta,
        "us": us,
        "data": {
            "model": {
                "bone_count": n_bones,
                "bone_names": (0..n_bones).map(|b| format!("bone{b}")).collect::<Vec<_>>(),
                "parents": PARENTS,
                "base_relatives": (0..n_bones as u64).map(|b| affine(seed + 100 + b)).collect::<Vec<_>>(),
                "inverse_base_absolutes": (0..n_bones as u64).map(|b| affine(seed + 200 + b)).collect::<Vec<_>>(),
                "base_positions": positions,
                "weights": weights,
                "triangles": triangles,
                "is_mirrored": mirrored,
            },
            "correspondences": correspondences,
            "points": points,
        },
        "min_runs": 1,
        "min_seconds": 0.0,
    })
}

fn problem(value: Value) -> Problem {
    read(value).expect("a valid input").0
}

type Mat = [[f64; 4]; 4];

fn mat(rows: &Value) -> Mat {
    let mut m = [[0.0; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, e) in row.iter_mut().enumerate() {
            *e = rows[i][j].as_f64().unwrap();
        }
    }
    m
}

fn mul(a: &Mat, b: &Mat) -> Mat {
    let mut c = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            c[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn rotation(r: [[f64; 3]; 3]) -> Mat {
    let mut m = [[0.0; 4]; 4];
    m[3][3] = 1.0;
    for i in 0..3 {
        m[i][..3].copy_from_slice(&r[i]);
    }
    m
}

/// The residuals computed from the JSON directly, as the model is described:
/// Euler angles per bone (Rz·Ry·Rx), absolutes down the tree, skinning of
/// every vertex, mirroring, then the global rotation (Rodrigues) and
/// translation, and the barycentric point when `us` is given.
fn reference(input: &Value) -> Vec<f64> {
    let theta: Vec<f64> = serde_json::from_value(input["theta"].clone()).unwrap();
    let model = &input["data"]["model"];
    let n_bones = PARENTS.len();
    // The pose parameters' columns: bone b reads column b + 3.
    let mut angles = vec![[0.0; 3]; n_bones];
    for finger in 0..5 {
        let t = 6 + 4 * finger;
        let b = 2 + 4 * finger;
        angles[b] = [theta[t], theta[t + 1], 0.0];
        angles[b + 1] = [theta[t + 2], 0.0, 0.0];
        angles[b + 2] = [theta[t + 3], 0.0, 0.0];
    }
    let mut absolutes: Vec<Mat> = Vec::new();
    let mut transforms: Vec<Mat> = Vec::new();
    for b in 0..n_bones {
        let [tx, tz, ty] = angles[b];
        let rx = [
            [1.0, 0.0, 0.0],
            [0.0, tx.cos(), -tx.sin()],
            [0.0, tx.sin(), tx.cos()],
        ];
        let ry = [
            [ty.cos(), 0.0, ty.sin()],
            [0.0, 1.0, 0.0],
            [-ty.sin(), 0.0, ty.cos()],
        ];
        let rz = [
            [tz.cos(), -tz.sin(), 0.0],
            [tz.sin(), tz.cos(), 0.0],
            [0.0, 0.0, 1.0],
        ];
        let r = mul(&mul(&rotation(rz), &rotation(ry)), &rotation(rx));
        let relative = mul(&mat(&model["base_relatives"][b]), &r);
        let absolute = match PARENTS[b] {
            -1 => relative,
            p => mul(&absolutes[p as usize], &relative),
        };
        absolutes.push(absolute);
        transforms.push(mul(&absolute, &mat(&model["inverse_base_absolutes"][b])));
    }
    let angle = (theta[0] * theta[0] + theta[1] * theta[1] + theta[2] * theta[2]).sqrt();
    let k = [theta[0] / angle, theta[1] / angle, theta[2] / angle];
    let (s, c) = angle.sin_cos();
    let mut global = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let cross = match (i, j) {
                (0, 1) => -k[2],
                (1, 0) => k[2],
                (0, 2) => k[1],
                (2, 0) => -k[1],
                (1, 2) => -k[0],
                (2, 1) => k[0],
                _ => 0.0,
            };
            global[i][j] = c * f64::from(u8::from(i == j)) + s * cross + (1.0 - c) * k[i] * k[j];
        }
    }
    let mirrored = model["is_mirrored"].as_bool().unwrap();
    let vertex = |v: usize| {
        let rest = &model["base_positions"][v];
        let mut p = [0.0; 3];
        for (b, t) in transforms.iter().enumerate() {
            let w = model["weights"][v][b].as_f64().unwrap();
            for i in 0..3 {
                p[i] += w
                    * (0..4)
                        .map(|c| t[i][c] * rest[c].as_f64().unwrap())
                        .sum::<f64>();
            }
        }
        if mirrored {
            p[0] = -p[0];
        }
        let mut out = [0.0; 3];
        for i in 0..3 {
            out[i] = (0..3).map(|j| global[i][j] * p[j]).sum::<f64>() + theta[3 + i];
        }
        out
    };
    let data = &input["data"];
    let us = input["us"].as_array().unwrap();
    let mut err = Vec::new();
    for (i, c) in data["correspondences"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let c = c.as_u64().unwrap() as usize;
        let at = if us.is_empty() {
            vertex(c)
        } else {
            let tri = &model["triangles"][c];
            let (u0, u1) = (us[i][0].as_f64().unwrap(), us[i][1].as_f64().unwrap());
            let [a, b, d] = [0, 1, 2].map(|k| vertex(tri[k].as_u64().unwrap() as usize));
            [0, 1, 2].map(|j| u0 * a[j] + u1 * b[j] + (1.0 - u0 - u1) * d[j])
        };
        for j in 0..3 {
            err.push(data["points"][i][j].as_f64().unwrap() - at[j]);
        }
    }
    err
}

#[test]
fn objective_matches_a_direct_computation() {
    for (complicated, mirrored) in [(false, false), (true, false), (true, true)] {
        let input = hand(9, 7, complicated, mirrored, 3);
        let p = problem(input.clone());
        let got = objective(&p.theta, &p.us, &p.model, &p.data);
        assert_eq!(got.len(), 21);
        assert_close(&got, &reference(&input), 1e-12);
    }
}

/// Every entry of the Jacobian against central differences of `objective`:
/// the θ columns, and for `us` the two columns of each point's own pair (the
/// differences also confirm that a point's `us` move no other residual).
fn check_jacobian(input: Value) {
    let p = problem(input);
    let jac = jacobian(&p.theta, &p.us, &p.model, &p.data);
    let n_rows = 3 * p.data.correspondences.len();
    let first = if p.us.is_empty() { 0 } else { 2 };
    assert_eq!((jac.n_rows, jac.n_cols), (n_rows, first + 26));

    let d_theta = fd_jacobian_columns(|t| objective(t, &p.us, &p.model, &p.data), &p.theta);
    for (t, want) in d_theta.iter().enumerate() {
        let got: Vec<f64> = (0..n_rows).map(|r| jac.get(r, first + t)).collect();
        assert_close(&got, want, 1e-7);
    }
    if first == 2 {
        let d_us = fd_jacobian_columns(|u| objective(&p.theta, u, &p.model, &p.data), &p.us);
        for (k, want) in d_us.iter().enumerate() {
            let (point, which) = (k / 2, k % 2);
            let got: Vec<f64> = (0..n_rows)
                .map(|r| {
                    if r / 3 == point {
                        jac.get(r, which)
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_close(&got, want, 1e-7);
        }
    }
}

#[test]
fn jacobian_matches_finite_differences_simple() {
    check_jacobian(hand(10, 8, false, false, 5));
}

#[test]
fn jacobian_matches_finite_differences_complicated() {
    check_jacobian(hand(10, 8, true, false, 6));
    check_jacobian(hand(6, 5, true, true, 7));
}

#[test]
fn jacobian_at_no_global_rotation() {
    // Below an angle of 1e-4 the global rotation is the identity: its columns
    // are zero, and differences of that size see the same.
    let mut input = hand(7, 5, true, false, 8);
    input["theta"][0] = json!(0.0);
    input["theta"][1] = json!(0.0);
    input["theta"][2] = json!(0.0);
    let p = problem(input.clone());
    let jac = jacobian(&p.theta, &p.us, &p.model, &p.data);
    assert!(jac.entries.iter().all(|e| e.is_finite()));
    assert!((0..jac.n_rows).all(|r| (2..5).all(|c| jac.get(r, c) == 0.0)));
    check_jacobian(input);
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    for complicated in [false, true] {
        let input = hand(8, 6, complicated, false, 9);
        let p = problem(input.clone());
        let out = evaluate("ht", "objective", input.clone()).unwrap();
        assert_eq!(out.timings.len(), 1);
        assert_eq!(out.timings[0].name, "evaluate");
        let err: Vec<f64> = serde_json::from_value(out.output).unwrap();
        assert_eq!(err, objective(&p.theta, &p.us, &p.model, &p.data));

        let out = evaluate("ht", "jacobian", input).unwrap();
        let rows: Vec<Vec<f64>> = serde_json::from_value(out.output).unwrap();
        let jac = jacobian(&p.theta, &p.us, &p.model, &p.data);
        let n_cols = if complicated { 28 } else { 26 };
        assert_eq!(rows.len(), 18);
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), n_cols);
            for (c, &e) in row.iter().enumerate() {
                assert_eq!(e, jac.get(r, c));
            }
        }
    }
    assert!(evaluate("ht", "gradient", hand(4, 2, false, false, 1)).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let cases: [(&str, Value); 4] = [
        ("/theta", json!(vec![0.0; 25])),
        ("/us", json!([[0.5, 0.2]])),
        ("/data/correspondences", json!([0, 1, 99, 2, 3, 4])),
        ("/data/model/parents", json!([-1, 5])),
    ];
    for (at, bad) in cases {
        let mut input = hand(8, 6, false, false, 2);
        *input.pointer_mut(at).unwrap() = bad;
        let why = evaluate("ht", "objective", input).err().expect("an error");
        assert!(why.starts_with("`ht` input"), "{at}: {why}");
    }
}
