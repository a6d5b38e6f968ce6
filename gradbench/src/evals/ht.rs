//! `ht`: hand tracking (ADBench's HAND). A skinned hand model is posed by 26
//! parameters θ (global rotation, global translation, then four angles per
//! finger); `objective` is the residual between each observed point and the
//! posed model at its correspondence, three per point, and `jacobian` its
//! Jacobian. In the complicated variant each point also has two barycentric
//! coordinates `us` on a triangle of the mesh, whose two columns come first.
//!
//! The objective runs in three stages, each a `#[differentiable]` function:
//! θ → one bone's transform ([`bone_transform`]), transforms → one
//! coordinate of a skinned vertex ([`skinned`]), vertices → one coordinate of
//! a residual ([`vertex_residual`], [`surface_residual`]). The Jacobian chains
//! the stages' own derivatives: one `_vjp` of the first stage per transform
//! entry (a few hundred, once), one `_grad` of the second per coordinate of
//! each vertex a point touches, one `_grad` of the third per residual, and
//! matrix products between them. Differentiating the whole objective once per
//! residual would pose the whole hand again for each of thousands of rows.

// Index loops, as the numerical code they port is written (and as the static
// path of #[differentiable] reads them best).
#![allow(clippy::needless_range_loop)]

use adjoint::prelude::*;
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input, timed, timed_into, unknown, Evaluation};
use crate::runs::Runs;

/// The hand model, flattened: matrices are row-major, 16 numbers per bone.
pub struct Model {
    pub n_bones: usize,
    pub n_verts: usize,
    /// Each bone's parent, earlier in the order; -1 for the root.
    pub parents: Vec<i64>,
    pub base_relatives: Vec<f64>,
    pub inverse_base_absolutes: Vec<f64>,
    /// Homogeneous rest positions, 4 per vertex.
    pub base_positions: Vec<f64>,
    /// Skinning weights, `n_bones` per vertex.
    pub weights: Vec<f64>,
    pub triangles: Vec<[usize; 3]>,
    pub is_mirrored: bool,
}

/// The observations: point `i` (3 numbers at `3 i`) corresponds to vertex
/// `correspondences[i]`, or to that triangle in the complicated variant.
pub struct Data {
    pub correspondences: Vec<usize>,
    pub points: Vec<f64>,
}

#[derive(Deserialize)]
struct ModelInput {
    parents: Vec<i64>,
    base_relatives: Vec<[[f64; 4]; 4]>,
    inverse_base_absolutes: Vec<[[f64; 4]; 4]>,
    base_positions: Vec<[f64; 4]>,
    weights: Vec<Vec<f64>>,
    triangles: Vec<[usize; 3]>,
    is_mirrored: bool,
}

#[derive(Deserialize)]
struct DataInput {
    model: ModelInput,
    correspondences: Vec<usize>,
    points: Vec<[f64; 3]>,
}

#[derive(Deserialize)]
pub struct Input {
    theta: Vec<f64>,
    data: DataInput,
    /// Empty in the simple variant.
    us: Vec<[f64; 2]>,
    #[serde(flatten)]
    runs: Runs,
}

/// A problem read and checked: θ, `us` (2 per point, or none), model, data.
pub struct Problem {
    pub theta: Vec<f64>,
    pub us: Vec<f64>,
    pub model: Model,
    pub data: Data,
}

/// Number of pose parameters: 3 global rotation, 3 translation, 4 per finger.
pub const N_THETA: usize = 26;
/// The pose parameters reach bone 20 (the last finger's last joint).
const MIN_BONES: usize = 21;

impl Model {
    /// Whether bone `k` is bone `b` or one of its ancestors.
    pub fn on_path(&self, k: usize, b: usize) -> bool {
        let mut at = b;
        // Parents come earlier: the walk up ends within `n_bones` steps.
        for _ in 0..self.n_bones {
            if at <= k {
                break;
            }
            match usize::try_from(self.parents[at]) {
                Ok(p) => at = p,
                Err(_) => return false,
            }
        }
        at == k
    }
}

impl Problem {
    fn read(input: Input) -> Result<Problem, String> {
        let Input {
            theta, data, us, ..
        } = input;
        let m = data.model;
        let n_bones = m.parents.len();
        let n_verts = m.base_positions.len();
        let bad = |what: &str| Err(format!("`ht` input: {what}"));
        if theta.len() != N_THETA {
            return bad(&format!(
                "`theta` has {} numbers, not {N_THETA}",
                theta.len()
            ));
        }
        if n_bones < MIN_BONES {
            return bad(&format!(
                "the model has {n_bones} bones, fewer than {MIN_BONES}"
            ));
        }
        if m.base_relatives.len() != n_bones || m.inverse_base_absolutes.len() != n_bones {
            return bad("one base matrix per bone is needed");
        }
        for (b, &p) in m.parents.iter().enumerate() {
            if p != -1 && !(0..b as i64).contains(&p) {
                return bad(&format!("bone {b}'s parent {p} is not an earlier bone"));
            }
        }
        if m.weights.len() != n_verts || m.weights.iter().any(|w| w.len() != n_bones) {
            return bad("`weights` needs one weight per bone for each vertex");
        }
        if m.triangles.iter().flatten().any(|&v| v >= n_verts) {
            return bad("a triangle names a vertex the model does not have");
        }
        let n_points = data.points.len();
        if data.correspondences.len() != n_points {
            return bad("one correspondence per point is needed");
        }
        let targets = if us.is_empty() {
            n_verts
        } else if us.len() == n_points {
            m.triangles.len()
        } else {
            return bad("`us` needs two numbers per point, or none");
        };
        if data.correspondences.iter().any(|&c| c >= targets) {
            return bad("a correspondence is out of range");
        }
        let flat4 = |ms: &[[[f64; 4]; 4]]| ms.iter().flatten().flatten().copied().collect();
        Ok(Problem {
            theta,
            us: us.iter().flatten().copied().collect(),
            model: Model {
                n_bones,
                n_verts,
                parents: m.parents,
                base_relatives: flat4(&m.base_relatives),
                inverse_base_absolutes: flat4(&m.inverse_base_absolutes),
                base_positions: m.base_positions.iter().flatten().copied().collect(),
                weights: m.weights.into_iter().flatten().collect(),
                triangles: m.triangles,
                is_mirrored: m.is_mirrored,
            },
            data: Data {
                correspondences: data.correspondences,
                points: data.points.iter().flatten().copied().collect(),
            },
        })
    }
}

/// Writes into `out` the top three rows (12 numbers) of bone `b`'s skinning
/// transform: the posed relative transforms multiplied from the root down to
/// `b`, times its inverse base absolute, mirrored if the model is, then
/// rotated globally.
#[differentiable(static)]
pub fn bone_transform(theta: &[f64], model: &Model, b: usize, out: &mut [f64]) {
    let n_bones = model.n_bones;

    // Pose parameters, three per column: the global rotation (angle-axis), the
    // scale, the translation, then Euler angles (x, z, y) per bone.
    let mut pose = vec![0.0; 3 * (n_bones + 3)];
    for r in 0..3 {
        pose[r] = theta[r];
        pose[3 + r] = 1.0;
        pose[6 + r] = theta[3 + r];
    }
    // Each finger: its base joint bends and spreads, the two next only bend.
    for finger in 0..5 {
        for joint in 0..3 {
            let col = 5 + 4 * finger + joint;
            if joint == 0 {
                pose[3 * col] = theta[6 + 4 * finger];
                pose[3 * col + 1] = theta[7 + 4 * finger];
            } else {
                pose[3 * col] = theta[7 + 4 * finger + joint];
            }
        }
    }

    // The global rotation, angle-axis to matrix, its columns scaled.
    let mut global = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let norm = (pose[0] * pose[0] + pose[1] * pose[1] + pose[2] * pose[2]).sqrt();
    if norm >= 1e-4 {
        let x = pose[0] / norm;
        let y = pose[1] / norm;
        let z = pose[2] / norm;
        let s = norm.sin();
        let c = norm.cos();
        global[0] = x * x + (1.0 - x * x) * c;
        global[1] = x * y * (1.0 - c) - z * s;
        global[2] = x * z * (1.0 - c) + y * s;
        global[3] = x * y * (1.0 - c) + z * s;
        global[4] = y * y + (1.0 - y * y) * c;
        global[5] = y * z * (1.0 - c) - x * s;
        global[6] = x * z * (1.0 - c) - y * s;
        global[7] = z * y * (1.0 - c) + x * s;
        global[8] = z * z + (1.0 - z * z) * c;
    }
    for r in 0..3 {
        for c in 0..3 {
            global[3 * r + c] *= pose[3 + c];
        }
    }
    let mirror = if model.is_mirrored { -1.0 } else { 1.0 };

    let mut absolute = [
        1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
    ];
    let mut next = [0.0; 16];
    let mut pose_rotation = [0.0; 16];
    let mut relative = [0.0; 16];
    for k in 0..b + 1 {
        if model.on_path(k, b) {
            // R = Rz Ry Rx, written into the top left of a 4×4 identity.
            let p = 3 * (k + 3);
            let (sx, cx) = (pose[p].sin(), pose[p].cos());
            let (sz, cz) = (pose[p + 1].sin(), pose[p + 1].cos());
            let (sy, cy) = (pose[p + 2].sin(), pose[p + 2].cos());
            let rz = [cz, -sz, 0.0, sz, cz, 0.0, 0.0, 0.0, 1.0];
            let ry = [cy, 0.0, sy, 0.0, 1.0, 0.0, -sy, 0.0, cy];
            let rx = [1.0, 0.0, 0.0, 0.0, cx, -sx, 0.0, sx, cx];
            let mut rzy = [0.0; 9];
            for i in 0..3 {
                for j in 0..3 {
                    for m in 0..3 {
                        rzy[3 * i + j] += rz[3 * i + m] * ry[3 * m + j];
                    }
                }
            }
            pose_rotation.fill(0.0);
            pose_rotation[15] = 1.0;
            for i in 0..3 {
                for j in 0..3 {
                    for m in 0..3 {
                        pose_rotation[4 * i + j] += rzy[3 * i + m] * rx[3 * m + j];
                    }
                }
            }
            // The posed relative transform, then the absolute one level down.
            for i in 0..4 {
                for j in 0..4 {
                    let mut s = 0.0;
                    for m in 0..4 {
                        s += model.base_relatives[16 * k + 4 * i + m] * pose_rotation[4 * m + j];
                    }
                    relative[4 * i + j] = s;
                }
            }
            for i in 0..4 {
                for j in 0..4 {
                    let mut s = 0.0;
                    for m in 0..4 {
                        s += absolute[4 * i + m] * relative[4 * m + j];
                    }
                    next[4 * i + j] = s;
                }
            }
            absolute.copy_from_slice(&next);
        }
    }

    // Times the inverse base absolute; only the top three rows move points.
    let mut transform = [0.0; 12];
    for i in 0..3 {
        for j in 0..4 {
            let mut s = 0.0;
            for m in 0..4 {
                s += absolute[4 * i + m] * model.inverse_base_absolutes[16 * b + 4 * m + j];
            }
            transform[4 * i + j] = s;
        }
    }
    for j in 0..4 {
        transform[j] *= mirror;
    }
    for i in 0..3 {
        for j in 0..4 {
            let mut s = 0.0;
            for m in 0..3 {
                s += global[3 * i + m] * transform[4 * m + j];
            }
            out[4 * i + j] = s;
        }
    }
}

/// Coordinate `j` of vertex `v` posed by the bones' transforms (12 each, from
/// [`bone_transform`]): the weighted sum of their transforms of its rest
/// position, translated by θ's global translation.
#[differentiable(static)]
pub fn skinned(transforms: &[f64], theta: &[f64], model: &Model, v: usize, j: usize) -> f64 {
    let n_bones = model.n_bones;
    let mut s = theta[3 + j];
    for b in 0..n_bones {
        let w = model.weights[n_bones * v + b];
        if w != 0.0 {
            let mut moved = 0.0;
            for c in 0..4 {
                moved += transforms[12 * b + 4 * j + c] * model.base_positions[4 * v + c];
            }
            s += w * moved;
        }
    }
    s
}

/// One coordinate of a residual in the simple variant: observed minus posed.
#[differentiable(static)]
pub fn vertex_residual(point: f64, vertex: f64) -> f64 {
    point - vertex
}

/// One coordinate of a residual in the complicated variant: the observed
/// point minus the point at barycentric `(u0, u1)` on the triangle `a b c`.
#[differentiable(static)]
pub fn surface_residual(point: f64, a: f64, b: f64, c: f64, u0: f64, u1: f64) -> f64 {
    point - (u0 * a + u1 * b + (1.0 - u0 - u1) * c)
}

/// The residuals, three per point (`us` empty: the simple variant).
#[differentiable(static)]
pub fn objective(theta: &[f64], us: &[f64], model: &Model, data: &Data) -> Vec<f64> {
    let mut transforms = vec![0.0; 12 * model.n_bones];
    for b in 0..model.n_bones {
        bone_transform(theta, model, b, &mut transforms[12 * b..12 * b + 12]);
    }
    let mut positions = vec![0.0; 3 * model.n_verts];
    for v in 0..model.n_verts {
        for j in 0..3 {
            positions[3 * v + j] = skinned(&transforms, theta, model, v, j);
        }
    }
    let n_points = data.correspondences.len();
    let mut err = vec![0.0; 3 * n_points];
    for i in 0..n_points {
        let target = data.correspondences[i];
        for j in 0..3 {
            let point: f64 = data.points[3 * i + j];
            if us.is_empty() {
                err[3 * i + j] = vertex_residual(point, positions[3 * target + j]);
            } else {
                err[3 * i + j] = surface_residual(
                    point,
                    positions[3 * model.triangles[target][0] + j],
                    positions[3 * model.triangles[target][1] + j],
                    positions[3 * model.triangles[target][2] + j],
                    us[2 * i],
                    us[2 * i + 1],
                );
            }
        }
    }
    err
}

/// A dense Jacobian, row-major.
#[derive(Default)]
pub struct Jacobian {
    pub n_rows: usize,
    pub n_cols: usize,
    pub entries: Vec<f64>,
}

impl Jacobian {
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.entries[row * self.n_cols + col]
    }
}

impl Serialize for Jacobian {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut rows = serializer.serialize_seq(Some(self.n_rows))?;
        for row in self.entries.chunks(self.n_cols.max(1)) {
            rows.serialize_element(row)?;
        }
        rows.end()
    }
}

/// The Jacobian of [`objective`]: for the complicated variant the columns are
/// ∂/∂u0 and ∂/∂u1 of each point's own `us`, then the 26 of θ.
pub fn jacobian(theta: &[f64], us: &[f64], model: &Model, data: &Data) -> Jacobian {
    let mut jac = Jacobian::default();
    jacobian_into(theta, us, model, data, &mut jac);
    jac
}

/// [`jacobian`] into `jac`, whose memory is reused when it is large enough (as
/// repeated runs reuse their output).
pub fn jacobian_into(theta: &[f64], us: &[f64], model: &Model, data: &Data, jac: &mut Jacobian) {
    let n_theta = theta.len();
    // Stage 1: ∂transforms/∂θ, one `_vjp` per entry of each bone's transform,
    // row-major.
    let n_transforms = 12 * model.n_bones;
    let mut d_transforms = vec![0.0; n_transforms * n_theta];
    let mut transforms = vec![0.0; n_transforms];
    let mut seed = [0.0; 12];
    for b in 0..model.n_bones {
        let out = &mut transforms[12 * b..12 * b + 12];
        for e in 0..12 {
            seed[e] = 1.0;
            let ((), (d_theta, _)) = bone_transform_vjp(theta, model, b, out, &seed, ());
            seed[e] = 0.0;
            let o = 12 * b + e;
            d_transforms[o * n_theta..(o + 1) * n_theta].copy_from_slice(&d_theta);
        }
    }

    // Stage 2: position and ∂position/∂θ of each vertex a point touches,
    // stored compactly at `slot[v]`.
    let complicated = !us.is_empty();
    let mut slot = vec![usize::MAX; model.n_verts];
    let mut touched = Vec::new();
    let mut touch = |v: usize| {
        if slot[v] == usize::MAX {
            slot[v] = touched.len();
            touched.push(v);
        }
    };
    for &target in &data.correspondences {
        if complicated {
            model.triangles[target].iter().for_each(|&v| touch(v));
        } else {
            touch(target);
        }
    }
    let mut positions = vec![0.0; 3 * touched.len()];
    let mut d_positions = vec![0.0; 3 * touched.len() * n_theta];
    for (k, &v) in touched.iter().enumerate() {
        for j in 0..3 {
            let (p, (d_t, d_theta)) = skinned_grad(&transforms, theta, model, v, j);
            positions[3 * k + j] = p;
            let row = &mut d_positions[(3 * k + j) * n_theta..(3 * k + j + 1) * n_theta];
            row.copy_from_slice(&d_theta);
            for (o, &g) in d_t.iter().enumerate() {
                if g != 0.0 {
                    let d_o = &d_transforms[o * n_theta..(o + 1) * n_theta];
                    row.iter_mut().zip(d_o).for_each(|(r, d)| *r += g * d);
                }
            }
        }
    }

    // Stage 3: each residual's row.
    let n_points = data.correspondences.len();
    let first = if complicated { 2 } else { 0 };
    jac.n_rows = 3 * n_points;
    jac.n_cols = first + n_theta;
    jac.entries.clear();
    jac.entries.resize(jac.n_rows * jac.n_cols, 0.0);
    for (r, row) in jac.entries.chunks_exact_mut(jac.n_cols).enumerate() {
        let (i, j) = (r / 3, r % 3);
        let target = data.correspondences[i];
        let point = data.points[r];
        let d_vertex = |k: usize| {
            let at = (3 * k + j) * n_theta;
            &d_positions[at..at + n_theta]
        };
        if complicated {
            let [a, b, c] = model.triangles[target].map(|v| slot[v]);
            let (_, (_, da, db, dc, du0, du1)) = surface_residual_grad(
                point,
                positions[3 * a + j],
                positions[3 * b + j],
                positions[3 * c + j],
                us[2 * i],
                us[2 * i + 1],
            );
            row[0] = du0;
            row[1] = du1;
            let (va, vb, vc) = (d_vertex(a), d_vertex(b), d_vertex(c));
            for (t, e) in row[first..].iter_mut().enumerate() {
                *e = da * va[t] + db * vb[t] + dc * vc[t];
            }
        } else {
            let k = slot[target];
            let (_, (_, dv)) = vertex_residual_grad(point, positions[3 * k + j]);
            for (e, d) in row.iter_mut().zip(d_vertex(k)) {
                *e = dv * d;
            }
        }
    }
}

/// Reads an `ht` input into its checked form (not timed).
pub fn read(value: Value) -> Result<(Problem, Runs), String> {
    let parsed: Input = input("ht", value)?;
    let runs = parsed.runs;
    Ok((Problem::read(parsed)?, runs))
}

pub fn evaluate(function: &str, value: Value) -> Result<Evaluation, String> {
    let (p, runs) = read(value)?;
    match function {
        "objective" => timed(runs, || objective(&p.theta, &p.us, &p.model, &p.data)),
        "jacobian" => timed_into(runs, |jac: &mut Jacobian| {
            jacobian_into(&p.theta, &p.us, &p.model, &p.data, jac)
        }),
        _ => unknown("ht", function),
    }
}
