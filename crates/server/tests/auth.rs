//! Authentication and team-scoped authorization, on a server that requires credentials.

use serde_json::{json, Value};
use slipway_core::{Actor, NewToken, NewUser, TokenOwner};
use slipway_platform_repo::PlatformRepo;
use slipway_server::auth::{rule_for, token_hash, AuthConfig};
use slipway_server::AppState;
use std::collections::BTreeSet;
use std::sync::Arc;

const ADMIN: &str = "slw_00000000000000000000000000000000000000000000000000000000000000ad";

struct Server {
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(jwt: Option<slipway_server::auth::JwtConfig>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = slipway_store::connect(&format!(
            "sqlite://{}",
            dir.path().join("slipway.db").display()
        ))
        .await
        .unwrap();
        let system = Actor {
            name: "system".into(),
            remote_addr: None,
        };
        store
            .create_user(
                NewUser {
                    name: "admin".into(),
                    email: None,
                    password_hash: None,
                    admin: true,
                },
                &system,
            )
            .await
            .unwrap();
        store
            .create_token(
                NewToken {
                    id: "admin-token".into(),
                    token_hash: token_hash(ADMIN),
                    name: "bootstrap".into(),
                    owner: TokenOwner::User {
                        user: "admin".into(),
                    },
                    expires_at: None,
                },
                &system,
            )
            .await
            .unwrap();
        let repo = Arc::new(
            PlatformRepo::open(&dir.path().join("platform-repo"))
                .await
                .unwrap(),
        );
        let state = AppState::new(store, repo, None).require_auth(AuthConfig {
            required: true,
            jwt,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(slipway_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        Server {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A user with a token, and optionally a role in a team.
    async fn user(&self, name: &str, role: Option<(&str, &str)>) -> String {
        let (s, b) = self
            .call(
                Some(ADMIN),
                "POST",
                "/api/v1/users",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        if let Some((team, role)) = role {
            let (s, b) = self
                .call(
                    Some(ADMIN),
                    "PUT",
                    &format!("/api/v1/teams/{team}/members/{name}"),
                    Some(json!({ "role": role })),
                )
                .await;
            assert_eq!(s, 204, "{b}");
        }
        let (s, b) = self
            .call(
                Some(ADMIN),
                "POST",
                "/api/v1/tokens",
                Some(json!({ "name": "test", "user": name })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["token"].as_str().unwrap().to_string()
    }
}

fn service(name: &str, team: &str) -> Value {
    json!({ "name": name, "team": team, "repo_url": format!("https://git.example.com/{name}") })
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_required_and_team_roles_decide() {
    let s = Server::start(None).await;
    // Public routes and the docs need nothing; everything else needs a credential.
    for path in ["/health", "/ready", "/metrics", "/docs", "/openapi.json"] {
        assert_eq!(s.call(None, "GET", path, None).await.0, 200, "{path}");
    }
    let (status, body) = s.call(None, "GET", "/api/v1/services", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Bearer"));
    assert_eq!(s.call(None, "GET", "/platform/services", None).await.0, 401);
    assert_eq!(
        s.call(Some("slw_nope"), "GET", "/api/v1/services", None)
            .await
            .0,
        401
    );
    assert_eq!(
        s.call(Some("not-a-token"), "GET", "/api/v1/services", None)
            .await
            .0,
        401
    );

    for team in ["payments", "search"] {
        let (st, b) = s
            .call(
                Some(ADMIN),
                "POST",
                "/api/v1/teams",
                Some(json!({ "name": team })),
            )
            .await;
        assert_eq!(st, 201, "{b}");
    }
    let alice = s.user("alice", Some(("payments", "team-member"))).await;
    let bob = s.user("bob", Some(("search", "team-maintainer"))).await;
    let (_, me) = s.call(Some(&alice), "GET", "/api/v1/whoami", None).await;
    assert_eq!(me["name"], "alice");
    assert_eq!(me["teams"]["payments"], "team-member");

    // A member registers in her team, not in another, and cannot create a team on the way.
    assert_eq!(
        s.call(
            Some(&alice),
            "POST",
            "/api/v1/services",
            Some(service("pay", "payments"))
        )
        .await
        .0,
        201
    );
    let (st, b) = s
        .call(
            Some(&alice),
            "POST",
            "/api/v1/services",
            Some(service("pay2", "search")),
        )
        .await;
    assert_eq!(st, 403, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("team-member role in team \"search\""),
        "{b}"
    );
    let (st, b) = s
        .call(Some(&alice), "POST", "/platform/services", Some(json!({ "service_name": "x", "team_name": "brand-new", "repo_url": "https://git.example.com/x" })))
        .await;
    assert_eq!(st, 403, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("admin"), "{b}");
    assert_eq!(
        s.call(
            Some(&bob),
            "POST",
            "/api/v1/services",
            Some(service("find", "search"))
        )
        .await
        .0,
        201
    );

    // Everyone reads; only the team changes.
    assert_eq!(
        s.call(Some(&alice), "GET", "/api/v1/services/find", None)
            .await
            .0,
        200
    );
    let (st, d) = s
        .call(
            Some(&alice),
            "POST",
            "/api/v1/deployments",
            Some(json!({ "service": "pay" })),
        )
        .await;
    assert_eq!(st, 202, "{d}");
    assert_eq!(
        s.call(
            Some(&alice),
            "POST",
            "/api/v1/deployments",
            Some(json!({ "service": "find" }))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.call(
            Some(&bob),
            "POST",
            &format!("/api/v1/deployments/{}/cancel", d["id"].as_str().unwrap()),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.call(Some(&alice), "DELETE", "/api/v1/services/pay", None)
            .await
            .0,
        403,
        "members do not delete"
    );
    assert_eq!(
        s.call(Some(&bob), "DELETE", "/api/v1/services/pay", None)
            .await
            .0,
        403
    );
    assert_eq!(
        s.call(Some(&bob), "DELETE", "/api/v1/services/find", None)
            .await
            .0,
        204
    );

    // The audit log names the caller; only admins read it.
    assert_eq!(
        s.call(Some(&alice), "GET", "/api/v1/audit", None).await.0,
        403
    );
    let (_, audit) = s
        .call(
            Some(ADMIN),
            "GET",
            "/api/v1/audit?object_kind=service",
            None,
        )
        .await;
    let actors: BTreeSet<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains("alice") && actors.contains("bob"),
        "{actors:?}"
    );

    // Team service accounts, expiry and revocation.
    let (st, ci) = s
        .call(
            Some(&bob),
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "ci", "team": "search" })),
        )
        .await;
    assert_eq!(st, 201, "{ci}");
    let ci_token = ci["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.call(
            Some(&ci_token),
            "POST",
            "/api/v1/services",
            Some(service("find2", "search"))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        s.call(
            Some(&ci_token),
            "POST",
            "/api/v1/services",
            Some(service("pay3", "payments"))
        )
        .await
        .0,
        403
    );
    let (st, _) = s
        .call(
            Some(&alice),
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "x", "team": "search" })),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(
            Some(&bob),
            "DELETE",
            &format!("/api/v1/tokens/{}", ci["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .call(Some(&ci_token), "GET", "/api/v1/services", None)
        .await;
    assert_eq!(st, 401);
    assert!(b["detail"].as_str().unwrap().contains("revoked"));
}

/// Every mutating route of the API has a rule, and a caller with no role anywhere is refused on
/// each of them. A route added without a rule — or without a line here — fails this test.
#[tokio::test(flavor = "multi_thread")]
async fn every_mutating_route_has_a_rule_and_refuses_outsiders() {
    let s = Server::start(None).await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/teams",
        Some(json!({ "name": "a" })),
    )
    .await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/services",
        Some(service("svc", "a")),
    )
    .await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/environments",
        Some(json!({ "name": "staging" })),
    )
    .await;
    let (_, d) = s
        .call(
            Some(ADMIN),
            "POST",
            "/api/v1/deployments",
            Some(json!({ "service": "svc" })),
        )
        .await;
    let dep = d["id"].as_str().unwrap().to_string();
    let outsider = s.user("outsider", None).await;
    s.user("someone", Some(("a", "viewer"))).await;

    // (method, route pattern, concrete path, body, expected status for the outsider)
    let table: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        (
            "POST",
            "/platform/services",
            "/platform/services".into(),
            Some(
                json!({ "service_name": "n", "team_name": "a", "repo_url": "https://git.example.com/n" }),
            ),
            403,
        ),
        (
            "POST",
            "/platform/deployments",
            "/platform/deployments".into(),
            Some(json!({ "service_name": "svc" })),
            403,
        ),
        (
            "POST",
            "/api/v1/teams",
            "/api/v1/teams".into(),
            Some(json!({ "name": "b" })),
            403,
        ),
        (
            "PUT",
            "/api/v1/teams/{name}/members/{user}",
            "/api/v1/teams/a/members/outsider".into(),
            Some(json!({ "role": "team-maintainer" })),
            403,
        ),
        (
            "DELETE",
            "/api/v1/teams/{name}/members/{user}",
            "/api/v1/teams/a/members/someone".into(),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(json!({ "name": "mallory", "admin": true })),
            403,
        ),
        (
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(json!({ "name": "t", "team": "a", "role": "team-maintainer" })),
            403,
        ),
        (
            "DELETE",
            "/api/v1/tokens/{id}",
            "/api/v1/tokens/admin-token".into(),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/environments",
            "/api/v1/environments".into(),
            Some(json!({ "name": "prod" })),
            403,
        ),
        (
            "DELETE",
            "/api/v1/environments/{name}",
            "/api/v1/environments/staging".into(),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/services",
            "/api/v1/services".into(),
            Some(service("n2", "a")),
            403,
        ),
        (
            "PATCH",
            "/api/v1/services/{name}",
            "/api/v1/services/svc".into(),
            Some(json!({ "description": "x" })),
            403,
        ),
        (
            "DELETE",
            "/api/v1/services/{name}",
            "/api/v1/services/svc".into(),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/services/{name}/scaffold/push",
            "/api/v1/services/svc/scaffold/push".into(),
            None,
            403,
        ),
        (
            "PUT",
            "/api/v1/services/{name}/environments/{env}/variables",
            "/api/v1/services/svc/environments/dev/variables".into(),
            Some(json!({ "variables": {} })),
            403,
        ),
        (
            "PUT",
            "/api/v1/services/{name}/environments/{env}/secrets/{secret}",
            "/api/v1/services/svc/environments/dev/secrets/K".into(),
            Some(json!({ "value": "v" })),
            403,
        ),
        (
            "DELETE",
            "/api/v1/services/{name}/environments/{env}/secrets/{secret}",
            "/api/v1/services/svc/environments/dev/secrets/K".into(),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/deployments",
            "/api/v1/deployments".into(),
            Some(json!({ "service": "svc" })),
            403,
        ),
        (
            "POST",
            "/api/v1/deployments/{id}/rollback",
            format!("/api/v1/deployments/{dep}/rollback"),
            None,
            403,
        ),
        (
            "POST",
            "/api/v1/deployments/{id}/cancel",
            format!("/api/v1/deployments/{dep}/cancel"),
            None,
            403,
        ),
        (
            "DELETE",
            "/api/v1/deployments/{id}",
            format!("/api/v1/deployments/{dep}"),
            None,
            403,
        ),
        // Open to every authenticated caller: they change nothing that belongs to a team.
        (
            "POST",
            "/api/v1/analyze",
            "/api/v1/analyze".into(),
            Some(json!({ "repo_url": "http://nope/x" })),
            422,
        ),
        (
            "POST",
            "/api/v1/templates/{name}/render",
            "/api/v1/templates/default/render".into(),
            Some(json!({ "name": "x", "team": "a", "repo_url": "https://git.example.com/x" })),
            0,
        ),
        (
            "POST",
            "/api/v1/templates/upgrade",
            "/api/v1/templates/upgrade".into(),
            Some(json!({ "dry_run": true })),
            403,
        ),
    ];

    let spec: Value = serde_json::to_value(slipway_server::openapi::spec()).unwrap();
    let mut mutating = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            if m != "GET" && m != "HEAD" {
                mutating.insert((m, path.clone()));
            }
        }
    }
    let tested: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        tested, mutating,
        "every mutating route needs a line in this table (and a rule in auth::RULES)"
    );

    for (method, pattern, path, body, expected) in table {
        assert!(
            rule_for(&method.parse().unwrap(), pattern).is_some(),
            "{method} {pattern} has no rule in auth::RULES"
        );
        let (st, b) = s.call(None, method, &path, body.clone()).await;
        assert_eq!(st, 401, "{method} {path} without a credential: {b}");
        let (st, b) = s.call(Some(&outsider), method, &path, body).await;
        if expected == 0 {
            assert!(st != 401 && st != 403, "{method} {path}: {st} {b}");
        } else {
            assert_eq!(st, expected, "{method} {path}: {b}");
        }
        if expected == 403 {
            assert!(
                b["detail"].as_str().unwrap().contains("outsider needs"),
                "{method} {path}: {b}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_subjects_become_users_with_the_roles_of_their_groups() {
    let secret = b"a-test-secret-of-enough-length-123456";
    let s = Server::start(Some(slipway_server::auth::JwtConfig {
        key: jsonwebtoken::DecodingKey::from_secret(secret),
        algorithm: jsonwebtoken::Algorithm::HS256,
        issuer: Some("https://idp.example.com".into()),
        audience: Some("slipway".into()),
        groups_claim: "groups".into(),
    }))
    .await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/teams",
        Some(json!({ "name": "core" })),
    )
    .await;
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let exp = chrono::Utc::now().timestamp() + 600;
    let good = sign(
        json!({ "sub": "dana", "iss": "https://idp.example.com", "aud": "slipway", "exp": exp, "groups": ["core:team-member", "junk", "other:team-maintainer"] }),
    );
    let (st, me) = s.call(Some(&good), "GET", "/api/v1/whoami", None).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["teams"], json!({ "core": "team-member" }));
    assert_eq!(
        s.call(
            Some(&good),
            "POST",
            "/api/v1/services",
            Some(service("dsvc", "core"))
        )
        .await
        .0,
        201
    );
    for bad in [
        sign(json!({ "sub": "dana", "iss": "https://evil", "aud": "slipway", "exp": exp })),
        sign(
            json!({ "sub": "dana", "iss": "https://idp.example.com", "aud": "other", "exp": exp }),
        ),
        sign(
            json!({ "sub": "dana", "iss": "https://idp.example.com", "aud": "slipway", "exp": 1000 }),
        ),
        sign(
            json!({ "sub": "../x", "iss": "https://idp.example.com", "aud": "slipway", "exp": exp }),
        ),
        format!("{}x", good),
    ] {
        let (st, b) = s.call(Some(&bad), "GET", "/api/v1/whoami", None).await;
        assert_eq!(st, 401, "{b}");
    }
}

/// The portal with authentication on: the login page, a session cookie, team checks on its forms,
/// and sign-out revoking the session.
#[tokio::test(flavor = "multi_thread")]
async fn the_portal_signs_in_with_a_password_and_checks_roles() {
    let s = Server::start(None).await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/teams",
        Some(json!({ "name": "web" })),
    )
    .await;
    s.call(
        Some(ADMIN),
        "POST",
        "/api/v1/teams",
        Some(json!({ "name": "ops" })),
    )
    .await;
    let (st, b) = s
        .call(
            Some(ADMIN),
            "POST",
            "/api/v1/users",
            Some(json!({ "name": "erin", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    s.call(
        Some(ADMIN),
        "PUT",
        "/api/v1/teams/web/members/erin",
        Some(json!({ "role": "team-member" })),
    )
    .await;

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser
        .get(format!("{}/services?team=web", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/login?next=/services%3Fteam%3Dweb"
    );
    // The API never redirects and never takes cookies.
    let res = browser
        .get(format!("{}/api/v1/services", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let res = browser
        .get(format!("{}/login?next=//evil.example", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csrf = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("slipway_csrf="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"name="next""#) && !html.contains("evil.example"),
        "open redirects are refused: {html}"
    );
    let login = |password: &'static str| {
        let browser = browser.clone();
        let (url, csrf) = (s.url.clone(), csrf.clone());
        async move {
            browser
                .post(format!("{url}/login"))
                .header("cookie", format!("slipway_csrf={csrf}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "erin"),
                    ("password", password),
                    ("next", "/services"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // The first administrator has no password: one of its API tokens signs it in.
    let admin_login = browser
        .post(format!("{}/login", s.url))
        .header("cookie", format!("slipway_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "admin"),
            ("password", ADMIN),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(admin_login.status(), 303);
    let not_hers = browser
        .post(format!("{}/login", s.url))
        .header("cookie", format!("slipway_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "erin"),
            ("password", ADMIN),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(not_hers.status(), 401, "a token signs in only its own user");
    let wrong = login("wrong password!").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("Wrong user name or password."));
    let ok = login("correct horse battery").await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/services");
    let session = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("slipway_session="))
        .unwrap()
        .to_string();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let cookie = format!(
        "slipway_csrf={csrf}; {}",
        session.split(';').next().unwrap()
    );
    let page = browser
        .get(format!("{}/", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("erin"));

    let create = |team: &'static str, name: &'static str| {
        let browser = browser.clone();
        let (url, csrf, cookie) = (s.url.clone(), csrf.clone(), cookie.clone());
        async move {
            browser
                .post(format!("{url}/services/new"))
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", name),
                    ("team", team),
                    ("repo_url", "https://git.example.com/x"),
                    ("template", "default"),
                    ("description", ""),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(create("web", "site").await.status(), 303);
    // The file viewer's raw link works for a signed-in browser (the API's own route takes no
    // session cookie).
    let file = "terraform/envs/dev/site/main.tf";
    let page = browser
        .get(format!(
            "{}/services/site?scope=platform&file={file}",
            s.url
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let raw = page
        .split("\">raw</a>")
        .next()
        .and_then(|head| head.rsplit("href=\"").next())
        .expect("a raw link")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    assert!(raw.starts_with("/services/site/artifacts/"), "{raw}");
    let got = browser
        .get(format!("{}{raw}", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200, "{raw}");
    assert!(got.text().await.unwrap().contains("site"));
    let api = browser
        .get(format!(
            "{}/api/v1/services/site/artifacts/{file}?scope=platform",
            s.url
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401, "the API takes no session cookie");
    let refused = create("ops", "infra").await;
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("team-member role in team"));

    let out = browser
        .post(format!("{}/logout", s.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = browser
        .get(format!("{}/", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        401,
        "the revoked session no longer signs in"
    );
}
