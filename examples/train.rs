//! Trains a 64-32-10 tanh network on the UCI handwritten digits (data/digits.csv) with
//! gradients from `#[differentiable]`: a progress bar over epochs, the loss and
//! accuracy of each epoch, the held-out test accuracy, and a loss curve
//! (target/plots/train_loss.png and .svg).
//!
//! Run it with `cargo run --release --example train`.

#[path = "common/mod.rs"]
mod common;

use adjoint::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// Softmax cross-entropy of a one-hidden-layer tanh network, averaged over the batch.
///
/// `loss = mean_i( ln Σ_j exp(z_ij) − Σ_j y_ij z_ij )` with `z = tanh(x W1 + b1) W2 + b2`
/// (`y` one-hot). The logits are small at this scale, so `exp` needs no max shift.
#[differentiable(wrt(w1, b1, w2, b2))]
pub fn loss(w1: &Tensor, b1: &Tensor, w2: &Tensor, b2: &Tensor, x: &Tensor, y: &Tensor) -> f64 {
    let h = (x.matmul(w1) + b1).tanh();
    let z = h.matmul(w2) + b2;
    z.exp().sum_axis(1).ln().mean() - (y * &z).sum_axis(1).mean()
}

/// The digits: 64 pixels per image scaled to [0, 1], and the labels.
pub struct Digits {
    /// Row-major pixels, 64 per image.
    pub pixels: Vec<f64>,
    /// The digit of each image.
    pub labels: Vec<usize>,
}

impl Digits {
    /// Parses the shipped CSV (64 pixel counts in 0..=16, then the label, per line).
    pub fn load() -> Digits {
        let text = include_str!("../data/digits.csv");
        let mut data = Digits {
            pixels: Vec::new(),
            labels: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<f64> = line
                .split(',')
                .map(|f| f.trim().parse().expect("a number"))
                .collect();
            assert_eq!(fields.len(), 65, "a digits row has 64 pixels and a label");
            data.pixels.extend(fields[..64].iter().map(|p| p / 16.0));
            data.labels.push(fields[64] as usize);
        }
        data
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows `idx` as an input batch `[n, 64]` and one-hot targets `[n, 10]`.
    pub fn batch(&self, idx: &[usize]) -> (Tensor, Tensor) {
        let mut x = Vec::with_capacity(idx.len() * 64);
        let mut y = vec![0.0; idx.len() * 10];
        for (r, &i) in idx.iter().enumerate() {
            x.extend_from_slice(&self.pixels[i * 64..(i + 1) * 64]);
            y[r * 10 + self.labels[i]] = 1.0;
        }
        (
            Tensor::from_vec(x, &[idx.len(), 64]),
            Tensor::from_vec(y, &[idx.len(), 10]),
        )
    }
}

/// The fraction of rows of `x` whose largest logit is the label.
pub fn accuracy(params: &[Tensor; 4], x: &Tensor, labels: &[usize]) -> f64 {
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

/// What one epoch reports.
pub struct Epoch {
    /// The mean training loss over the epoch's batches.
    pub loss: f64,
    /// The accuracy on the training set after the epoch.
    pub train_accuracy: f64,
}

/// What a training run leaves.
pub struct Trained {
    /// One entry per epoch.
    pub epochs: Vec<Epoch>,
    /// The accuracy on the held-out 20%.
    pub test_accuracy: f64,
}

/// Trains for `epochs` epochs of minibatch SGD on a fixed 80/20 split; `report` sees
/// each epoch as it ends.
pub fn train(epochs: usize, mut report: impl FnMut(usize, &Epoch)) -> Trained {
    let data = Digits::load();
    // A fixed shuffle, then 80% train / 20% test.
    let keys = Tensor::<f64>::rand(&[data.len()], 42);
    let mut order: Vec<usize> = (0..data.len()).collect();
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
    let (x_train, _) = data.batch(train);
    let (x_test, _) = data.batch(test);
    let train_labels: Vec<usize> = train.iter().map(|&i| data.labels[i]).collect();
    let test_labels: Vec<usize> = test.iter().map(|&i| data.labels[i]).collect();
    let batches: Vec<(Tensor, Tensor)> = train.chunks(32).map(|idx| data.batch(idx)).collect();

    let rate = 0.2;
    let mut history = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for (x, y) in &batches {
            let [w1, b1, w2, b2] = &params;
            let (l, (g1, gb1, g2, gb2)) = loss_grad(w1, b1, w2, b2, x, y);
            total += l * x.shape()[0] as f64;
            for (p, g) in params.iter_mut().zip([g1, gb1, g2, gb2]) {
                *p = &*p - g * rate;
            }
        }
        let e = Epoch {
            loss: total / n_train as f64,
            train_accuracy: accuracy(&params, &x_train, &train_labels),
        };
        report(epoch, &e);
        history.push(e);
    }
    Trained {
        epochs: history,
        test_accuracy: accuracy(&params, &x_test, &test_labels),
    }
}

fn main() {
    let start = Instant::now();
    let epochs = 30;
    let pb = ProgressBar::new(epochs as u64);
    pb.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} epoch {pos}/{len} {msg} [{elapsed}]")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let trained = train(epochs, |epoch, e| {
        let line = format!(
            "epoch {epoch:2}: loss {:.4}, train accuracy {:.1}%",
            e.loss,
            100.0 * e.train_accuracy
        );
        // Printed to stdout above the bar (the bar hides itself when stderr is not a
        // terminal; these lines are printed either way).
        pb.suspend(|| println!("{line}"));
        pb.set_message(format!("loss {:.4}", e.loss));
        pb.inc(1);
    });
    pb.finish_and_clear();
    println!("test accuracy: {:.1}%", 100.0 * trained.test_accuracy);

    let points: Vec<(f64, f64)> = trained
        .epochs
        .iter()
        .enumerate()
        .map(|(i, e)| ((i + 1) as f64, e.loss))
        .collect();
    let chart = common::Chart {
        title: "digits: training loss (64-32-10 tanh, softmax cross-entropy)".into(),
        x_label: "epoch".into(),
        y_label: "mean loss".into(),
        y_range: Some((0.0, points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.05)),
        series: vec![common::Series::solid(
            "training loss",
            points,
            plotters::style::RGBColor(31, 119, 180),
        )],
    };
    match chart.write("train_loss") {
        Ok([png, svg]) => println!("loss curve: {} and {}", png.display(), svg.display()),
        Err(e) => eprintln!("could not write the loss curve: {e}"),
    }
    println!("time: {:.1} s", start.elapsed().as_secs_f64());
}
