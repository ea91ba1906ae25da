//! multiarch: a provider for multi-architecture container images.
//!
//! The public surface is deliberate: the binaries' entry point (`cli::main`), and what the
//! integration tests in `provider/tests` drive directly: the BuildKit client (with the
//! Engine endpoint and secret types it takes), the `.dockerignore` matcher, the reference
//! and platform parsers, property paths and loggers. Everything else is crate-private, and
//! every public item is documented (`missing_docs`, an error under CI's `-D warnings`).

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

mod context;
mod credentials;
mod docker;
mod docs;
mod ecr;
mod host;
mod model;
mod net;
mod pulumi;
mod registry;
mod remote_context;
mod resources;
mod schema;
mod secret;
mod terraform;
mod tls;

pub mod buildkit;
pub mod cli;
mod config;
pub mod dockerignore;
pub mod log;
pub mod platform;
pub mod reference;

/// Property paths (`registries[0].password`), as both fronts address values.
pub mod path;
