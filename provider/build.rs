//! Compiles the Terraform plugin protocol subset and the containerd content service subset in `proto/` with protox (no system protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin6.proto",
        "proto/go_plugin.proto",
        "proto/content.proto",
    ];
    println!("cargo:rerun-if-env-changed=MULTIARCH_RELEASE_URL");
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
