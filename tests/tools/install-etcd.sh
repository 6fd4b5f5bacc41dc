#!/usr/bin/env bash
# Installs etcd for the evaluation's etcd baseline (`toystore eval` and
# eval/tests/etcd_baseline.rs): Debian's etcd-server package, with apt-get, which needs root.
# Idempotent: with an `etcd` already on PATH (or at /usr/bin/etcd) it installs nothing.
# Prints the version it finds. Without etcd the baseline is skipped with a note naming this
# script; nothing else in the repository needs it.
set -euo pipefail

find_etcd() {
    command -v etcd 2>/dev/null || { [ -x /usr/bin/etcd ] && echo /usr/bin/etcd; }
}

if ! find_etcd >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "installing Debian's etcd-server needs root: sudo bash $0" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "no apt-get here: install etcd 3.4 or later so that \`etcd\` is on PATH" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi
etcd=$(find_etcd)
echo "etcd: $("$etcd" --version | head -n 1)"
