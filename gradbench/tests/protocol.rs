//! A transcript of GradBench messages, fed to the `adjoint-gradbench` binary
//! over stdin as the harness does; every response is checked.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Runs the binary on `messages` (one JSON line each, plus any raw lines) and
/// returns its responses, one per line.
fn converse(lines: &[String]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adjoint-gradbench"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool starts");
    {
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the tool exited with {}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn timings(response: &Value) -> Vec<&Value> {
    response["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .collect()
}

#[test]
fn a_whole_session_is_answered_message_by_message() {
    let messages = [
        json!({"id": 0, "kind": "start", "eval": "lse", "config": {"min_runs": 3}}),
        json!({"id": 1, "kind": "define", "module": "lse"}),
        json!({"id": 2, "kind": "evaluate", "module": "lse", "function": "primal",
               "input": {"x": [1.0, 2.0, 3.0], "min_runs": 3, "min_seconds": 0.0},
               "description": "n=3"}),
        json!({"id": 3, "kind": "analysis", "of": 2, "valid": true}),
        json!({"id": 4, "kind": "evaluate", "module": "lse", "function": "gradient",
               "input": {"x": [0.0, 0.0], "min_runs": 5, "min_seconds": 0.0}}),
        json!({"id": 5, "kind": "analysis", "of": 4, "valid": false, "error": "a reason"}),
        json!({"id": 6, "kind": "define", "module": "kmeans"}),
        json!({"id": 7, "kind": "define", "module": "no-such-eval"}),
        json!({"id": 8, "kind": "evaluate", "module": "lse", "function": "hessian",
               "input": {"x": [1.0]}}),
        json!({"id": 9, "kind": "evaluate", "module": "lse", "function": "primal",
               "input": {"y": [1.0]}}),
        json!({"id": 10, "kind": "evaluate", "module": "hello", "function": "double", "input": 3.5}),
        json!({"id": 11, "kind": "something-new", "payload": [1, 2]}),
        json!({"id": 12, "kind": "end"}),
    ];
    let lines: Vec<String> = messages.iter().map(Value::to_string).collect();
    let responses = converse(&lines);
    assert_eq!(responses.len(), messages.len(), "{responses:#?}");
    for (i, r) in responses.iter().enumerate() {
        assert_eq!(r["id"], json!(i), "response {i}: {r}");
    }

    assert_eq!(responses[0]["tool"], "adjoint");
    assert_eq!(responses[1]["success"], true);

    // primal: ln(e + e² + e³), three runs, three timings, each of one run.
    let r = &responses[2];
    assert_eq!(r["success"], true);
    let want = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    assert!((r["output"].as_f64().unwrap() - want).abs() < 1e-14, "{r}");
    let t = timings(r);
    assert_eq!(t.len(), 3);
    assert!(
        t.iter()
            .all(|t| t["name"] == "evaluate" && t["nanoseconds"].is_u64()),
        "{r}"
    );

    // Analyses are acknowledged with the id alone.
    assert_eq!(responses[3], json!({"id": 3}));
    assert_eq!(responses[5], json!({"id": 5}));

    let r = &responses[4];
    assert_eq!(r["output"], json!([0.5, 0.5]));
    assert_eq!(timings(r).len(), 5);

    assert_eq!(responses[6]["success"], true, "{}", responses[6]);

    // Modules this tool lacks, unknown functions and bad inputs fail with a
    // reason, and the tool goes on.
    for (i, says) in [
        (7, "no module `no-such-eval`"),
        (8, "no function `hessian`"),
        (9, "missing field `x`"),
    ] {
        let r = &responses[i];
        assert_eq!(r["success"], false, "{r}");
        assert!(r["error"].as_str().unwrap().contains(says), "{r}");
        assert!(
            r.get("timings").is_none() && r.get("output").is_none(),
            "{r}"
        );
    }

    // hello's input is a bare number, run once.
    assert_eq!(responses[10]["output"], 7.0);
    assert_eq!(timings(&responses[10]).len(), 1);

    assert_eq!(responses[11], json!({"id": 11}));
    assert_eq!(responses[12], json!({"id": 12}));
}

#[test]
fn min_seconds_is_honoured_with_one_timing_per_run() {
    let x: Vec<f64> = (0..2000).map(|i| (i as f64 * 0.37).sin()).collect();
    let message = json!({"id": 0, "kind": "evaluate", "module": "lse", "function": "gradient",
                         "input": {"x": x, "min_runs": 2, "min_seconds": 0.05}});
    let responses = converse(&[message.to_string()]);
    let t = timings(&responses[0]);
    let total: u64 = t.iter().map(|t| t["nanoseconds"].as_u64().unwrap()).sum();
    assert!(t.len() >= 2, "{} runs", t.len());
    assert!(total >= 50_000_000, "the runs took {total} ns in all");
    assert_eq!(responses[0]["output"].as_array().unwrap().len(), 2000);
}

#[test]
fn a_line_that_is_not_a_message_is_answered_and_the_session_goes_on() {
    let responses = converse(&[
        "not json".to_string(),
        json!({"kind": "start"}).to_string(),
        json!({"id": 1, "kind": "start"}).to_string(),
    ]);
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0]["id"], Value::Null);
    assert_eq!(responses[0]["success"], false);
    assert!(responses[1]["error"]
        .as_str()
        .unwrap()
        .contains("missing field `id`"));
    assert_eq!(responses[2], json!({"id": 1, "tool": "adjoint"}));
}

#[test]
fn a_failed_evaluation_leaves_the_session_running() {
    let responses = converse(&[
        json!({"id": 0, "kind": "evaluate", "module": "lse", "function": "primal",
               "input": {"x": []}})
        .to_string(),
        json!({"id": 1, "kind": "evaluate", "module": "hello", "function": "square", "input": "two"})
            .to_string(),
        json!({"id": 2, "kind": "evaluate", "module": "hello", "function": "square", "input": 2.0})
            .to_string(),
    ]);
    assert_eq!(responses[0]["success"], false);
    assert!(responses[0]["error"]
        .as_str()
        .unwrap()
        .contains("at least one element"));
    assert_eq!(responses[1]["success"], false);
    assert!(responses[1]["error"]
        .as_str()
        .unwrap()
        .contains("`hello` input"));
    assert_eq!(responses[2]["output"], 4.0);
}
