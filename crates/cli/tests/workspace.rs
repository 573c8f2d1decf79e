//! README's first command is `cargo run --release -- up`: that only works while the workspace has
//! exactly one binary target. Load generators and tools go in `examples/`.

#[test]
fn the_workspace_has_exactly_one_binary() {
    let crates = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut with_binaries = Vec::new();
    for entry in std::fs::read_dir(crates).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        if manifest.contains("[[bin]]")
            || dir.join("src/main.rs").exists()
            || dir.join("src/bin").exists()
        {
            with_binaries.push(dir.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    assert_eq!(
        with_binaries,
        ["cli"],
        "only crates/cli may build a binary (`slipway`)"
    );
}
