//! Property-style tests: the analyzer never panics on arbitrary repositories, and a `DirFs` never
//! returns anything from outside its root (links pointing out, huge files, binary files, deep
//! trees). The generator is a small deterministic PRNG so failures reproduce from the seed.

use std::path::Path;
use std::sync::Mutex;

use slipway_analyzer::{
    analyze, fs::DirEntry, AnalyzeError, AnalyzeOptions, DirFs, EntryKind, FsError, MemFs, RepoFs,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const NAMES: &[&str] = &[
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "manage.py",
    "app.py",
    "main.py",
    "server.js",
    "index.js",
    "go.mod",
    "main.go",
    "Cargo.toml",
    "src/main.rs",
    "Gemfile",
    "Gemfile.lock",
    "config.ru",
    "composer.json",
    "public/index.php",
    "pom.xml",
    "build.gradle",
    "settings.gradle",
    "index.html",
    "Procfile",
    "Dockerfile",
    "score.yaml",
    "slipway.toml",
    ".python-version",
    ".nvmrc",
    "runtime.txt",
    "rust-toolchain.toml",
    "tsconfig.json",
    "vite.config.ts",
    "pnpm-workspace.yaml",
    "go.work",
    "cmd/x/main.go",
    "apps/a/package.json",
    "apps/b/requirements.txt",
    "shop/settings.py",
    ".env.example",
    "yarn.lock",
    "uv.lock",
    "poetry.lock",
];

const SNIPPETS: &[&str] = &[
    "{\"name\":\"x\",\"scripts\":{\"start\":\"node i.js\",\"build\":\"tsc\"},\"dependencies\":{\"next\":\"1\",\"express\":\"4\"}}",
    "{\"workspaces\":[\"apps/*\",\"../../etc\",\"/abs\",\"**\"],\"main\":\"../x.js\"}",
    "{\"engines\":{\"node\":18},\"packageManager\":\"yarn@\",\"scripts\":[1,2]}",
    "flask\ngunicorn\n-r other.txt\n\n# c\ndjango[argon2]>=4 ; python_version>'3'\n",
    "[project]\nrequires-python = 3\ndependencies = [1, \"fastapi[standard]\"]\n[tool.poetry.dependencies]\npython = {version = \"^3\"}\n",
    "[package]\nname = \"a\"\n[[bin]]\nname = 5\n[workspace]\nmembers = [\"../x\", \"*\"]\n",
    "module\n\ngo\ntoolchain\n",
    "module example.com/x\ngo 1.22\n",
    "package main\nfunc main() { http.ListenAndServe(\":99999\", nil) }\n",
    "app = Flask(\napp=FastAPI()\ndef create_app(:\nos.environ[\"\nos.environ.get(\"PORT\", \"0\")\n",
    "process.env.PORT || 65536\nprocess.env.\nprocess.env[\"A\nconst { PORT = } = process.env\n",
    "web:\nrelease\n: x\nweb: ${PORT:-}\n",
    "containers: [1, 2]\nservice: {ports: {a: {port: -1}}}\n",
    "containers:\n  m:\n    command: 5\n    args: [null, {a: 1}]\n    variables: [1]\n    resources: {limits: {memory: 99999999999Gi, cpu: x}}\n",
    "app_dir = \"../..\"\n[build]\nstart = \"\"\n[run]\nport = 70000\n",
    "app_dir = \"apps/a\"\n",
    "[build]\nstart = 1\n",
    "FROM x\nCMD [\"a\"\nEXPOSE 99999999\nENTRYPOINT\n",
    "<project><parent></parent><artifactId></artifactId><version>${x}</version><java.version>",
    "ruby \"\ngem \"rails\nRUBY VERSION\n",
    "\u{feff}# comment\n\n",
    "",
    "\u{0}\u{1}\u{2}",
    "é\u{200b}漢字",
    "{\"a\":",
    "[",
    "export default defineConfig({ build: { outDir: ",
    "STATIC_ROOT\nWSGI_APPLICATION = \"\nDJANGO_SETTINGS_MODULE\", \"",
];

fn random_repo(rng: &mut Rng) -> MemFs {
    let mut fs = MemFs::new().with_max_file_bytes(64 * 1024);
    let files = rng.below(12);
    for _ in 0..files {
        let mut name = (*rng.pick(NAMES)).to_owned();
        if rng.below(5) == 0 {
            name = format!("{}/{}", rng.pick(&["svc", "apps/c", "a/b/c", "x"]), name);
        }
        let content: Vec<u8> = match rng.below(6) {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => {
                // A snippet cut at an arbitrary byte.
                let s = rng.pick(SNIPPETS).as_bytes();
                let cut = rng.below(s.len() + 1);
                s[..cut].to_vec()
            }
            _ => {
                let mut s = String::new();
                for _ in 0..=rng.below(3) {
                    let snippet: &&str = rng.pick(SNIPPETS);
                    s.push_str(snippet);
                    s.push('\n');
                }
                s.into_bytes()
            }
        };
        fs.insert(&name, content);
    }
    fs
}

#[test]
fn analyze_never_panics_on_random_repositories() {
    for seed in 1..=1500u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let fs = random_repo(&mut rng);
        for app_dir in [None, Some("apps/a"), Some("../x"), Some("/etc")] {
            let options = AnalyzeOptions {
                app_dir: app_dir.map(str::to_owned),
            };
            // Any result is fine; a panic fails the test with the seed in the backtrace.
            let result = std::panic::catch_unwind(|| analyze(&fs, &options));
            assert!(result.is_ok(), "seed {seed} app_dir {app_dir:?} panicked");
            if let Ok(Ok(plan)) = result {
                // A plan always has something to run or to serve.
                assert!(
                    plan.start.is_some() || plan.static_dir.is_some(),
                    "seed {seed}"
                );
                let _ = serde_json::to_string(&plan).expect("plan serializes");
                let _ = slipway_analyzer::render_table(&plan);
            }
        }
    }
}

/// Records every answer a `RepoFs` gives, to check none of it came from outside.
struct Spy<'a> {
    inner: &'a DirFs,
    read: Mutex<Vec<Vec<u8>>>,
}

impl RepoFs for Spy<'_> {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        let r = self.inner.read(path)?;
        if let Some(b) = &r {
            self.read.lock().expect("lock").push(b.clone());
        }
        Ok(r)
    }
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, FsError> {
        self.inner.list(dir)
    }
    fn kind(&self, path: &str) -> Option<EntryKind> {
        self.inner.kind(path)
    }
}

const MARKER: &str = "OUTSIDE-THE-REPOSITORY";

fn write(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

#[cfg(unix)]
#[test]
fn dir_fs_never_reads_outside_the_root() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().expect("tempdir");
    let secret_pkg =
        format!("{{\"name\":\"{MARKER}\",\"scripts\":{{\"start\":\"echo {MARKER}\"}}}}");
    write(&outside.path().join("package.json"), secret_pkg.as_bytes());
    write(
        &outside.path().join("app/requirements.txt"),
        MARKER.as_bytes(),
    );
    write(&outside.path().join("app/app.py"), MARKER.as_bytes());

    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let repo = tempfile::tempdir().expect("tempdir");
        let root = repo.path();
        // Links that lead out, by absolute and by relative path, to files and directories.
        let targets = [
            outside.path().join("package.json"),
            outside.path().join("app"),
            outside.path().to_path_buf(),
            Path::new("../../../../../../../../")
                .join(outside.path().strip_prefix("/").expect("abs")),
            "/etc/passwd".into(),
            "/nonexistent/dangling".into(),
        ];
        for _ in 0..4 {
            let name = *rng.pick(&[
                "package.json",
                "requirements.txt",
                "app.py",
                "apps",
                "src",
                "go.mod",
                "Procfile",
                "cmd/x",
                "index.html",
            ]);
            let link = root.join(name);
            if link.exists() || link.symlink_metadata().is_ok() {
                continue;
            }
            std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
            symlink(rng.pick(&targets), &link).expect("symlink");
        }
        // A link loop and a link inside the root, which may be followed.
        let _ = symlink("loop", root.join("loop"));
        if rng.below(2) == 0 {
            write(&root.join("real/main.py"), b"print('inside')\n");
            let _ = symlink("real", root.join("linked"));
        }
        let dir_fs = DirFs::new(root).expect("open");
        let spy = Spy {
            inner: &dir_fs,
            read: Mutex::new(Vec::new()),
        };
        for app_dir in [None, Some("apps"), Some("linked"), Some("src")] {
            let options = AnalyzeOptions {
                app_dir: app_dir.map(str::to_owned),
            };
            let result = analyze(&spy, &options);
            if let Ok(plan) = &result {
                let json = serde_json::to_string(plan).expect("json");
                assert!(!json.contains(MARKER), "seed {seed}: {json}");
            }
            if let Err(e) = &result {
                assert!(!e.to_string().contains(MARKER), "seed {seed}: {e}");
            }
        }
        for bytes in spy.read.lock().expect("lock").iter() {
            assert!(
                !String::from_utf8_lossy(bytes).contains(MARKER),
                "seed {seed} read outside"
            );
        }
        // Direct probes.
        for p in [
            "package.json",
            "apps/requirements.txt",
            "../package.json",
            "/etc/passwd",
            "loop",
        ] {
            if let Ok(Some(b)) = dir_fs.read(p) {
                assert!(!String::from_utf8_lossy(&b).contains(MARKER), "{p}");
            }
        }
    }
}

#[test]
fn huge_files_are_refused_not_read() {
    let repo = tempfile::tempdir().expect("tempdir");
    let big = vec![b' '; 3 * 1024 * 1024];
    write(&repo.path().join("package.json"), &big);
    let fs = DirFs::new(repo.path()).expect("open");
    assert!(matches!(
        fs.read("package.json"),
        Err(FsError::TooLarge { .. })
    ));
    let err = analyze(&fs, &AnalyzeOptions::default()).expect_err("too large");
    assert!(
        matches!(err, AnalyzeError::Fs(FsError::TooLarge { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("package.json"), "{err}");

    // A huge *source* file is skipped, not fatal.
    let repo = tempfile::tempdir().expect("tempdir");
    write(&repo.path().join("requirements.txt"), b"flask\n");
    write(
        &repo.path().join("app.py"),
        b"from flask import Flask\napp = Flask(__name__)\n",
    );
    write(&repo.path().join("big.py"), &big);
    let plan = analyze(
        &DirFs::new(repo.path()).expect("open"),
        &AnalyzeOptions::default(),
    )
    .expect("plan");
    assert_eq!(plan.framework.as_deref(), Some("flask"));
}

#[test]
fn binary_files_do_not_break_analysis() {
    let repo = tempfile::tempdir().expect("tempdir");
    write(
        &repo.path().join("server.py"),
        &[0xff, 0xfe, 0x00, 0x80, 0x81],
    );
    write(
        &repo.path().join("logo.png"),
        &[0x89, b'P', b'N', b'G', 0, 0, 0xff],
    );
    let fs = DirFs::new(repo.path()).expect("open");
    let plan = analyze(&fs, &AnalyzeOptions::default()).expect("plan");
    assert_eq!(plan.start.as_deref(), Some("python3 server.py"));

    // A binary manifest is an error that names the file.
    write(&repo.path().join("requirements.txt"), &[0xff, 0xfe, 0x00]);
    let err = analyze(&fs, &AnalyzeOptions::default()).expect_err("not text");
    assert!(err.to_string().contains("requirements.txt"), "{err}");
}

#[test]
fn deep_trees_are_bounded() {
    let repo = tempfile::tempdir().expect("tempdir");
    let mut dir = repo.path().to_path_buf();
    for i in 0..120 {
        dir = dir.join(format!("d{i}"));
    }
    write(
        &dir.join("package.json"),
        b"{\"scripts\":{\"start\":\"node x\"}}",
    );
    write(&repo.path().join("app.py"), b"print(1)\n");
    // Many siblings too.
    for i in 0..300 {
        write(&repo.path().join(format!("pkg{i}/mod.py")), b"x = 1\n");
    }
    let started = std::time::Instant::now();
    let plan = analyze(
        &DirFs::new(repo.path()).expect("open"),
        &AnalyzeOptions::default(),
    )
    .expect("plan");
    assert_eq!(plan.language.as_deref(), Some("python"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn memfs_and_dirfs_agree_on_a_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-flask-gunicorn");
    let mut mem = MemFs::new();
    for entry in [
        "requirements.txt",
        ".python-version",
        "app.py",
        ".env.example",
    ] {
        mem.insert(entry, std::fs::read(dir.join(entry)).expect("read"));
    }
    let a = analyze(&mem, &AnalyzeOptions::default()).expect("mem");
    let b = slipway_analyzer::analyze_dir(&dir, &AnalyzeOptions::default()).expect("dir");
    assert_eq!(a, b);
}
