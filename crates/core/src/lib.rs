//! Slipway's domain: names and the rules they follow, catalog records, the deployment state machine.
//! No I/O lives here.

pub mod deployment;
pub mod engine;
pub mod identity;
pub mod model;
pub mod scaffold;
pub mod validate;

pub use deployment::{DeploymentStatus, SeedDeploymentStatus};
pub use engine::*;
pub use identity::*;
pub use model::*;
pub use scaffold::{ScaffoldPush, ScaffoldPushStatus};
pub use validate::{FieldError, ValidationErrors};
