//! The compile errors of `#[differentiable]`, pinned by trybuild: one mistake per file
//! in `tests/ui/`, the expected compiler output beside it; and in `tests/ui/pass/`,
//! programs that must build and run under `#![deny(warnings)]`. Regenerate with
//! `TRYBUILD=overwrite cargo test --test compiletest` and review every `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
