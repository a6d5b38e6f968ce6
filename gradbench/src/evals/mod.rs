//! One module per GradBench eval. Each reads its input (the eval's
//! `README.md` in the GradBench repository gives the layout), runs the asked
//! function under [`measure`], and answers its output as JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::runs::{measure, Runs, Timing};

pub mod ba;
pub mod det;
pub mod gd;
pub mod gmm;
pub mod hello;
pub mod ht;
pub mod kmeans;
pub mod llsq;
pub mod lse;
pub mod lstm;
pub mod ode;
pub mod particle;
pub mod saddle;

/// A function's output and the timing of each run.
pub struct Evaluation {
    pub output: Value,
    pub timings: Vec<Timing>,
}

type Evaluate = fn(&str, Value) -> Result<Evaluation, String>;

/// Every GradBench eval, with this tool's implementation or the reason it has
/// none yet.
const EVALS: &[(&str, Result<Evaluate, &str>)] = &[
    ("ba", Ok(ba::evaluate)),
    ("det", Ok(det::evaluate)),
    ("gmm", Ok(gmm::evaluate)),
    ("hello", Ok(hello::evaluate)),
    ("ht", Ok(ht::evaluate)),
    ("kmeans", Ok(kmeans::evaluate)),
    ("llsq", Ok(llsq::evaluate)),
    ("lse", Ok(lse::evaluate)),
    ("lstm", Ok(lstm::evaluate)),
    ("ode", Ok(ode::evaluate)),
    ("particle", Ok(particle::evaluate)),
    ("saddle", Ok(saddle::evaluate)),
];

/// The names of the evals this tool implements, in GradBench's order.
pub fn implemented() -> impl Iterator<Item = &'static str> {
    EVALS
        .iter()
        .filter(|(_, e)| e.is_ok())
        .map(|(name, _)| *name)
}

/// `Ok` when this tool has `module`; otherwise why not.
pub fn define(module: &str) -> Result<(), String> {
    lookup(module).map(|_| ())
}

/// Runs `function` of `module` on `input`.
pub fn evaluate(module: &str, function: &str, input: Value) -> Result<Evaluation, String> {
    lookup(module)?(function, input)
}

fn lookup(module: &str) -> Result<Evaluate, String> {
    match EVALS.iter().find(|(name, _)| *name == module) {
        Some((_, Ok(evaluate))) => Ok(*evaluate),
        Some((_, Err(why))) => Err((*why).to_string()),
        None => Err(format!("adjoint has no module `{module}`")),
    }
}

/// Reads an eval's input into its typed form (not timed).
pub(crate) fn input<T: DeserializeOwned>(module: &str, input: Value) -> Result<T, String> {
    serde_json::from_value(input).map_err(|e| format!("`{module}` input: {e}"))
}

/// Runs `f` as `runs` asks and answers its last result.
pub(crate) fn timed<T: Serialize>(runs: Runs, f: impl FnMut() -> T) -> Result<Evaluation, String> {
    let (value, timings) = measure(runs, f);
    let output = serde_json::to_value(value).map_err(|e| format!("output: {e}"))?;
    Ok(Evaluation { output, timings })
}

/// Runs `f` on one output buffer as `runs` asks and answers what the last run
/// left in it. The buffer is kept from run to run, as GradBench's C++ tools keep
/// theirs: a large Jacobian is then not allocated, and its pages not faulted in,
/// anew in every timed run.
pub(crate) fn timed_into<T: Serialize + Default>(
    runs: Runs,
    mut f: impl FnMut(&mut T),
) -> Result<Evaluation, String> {
    let mut out = T::default();
    let ((), timings) = measure(runs, || f(&mut out));
    let output = serde_json::to_value(&out).map_err(|e| format!("output: {e}"))?;
    Ok(Evaluation { output, timings })
}

/// The answer to a function name the eval does not have.
pub(crate) fn unknown(module: &str, function: &str) -> Result<Evaluation, String> {
    Err(format!("`{module}` has no function `{function}`"))
}
