//! What each crate must never import (ARCHITECTURE.md, "What each crate
//! must never import"), read from `cargo tree`: a dependency that breaks
//! the layering fails here rather than in review.

/// A crate, a dependency its tree must show (so the tree was read), and
/// the crates that must not be in it.
const RULES: &[(&str, &str, &[&str])] = &[
    // The engine never sees the wire: no engine type can be a wire type.
    (
        "bulkhead-engine",
        "hnsw_rs",
        &["tonic", "prost", "hyper", "h2 ", "bulkhead-client"],
    ),
    // Storage knows tenants only by incarnation, and nothing of the wire.
    (
        "bulkhead-storage",
        "rocksdb",
        &[
            "bulkhead-engine",
            "bulkhead-client",
            "tonic",
            "prost",
            "hyper",
        ],
    ),
    // The CLI is a client of the public API like any other.
    (
        "bulkhead-cli",
        "bulkhead-client",
        &[
            "bulkhead-engine",
            "bulkhead-storage",
            "bulkhead v",
            "rocksdb",
            "librocksdb-sys",
            "hnsw_rs",
            "candle",
        ],
    ),
    // Applications link the SDK: none of the server's heavy parts.
    (
        "bulkhead-client",
        "tonic",
        &[
            "rocksdb",
            "librocksdb-sys",
            "hnsw_rs",
            "candle",
            "bulkhead-storage",
            "bulkhead-engine",
        ],
    ),
    // The sidecar sees texts and returns vectors: it cannot reach stored
    // data.
    (
        "bulkhead-embedder",
        "candle-core",
        &[
            "bulkhead-engine",
            "bulkhead-storage",
            "rocksdb",
            "librocksdb-sys",
            "hnsw_rs",
        ],
    ),
];

#[test]
fn no_crate_imports_what_its_layer_forbids() {
    for &(package, present, banned) in RULES {
        let output = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--edges",
                "normal,build",
                "--prefix",
                "none",
                "--package",
                package,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{package}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8(output.stdout).unwrap();
        assert!(
            tree.lines().any(|l| l.starts_with(present)),
            "{package}: the tree was read: {tree}"
        );
        for banned in banned {
            assert!(
                !tree.lines().any(|l| l.starts_with(banned)),
                "{package} depends on {banned}: {tree}"
            );
        }
    }
}
