//! The GitHub Actions the generated workflows use, each pinned to the full commit SHA of one
//! release. This table is the only place a pin is written: the workflow templates name an action
//! (`{{ actions["actions/checkout"] }}`) and get `actions/checkout@<sha> # <version>`, so an
//! upgrade is one edit here (and the evidence row in `docs/templates.md`, which a test keeps in
//! step). Dependabot (`.github/dependabot.yml`, generated too) proposes newer pins to each service.

use std::collections::BTreeMap;

/// One action pinned to the commit its release tag pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionPin {
    /// `owner/repository` (optionally `/path` for an action in a subdirectory).
    pub action: &'static str,
    /// The release the commit is, as written in the trailing comment (`v7.0.1`).
    pub version: &'static str,
    /// Full 40-hex commit SHA.
    pub sha: &'static str,
}

impl ActionPin {
    /// What a workflow's `uses:` says: `owner/repo@<sha> # <version>`.
    pub fn uses(&self) -> String {
        format!("{}@{} # {}", self.action, self.sha, self.version)
    }
}

/// Every action of the generated workflows, sorted by name. Where each SHA comes from (the
/// action's own changelog at that commit, or other projects that pin it) is recorded in
/// `docs/templates.md`, "Pinned actions".
pub const ACTION_PINS: &[ActionPin] = &[
    ActionPin {
        action: "actions/checkout",
        version: "v7.0.1",
        sha: "3d3c42e5aac5ba805825da76410c181273ba90b1",
    },
    ActionPin {
        action: "aquasecurity/trivy-action",
        version: "v0.35.0",
        sha: "57a97c7e7821a5776cebc9bb87c984fa69cba8f1",
    },
    ActionPin {
        action: "aws-actions/amazon-ecr-login",
        version: "v2.1.7",
        sha: "03f1aad4c6c7ffd436567f42f9384779290529bd",
    },
    ActionPin {
        action: "aws-actions/amazon-ecs-deploy-task-definition",
        version: "v2.6.3",
        sha: "c465972ecbd160473f22e683363b422a5412a3de",
    },
    ActionPin {
        action: "aws-actions/amazon-ecs-render-task-definition",
        version: "v1.9.0",
        sha: "138c24f321fdbdf7edee4a685519d253cae2cdea",
    },
    ActionPin {
        action: "aws-actions/configure-aws-credentials",
        version: "v6.3.0",
        sha: "e1253824e5c10ff9df46874f81ed3ec929e19cfd",
    },
];

/// The `uses:` value of every pinned action, by action name, for the templates.
pub(crate) fn uses_by_action() -> BTreeMap<&'static str, String> {
    ACTION_PINS.iter().map(|p| (p.action, p.uses())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_full_shas_of_sorted_unique_actions() {
        for pin in ACTION_PINS {
            assert_eq!(pin.sha.len(), 40, "{pin:?}");
            assert!(
                pin.sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{pin:?}: not lowercase hex"
            );
            assert!(pin.version.starts_with('v'), "{pin:?}");
            assert_eq!(pin.action.matches('/').count(), 1, "{pin:?}");
        }
        let names: Vec<_> = ACTION_PINS.iter().map(|p| p.action).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "one pin per action, sorted");
    }
}
