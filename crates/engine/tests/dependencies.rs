//! The engine never sees the wire: no gRPC, protobuf or HTTP crate is in its
//! dependency tree, so no engine type can be a wire type or return one.

#[test]
fn the_engine_does_not_depend_on_tonic_prost_or_hyper() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--package",
            "bulkhead-engine",
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
    assert!(tree.contains("hnsw_rs"), "the tree was read: {tree}");
    for banned in ["tonic", "prost", "hyper", "h2 ", "bulkhead-client"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "bulkhead-engine depends on {banned}: {tree}"
        );
    }
}
