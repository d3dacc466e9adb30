//! Compiles proto/ with protox (pure Rust): nobody needs protoc. Also writes
//! the encoded descriptor set that gRPC server reflection serves.

#![allow(clippy::disallowed_methods)] // a build script's errors are shown with their context

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/bulkhead/v1/tenant.proto",
        "proto/bulkhead/v1/filter.proto",
        "proto/bulkhead/v1/points_service.proto",
        "proto/bulkhead/v1/admin_service.proto",
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
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
