//! Checks of the generated files: snapshots, determinism, and each file against the rules and
//! the tools of its own ecosystem (Terraform, Kubernetes, Jenkins).
//!
//! External checkers (`kubernetes-validate`, `npm-groovy-lint`, `checkov`, Helm through the
//! `helm-python-sdk` module, …) are looked up on `PATH`; a missing one skips its check with a
//! message, except when `CI` is set, where it fails (Terraform, which no reachable registry
//! ships, is skipped in CI too).

mod common;
mod determinism;
mod escaping;
mod golden_files;
mod helm;
mod jenkins;
mod kubernetes;
mod observability;
mod scaffold;
mod service_files;
mod terraform;
