#!/usr/bin/env bash
# Installs schemathesis (from PyPI) into target/tools/schemathesis-venv, for the frontend's API
# conformance test (frontend/tests/openapi_conformance.rs). Idempotent; nothing outside the repo.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5

tools=target/tools
mkdir -p "$tools"
exec 9>"$tools/.install.lock"
flock 9

venv="$tools/schemathesis-venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$venv/bin/schemathesis" --version
