"""Renders a Helm chart with Helm's own engine (PyPI helm-python-sdk, which bundles Helm's Go SDK
as a shared library, so no helm binary is needed).

    python3 helm_render.py render CHART_DIR RELEASE NAMESPACE [VALUES_JSON]
        prints every rendered manifest as one multi-document YAML stream, in template order
    python3 helm_render.py probe
        succeeds when helm-python-sdk can be loaded
    python3 helm_render.py lint CHART_DIR
        runs helm lint --strict; prints its findings and fails on any warning or error

Exit status: 0 success, 1 the chart is wrong (message on stderr), 3 helm-python-sdk missing.
"""

import json
import sys

try:
    import helm_python as helm
except ImportError as e:
    print(f"helm-python-sdk is not installed: {e}", file=sys.stderr)
    sys.exit(3)


def render(chart_dir, release, namespace, values_json=None):
    values = json.loads(values_json) if values_json else None
    chart = helm.Chart.load(chart_dir)
    manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
    documents = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            continue
        text = manifests[path].strip()
        if text:
            documents.append(f"# Source: {path}\n{text}\n")
    sys.stdout.write("---\n".join(documents))


def lint(chart_dir):
    report = helm.lint(chart_dir, strict=True)
    for message in report.get("messages") or []:
        print(f"[{message.get('severity')}] {message.get('path')}: {message.get('error')}")
    failed = report.get("errors") or [
        m for m in report.get("messages") or [] if m.get("severity", 0) >= 2
    ]
    if failed:
        sys.exit(1)


def main(argv):
    try:
        if len(argv) in (4, 5) and argv[0] == "render":
            render(*argv[1:])
        elif argv == ["probe"]:
            print(f"Helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__})")
        elif len(argv) == 2 and argv[0] == "lint":
            lint(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    except helm.HelmError as e:
        print(f"helm: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
