// Browser tests of the Slipway portal: the real binary (`slipway up`) on free ports against a temp
// data directory, a local git repository holding a Python (stdlib only) app, Debian chromium
// driven by playwright-core. Run by crates/cli/tests/portal_browser.rs (so `cargo nextest run
// --workspace` covers them), or directly: `SLIPWAY_BIN=target/debug/slipway node portal.test.mjs`.
//
// Screenshots of the main pages go to $SCREENSHOT_DIR (default: target/portal-screenshots);
// `SCREENSHOT_DIR=docs/screenshots` refreshes the ones docs/portal.md shows.

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const bin = process.env.SLIPWAY_BIN || path.join(root, "target/debug/slipway");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = path.resolve(root, process.env.SCREENSHOT_DIR || "target/portal-screenshots");
const DEPLOY_TIMEOUT = 90_000;

const PY_APP = (version) => `import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from ${version}\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

print("listening on", os.environ["PORT"], "<b>not bold</b>", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

let failures = 0;
let step = "start";
function check(cond, what) {
  if (!cond) {
    failures++;
    console.error(`  ✗ ${what}`);
    throw new Error(`check failed: ${what}`);
  }
  console.log(`  ✓ ${what}`);
}

function git(dir, ...args) {
  return execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
}
function commit(dir, files, message) {
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  git(dir, "add", "-A");
  git(dir, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", message);
}

/// Starts `slipway up` on free ports; resolves with its URLs once it listens.
function startSlipway(dataDir) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      bin,
      ["up", "--allow-local-repos", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0"],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" } },
    );
    let out = "";
    const timer = setTimeout(() => reject(new Error(`slipway did not start:\n${out}`)), 30_000);
    const onData = (d) => {
      out += d.toString();
      const api = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      const apps = /apps: http:\/\/<service>\.<env>\.localhost:(\d+)/.exec(out);
      if (api && apps) {
        clearTimeout(timer);
        resolve({ child, url: api[1], proxyPort: Number(apps[1]), output: () => out });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`slipway exited with ${code}:\n${out}`)));
  });
}

function viaProxy(port, host) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", headers: { Host: host } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
  });
}

/// The administrator token `slipway up` saved at first start (authentication is on by default).
let token = null;

async function api(base, method, p, body) {
  const headers = body ? { "content-type": "application/json" } : {};
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + p, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

/// Fills the sign-in form the page shows (the first administrator signs in with its token).
async function signIn(page) {
  await page.fill("#f-username", "admin");
  await page.fill("#f-password", token);
  await Promise.all([page.waitForNavigation(), page.click("form.form button[type=submit]")]);
}

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/// Waits until the deployment page shows `status` — without a navigation (the page is marked).
async function waitForStatus(page, statuses) {
  await page.evaluate(() => (window.__noReload = true));
  const selector = statuses.map((s) => `#deployment-status[data-status="${s}"]`).join(", ");
  await page.waitForSelector(selector, { timeout: DEPLOY_TIMEOUT });
  const status = await page.getAttribute("#deployment-status", "data-status");
  check(await page.evaluate(() => window.__noReload === true), `status ${status} reached without reloading the page`);
  return status;
}

async function main() {
  for (const [what, p] of [["slipway binary", bin], ["chromium", chromiumPath]]) {
    if (!fs.existsSync(p)) throw new Error(`${what} not found at ${p}`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "slipway-browser-"));
  const repo = path.join(tmp, "hello-web");
  fs.mkdirSync(repo);
  git(repo, "init", "-q", "-b", "main");
  commit(repo, { "app.py": PY_APP("v1") }, "v1");

  const slipway = await startSlipway(path.join(tmp, "data"));
  const base = slipway.url;
  const tokenFile = path.join(tmp, "data", "admin-token");
  if (fs.existsSync(tokenFile)) token = fs.readFileSync(tokenFile, "utf8").trim();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => {
      failures++;
      console.error(`  ✗ JavaScript error on ${page.url()}: ${e.message}`);
    });

    // Some neighbours for the catalog, one with markup in every free-text field.
    for (const [name, team] of [["billing", "payments-team"], ["ledger", "payments-team"], ["search-api", "discovery"]]) {
      const r = await api(base, "POST", "/api/v1/services", { name, team, repo_url: `https://git.example.com/org/${name}` });
      check(r.status === 201, `registered ${name} through the API`);
    }
    await api(base, "PATCH", "/api/v1/services/billing", { description: "<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>" });

    if (token) {
      step = "sign in";
      console.log(step);
      await page.goto(`${base}/services/new`);
      check(new URL(page.url()).pathname === "/login", "a page without a session leads to the sign-in page");
      await shot(page, "login");
      await signIn(page);
      check(new URL(page.url()).pathname === "/services/new", "signed in, back where we were going");
      check((await page.textContent("header")).includes("admin"), "the header names the signed-in user");
    }

    step = "create a service through the form";
    console.log(step);
    await page.goto(`${base}/services/new`);
    await page.fill("#f-name", "hello-web");
    await page.fill("#f-team", "web");
    await page.fill("#f-repo_url", "not a repository");
    await Promise.all([page.waitForNavigation(), page.click("form.form button[type=submit]")]);
    const err = await page.textContent("#e-repo_url");
    check(err && err.length > 10, `a validation error names repo_url: "${err.trim().slice(0, 60)}…"`);
    check((await page.inputValue("#f-name")) === "hello-web", "what was typed is kept");
    await shot(page, "service-new-error");
    await page.fill("#f-repo_url", repo);
    await Promise.all([page.waitForNavigation(), page.click("form.form button[type=submit]")]);
    check(new URL(page.url()).pathname === "/services/hello-web", "the new service's page opens");
    check((await page.textContent(".notice")).includes("files generated"), "the page says files were generated");
    const files = await page.locator(".tree a").count();
    check(files > 0, `the artifact browser lists ${files} files`);
    await page.locator(".tree a").first().click();
    check((await page.locator("pre.code .line").count()) > 0, "a generated file opens in the viewer");

    step = "deploy from the service page";
    console.log(step);
    await Promise.all([page.waitForNavigation(), page.click("#deploy ~ form button[type=submit], form[action$='/deploy'] button")]);
    check(/\/deployments\/[0-9a-f-]+$/.test(page.url()), "Deploy opens the deployment page");
    let status = await waitForStatus(page, ["EXPOSED", "FAILED", "ROLLED_BACK", "CANCELLED"]);
    check(status === "EXPOSED", "the first deployment reaches EXPOSED");
    await page.waitForFunction(() => document.querySelector("#log").textContent.includes("listening on"), null, { timeout: 10_000 });
    check(await page.evaluate(() => document.querySelector("#log b") === null), "log lines are text, not markup");
    check((await viaProxy(slipway.proxyPort, "hello-web.dev.localhost")).body.includes("v1"), "v1 answers through the proxy");
    await shot(page, "deployment");

    step = "deploy a second commit, then roll it back";
    console.log(step);
    commit(repo, { "app.py": PY_APP("v2") }, "v2");
    await page.goto(`${base}/services/hello-web`);
    await page.fill("#d-ref", "main");
    await Promise.all([page.waitForNavigation(), page.click("form[action$='/deploy'] button")]);
    status = await waitForStatus(page, ["EXPOSED", "FAILED", "ROLLED_BACK", "CANCELLED"]);
    check(status === "EXPOSED", "the second deployment reaches EXPOSED");
    check((await viaProxy(slipway.proxyPort, "hello-web.dev.localhost")).body.includes("v2"), "v2 answers through the proxy");
    await page.goto(`${base}/services/hello-web`);
    await shot(page, "service");
    const rollback = page.locator("form[action$='/rollback'] button");
    check((await rollback.count()) === 1, "a Rollback button is offered");
    await Promise.all([page.waitForNavigation(), rollback.click()]);
    status = await waitForStatus(page, ["EXPOSED", "FAILED", "ROLLED_BACK", "CANCELLED"]);
    check(status === "EXPOSED", "the rollback reaches EXPOSED");
    check((await page.textContent("main")).includes("rollback"), "the deployment says it is a rollback");
    check((await viaProxy(slipway.proxyPort, "hello-web.dev.localhost")).body.includes("v1"), "v1 answers again after the rollback");

    step = "find it by search";
    console.log(step);
    await page.goto(`${base}/services`);
    check((await page.locator("#results tbody tr").count()) === 4, "the list shows the 4 services");
    await page.evaluate(() => (window.__noReload = true));
    await page.fill("#q", "hello");
    await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 1, null, { timeout: 10_000 });
    check(await page.evaluate(() => window.__noReload === true), "search results update without reloading");
    check((await page.textContent("#results tbody")).includes("hello-web"), "the search finds hello-web");
    check(new URL(page.url()).searchParams.get("q") === "hello", "the search is in the address (shareable)");
    await page.fill("#q", "");
    await page.selectOption("#team", "payments-team");
    await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 2, null, { timeout: 10_000 });
    check(true, "the team filter narrows the list to 2");
    await page.selectOption("#team", "");
    await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 4, null, { timeout: 10_000 });
    await shot(page, "services");

    step = "escaping and the other pages";
    console.log(step);
    await page.goto(`${base}/services/billing`);
    check(await page.evaluate(() => window.__xss === undefined), "a <script> description does not run");
    check((await page.textContent(".lead")).includes("<script>"), "it is shown as text");
    await page.goto(`${base}/`);
    check((await page.textContent("main")).includes("success rate"), "the overview shows the success rate");
    await shot(page, "overview");
    await page.goto(`${base}/teams`);
    await shot(page, "teams");
    await page.goto(`${base}/teams/payments-team`);
    check((await page.locator("tbody tr").count()) === 2, "a team page lists its services");

    step = "keyboard and small screens";
    console.log(step);
    await page.goto(`${base}/services/new`);
    await page.keyboard.press("Tab");
    check((await page.evaluate(() => document.activeElement.textContent)) === "Skip to content", "the first Tab reaches the skip link");
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${base}/services/hello-web`);
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await shot(small, "service-phone");
    await phone.close();

    step = "without JavaScript";
    console.log(step);
    const nojs = await browser.newContext({ javaScriptEnabled: false });
    const plain = await nojs.newPage();
    await plain.goto(`${base}/services?q=ledger`);
    if (token) {
      check(new URL(plain.url()).pathname === "/login", "signing in works without JavaScript too");
      await signIn(plain);
    }
    check((await plain.textContent("#results tbody")).includes("ledger"), "search works as a plain form");
    await plain.goto(`${base}/services/hello-web`);
    check((await plain.locator("form[action$='/deploy'] button").count()) === 1, "the Deploy form is there");
    await nojs.close();
  } finally {
    await browser.close();
    slipway.child.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => { slipway.child.kill("SIGKILL"); r(); }, 15_000);
      slipway.child.on("exit", () => { clearTimeout(t); r(); });
    });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`screenshots: ${shots}`);
  if (failures) throw new Error(`${failures} check(s) failed`);
}

main().then(
  () => {
    console.log("portal browser tests passed");
    process.exit(0);
  },
  (e) => {
    console.error(`portal browser tests FAILED at "${step}": ${e.stack || e}`);
    process.exit(1);
  },
);
