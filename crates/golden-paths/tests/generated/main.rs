//! Checks of the generated files: snapshots, determinism, and each file against the rules and
//! the tools of its own ecosystem (Terraform, Kubernetes, Jenkins).
//!
//! External checkers (`terraform`, `kubernetes-validate`, `npm-groovy-lint`) are looked up on
//! `PATH`; a missing one skips its check with a message, except when `CI` is set, where it fails.

mod common;
mod determinism;
mod escaping;
mod golden_files;
mod helm;
mod jenkins;
mod kubernetes;
mod scaffold;
mod service_files;
mod terraform;
