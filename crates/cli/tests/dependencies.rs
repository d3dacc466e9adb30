//! The command line is a client: it reaches the server through the SDK only.

#[test]
fn the_cli_depends_on_the_sdk_and_not_on_the_engine_or_storage() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--package",
            "bulkhead-cli",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("tonic"), "the tree was read: {tree}");
    assert!(
        tree.contains("bulkhead-client"),
        "the tree was read: {tree}"
    );
    for banned in [
        "bulkhead-engine",
        "bulkhead-storage",
        "bulkhead v",
        "rocksdb",
        "librocksdb-sys",
        "hnsw_rs",
        "candle",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "bulkhead-cli depends on {banned}"
        );
    }
}
