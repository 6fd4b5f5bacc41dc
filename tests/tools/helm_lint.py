"""Lints a chart with helm-sdkpy (the real Helm library) and fails on any warning or error.

Usage: python helm_lint.py CHART_DIR. Prints one line per finding; exit 1 if any is a warning or
an error (like `helm lint --strict`). helm-sdkpy reports where and how bad, not the message
text: `target/tools/bin/helm lint --strict CHART_DIR` shows the text.
"""

import asyncio
import sys

import helm_sdkpy

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def main(chart: str) -> int:
    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
    failed = False
    for message in result.get("Messages") or []:
        severity = message.get("Severity", 0)
        print(f"[{SEVERITY.get(severity, severity)}] {message.get('Path')}")
        failed |= severity >= 2
    failed |= bool(result.get("Errors"))
    linted = result.get("TotalChartsLinted", 0)
    print(f"{linted} chart(s) linted with {helm_sdkpy.get_version()}: {'FAILED' if failed else 'ok'}")
    return 1 if failed or linted != 1 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
