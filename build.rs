//! Compiles proto/ with protox (pure Rust): nobody needs protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/bulkhead/v1/tenant.proto"];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
