//! The wire types and clients of proto/, compiled with protox (pure Rust).
//! The server crate reuses these message types and generates only its
//! service traits.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto");
    let descriptors = protox::compile(
        [
            "bulkhead/v1/tenant.proto",
            "bulkhead/v1/filter.proto",
            "bulkhead/v1/points_service.proto",
            "bulkhead/v1/admin_service.proto",
            "bulkhead/v1/embedder_service.proto",
        ],
        ["../proto"],
    )?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
