//! Build context: walk with .dockerignore rules, contextHash.
