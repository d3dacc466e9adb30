//! The CLI (`bulkhead admin`, `bulkhead client`) against the real server.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::{ADMIN, TestServer};

/// Runs the CLI against the server at `url`.
pub fn bulkhead(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .env("BULKHEAD_ADDR", url)
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env("BULKHEAD_TOKEN", token)
        .env_remove("BULKHEAD_TENANT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed and print JSON.
pub fn json(url: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Value {
    let out = bulkhead(url, token, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_client_commands_end_to_end() {
    let server = TestServer::start().await;
    let created = json(
        &server.url,
        "",
        &[
            "admin", "tenant", "create", "cli-t", "--dim", "3", "--metric", "l2", "--json",
        ],
        None,
    );
    assert_eq!(
        (
            created["name"].as_str(),
            created["dimension"].as_u64(),
            created["metric"].as_str()
        ),
        (Some("cli-t"), Some(3), Some("l2"))
    );
    let issued = json(
        &server.url,
        "",
        &["admin", "token", "issue", "cli-t", "--json"],
        None,
    );
    let token = issued["token"].as_str().unwrap().to_string();
    assert!(issued["id"].as_str().is_some_and(|id| token.contains(id)));

    let lines = r#"{"id": "a", "vector": [1, 0, 0], "payload": {"color": "red"}}
{"id": "b", "vector": [0, 1, 0], "payload": {"color": "blue"}}

{"id": "c", "vector": [0, 0, 1], "text": "plain c"}
"#;
    let up = json(
        &server.url,
        &token,
        &[
            "client", "--tenant", "cli-t", "upsert", "--file", "-", "--batch", "2", "--json",
        ],
        Some(lines),
    );
    assert_eq!(up["upserted"], 3);
    let hits = json(
        &server.url,
        &token,
        &[
            "client",
            "--tenant",
            "cli-t",
            "search",
            "--vector",
            "[0.9, 0.2, 0]",
            "-k",
            "2",
            "--json",
        ],
        None,
    );
    let ids: Vec<&str> = hits["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let filtered = json(
        &server.url,
        &token,
        &[
            "client",
            "--tenant",
            "cli-t",
            "search",
            "--vector",
            "[0.9, 0.2, 0]",
            "--filter",
            r#"{"must": [{"key": "color", "match": {"value": "blue"}}]}"#,
            "--json",
        ],
        None,
    );
    assert_eq!(filtered["points"][0]["id"], "b");
    assert_eq!(filtered["points"].as_array().unwrap().len(), 1);
    let got = json(
        &server.url,
        &token,
        &["client", "--tenant", "cli-t", "get", "a", "zz", "--json"],
        None,
    );
    assert_eq!(got["points"][0]["payload"]["color"], "red");
    let page = json(
        &server.url,
        &token,
        &[
            "client", "--tenant", "cli-t", "scroll", "--limit", "2", "--json",
        ],
        None,
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = json(
        &server.url,
        &token,
        &[
            "client", "--tenant", "cli-t", "scroll", "--cursor", &cursor, "--json",
        ],
        None,
    );
    assert_eq!(rest["points"][0]["id"], "c");
    assert_eq!(rest["points"][0]["text"], "plain c");
    assert_eq!(
        json(
            &server.url,
            &token,
            &["client", "--tenant", "cli-t", "delete", "a", "--json"],
            None
        )["deleted"],
        1
    );
    assert_eq!(
        json(
            &server.url,
            &token,
            &["client", "--tenant", "cli-t", "count", "--json"],
            None
        )["count"],
        2
    );
    let list = json(
        &server.url,
        "",
        &["admin", "tenant", "list", "--json"],
        None,
    );
    assert_eq!(list["tenants"][0]["points"], 2);
    let tokens = json(
        &server.url,
        "",
        &["admin", "token", "list", "cli-t", "--json"],
        None,
    );
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);

    // Failures: non-zero exit and one line on stderr that says what is wrong.
    let deep_filter = (0..10).fold(r#"{"must": []}"#.to_string(), |inner, _| {
        format!(r#"{{"must": [{inner}]}}"#)
    });
    for (args, needle, token) in [
        (
            vec!["client", "--tenant", "cli-t", "search", "--vector", "[1]"],
            "vector has 1 dimensions",
            token.as_str(),
        ),
        (
            vec!["client", "--tenant", "cli-t", "count"],
            "unauthenticated",
            "bht_bogus",
        ),
        (
            vec![
                "client",
                "--tenant",
                "cli-t",
                "search",
                "--vector",
                "[1,0,0]",
                "--filter",
                "{\"mus\": []}",
            ],
            "unknown clause",
            token.as_str(),
        ),
        (
            // Well formed, so the CLI sends it; the server refuses it.
            vec![
                "client",
                "--tenant",
                "cli-t",
                "count",
                "--filter",
                deep_filter.as_str(),
            ],
            "invalid argument: invalid filter: filters nest at most",
            token.as_str(),
        ),
        (
            vec!["client", "--tenant", "cli-t", "upsert", "--file", "-"],
            "line 1",
            token.as_str(),
        ),
    ] {
        let out = bulkhead(&server.url, token, &args, Some("{\"id\": 1}\n"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
    let dropped = json(
        &server.url,
        "",
        &["admin", "tenant", "drop", "cli-t", "--json"],
        None,
    );
    assert_eq!(dropped["dropped"], "cli-t");
    let help = bulkhead(&server.url, "", &["client", "search", "--help"], None);
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--filter"));
    server.stop().await;
}
