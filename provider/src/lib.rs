//! multiarch: a provider for multi-architecture container images.

pub mod buildkit;
pub mod cli;
pub mod config;
pub mod context;
pub mod dockerignore;
pub mod docs;
pub mod ecr;
pub mod log;
pub mod model;
pub mod net;
pub mod platform;
pub mod pulumi;
pub mod reference;
pub mod registry;
pub mod resources;
pub mod schema;
pub mod secret;
pub mod terraform;
