//! The command line both binaries share (`terraform-provider-multiarch` is the same program
//! as `pulumi-resource-multiarch`).
//!
//! - Pulumi starts the plugin as
//!   `pulumi-resource-multiarch [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS`
//!   (its `buildPluginArguments`: the logging flags only when it flows logs, then the engine's
//!   `host:port`); the plugin prints its own port on stdout and serves the ResourceProvider.
//! - Terraform starts it without arguments and with `TF_PLUGIN_MAGIC_COOKIE` set; it then
//!   serves plugin protocol 6 (go-plugin handshake on stdout).
//! - `--version`, `--help`, `--schema` and `--docs DIR` print or write and exit; anything
//!   else on the command line is a usage error (exit code 2), never a server that waits.

use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Serve one of the plugin protocols (the Terraform one when Terraform started us).
    Serve {
        /// `-v=N`: how much the plugin logs.
        verbosity: u8,
        /// The Pulumi engine's `host:port`; `None` when Terraform started us.
        engine_address: Option<String>,
    },
    /// Print the version.
    Version,
    /// Print the usage text.
    Help,
    /// Print the Pulumi package schema.
    Schema,
    /// Write the registry-style docs into a directory.
    Docs(PathBuf),
}

/// A command line we refuse, with the reason shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Go's flag package (which the engine's own flags follow) takes `-name` and `--name` alike.
fn flag_name(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    (!rest.is_empty()).then_some(rest)
}

fn parse_verbosity(v: &str) -> Result<u8, UsageError> {
    v.parse::<u32>()
        .map(|n| n.min(u32::from(u8::MAX)) as u8)
        .map_err(|_| UsageError(format!("-v needs a number (a log level), got {v:?}")))
}

fn parse_bool(name: &str, v: &str) -> Result<(), UsageError> {
    match v {
        "1" | "0" | "t" | "f" | "T" | "F" | "true" | "false" | "TRUE" | "FALSE" | "True"
        | "False" => Ok(()),
        _ => Err(UsageError(format!(
            "--{name} takes true or false, got {v:?}"
        ))),
    }
}

/// Whether `s` is an engine address as Pulumi passes it: `host:port` (`127.0.0.1:43551`,
/// `localhost:5000`, `[::1]:5000`), nothing else (no scheme, no path).
pub(crate) fn is_engine_address(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p > 0 && p <= 65535);
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    port_ok && host_ok
}

/// Records the command a flag asks for; `--help` wins over whatever else is on the line.
fn set_action(c: Command, action: &mut Option<Command>) -> Result<(), UsageError> {
    match action {
        Some(Command::Help) => Ok(()),
        _ if c == Command::Help => {
            *action = Some(c);
            Ok(())
        }
        Some(prev) if *prev != c => Err(UsageError(format!(
            "{} and {} cannot be combined",
            describe(prev),
            describe(&c)
        ))),
        _ => {
            *action = Some(c);
            Ok(())
        }
    }
}

/// A positional argument: the engine's address (only one).
fn positional(arg: String, prev: Option<&str>) -> Result<String, UsageError> {
    if arg == "-" {
        return Err(UsageError("unexpected argument \"-\"".into()));
    }
    if !is_engine_address(&arg) {
        return Err(UsageError(format!(
            "unexpected argument {arg:?}: the only argument is the Pulumi engine's \
             address (host:port), which the engine passes itself"
        )));
    }
    if let Some(prev) = prev {
        return Err(UsageError(format!(
            "more than one engine address ({prev:?} and {arg:?})"
        )));
    }
    Ok(arg)
}

/// Parses the arguments after the program name.
pub(crate) fn parse_args<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut verbosity = 0u8;
    let mut engine_address: Option<String> = None;
    let mut action: Option<Command> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = flag_name(&arg) else {
            engine_address = Some(positional(arg, engine_address.as_deref())?);
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        let mut value_or_next = |what: &str| -> Result<String, UsageError> {
            match &value {
                Some(v) => Ok(v.clone()),
                None => args
                    .next()
                    .ok_or_else(|| UsageError(format!("--{name} needs {what}"))),
            }
        };
        let no_value = |value: &Option<String>| match value {
            Some(_) => Err(UsageError(format!("--{name} takes no value"))),
            None => Ok(()),
        };
        match name {
            "version" => {
                no_value(&value)?;
                set_action(Command::Version, &mut action)?;
            }
            "help" | "h" => {
                no_value(&value)?;
                set_action(Command::Help, &mut action)?;
            }
            "schema" => {
                no_value(&value)?;
                set_action(Command::Schema, &mut action)?;
            }
            "docs" => {
                let dir = value_or_next("a directory")?;
                set_action(Command::Docs(PathBuf::from(dir)), &mut action)?;
            }
            "v" => verbosity = parse_verbosity(&value_or_next("a number (a log level)")?)?,
            "tracing" => {
                value_or_next("a URL")?;
            }
            // Logging flags the engine (and glog-style tooling) passes; we log to stderr anyway.
            "logtostderr" | "alsologtostderr" | "logflow" => {
                if let Some(v) = &value {
                    parse_bool(name, v)?;
                }
            }
            _ => {
                return Err(UsageError(format!("unknown flag {arg}")));
            }
        }
    }
    Ok(match action {
        Some(Command::Help) => Command::Help,
        Some(c) => {
            if let Some(addr) = engine_address {
                return Err(UsageError(format!(
                    "{} takes no engine address (got {addr:?})",
                    describe(&c)
                )));
            }
            c
        }
        None => Command::Serve {
            verbosity,
            engine_address,
        },
    })
}

fn describe(c: &Command) -> &'static str {
    match c {
        Command::Version => "--version",
        Command::Help => "--help",
        Command::Schema => "--schema",
        Command::Docs(_) => "--docs",
        Command::Serve { .. } => "serving",
    }
}

/// The version both binaries report.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `--help` text.
pub(crate) fn usage(prog: &str) -> String {
    format!(
        "\
{prog} {VERSION}: the multiarch provider (multi-architecture container images) for
Pulumi and Terraform. One program under two names: pulumi-resource-multiarch and
terraform-provider-multiarch. You normally never run it yourself: Pulumi or Terraform do.

Usage:
  {prog} [--logtostderr] [-v=N] [--tracing URL] ENGINE_ADDRESS
      Pulumi resource plugin, as the Pulumi engine starts it: ENGINE_ADDRESS is the
      engine's host:port. Prints the port it serves the ResourceProvider on, then serves
      until the engine lets it go. Without ENGINE_ADDRESS it serves all the same (for
      PULUMI_DEBUG_PROVIDERS=\"multiarch:<port>\").
  TF_PLUGIN_MAGIC_COOKIE=… {prog}
      Terraform provider (plugin protocol 6), as Terraform starts it: the magic cookie in
      the environment selects it; the go-plugin handshake goes to stdout.
  {prog} --schema        print the Pulumi package schema (JSON) and exit
  {prog} --docs DIR      write the registry docs (index.md, resources/, Pulumi pages) into DIR
  {prog} --version       print the version and exit
  {prog} --help          print this help and exit

Flags (Go flag syntax: -flag and --flag are the same, values as -flag=value or -flag value):
  -v=N                 log verbosity: 0 warnings (info under Terraform), 1-3 info, 4-8 debug,
                       9+ trace; MULTIARCH_LOG=<tracing filter> overrides it
  --logtostderr        accepted for the engine; logs always go to stderr
  --tracing URL        accepted for the engine (tracing endpoint); not used
  --logflow            accepted for the engine; not used

Anything else is a usage error (exit code 2).
"
    )
}

fn program_name() -> String {
    std::env::args()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pulumi-resource-multiarch")
        .to_owned()
}

/// Runs the provider until its engine lets it go.
pub fn main() -> anyhow::Result<()> {
    let prog = program_name();
    let (verbosity, engine_address) = match parse_args(std::env::args().skip(1)) {
        Err(e) => {
            eprintln!("{prog}: {e}\nRun `{prog} --help` for usage.");
            std::process::exit(2);
        }
        Ok(Command::Version) => {
            println!("{prog} {VERSION}");
            return Ok(());
        }
        Ok(Command::Help) => {
            print!("{}", usage(&prog));
            return Ok(());
        }
        Ok(Command::Schema) => {
            print!("{}", crate::schema::package_schema_text());
            return Ok(());
        }
        Ok(Command::Docs(dir)) => {
            for path in crate::docs::write(&dir)? {
                println!("{}", path.display());
            }
            return Ok(());
        }
        Ok(Command::Serve {
            verbosity,
            engine_address,
        }) => (verbosity, engine_address),
    };
    let terraform = crate::terraform::started_by_terraform();
    let directive = std::env::var("MULTIARCH_LOG").ok();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(crate::log::filter(
            verbosity,
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
    rt.block_on(crate::pulumi::serve(engine_address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    fn serve(v: u8, addr: Option<&str>) -> Command {
        Command::Serve {
            verbosity: v,
            engine_address: addr.map(str::to_owned),
        }
    }

    #[test]
    fn what_the_engine_passes() {
        // buildPluginArguments: [--logtostderr] [-v=N] [--tracing URL] then host.ServerAddr().
        assert_eq!(
            parse(&["127.0.0.1:43551"]),
            Ok(serve(0, Some("127.0.0.1:43551")))
        );
        assert_eq!(
            parse(&["--logtostderr", "-v=9", "127.0.0.1:1"]),
            Ok(serve(9, Some("127.0.0.1:1")))
        );
        assert_eq!(
            parse(&[
                "--logtostderr",
                "-v=3",
                "--tracing",
                "http://127.0.0.1:9411/api/v1/spans",
                "[::1]:5000"
            ]),
            Ok(serve(3, Some("[::1]:5000")))
        );
        assert_eq!(
            parse(&["--v=5", "--tracing=file:/tmp/t", "--logflow", "localhost:8"]),
            Ok(serve(5, Some("localhost:8")))
        );
        assert_eq!(parse(&["-v", "2", "-logtostderr=true"]), Ok(serve(2, None)));
        assert_eq!(parse(&["--alsologtostderr"]), Ok(serve(0, None)));
        // No arguments: Terraform's way, or a provider started for PULUMI_DEBUG_PROVIDERS.
        assert_eq!(parse(&[]), Ok(serve(0, None)));
        assert_eq!(parse(&["-v=1000"]), Ok(serve(255, None)));
    }

    #[test]
    fn actions() {
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
        assert_eq!(parse(&["-version"]), Ok(Command::Version));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--schema"]), Ok(Command::Schema));
        assert_eq!(parse(&["--docs", "out"]), Ok(Command::Docs("out".into())));
        assert_eq!(parse(&["--docs=out"]), Ok(Command::Docs("out".into())));
        // Help wins over whatever else is valid on the line.
        assert_eq!(parse(&["--version", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-v=9", "--version"]), Ok(Command::Version));
    }

    #[test]
    fn refusals() {
        for (args, needle) in [
            (&["version"][..], "unexpected argument \"version\""),
            (&["help"][..], "unexpected argument \"help\""),
            (&["http://version"][..], "unexpected argument"),
            (&["127.0.0.1"][..], "unexpected argument"),
            (&["127.0.0.1:0"][..], "unexpected argument"),
            (&["127.0.0.1:70000"][..], "unexpected argument"),
            (&["--bogus"][..], "unknown flag --bogus"),
            (&["-x"][..], "unknown flag -x"),
            (&["--version=1"][..], "--version takes no value"),
            (&["-v=high"][..], "-v needs a number"),
            (&["-v"][..], "--v needs a number"),
            (&["--tracing"][..], "--tracing needs a URL"),
            (&["--docs"][..], "--docs needs a directory"),
            (
                &["--logtostderr=maybe"][..],
                "--logtostderr takes true or false",
            ),
            (
                &["127.0.0.1:1", "127.0.0.1:2"][..],
                "more than one engine address",
            ),
            (&["--schema", "--version"][..], "cannot be combined"),
            (
                &["--schema", "127.0.0.1:1"][..],
                "--schema takes no engine address",
            ),
            (&["-"][..], "unexpected argument"),
        ] {
            match parse(args) {
                Err(UsageError(msg)) => {
                    assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}")
                }
                Ok(c) => panic!("{args:?} parsed as {c:?}"),
            }
        }
    }

    #[test]
    fn engine_addresses() {
        for ok in [
            "127.0.0.1:43551",
            "localhost:1",
            "[::1]:65535",
            "my-host.local:80",
        ] {
            assert!(is_engine_address(ok), "{ok}");
        }
        for bad in [
            "version",
            ":80",
            "host:",
            "host:x",
            "http://h:1",
            "h:1/path",
            "[]:1",
            "h:000000001",
        ] {
            assert!(!is_engine_address(bad), "{bad}");
        }
    }

    #[test]
    fn usage_names_both_modes_and_the_flags() {
        let u = usage("pulumi-resource-multiarch");
        for s in [
            "ENGINE_ADDRESS",
            "TF_PLUGIN_MAGIC_COOKIE",
            "--schema",
            "--docs",
            "--version",
            "-v=N",
            "--logtostderr",
            "--tracing URL",
            VERSION,
        ] {
            assert!(u.contains(s), "usage lacks {s}");
        }
    }
}
