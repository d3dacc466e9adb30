//! README.md's shell blocks, run in order and as written, in one shell, as a
//! new user types them beside `make run`: a fresh server with its defaults
//! (its own admin token file, the local embedder) in the current directory.
//! A block preceded by `<!-- readme test: skip (why) -->` is not run.

use std::process::{Command, Stdio};

use crate::common::spawn_serving;

const SKIP: &str = "<!-- readme test: skip";

/// The `sh` blocks of `markdown` that are not marked to skip.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    let mut previous = "";
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            if !previous.starts_with(SKIP) {
                blocks.push(body.join("\n"));
            }
        }
        if !line.trim().is_empty() {
            previous = line.trim();
        }
    }
    blocks
}

#[test]
fn readme_shell_blocks_run_as_written() {
    let readme = include_str!("../../README.md");
    let blocks = shell_blocks(readme);
    assert!(
        blocks.len() >= 3,
        "README.md's runnable sh blocks: {blocks:?}"
    );

    // `make run` in a fresh directory: every default, no admin token given.
    let dir = tempfile::tempdir().unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_bulkhead"));
    let mut serve = Command::new(binary);
    serve
        .arg("serve")
        .current_dir(dir.path())
        .env("BULKHEAD_LISTEN", "127.0.0.1:0")
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .env_remove("BULKHEAD_CONFIG")
        .env_remove("BULKHEAD_DATA_DIR")
        .env_remove("BULKHEAD_EMBEDDERS")
        .env_remove("BULKHEAD_NO_LOCAL_EMBEDDER");
    let (_server, url, log) = spawn_serving(serve, crate::common::SERVER_READY);
    let started = std::time::Instant::now();
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("local embedder started"))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the local embedder did not start (is the model in ~/.cache/bulkhead/models? scripts/setup.sh puts it there): {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // The shell the README speaks to: `bulkhead` comes on PATH from
    // `$CARGO_TARGET_DIR/release`, as the README's first line puts it there;
    // here that is this build's binary, whatever its profile.
    let target = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binary.parent().unwrap(), target.path().join("release")).unwrap();
    let script = format!("set -euo pipefail\n{}\n", blocks.join("\n"));
    let out = Command::new("timeout")
        .args(["300", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", target.path())
        .env("BULKHEAD_ADDR", &url)
        .env_remove("BULKHEAD_ADMIN_TOKEN")
        .env_remove("BULKHEAD_TOKEN")
        .env_remove("BULKHEAD_TENANT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "README.md's shell blocks failed:\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What the blocks print: the document found by vector search with a
    // filter, the note found by text search, an embedding of the model.
    assert!(
        stdout.contains("\"n1\""),
        "the notes search found n1: {stdout}"
    );
    assert!(
        stdout.contains("\"vector\""),
        "embed printed a vector: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("a")),
        "the docs search printed its hit `a`: {stdout}"
    );
}
