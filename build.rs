//! Generates the server traits of proto/ with protox (pure Rust: nobody needs
//! protoc). The message types come from bulkhead-client, so the wire types
//! exist once. Also writes the descriptor set that server reflection serves.

#![allow(clippy::disallowed_methods)] // a build script's errors are shown with their context

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "bulkhead/v1/tenant.proto",
        "bulkhead/v1/filter.proto",
        "bulkhead/v1/points_service.proto",
        "bulkhead/v1/admin_service.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("bulkhead_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .extern_path(".bulkhead.v1", "::bulkhead_client::proto")
        .compile_fds(descriptors)?;
    Ok(())
}
