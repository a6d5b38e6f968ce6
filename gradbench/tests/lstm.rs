mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::lstm::{lstm_objective, lstm_objective_grad};
use common::{assert_close, fd_gradient, uniform};
use serde_json::{json, Value};

/// A small problem: the parameters (main, then extra) and the rest.
struct Problem {
    l: usize,
    c: usize,
    b: usize,
    params: Vec<f64>,
    state: Vec<f64>,
    sequence: Vec<f64>,
}

impl Problem {
    fn new(l: usize, c: usize, b: usize, seed: u64) -> Problem {
        // The eval draws parameters and state from [0, 1) and the sequence's bits.
        let unit = |s, n| {
            uniform(s, n)
                .iter()
                .map(|v| 0.5 * (v + 1.0))
                .collect::<Vec<_>>()
        };
        Problem {
            l,
            c,
            b,
            params: unit(seed, 8 * l * b + 3 * b),
            state: unit(seed + 1, 2 * l * b),
            sequence: unit(seed + 2, c * b).iter().map(|v| v.round()).collect(),
        }
    }

    fn objective(&self, p: &[f64]) -> f64 {
        let (main, extra) = p.split_at(8 * self.l * self.b);
        lstm_objective(
            self.l,
            self.c,
            self.b,
            main,
            extra,
            &self.state,
            &self.sequence,
        )
    }

    fn grad(&self, p: &[f64]) -> (f64, Vec<f64>) {
        let (main, extra) = p.split_at(8 * self.l * self.b);
        let (y, (dm, de)) = lstm_objective_grad(
            self.l,
            self.c,
            self.b,
            main,
            extra,
            &self.state,
            &self.sequence,
        );
        (y, [dm, de].concat())
    }

    fn json(&self) -> Value {
        let rows =
            |v: &[f64], w: usize| -> Vec<Vec<f64>> { v.chunks(w).map(<[f64]>::to_vec).collect() };
        let (main, extra) = self.params.split_at(8 * self.l * self.b);
        json!({
            "main_params": rows(main, 4 * self.b),
            "extra_params": rows(extra, self.b),
            "state": rows(&self.state, self.b),
            "sequence": rows(&self.sequence, self.b),
            "min_runs": 3, "min_seconds": 0.0,
        })
    }
}

#[test]
fn gradient_matches_finite_differences() {
    for (l, c, b) in [(2, 5, 3), (1, 2, 1), (3, 4, 2)] {
        let p = Problem::new(l, c, b, 100 * l as u64 + b as u64);
        let (y, grad) = p.grad(&p.params);
        assert_eq!(y, p.objective(&p.params));
        assert_close(&grad, &fd_gradient(|v| p.objective(v), &p.params), 1e-7);
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The loss written layer by layer with a state vector per layer, as the
/// eval's description has it.
fn loss(p: &Problem) -> f64 {
    let (l, b) = (p.l, p.b);
    let (main, extra) = p.params.split_at(8 * l * b);
    let gate = |layer: usize, g: usize| &main[8 * b * layer + g * b..][..b];
    let bias = |layer: usize, g: usize| &main[8 * b * layer + (4 + g) * b..][..b];
    let mut hidden: Vec<Vec<f64>> = (0..l).map(|i| p.state[2 * b * i..][..b].to_vec()).collect();
    let mut cell: Vec<Vec<f64>> = (0..l)
        .map(|i| p.state[2 * b * i + b..][..b].to_vec())
        .collect();
    let mut sum = 0.0;
    for t in 0..p.c - 1 {
        let mut input: Vec<f64> = (0..b).map(|j| p.sequence[t * b + j] * extra[j]).collect();
        for i in 0..l {
            let (w, bi, h) = (gate, bias, hidden[i].clone());
            for j in 0..b {
                let f = sigmoid(input[j] * w(i, 0)[j] + bi(i, 0)[j]);
                let g = sigmoid(h[j] * w(i, 1)[j] + bi(i, 1)[j]);
                let o = sigmoid(input[j] * w(i, 2)[j] + bi(i, 2)[j]);
                let ch = (h[j] * w(i, 3)[j] + bi(i, 3)[j]).tanh();
                cell[i][j] = cell[i][j] * f + g * ch;
                hidden[i][j] = o * cell[i][j].tanh();
            }
            input = hidden[i].clone();
        }
        let y: Vec<f64> = (0..b)
            .map(|j| input[j] * extra[b + j] + extra[2 * b + j])
            .collect();
        let lse = (y.iter().map(|v| v.exp()).sum::<f64>() + 2.0).ln();
        sum += (0..b)
            .map(|j| p.sequence[(t + 1) * b + j] * (y[j] - lse))
            .sum::<f64>();
    }
    -sum / ((p.c - 1) * b) as f64
}

#[test]
fn objective_is_the_mean_cross_entropy() {
    for (l, c, b) in [(2, 6, 4), (1, 3, 2)] {
        let p = Problem::new(l, c, b, 9);
        let want = loss(&p);
        assert!((p.objective(&p.params) - want).abs() < 1e-14, "{want}");
    }
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let p = Problem::new(2, 4, 3, 1);
    let objective = evaluate("lstm", "objective", p.json()).unwrap();
    assert_eq!(objective.output.as_f64(), Some(p.objective(&p.params)));
    assert_eq!(objective.timings.len(), 3);

    let jacobian = evaluate("lstm", "jacobian", p.json()).unwrap();
    let got: Vec<f64> = jacobian
        .output
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), 8 * 2 * 3 + 3 * 3);
    assert_eq!(got, p.grad(&p.params).1);
}

#[test]
fn evaluate_rejects_bad_shapes() {
    let mut bad = Problem::new(1, 3, 2, 1).json();
    bad["state"] = json!([[0.0, 0.0]]);
    let err = evaluate("lstm", "objective", bad).err().unwrap();
    assert!(err.contains("`state` must be 2 rows of 2"), "{err}");
    let mut one = Problem::new(1, 3, 2, 1).json();
    one["sequence"] = json!([[1.0, 0.0]]);
    assert!(evaluate("lstm", "jacobian", one).is_err());
}
