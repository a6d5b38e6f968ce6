//! Numerical Rust as a user porting C++ writes it, under `#[differentiable]`:
//! Rosenbrock over a slice (with two hand-written gradients), the GMM objective of
//! ADBench/GradBench and GradBench's LSTM loss. Shared by `benches/real.rs` and
//! `tests/real_code.rs` (each includes this file).
//!
//! Each port is defined twice from one body by `twin!`: `NAME` with the default
//! route, and `NAME_tape` under `#[differentiable(tape)]`. Bodies marked
//! `// static after issue 11` take the tape today only because of a local buffer or
//! a sub-slice; the faithful ports that do not compile at all today (helpers that
//! write through `&mut [f64]`) are in `ports_future.rs`, not yet included.
#![allow(dead_code)] // each includer uses a different part
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]
// the C++ style
// `rosenbrock_windows` takes the tape on the default route on purpose (iterator
// chains are not static yet), which rustc reports as a `deprecated` warning.
#![allow(deprecated)]

use adjoint::prelude::*;

/// Defines `$name` with the default route and `$tape` on the tape, with one body.
macro_rules! twin {
    ($tape:ident [$($opt:tt)*] $(#[$m:meta])* pub fn $name:ident ($($p:ident : $t:ty),* $(,)?) -> $r:ty $body:block) => {
        $(#[$m])*
        #[differentiable($($opt)*)]
        pub fn $name($($p: $t),*) -> $r $body

        $(#[$m])*
        #[differentiable(tape, $($opt)*)]
        pub fn $tape($($p: $t),*) -> $r $body
    };
}

/// Seeded values of a normal distribution scaled by `scale`.
pub fn normal(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    Tensor::<f64>::randn(&[len], seed)
        .into_vec()
        .into_iter()
        .map(|v| v * scale)
        .collect()
}

// ---- Rosenbrock ----

twin! { rosenbrock_tape []
    /// f(x) = Σᵢ (1 - xᵢ)² + 100 (xᵢ₊₁ - xᵢ²)².
    pub fn rosenbrock(x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() - 1 {
            s += (1.0 - x[i]).powi(2) + 100.0 * (x[i + 1] - x[i].powi(2)).powi(2);
        }
        s
    }
}

twin! { rosenbrock_windows_tape []
    /// Rosenbrock as idiomatic Rust: an iterator chain over `windows(2)`.
    // static after issue 11
    pub fn rosenbrock_windows(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| (1.0 - w[0]).powi(2) + 100.0 * (w[1] - w[0].powi(2)).powi(2))
            .sum()
    }
}

/// Rosenbrock's value, and its gradient into `g` with each `g[i]` computed on its
/// own from `x[i-1..=i+1]` (no accumulation):
/// `gᵢ = 200 (xᵢ - xᵢ₋₁²) - 2 (1 - xᵢ) - 400 xᵢ (xᵢ₊₁ - xᵢ²)`, the first term
/// absent at `i = 0` and the last two at `i = n - 1`.
pub fn rosenbrock_grad_gather(x: &[f64], g: &mut [f64]) -> f64 {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        let mut gi = 0.0;
        if i > 0 {
            gi += 200.0 * (x[i] - x[i - 1] * x[i - 1]);
        }
        if i + 1 < n {
            let a = 1.0 - x[i];
            let b = x[i + 1] - x[i] * x[i];
            s += a * a + 100.0 * b * b;
            gi += -2.0 * a - 400.0 * x[i] * b;
        }
        g[i] = gi;
    }
    s
}

/// Rosenbrock's value, and its gradient into `g` in the scatter form: each term
/// adds to `g[i]` and `g[i + 1]`.
pub fn rosenbrock_grad_accumulate(x: &[f64], g: &mut [f64]) -> f64 {
    g.fill(0.0);
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
        g[i] += -2.0 * a - 400.0 * x[i] * b;
        g[i + 1] += 200.0 * b;
    }
    s
}

// ---- GMM (ADBench / GradBench `gmm`) ----

/// ln Γ(x) for x > 0, Lanczos' approximation (g = 7, 9 terms; ~15 digits). Plain
/// Rust: the objective applies it to constants only.
pub fn log_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - log_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Σ vᵢ².
#[differentiable]
pub fn sqnorm(v: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..v.len() {
        s += v[i] * v[i];
    }
    s
}

/// ln Σ exp(vᵢ), stabilised by the maximum.
#[differentiable]
pub fn logsumexp(v: &[f64]) -> f64 {
    let mut mx = v[0];
    for i in 1..v.len() {
        mx = mx.max(v[i]);
    }
    let mut semx = 0.0;
    for i in 0..v.len() {
        semx += (v[i] - mx).exp();
    }
    semx.ln() + mx
}

/// The inputs of the GMM objective, in ADBench's layout.
#[derive(Clone, Debug)]
pub struct Gmm {
    /// The dimension.
    pub d: usize,
    /// The number of components.
    pub k: usize,
    /// The number of points.
    pub n: usize,
    /// The weights' parametrisation, `[k]`.
    pub alphas: Vec<f64>,
    /// The means, `[k][d]`.
    pub means: Vec<f64>,
    /// The inverse Cholesky factors, `[k][d (d + 1) / 2]`: the log-diagonal, then the
    /// strictly lower triangle column by column.
    pub icf: Vec<f64>,
    /// The points, `[n][d]`.
    pub x: Vec<f64>,
    /// The Wishart prior's precision.
    pub gamma: f64,
    /// The Wishart prior's extra degrees of freedom.
    pub m: usize,
}

impl Gmm {
    /// Seeded inputs, with the Wishart prior of ADBench's data (`gamma = 1`) and `m`.
    pub fn new(d: usize, k: usize, n: usize, m: usize, seed: u64) -> Self {
        Gmm {
            d,
            k,
            n,
            alphas: normal(k, seed, 1.0),
            means: normal(k * d, seed + 1, 1.0),
            icf: normal(k * d * (d + 1) / 2, seed + 2, 0.3),
            x: normal(n * d, seed + 3, 1.0),
            gamma: 1.0,
            m,
        }
    }

    /// The parameters, concatenated: alphas, means, icf.
    pub fn params(&self) -> Vec<f64> {
        [&self.alphas[..], &self.means, &self.icf].concat()
    }

    /// ln Γ_p(n/2), the multivariate gamma function at half an integer:
    /// `p(p-1)/4 ln π + Σⱼ ln Γ((n + 1 - j)/2)`. Called through the type: the tape
    /// would record a free function's call and want its `_vjp`, even with integer
    /// arguments only.
    pub fn log_gamma_distrib(n: usize, p: usize) -> f64 {
        let mut out = 0.25 * (p * (p - 1)) as f64 * std::f64::consts::PI.ln();
        for j in 1..=p {
            out += log_gamma(0.5 * (n + 1 - j) as f64);
        }
        out
    }

    /// Splits a concatenation of [`Gmm::params`]'s layout.
    pub fn split<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64], &'a [f64]) {
        let (alphas, rest) = p.split_at(self.k);
        let (means, icf) = rest.split_at(self.k * self.d);
        (alphas, means, icf)
    }
}

twin! { gmm_objective_tape [wrt(alphas, means, icf)]
    /// The GMM log posterior: `Σᵢ lse_k(αₖ + Σⱼ qₖⱼ - ½‖Qₖ(xᵢ - μₖ)‖²)
    /// - n lse(α) - n d/2 ln 2π` plus the log Wishart prior.
    // static after issue 11
    pub fn gmm_objective(
        d: usize,
        k: usize,
        n: usize,
        alphas: &[f64],
        means: &[f64],
        icf: &[f64],
        x: &[f64],
        gamma: f64,
        m: usize,
    ) -> f64 {
        let icf_sz = d * (d + 1) / 2;
        let mut qdiags = vec![0.0; d * k];
        let mut sum_qs = vec![0.0; k];
        for ik in 0..k {
            for id in 0..d {
                qdiags[ik * d + id] = icf[ik * icf_sz + id].exp();
                sum_qs[ik] += icf[ik * icf_sz + id];
            }
        }

        let mut xcentered = vec![0.0; d];
        let mut qxcentered = vec![0.0; d];
        let mut main_term = vec![0.0; k];
        let mut slse = 0.0;
        for ix in 0..n {
            for ik in 0..k {
                for id in 0..d {
                    xcentered[id] = x[ix * d + id] - means[ik * d + id];
                }
                // Qtimesx: the diagonal, then the strictly lower triangle.
                for id in 0..d {
                    qxcentered[id] = qdiags[ik * d + id] * xcentered[id];
                }
                let mut li = ik * icf_sz + d;
                for i in 0..d {
                    for j in i + 1..d {
                        qxcentered[j] += icf[li] * xcentered[i];
                        li += 1;
                    }
                }
                main_term[ik] = alphas[ik] + sum_qs[ik] - 0.5 * sqnorm(&qxcentered);
            }
            slse += logsumexp(&main_term);
        }

        let constant = -(n as f64) * d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln();
        let lse_alpha = logsumexp(alphas);

        // The log Wishart prior.
        let n_w = d + m + 1;
        let c = (n_w * d) as f64 * (gamma.ln() - 0.5 * 2f64.ln())
            - Gmm::log_gamma_distrib(n_w, d);
        let mut prior = 0.0;
        for ik in 0..k {
            let frobenius = sqnorm(&qdiags[ik * d..(ik + 1) * d])
                + sqnorm(&icf[ik * icf_sz + d..(ik + 1) * icf_sz]);
            prior += 0.5 * gamma * gamma * frobenius - m as f64 * sum_qs[ik];
        }

        constant + slse - n as f64 * lse_alpha - prior + k as f64 * c
    }
}

// ---- LSTM (GradBench `lstm`) ----

/// 1 / (1 + e⁻ˣ), as the C++ writes it.
#[differentiable]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln(Σ exp(vᵢ) + 2): the eval's (unstabilised) log-sum-exp.
#[differentiable]
pub fn lstm_logsumexp(v: &[f64]) -> f64 {
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i].exp();
    }
    (sum + 2.0).ln()
}

/// The inputs of the LSTM loss, in GradBench's layout: `l` layers of `b` cells (the
/// input width is `b` too), a sequence of `c` characters of `b` entries.
#[derive(Clone, Debug)]
pub struct Lstm {
    /// The number of layers.
    pub l: usize,
    /// The characters of the sequence.
    pub c: usize,
    /// The width of a character, of the hidden state and of a layer.
    pub b: usize,
    /// Per layer, `[8 b]`: the diagonal weights of the forget, input, output and
    /// change gates, then their biases.
    pub main_params: Vec<f64>,
    /// `[3 b]`: the input weights, the output weights, the output biases.
    pub extra_params: Vec<f64>,
    /// Per layer, `[2 b]`: the initial hidden state, then the initial cell state.
    pub state: Vec<f64>,
    /// `[c][b]`.
    pub sequence: Vec<f64>,
}

impl Lstm {
    /// Seeded inputs.
    pub fn new(l: usize, c: usize, b: usize, seed: u64) -> Self {
        Lstm {
            l,
            c,
            b,
            main_params: normal(8 * b * l, seed, 0.5),
            extra_params: normal(3 * b, seed + 1, 0.5),
            state: normal(2 * b * l, seed + 2, 0.5),
            sequence: normal(c * b, seed + 3, 1.0),
        }
    }

    /// The parameters, concatenated: main, then extra.
    pub fn params(&self) -> Vec<f64> {
        [&self.main_params[..], &self.extra_params].concat()
    }
}

twin! { lstm_objective_tape [wrt(main_params, extra_params)]
    /// GradBench's LSTM loss: `-Σₜ Σᵢ yₜ₊₁,ᵢ (ŷₜ,ᵢ - lse(ŷₜ)) / ((c - 1) b)`.
    // static after issue 11
    pub fn lstm_objective(
        l: usize,
        c: usize,
        b: usize,
        main_params: &[f64],
        extra_params: &[f64],
        state: &[f64],
        sequence: &[f64],
    ) -> f64 {
        let mut hidden = vec![0.0; l * b];
        let mut cell = vec![0.0; l * b];
        for i in 0..l {
            for j in 0..b {
                hidden[i * b + j] = state[2 * b * i + j];
                cell[i * b + j] = state[2 * b * i + b + j];
            }
        }
        let mut layer_input = vec![0.0; b];
        let mut ypred = vec![0.0; b];
        let mut total = 0.0;
        let mut count = 0;
        for t in 0..c - 1 {
            // lstm_predict
            for j in 0..b {
                layer_input[j] = sequence[t * b + j] * extra_params[j];
            }
            for i in 0..l {
                // lstm_model of layer i; its output is the next layer's input.
                let w = 8 * b * i;
                for j in 0..b {
                    let h = i * b + j;
                    let forget = sigmoid(layer_input[j] * main_params[w + j] + main_params[w + 4 * b + j]);
                    let ingate = sigmoid(hidden[h] * main_params[w + b + j] + main_params[w + 5 * b + j]);
                    let outgate = sigmoid(layer_input[j] * main_params[w + 2 * b + j] + main_params[w + 6 * b + j]);
                    let change = (hidden[h] * main_params[w + 3 * b + j] + main_params[w + 7 * b + j]).tanh();
                    cell[h] = cell[h] * forget + ingate * change;
                    hidden[h] = outgate * cell[h].tanh();
                    layer_input[j] = hidden[h];
                }
            }
            for j in 0..b {
                ypred[j] = layer_input[j] * extra_params[b + j] + extra_params[2 * b + j];
            }
            let lse = lstm_logsumexp(&ypred);
            for j in 0..b {
                total += sequence[(t + 1) * b + j] * (ypred[j] - lse);
            }
            count += b;
        }
        -total / count as f64
    }
}
