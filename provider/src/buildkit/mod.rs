//! BuildKit client: transports, session services, solve, progress.
