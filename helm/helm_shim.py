#!/usr/bin/env python3
"""`helm template` and `helm lint` for machines without the helm binary.

Runs Helm's own Go engine (helm.sh/helm/v4, linked into the `helm-python-sdk` wheel from PyPI), so
templates render exactly as `helm template` renders them; only the command line is ours, a subset
of helm's:

    python3 helm/helm_shim.py template NAME CHART [-f VALUES.yaml]... [-n NAMESPACE]
    python3 helm/helm_shim.py lint CHART [-f VALUES.yaml]... [--strict]

Install: `pip install helm-python-sdk==0.2.2`. tests/tests/deploy_artifacts.rs uses the real
`helm` when it is on PATH and this shim otherwise.
"""

import argparse
import sys


def merge(base, override):
    """Deep-merge values files the way helm does for repeated -f: maps merge, the rest replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else value
        return out
    return override


def load_values(helm, files):
    values = {}
    for path in files:
        with open(path, encoding="utf-8") as fh:
            values = merge(values, helm.values_from_yaml(fh.read()) or {})
    return values


def template(helm, args):
    values = load_values(helm, args.values)
    with helm.Chart.load(args.chart) as chart:
        manifests = chart.render(values=values, name=args.name, namespace=args.namespace)
    for path in sorted(manifests):
        text = manifests[path]
        name = path.rsplit("/", 1)[-1]
        # As `helm template`: no NOTES.txt, no partials, no documents that rendered empty.
        if name == "NOTES.txt" or name.startswith("_") or not text.strip():
            continue
        sys.stdout.write(f"---\n# Source: {path}\n{text.strip()}\n")
    return 0


def lint(helm, args):
    report = helm.lint(args.chart, load_values(helm, args.values), strict=args.strict)
    worst = 0
    for msg in report.get("messages", []):
        severity = msg.get("severity", 0)
        worst = max(worst, severity)
        label = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(severity, "UNKNOWN")
        print(f"[{label}] {msg.get('path', '')}: {msg.get('error', '')}")
    for err in report.get("errors", []):
        print(f"[ERROR] {err}")
    failed = bool(report.get("errors")) or worst >= 3 or (args.strict and worst >= 2)
    print(f"{report.get('total_charts_linted', 0)} chart(s) linted, {'failed' if failed else 'ok'}")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tpl = sub.add_parser("template")
    tpl.add_argument("name")
    tpl.add_argument("chart")
    tpl.add_argument("-f", "--values", action="append", default=[])
    tpl.add_argument("-n", "--namespace", default="default")
    lnt = sub.add_parser("lint")
    lnt.add_argument("chart")
    lnt.add_argument("-f", "--values", action="append", default=[])
    lnt.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    try:
        import helm_python as helm
    except ImportError:
        print("helm_shim: helm-python-sdk is not installed (pip install helm-python-sdk==0.2.2)",
              file=sys.stderr)
        return 3
    try:
        return template(helm, args) if args.command == "template" else lint(helm, args)
    except helm.HelmError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
