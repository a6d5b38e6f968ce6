//! Repeated, timed evaluation: the protocol's `min_runs` and `min_seconds`.

use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How often an eval asks for a function to run: at least `min_runs` times, and
/// until the runs together have taken at least `min_seconds`, whichever is
/// longer. Inputs without these fields (`hello`'s) run once.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct Runs {
    #[serde(default = "one")]
    pub min_runs: usize,
    #[serde(default)]
    pub min_seconds: f64,
}

fn one() -> usize {
    1
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            min_runs: 1,
            min_seconds: 0.0,
        }
    }
}

/// One entry of a response's `timings`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Timing {
    pub name: String,
    pub nanoseconds: u64,
}

/// Runs `f` as often as `runs` asks and returns its last result with one
/// `"evaluate"` timing per run. Only `f` is timed: reading the input before and
/// writing the output after are not.
pub fn measure<T>(runs: Runs, mut f: impl FnMut() -> T) -> (T, Vec<Timing>) {
    let mut timings = Vec::new();
    let mut total = 0.0;
    loop {
        let start = Instant::now();
        let value = black_box(f());
        let elapsed = start.elapsed();
        total += elapsed.as_secs_f64();
        timings.push(Timing {
            name: "evaluate".into(),
            nanoseconds: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        });
        if timings.len() >= runs.min_runs.max(1) && total >= runs.min_seconds {
            return (value, timings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_least_min_runs_times() {
        let mut calls = 0;
        let (last, timings) = measure(
            Runs {
                min_runs: 7,
                min_seconds: 0.0,
            },
            || {
                calls += 1;
                calls
            },
        );
        assert_eq!((calls, last, timings.len()), (7, 7, 7));
        assert!(timings.iter().all(|t| t.name == "evaluate"));
    }

    #[test]
    fn runs_until_min_seconds_have_passed() {
        let (_, timings) = measure(
            Runs {
                min_runs: 1,
                min_seconds: 0.02,
            },
            || std::thread::sleep(std::time::Duration::from_millis(5)),
        );
        let total: u64 = timings.iter().map(|t| t.nanoseconds).sum();
        assert!(timings.len() >= 4, "{} runs", timings.len());
        assert!(total >= 20_000_000, "{total} ns");
    }

    #[test]
    fn zero_min_runs_still_runs_once() {
        let (_, timings) = measure(
            Runs {
                min_runs: 0,
                min_seconds: 0.0,
            },
            || (),
        );
        assert_eq!(timings.len(), 1);
    }
}
