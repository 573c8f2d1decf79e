//! A real Slipway server on port 0 against a temp data dir, for integration tests.
#![allow(dead_code)]

use serde_json::Value;
use slipway_platform_repo::PlatformRepo;
use slipway_server::AppState;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The database it runs on: a SQLite file in `dir`, or the PostgreSQL database given.
    pub database_url: String,
    pub http: reqwest::Client,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// SQLite in a temp dir, or PostgreSQL when `url` is given.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    pub async fn start_with(database_url: Option<String>) -> Self {
        Self::start_full(database_url, false).await
    }

    /// With a deployment engine (proxy on a free port, local repositories allowed, short timeouts).
    pub async fn start_engine() -> Self {
        Self::start_full(None, true).await
    }

    pub async fn start_engine_on(database_url: String) -> Self {
        Self::start_full(Some(database_url), true).await
    }

    /// With an engine whose configuration `tune` adjusts.
    pub async fn start_engine_with(tune: fn(&mut slipway_engine::EngineConfig)) -> Self {
        Self::start_tuned(None, true, Some(tune)).await
    }

    async fn start_full(database_url: Option<String>, with_engine: bool) -> Self {
        Self::start_tuned(database_url, with_engine, None).await
    }

    async fn start_tuned(
        database_url: Option<String>,
        with_engine: bool,
        tune: Option<fn(&mut slipway_engine::EngineConfig)>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("slipway.db").display()));
        Self::start_in(dir, url, with_engine, tune, false).await.0
    }

    /// Stops the server (without an engine) and starts it again on the same data directory and
    /// database, the platform repository reopened and repaired from the database first, as
    /// `slipway up` does: what the start-up reconciler reports comes with it.
    pub async fn restart(mut self) -> (Self, slipway_server::reconcile::ReconcileReport) {
        assert!(
            self.state.engine.is_none(),
            "restart is for servers without an engine"
        );
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.state.repo.flush().await.unwrap();
        let TestServer {
            dir,
            database_url,
            state,
            ..
        } = self;
        // The platform repository is held until its last handle goes.
        drop(state);
        Self::start_in(dir, database_url, false, None, true).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        url: String,
        with_engine: bool,
        tune: Option<fn(&mut slipway_engine::EngineConfig)>,
        reconcile: bool,
    ) -> (Self, slipway_server::reconcile::ReconcileReport) {
        let store = slipway_store::connect(&url).await.unwrap();
        let repo = Arc::new(
            PlatformRepo::open(&dir.path().join("platform-repo"))
                .await
                .unwrap(),
        );
        let reconciled = if reconcile {
            slipway_server::reconcile::reconcile(store.as_ref(), &repo)
                .await
                .unwrap()
        } else {
            Default::default()
        };
        let engine = if with_engine {
            let mut config = slipway_engine::EngineConfig::new(
                dir.path().to_path_buf(),
                "127.0.0.1:0".parse().unwrap(),
            );
            config.heartbeat = std::time::Duration::from_millis(500);
            config.sample_every = std::time::Duration::from_millis(200);
            config.keep_releases = 1;
            config.secrets_key = Some(
                slipway_engine::secrets::SecretKey::load_or_create(&dir.path().join("secrets.key"))
                    .unwrap(),
            );
            config.tune_local = Some(|c| {
                c.health_timeout = std::time::Duration::from_secs(20);
                c.stop_grace = std::time::Duration::from_secs(3);
                c.drain_timeout = std::time::Duration::from_secs(5);
            });
            if let Some(tune) = tune {
                tune(&mut config);
            }
            Some(
                slipway_engine::Engine::start(store.clone(), config)
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        let state = AppState::with_engine(store, repo, None, engine, with_engine);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            slipway_server::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let server = TestServer {
            url: format!("http://{addr}"),
            dir,
            database_url: url,
            http: reqwest::Client::new(),
            state,
            shutdown: Some(tx),
            task: Some(task),
        };
        (server, reconciled)
    }

    pub fn repo_path(&self) -> PathBuf {
        self.dir.path().join("platform-repo")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(engine) = &self.state.engine {
            engine.shutdown().await;
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, res.text().await.unwrap())
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .patch(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .put(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let res = self
            .http
            .delete(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        status_json(res).await
    }

    /// Sends one request per body, all at once, and returns the status codes in body order.
    pub async fn concurrently(
        &self,
        method: reqwest::Method,
        path: &str,
        bodies: Vec<Value>,
    ) -> Vec<u16> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let request = self
                    .http
                    .request(method.clone(), format!("{}{path}", self.url))
                    .json(&body);
                tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
            })
            .collect();
        let mut codes = Vec::with_capacity(tasks.len());
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes
    }

    /// Runs git in the platform repository.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.repo_path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn commit_count(&self) -> usize {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.repo_path())
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        if !out.status.success() {
            // Only an unborn branch (a repository without commits) counts as zero.
            assert!(
                self.repo_path().join(".git/HEAD").exists(),
                "no platform repository: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let head = self.git(&["symbolic-ref", "HEAD"]);
            let unborn = Command::new("git")
                .arg("-C")
                .arg(self.repo_path())
                .args(["rev-parse", "--verify", "--quiet", head.trim()])
                .output()
                .unwrap();
            assert!(
                !unborn.status.success(),
                "rev-list failed on a repository with commits"
            );
            return 0;
        }
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Every file in the work tree, relative, sorted (`.git` excluded).
    pub fn worktree_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.repo_path(), &self.repo_path(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

pub async fn status_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}
