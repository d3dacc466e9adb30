//! The EmbedderService server trait, generated with protox (pure Rust). The
//! message types come from bulkhead-client, so the wire types exist once.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto");
    let descriptors = protox::compile(["bulkhead/v1/embedder_service.proto"], ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .extern_path(".bulkhead.v1", "::bulkhead_client::proto")
        .compile_fds(descriptors)?;
    Ok(())
}
