#!/usr/bin/env bash
# Installs moto's S3-compatible server (from PyPI) into target/tools/moto-venv, for the backup
# tests (backup/tests/artifacts.rs, through testkit::s3::S3Server), which write artifacts to a
# real S3 API. The server is target/tools/moto-venv/bin/moto_server. Idempotent; nothing
# outside the repo. Needs python3 with venv/pip. Prints what it installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION=5.2.6

tools=target/tools
mkdir -p "$tools"
# One install at a time (test processes may call this concurrently).
exec 9>"$tools/.install.lock"
flock 9

venv="$tools/moto-venv"
installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null
}
if [ "$(installed)" != "$MOTO_VERSION" ] || [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
echo "moto: $(installed) ($venv/bin/moto_server)"
