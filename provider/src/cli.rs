//! The command line both binaries share. `pulumi-resource-multiarch` is started by the
//! Pulumi engine as
//! `pulumi-resource-multiarch [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS`.
//! Either binary (`terraform-provider-multiarch` is the same program) serves Terraform's
//! plugin protocol 6 when Terraform starts it (`TF_PLUGIN_MAGIC_COOKIE` in the environment).

/// Engine flags we accept; only the verbosity matters to us.
struct Args {
    verbosity: u8,
    engine_address: Option<String>,
    print_schema: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Args {
    let mut out = Args {
        verbosity: 0,
        engine_address: None,
        print_schema: false,
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        if let Some(v) = a.strip_prefix("-v=").or_else(|| a.strip_prefix("--v=")) {
            out.verbosity = v.parse().unwrap_or(0);
        } else if a == "-v" || a == "--v" {
            out.verbosity = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if a == "--tracing" || a == "-tracing" {
            args.next();
        } else if a == "--schema" {
            out.print_schema = true;
        } else if a.starts_with('-') {
            // --logtostderr, --logflow, --tracing=URL and friends.
        } else {
            out.engine_address = Some(a);
        }
    }
    out
}

/// Runs the provider until its engine lets it go.
pub fn main() -> anyhow::Result<()> {
    let args = parse_args(std::env::args().skip(1));
    if args.print_schema {
        print!("{}", crate::schema::package_schema_text());
        return Ok(());
    }
    let terraform = crate::terraform::started_by_terraform();
    let directive = std::env::var("MULTIARCH_LOG").ok();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(crate::log::filter(
            args.verbosity,
            terraform,
            directive.as_deref(),
        ))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if terraform {
        // Terraform reads the handshake from stdout and the provider log from stderr.
        return rt.block_on(crate::terraform::serve());
    }
    rt.block_on(crate::pulumi::serve(args.engine_address))
}
