use crate::common::{sample, SAMPLE};
use slipway_golden_paths::render_registration;

#[test]
fn rendering_twice_gives_identical_bytes() {
    assert_eq!(sample(), sample());
}

#[test]
fn rendering_in_parallel_threads_gives_identical_bytes() {
    let expected = sample();
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| render_registration(&SAMPLE).unwrap()))
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), expected);
    }
}

#[test]
fn output_depends_only_on_the_spec() {
    let other = render_registration(&slipway_golden_paths::ServiceSpec {
        name: "ledger",
        ..SAMPLE
    })
    .unwrap();
    // Same platform modules, different service files; rendering the other service in between
    // does not change the sample's output.
    let before = sample();
    assert_eq!(other.platform_files, before.platform_files);
    assert_ne!(other.artifacts, before.artifacts);
    assert_eq!(sample(), before);
}
