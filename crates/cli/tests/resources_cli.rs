//! `slipway deploy --memory/--cpu` on the real binary: quantities as Kubernetes writes them reach
//! the API as MiB and thousandths of a CPU; a bad quantity is a usage error before anything is
//! sent; more than a deployment may use is refused (403, exit 9) naming the quota.

mod common;

#[test]
fn deploy_takes_memory_and_cpu_quantities() {
    let tmp = tempfile::tempdir().unwrap();
    let server = common::Server::start(
        &tmp.path().join("data"),
        &["--max-memory-per-deployment", "1Gi"],
    );
    let out = server.ok(&[
        "service",
        "create",
        "sized",
        "--team",
        "core",
        "--repo-url",
        "https://github.com/example/sized.git",
    ]);
    assert!(out.stdout.contains("sized"), "{}", out.all());

    let d = server
        .ok(&[
            "-o", "json", "deploy", "sized", "--memory", "0.25Gi", "--cpu", "250m",
        ])
        .json();
    assert_eq!(d["resources"]["memory_mb"], 256, "{d}");
    assert_eq!(d["resources"]["cpu_millis"], 250, "{d}");

    let out = server.cli(&["deploy", "sized", "--memory", "12Zi"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("--memory"), "{}", out.all());

    let out = server.cli(&["deploy", "sized", "--replicas", "3", "--memory", "512Mi"]);
    assert_eq!(out.code, 9, "{}", out.all());
    assert!(
        out.stderr.contains("max_memory_per_deployment = 1024 MiB"),
        "{}",
        out.all()
    );
}
