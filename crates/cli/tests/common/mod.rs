//! Running the built `switchboard` binary from tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `switchboard` with `args` from the workspace root, without `RUST_LOG`.
pub fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("RUST_LOG")
        .output()
        .expect("run switchboard")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
