#!/usr/bin/env python3
"""Scores Slipway's analyzer and `nixpacks plan` on the same real repositories (issue 5).

usage: compare_nixpacks.py SLIPWAY_BIN NIXPACKS_BIN [FIXTURES_DIR]

For every crates/analyzer/tests/real/<repo>/ fixture (real public repositories' files, with an
expected.json written from each repository's own Dockerfile/Procfile/README), runs
`slipway analyze <dir> -o json` and `nixpacks plan <dir> -f json` and checks the fields both tools
produce — language, install, build and start — with the same matching rules as
crates/analyzer/tests/real_repos.rs (`expect`, `contains`, `any_of`, `none`, `skip`). Nixpacks reports
no framework, port or runtime version in a comparable form, so those are not scored here.
Prints a table per repository and the totals; measures nothing else.
"""

import json
import pathlib
import subprocess
import sys

FIELDS = ["language", "install", "build", "start"]

# Nixpacks' provider names for the languages Slipway's plan reports.
PROVIDER_LANGUAGE = {
    "node": "node", "python": "python", "go": "go", "rust": "rust", "ruby": "ruby",
    "php": "php", "java": "java", "staticfile": "static", "deno": "deno",
}


def matches(rule, value):
    """value: a string (commands joined with ' && ') or None."""
    if rule.get("skip"):
        return None
    if rule.get("none"):
        return value in (None, "")
    if value in (None, ""):
        return False
    if "expect" in rule:
        return str(value).lower() == str(rule["expect"]).lower()
    if "contains" in rule:
        return all(part in value for part in rule["contains"])
    if "any_of" in rule:
        return any(all(part in value for part in option) for option in rule["any_of"])
    return None


def slipway_plan(binary, repo, app_dir):
    # A monorepo fixture names the app's folder (expected.json "app_dir"); Slipway is told with
    # --app-dir, as a user would.
    extra = ["--app-dir", app_dir] if app_dir else []
    out = subprocess.run([binary, "analyze", str(repo), "-o", "json", *extra], capture_output=True,
                         text=True, check=False)
    try:
        plan = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {f: None for f in FIELDS}
    return {f: plan.get(f) for f in FIELDS}


def nixpacks_plan(binary, repo, app_dir):
    # nixpacks has no app-folder option: a monorepo's app is planned by pointing it at the folder.
    target = repo / app_dir if app_dir else repo
    out = subprocess.run([binary, "plan", str(target), "-f", "json"], capture_output=True,
                         text=True, check=False)
    try:
        plan = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {f: None for f in FIELDS}
    phases = plan.get("phases") or {}

    def cmds(phase):
        c = (phases.get(phase) or {}).get("cmds") or []
        return " && ".join(c) or None

    providers = plan.get("providers") or []
    # Auto-detected providers are not listed in `providers`; nixpacks names them in
    # NIXPACKS_METADATA, else the setup phase's nix packages tell.
    metadata = ((plan.get("variables") or {}).get("NIXPACKS_METADATA") or "").split(",")[0]
    language = PROVIDER_LANGUAGE.get(providers[0] if providers else metadata)
    if language is None:
        setup = " ".join((phases.get("setup") or {}).get("nixPkgs") or [])
        for key, lang in PROVIDER_LANGUAGE.items():
            if key in setup or (key == "node" and "nodejs" in setup):
                language = lang
                break
    return {
        "language": language,
        "install": cmds("install"),
        "build": cmds("build"),
        "start": (plan.get("start") or {}).get("cmd"),
    }


def main():
    slipway_bin, nixpacks_bin = sys.argv[1], sys.argv[2]
    root = pathlib.Path(sys.argv[3] if len(sys.argv) > 3 else
                        pathlib.Path(__file__).resolve().parent.parent / "crates/analyzer/tests/real")
    totals = {"slipway": {f: [0, 0] for f in FIELDS}, "nixpacks": {f: [0, 0] for f in FIELDS}}
    print(f"{'repository':48} {'field':9} {'slipway':8} {'nixpacks':8}  nixpacks said")
    for repo in sorted(p for p in root.iterdir() if (p / "expected.json").exists()):
        spec = json.loads((repo / "expected.json").read_text())
        expected, app_dir = spec["fields"], spec.get("app_dir")
        ours = slipway_plan(slipway_bin, repo, app_dir)
        theirs = nixpacks_plan(nixpacks_bin, repo, app_dir)
        for field in FIELDS:
            rule = expected.get(field, {"skip": True})
            a, b = matches(rule, ours[field]), matches(rule, theirs[field])
            if a is None:
                continue
            for tool, ok in (("slipway", a), ("nixpacks", b)):
                totals[tool][field][0] += int(bool(ok))
                totals[tool][field][1] += 1
            said = (theirs[field] or "-")[:60]
            print(f"{repo.name:48} {field:9} {'ok' if a else 'MISS':8} {'ok' if b else 'MISS':8}  {said}")
    print()
    print(f"{'field':9} {'slipway':>9} {'nixpacks':>9}")
    for field in FIELDS:
        s, n = totals["slipway"][field], totals["nixpacks"][field]
        print(f"{field:9} {s[0]:>4}/{s[1]:<4} {n[0]:>4}/{n[1]:<4}")
    s_all = sum(v[0] for v in totals["slipway"].values()), sum(v[1] for v in totals["slipway"].values())
    n_all = sum(v[0] for v in totals["nixpacks"].values()), sum(v[1] for v in totals["nixpacks"].values())
    print(f"{'total':9} {s_all[0]:>4}/{s_all[1]:<4} {n_all[0]:>4}/{n_all[1]:<4}")


if __name__ == "__main__":
    main()
