//! The SDK must not drag the server's heavy parts into applications.

#[test]
fn the_sdk_does_not_depend_on_rocksdb_hnsw_or_candle() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--package",
            "bulkhead-client",
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
    for banned in [
        "rocksdb",
        "librocksdb-sys",
        "hnsw_rs",
        "candle",
        "bulkhead-storage",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "bulkhead-client depends on {banned}"
        );
    }
}
