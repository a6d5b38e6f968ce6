//! `adjoint-gradbench`: adjoint as a GradBench tool. It reads the protocol's
//! messages from stdin, one JSON object a line, and answers each on stdout.
//! See `README.md` beside this crate for running it inside GradBench.

use std::io::{self, BufRead, Write};

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let response = adjoint_gradbench::protocol::respond(&line);
        writeln!(out, "{response}")?;
        out.flush()?;
    }
    Ok(())
}
