//! Finds the functions' binaries: builds them with cargo (one invocation, the shared target
//! directory) and reads where cargo put each executable from its JSON messages.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::template::Error;

/// Executables by binary name.
pub type Binaries = HashMap<String, PathBuf>;

/// Runs `cargo build --bins <selection…>` in `workspace` (its progress goes to stderr) and
/// returns every executable it produced or found fresh. `selection` is what to build, e.g.
/// `["-p", "local-api", "-p", "get-profile"]` or `["--workspace"]`.
pub fn build(workspace: &Path, selection: &[&str], release: bool) -> Result<Binaries, Error> {
    // `CARGO` is the cargo that started us under `cargo run`; the same toolchain builds the
    // functions.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // `cargo run` and `cargo test` give the program they run variables that describe its own
    // package. Some build scripts (ring's) declare `rerun-if-env-changed` on the same names,
    // so passing them on would make this build rerun those scripts and recompile everything
    // above them, every time, alternately with the user's own cargo commands.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let describes_us = name.starts_with("CARGO_PKG_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            );
        if describes_us {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(workspace)
        .args([
            "build",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .args(selection)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if release {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut found = Binaries::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            if let (Some(name), Some(exe)) =
                (msg["target"]["name"].as_str(), msg["executable"].as_str())
            {
                found.insert(name.to_owned(), PathBuf::from(exe));
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})").into());
    }
    Ok(found)
}

/// The executables already in `dir` (for `--bin-dir`: binaries built elsewhere, such as
/// `cargo lambda build` output laid out as `<dir>/<binary>/bootstrap`, or a plain
/// `target/debug`).
pub fn in_dir(dir: &Path, names: &[String]) -> Result<Binaries, Error> {
    let mut found = Binaries::new();
    for name in names {
        let candidates = [dir.join(name), dir.join(name).join("bootstrap")];
        let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
            return Err(format!(
                "{}: no binary {name:?} (nor {name}/bootstrap)",
                dir.display()
            )
            .into());
        };
        found.insert(name.clone(), path);
    }
    Ok(found)
}
