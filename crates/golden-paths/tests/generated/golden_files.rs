//! Every generated file of the sample service, pinned: a snapshot per file to review what
//! changed, and one hash over all of them so that no change can slip through unnoticed.

use crate::common::{all_files, sample, text};
use sha2::{Digest, Sha256};

/// SHA-256 over every generated file of the sample service (paths, lengths and contents).
/// When it changes on purpose: review the snapshots, bump the template's `version` (or
/// `MODULES_VERSION`), update this.
const SAMPLE_BUNDLE_SHA256: &str =
    "bcec9a90ce542d15b7182b80f16a1f78ff0a95a1ae6e0a2eec5756d776057700";

fn snapshot_name(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[test]
fn every_file_matches_its_snapshot() {
    let rendered = sample();
    let mut count = 0;
    for artifact in all_files(&rendered) {
        insta::with_settings!({
            description => artifact.path.as_str(),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(snapshot_name(&artifact.path), text(artifact));
        });
        count += 1;
    }
    assert_eq!(
        count, 59,
        "a file was added or removed: add or remove its snapshot"
    );
}

fn bundle_sha256() -> String {
    let rendered = sample();
    let mut hasher = Sha256::new();
    for artifact in all_files(&rendered) {
        hasher.update(artifact.path.as_bytes());
        hasher.update([0]);
        hasher.update(artifact.generator.as_bytes());
        hasher.update([0]);
        hasher.update((artifact.content.len() as u64).to_be_bytes());
        hasher.update(&artifact.content);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_whole_output_has_the_pinned_hash() {
    assert_eq!(
        bundle_sha256(),
        SAMPLE_BUNDLE_SHA256,
        "the generated files changed: review the snapshots, bump the template version if the \
         change is intended, and pin the new hash"
    );
}

/// The other templates' service files (their shared modules are the default's).
#[test]
fn every_template_matches_its_snapshots() {
    let set = slipway_golden_paths::TemplateSet::builtin().unwrap();
    for template in set.names().into_iter().filter(|t| t != "default") {
        let rendered = set.render(&crate::common::SAMPLE, &template).unwrap();
        for artifact in &rendered.artifacts {
            insta::with_settings!({
                description => artifact.path.as_str(),
                omit_expression => true,
                prepend_module_to_snapshot => false,
            }, {
                insta::assert_snapshot!(
                    format!("{template}__{}", snapshot_name(&artifact.path)),
                    text(artifact)
                );
            });
        }
    }
}
