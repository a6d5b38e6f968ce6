//! Trains a small network on the UCI handwritten digits (data/digits.csv) with
//! gradients from `#[differentiable]`, and prints the loss and accuracy.
//!
//! Run it with `cargo run --release --example train`.

use adjoint::prelude::*;

/// Softmax cross-entropy of a one-hidden-layer tanh network.
///
/// `loss = mean_i( ln Σ_j exp(z_ij) − Σ_j y_ij z_ij )` with `z = tanh(x W1 + b1) W2 + b2`.
#[differentiable(tape, wrt(w1, b1, w2, b2))]
fn loss(w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor, x: &Tensor, y: &Tensor) -> f64 {
    let h = (x.matmul(w1) + b1).tanh();
    let z = h.matmul(w2) + b2;
    z.exp().sum_axis(1).ln().mean() - (y * &z).sum_axis(1).mean()
}

struct Data {
    x: Vec<f64>,
    labels: Vec<usize>,
}

impl Data {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The rows `idx` as an input batch (pixels scaled to [0, 1]) and one-hot targets.
    fn batch(&self, idx: &[usize]) -> (Tensor, Tensor) {
        let mut x = Vec::with_capacity(idx.len() * 64);
        let mut y = vec![0.0; idx.len() * 10];
        for (r, &i) in idx.iter().enumerate() {
            x.extend_from_slice(&self.x[i * 64..(i + 1) * 64]);
            y[r * 10 + self.labels[i]] = 1.0;
        }
        (
            Tensor::from_vec(x, &[idx.len(), 64]),
            Tensor::from_vec(y, &[idx.len(), 10]),
        )
    }
}

fn load() -> Data {
    let text = include_str!("../data/digits.csv");
    let mut data = Data {
        x: Vec::new(),
        labels: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse().expect("a number"))
            .collect();
        assert_eq!(fields.len(), 65, "a digits row has 64 pixels and a label");
        data.x.extend(fields[..64].iter().map(|p| p / 16.0));
        data.labels.push(fields[64] as usize);
    }
    data
}

fn accuracy(params: &[Tensor; 4], x: &Tensor, labels: &[usize]) -> f64 {
    let [w1, b1, w2, b2] = params;
    let z = (x.matmul(w1) + b1).tanh().matmul(w2) + b2;
    let correct = z
        .as_slice()
        .chunks_exact(10)
        .zip(labels)
        .filter(|(row, &label)| {
            let best = (0..10)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            best == label
        })
        .count();
    correct as f64 / labels.len() as f64
}

fn main() {
    let data = load();
    // A fixed shuffle, then 80% train / 20% test.
    let mut order: Vec<usize> = (0..data.len()).collect();
    let keys = Tensor::<f64>::rand(&[data.len()], 42);
    order.sort_by(|&a, &b| keys.as_slice()[a].total_cmp(&keys.as_slice()[b]));
    let n_train = data.len() * 4 / 5;
    let (train, test) = order.split_at(n_train);

    let hidden = 32;
    let mut params = [
        Tensor::randn(&[64, hidden], 1) * (1.0 / 8.0),
        Tensor::zeros(&[hidden]),
        Tensor::randn(&[hidden, 10], 2) * (1.0 / (hidden as f64).sqrt()),
        Tensor::zeros(&[10]),
    ];
    let (x_test, _) = data.batch(test);
    let test_labels: Vec<usize> = test.iter().map(|&i| data.labels[i]).collect();
    let train_labels: Vec<usize> = train.iter().map(|&i| data.labels[i]).collect();
    let (x_train, _) = data.batch(train);

    let (epochs, batch, rate) = (30, 32, 0.2);
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for idx in train.chunks(batch) {
            let (x, y) = data.batch(idx);
            let [w1, b1, w2, b2] = &params;
            let (l, (g1, gb1, g2, gb2)) = loss_grad(w1, b1, w2, b2, &x, &y);
            total += l * idx.len() as f64;
            for (p, g) in params.iter_mut().zip([g1, gb1, g2, gb2]) {
                *p = &*p - g * rate;
            }
        }
        println!(
            "epoch {epoch:2}: loss {:.4}, train accuracy {:.1}%",
            total / n_train as f64,
            100.0 * accuracy(&params, &x_train, &train_labels)
        );
    }
    println!(
        "test accuracy: {:.1}%",
        100.0 * accuracy(&params, &x_test, &test_labels)
    );
}
