//! The portal over HTTP: every page renders, user strings are escaped, forms need their CSRF token,
//! validation shows the API's messages per field, lists page through thousands. The browser half
//! (htmx, live status, the log stream) is `tests/browser/`, run by `crates/cli/tests/portal_browser.rs`.

mod common;

use common::TestServer;
use serde_json::json;
use slipway_core::{LogStream, NewLogLine};

/// A client that does not follow redirects, so tests see the 303s.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(s: &TestServer, path: &str) -> (u16, String) {
    let res = client()
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        if !path.starts_with("/dashboard/") {
            assert!(res.headers().contains_key("server-timing"), "{path}");
        }
    }
    (status, res.text().await.unwrap())
}

/// The CSRF token cookie a first visit sets.
async fn csrf_token(s: &TestServer) -> String {
    let res = client()
        .get(format!("{}/services/new", s.url))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("slipway_csrf=")
        .unwrap()
        .to_string();
    let body = res.text().await.unwrap();
    assert!(body.contains(&format!("name=\"csrf\" value=\"{token}\"")));
    token
}

/// Posts a form with the cookie and field given.
async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let mut req = client().post(format!("{}{path}", s.url)).form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("slipway_csrf={c}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, res.text().await.unwrap(), location)
}

async fn register(s: &TestServer, name: &str, team: &str) {
    let (status, body) = s
        .post(
            "/api/v1/services",
            json!({"name": name, "team": team, "repo_url": format!("https://git.example.com/org/{name}")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn deploy(s: &TestServer, service: &str) -> String {
    let (status, body) = s
        .post("/api/v1/deployments", json!({"service": service}))
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_page_renders() {
    let s = TestServer::start().await;
    register(&s, "payments", "core").await;
    register(&s, "billing", "core").await;
    let id = deploy(&s, "payments").await;
    let (_, arts) = s.get("/api/v1/services/payments/artifacts").await;
    let file = arts[0]["path"].as_str().unwrap().to_string();
    for path in [
        "/".to_string(),
        "/services".into(),
        "/services?q=pay&team=core&template=default".into(),
        "/services?status=QUEUED".into(),
        "/services?page=99".into(),
        "/services/new".into(),
        "/services/payments".into(),
        format!("/services/payments?scope=platform&file={file}"),
        "/services/payments?dpage=2&env=dev".into(),
        "/teams".into(),
        "/teams/core".into(),
        format!("/deployments/{id}"),
        format!("/deployments/{id}/status"),
        "/dashboard/payments".into(),
    ] {
        let (status, body) = page(&s, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("undefined"), "{path}");
        if !path.ends_with("/status") {
            assert!(body.starts_with("<!doctype html>"), "{path}");
            assert!(body.contains("<main"), "{path}");
        }
    }
    // The overview counts what is there; the queued deployment is listed.
    let (_, body) = page(&s, "/").await;
    assert!(body.contains("<strong>2</strong> services"), "{body}");
    assert!(body.contains(&format!("/deployments/{id}")));
    // The status filter finds the service whose latest deployment is QUEUED.
    let (_, body) = page(&s, "/services?status=QUEUED").await;
    assert!(body.contains("href=\"/services/payments\""));
    assert!(!body.contains("href=\"/services/billing\""));
    // The file viewer shows the artifact.
    let (_, body) = page(
        &s,
        &format!("/services/payments?scope=platform&file={file}"),
    )
    .await;
    assert!(body.contains("class=\"line\""), "{body}");
    // … highlighted: a Terraform file has keywords and strings.
    let tf = arts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .find(|p| p.ends_with("main.tf"))
        .unwrap();
    let (_, body) = page(&s, &format!("/services/payments?scope=platform&file={tf}")).await;
    assert!(body.contains("<span class=\"tok-keyword\">"), "{body}");
    assert!(body.contains("<span class=\"tok-string\">"), "{body}");
    // Assets: vendored htmx, the stylesheet and the script, cacheable.
    for (asset, ct) in [
        ("htmx.min.js", "text/javascript"),
        ("portal.css", "text/css"),
        ("portal.js", "text/javascript"),
    ] {
        let res = client()
            .get(format!("{}/portal/assets/{asset}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(ct));
        assert!(res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_team_page_lists_its_members_and_their_roles() {
    use slipway_core::{Actor, NewUser, Role};
    let s = TestServer::start().await;
    register(&s, "payments", "core").await;
    register(&s, "web", "frontend").await;
    let (_, body) = page(&s, "/teams/core").await;
    assert!(body.contains("No members yet"), "{body}");
    assert!(!body.contains("anonymous"), "{body}");
    let actor = Actor {
        name: "test".into(),
        remote_addr: None,
    };
    for (user, team, role) in [
        ("zoe", "core", Role::Viewer),
        ("alice", "core", Role::TeamMember),
        ("bob", "frontend", Role::TeamMaintainer),
    ] {
        let new = NewUser {
            name: user.into(),
            email: None,
            password_hash: None,
            admin: false,
        };
        s.state.store.create_user(new, &actor).await.unwrap();
        s.state
            .store
            .set_membership(user, team, Some(role), &actor)
            .await
            .unwrap();
    }
    let (status, body) = page(&s, "/teams/core").await;
    assert_eq!(status, 200);
    let alice = body
        .find("<td>alice</td><td>team-member</td>")
        .expect(&body);
    let zoe = body.find("<td>zoe</td><td>viewer</td>").expect(&body);
    assert!(alice < zoe, "sorted by name");
    assert!(!body.contains("bob"), "another team's member: {body}");
    assert!(!body.contains("No members yet"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn missing_things_are_html_404s() {
    let s = TestServer::start().await;
    for path in [
        "/services/nope",
        "/teams/nope",
        "/deployments/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "/portal/assets/nope.js",
    ] {
        let (status, body) = page(&s, path).await;
        assert_eq!(status, 404, "{path}");
        if !path.starts_with("/portal/assets") {
            assert!(body.contains("<h1>Not found</h1>"), "{path}: {body}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn user_strings_are_escaped() {
    let s = TestServer::start().await;
    register(&s, "payments", "core").await;
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'";
    let (status, _) = s
        .http
        .patch(format!("{}/api/v1/services/payments", s.url))
        .json(&json!({"description": evil}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 200);
    let id = deploy(&s, "payments").await;
    s.state
        .store
        .append_logs(
            &id,
            &[NewLogLine {
                at: chrono::Utc::now(),
                stream: LogStream::Stdout,
                line: evil.to_string(),
            }],
        )
        .await
        .unwrap();
    for path in [
        "/services/payments".to_string(),
        "/services".into(),
        format!("/deployments/{id}"),
        "/dashboard/payments".into(),
        format!("/services?q={}", urlencode(evil)),
        format!("/services?status={}", urlencode(evil)),
    ] {
        let (_, body) = page(&s, &path).await;
        assert!(!body.contains("<script>alert"), "{path}: {body}");
        assert!(!body.contains("<img src=x"), "{path}");
        assert!(body.contains("&lt;script&gt;alert(1)"), "{path}: {body}");
    }

    // A `<script>` name and repository URL typed into the form come back escaped, with their errors.
    let token = csrf_token(&s).await;
    let (status, body, _) = post_form(
        &s,
        "/services/new",
        Some(&token),
        &[
            ("csrf", &token),
            ("name", "<script>alert(3)</script>"),
            ("team", "core"),
            ("repo_url", "https://x.example/<script>alert(4)</script>"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("value=\"&lt;script&gt;alert(3)"), "{body}");
    assert!(body.contains("id=\"e-name\""));
    assert!(body.contains("id=\"e-repo_url\""));
    s.stop().await;
}

/// What minijinja's HTML auto-escaping makes of a string.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let s = TestServer::start().await;
    let token = csrf_token(&s).await;
    let fields = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("name", "payments"),
            ("team", "core"),
            ("repo_url", "https://github.com/org/payments"),
        ]
    };
    // No cookie, no field, a different field, a malformed cookie: 403 and nothing written.
    let other = "ab".repeat(32);
    let leaked: &'static str = Box::leak(token.clone().into_boxed_str());
    for (cookie, csrf) in [
        (None, leaked),
        (Some(token.as_str()), ""),
        (
            Some(token.as_str()),
            Box::leak(other.into_boxed_str()) as &str,
        ),
        (Some("short"), "short"),
    ] {
        let f: Vec<_> = fields(csrf)
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let (status, body, _) = post_form(&s, "/services/new", cookie, &f).await;
        assert_eq!(status, 403, "{cookie:?} {csrf}: {body}");
        assert!(body.contains("security token"), "{body}");
    }
    // From another site, even with the right token.
    let res = client()
        .post(format!("{}/services/new", s.url))
        .header("cookie", format!("slipway_csrf={token}"))
        .header("origin", "https://evil.example")
        .form(&fields(leaked))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (status, _) = s.get("/api/v1/services/payments").await;
    assert_eq!(status, 404, "a rejected form wrote nothing");

    // The other forms too.
    register(&s, "payments", "core").await;
    let id = deploy(&s, "payments").await;
    for path in [
        "/services/payments/deploy".to_string(),
        format!("/deployments/{id}/rollback"),
        format!("/deployments/{id}/cancel"),
    ] {
        let (status, _, _) = post_form(&s, &path, None, &[("csrf", leaked)]).await;
        assert_eq!(status, 403, "{path}");
    }

    // With the token: registered, and the browser is sent to the new service's page.
    let (status, body, location) = post_form(
        &s,
        "/services/new",
        Some(&token),
        &[
            ("csrf", &token),
            ("name", "billing"),
            ("team", "core"),
            ("repo_url", "https://github.com/org/billing"),
            ("template", "default"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.as_deref(), Some("/services/billing?created=1"));
    let (_, body) = page(&s, "/services/billing?created=1").await;
    assert!(body.contains("files generated"), "{body}");
    assert!(
        body.contains("main.tf"),
        "the artifact tree lists the files"
    );
    let (_, audit) = s.get("/api/v1/audit?object_name=billing").await;
    assert_eq!(audit["items"][0]["actor"], "anonymous");
    s.stop().await;
}

#[tokio::test]
async fn the_form_shows_the_apis_messages_per_field() {
    let s = TestServer::start().await;
    register(&s, "payments", "core").await;
    let token = csrf_token(&s).await;
    let (_, api) = s
        .post(
            "/api/v1/services",
            json!({"name": "Bad_Name", "team": "core", "repo_url": "ftp://x/y", "template": "nope"}),
        )
        .await;
    let (status, body, _) = post_form(
        &s,
        "/services/new",
        Some(&token),
        &[
            ("csrf", &token),
            ("name", "Bad_Name"),
            ("team", "core"),
            ("repo_url", "ftp://x/y"),
            ("template", "nope"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    for e in api["errors"].as_array().unwrap() {
        let field = e["field"].as_str().unwrap();
        let message = e["message"].as_str().unwrap();
        assert!(
            body.contains(&esc(message)),
            "{field}: {message} not in {body}"
        );
    }
    assert!(body.contains("aria-invalid=\"true\""));
    // A taken name is the name field's error.
    let (status, body, _) = post_form(
        &s,
        "/services/new",
        Some(&token),
        &[
            ("csrf", &token),
            ("name", "payments"),
            ("team", "core"),
            ("repo_url", "https://github.com/org/payments"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("id=\"e-name\""), "{body}");
    assert!(body.contains("already exists"));
    s.stop().await;
}

#[tokio::test]
async fn deploy_and_rollback_forms() {
    let s = TestServer::start().await;
    register(&s, "payments", "core").await;
    let token = csrf_token(&s).await;
    let (status, body, _) = post_form(
        &s,
        "/services/payments/deploy",
        Some(&token),
        &[("csrf", &token), ("environment", "dev"), ("ref", "-bad")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("class=\"error\""), "{body}");
    let (status, body, _) = post_form(
        &s,
        "/services/payments/deploy",
        Some(&token),
        &[("csrf", &token), ("environment", "nowhere")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(body.contains("no environment named"), "{body}");

    let (status, _, location) = post_form(
        &s,
        "/services/payments/deploy",
        Some(&token),
        &[
            ("csrf", &token),
            ("environment", "dev"),
            ("ref", "main"),
            ("replicas", "2"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id = location.strip_prefix("/deployments/").unwrap();
    let (_, d) = s.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(d["trigger"], "portal");
    assert_eq!(d["ref"], "main");
    assert_eq!(d["replicas"], 2);
    assert_eq!(d["status"], "QUEUED");

    // Nothing to roll back to: the API's 409 and its explanation, as a page.
    let (status, body, _) = post_form(
        &s,
        &format!("/deployments/{id}/rollback"),
        Some(&token),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("no earlier healthy release"), "{body}");
    // Cancel works and lands on the deployment.
    let (status, _, location) = post_form(
        &s,
        &format!("/deployments/{id}/cancel"),
        Some(&token),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("/deployments/{id}"));
    let (_, body) = page(&s, &format!("/deployments/{id}/status")).await;
    assert!(body.contains("CANCELLED"));
    assert!(
        !body.contains("hx-trigger"),
        "a finished deployment is not polled"
    );
    s.stop().await;
}

#[tokio::test]
async fn lists_page_through_many_services() {
    let s = TestServer::start().await;
    for i in 0..120 {
        let team = if i % 3 == 0 { "alpha" } else { "beta" };
        register(&s, &format!("svc-{i:03}"), team).await;
    }
    let rows = |body: &str| body.matches("<tr>").count() - 1; // minus the header row
    let (_, body) = page(&s, "/services").await;
    assert_eq!(rows(&body), 50);
    assert!(body.contains("120 services, showing 1–50"), "{body}");
    assert!(body.contains("page 1 of 3"));
    assert!(body.contains(&format!("href=\"{}\"", esc("/services?page=2"))));
    let (_, body) = page(&s, "/services?page=3").await;
    assert_eq!(rows(&body), 20);
    assert!(body.contains("svc-119"));
    assert!(!body.contains("rel=\"next\""));
    let (_, body) = page(&s, "/services?team=alpha&page=1").await;
    assert!(body.contains("40 services"), "{body}");
    let (_, body) = page(&s, "/services?q=svc-11").await;
    assert_eq!(rows(&body), 10);
    let (_, body) = page(&s, "/services?q=svc-1&team=alpha").await;
    assert!(
        body.contains("href=\"/services?q=svc-1&amp;team=alpha&amp;page=2\"") || rows(&body) <= 50
    );
    let (status, _) = page(&s, "/services?page=nonsense").await;
    assert_eq!(status, 200);
    let (_, body) = page(&s, "/teams/beta?page=2").await;
    assert!(body.contains("page 2 of 2"), "{body}");
    let (_, body) = page(&s, "/teams").await;
    assert!(body.contains(">80<"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_form_scaffolds_a_repository() {
    let s = TestServer::start().await;
    let token = csrf_token(&s).await;
    let (status, body, location) = post_form(
        &s,
        "/services/new",
        Some(&token),
        &[
            ("csrf", token.as_str()),
            ("name", "starter"),
            ("team", "core"),
            ("repo_url", ""),
            ("template", "python-api"),
            ("description", ""),
            ("scaffold", "1"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.as_deref(), Some("/services/starter?created=1"));
    let (_, svc) = s.get("/api/v1/services/starter").await;
    let repo = svc["repo_url"].as_str().unwrap();
    assert!(repo.ends_with("/scaffolds/starter"), "{svc}");
    assert!(std::path::Path::new(repo).join("README.md").exists());
    s.stop().await;
}

/// "Failing first" and the status filter look at each service's newest deployment only, in one
/// store query: a service whose failure was followed by a new deployment is not failing.
#[tokio::test]
async fn failing_services_and_the_status_filter_use_each_services_newest_deployment() {
    let s = TestServer::start().await;
    register(&s, "recovered", "core").await;
    register(&s, "broken", "core").await;
    register(&s, "elsewhere", "edge").await;
    let fail = |id: String| {
        let store = s.state.store.clone();
        async move {
            store
                .transition_deployment_through(
                    &id,
                    &[
                        (slipway_core::DeploymentStatus::Analyzing, "test".into()),
                        (slipway_core::DeploymentStatus::Failed, "boom".into()),
                    ],
                )
                .await
                .unwrap();
        }
    };
    fail(deploy(&s, "recovered").await).await;
    let (status, body) = s
        .post(
            &format!(
                "/api/v1/deployments/{}/cancel",
                deploy(&s, "recovered").await
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    fail(deploy(&s, "broken").await).await;
    fail(deploy(&s, "elsewhere").await).await;

    let (_, body) = page(&s, "/").await;
    assert!(body.contains("2 failing"), "{body}");
    let failing_row =
        |name: &str| format!("<tr class=\"failing\">\n<td><a href=\"/services/{name}\">");
    assert!(body.contains(&failing_row("broken")), "{body}");
    assert!(body.contains(&failing_row("elsewhere")), "{body}");
    assert!(!body.contains(&failing_row("recovered")), "{body}");

    let listed = |body: &str, name: &str| body.contains(&format!("href=\"/services/{name}\""));
    let (_, body) = page(&s, "/services?status=FAILED").await;
    assert!(
        body.contains("2 services whose latest deployment is FAILED"),
        "{body}"
    );
    assert!(listed(&body, "broken") && listed(&body, "elsewhere"));
    assert!(!listed(&body, "recovered"));
    let (_, body) = page(&s, "/services?status=FAILED&team=edge").await;
    assert!(
        listed(&body, "elsewhere") && !listed(&body, "broken"),
        "{body}"
    );
    let (_, body) = page(&s, "/services?status=CANCELLED&q=REC").await;
    assert!(body.contains("1 service whose"), "{body}");
    assert!(listed(&body, "recovered"));
    s.stop().await;
}
