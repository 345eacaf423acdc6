#!/usr/bin/env bash
# Builds the local image that `sandbox.backend: docker` runs code nodes in.
#
# Usage: scripts/build-sandbox-image.sh [TAG]     (default TAG: python:3.11-slim)
#
# Images cannot be pulled from a registry on our development and CI machines, so this makes
# a stand-in for the official python:3.11-slim from Debian packages alone: a minimal Debian
# bookworm root filesystem with its python3 (3.11, on PATH as python3), imported as an image.
# The packages come from the Debian mirror this machine's apt already uses. Idempotent: does
# nothing when an image with TAG exists. Needs root (debootstrap) and a running Docker
# daemon (scripts/start-docker.sh).
set -euo pipefail

TAG=${1:-python:3.11-slim}
SUITE=bookworm # Debian's release whose python3 is 3.11

say() { echo "build-sandbox-image: $*" >&2; }

if ! docker info >/dev/null 2>&1; then
    say "the Docker daemon is not reachable: run scripts/start-docker.sh first"
    exit 1
fi
if docker image inspect "$TAG" >/dev/null 2>&1; then
    say "image $TAG already exists"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    say "debootstrap needs root: run 'sudo $0 $TAG'"
    exit 1
fi

# The Debian archive apt uses here: an entry for $SUITE itself, else any archive whose
# path ends in /debian. Reads both the one-line (.list) and deb822 (.sources) formats;
# files with other extensions are ignored by apt, so they are here too.
debian_mirror() {
    local files=()
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; do
        [[ -f "$file" ]] && files+=("$file")
    done
    ((${#files[@]})) || return 0
    awk -v suite="$SUITE" '
        function consider(uri, suites,    n, i, words) {
            sub(/\/+$/, "", uri)
            n = split(suites, words, /[ \t]+/)
            for (i = 1; i <= n; i++) if (words[i] == suite && exact == "") exact = uri
            if (uri ~ /\/debian$/ && fallback == "") fallback = uri
        }
        function paragraph_end() {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
                split(uris, first, /[ \t]+/)
                consider(first[1], suites)
            }
            types = uris = suites = enabled = ""
        }
        FNR == 1 { paragraph_end() }
        /^[ \t]*#/ { next }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { paragraph_end(); next }
            key = tolower($1); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
            if (key == "types:") types = value
            else if (key == "uris:") uris = value
            else if (key == "suites:") suites = value
            else if (key == "enabled:") enabled = tolower(value)
            next
        }
        $1 == "deb" {
            line = $0; sub(/\[[^]]*\]/, "", line); split(line, fields, /[ \t]+/)
            consider(fields[2], fields[3])
        }
        END { paragraph_end(); print (exact != "" ? exact : fallback) }
    ' "${files[@]}"
}

MIRROR=${SANDBOX_DEBIAN_MIRROR:-$(debian_mirror)}
if [[ -z "$MIRROR" ]]; then
    say "found no Debian archive in /etc/apt/sources.list*: set SANDBOX_DEBIAN_MIRROR to one"
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap..."
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq install -y \
        --no-install-recommends debootstrap >/dev/null
fi

started=$(date +%s)
ROOTFS=$(mktemp -d "${TMPDIR:-/var/tmp}/sandbox-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT

say "debootstrapping Debian $SUITE with python3 from $MIRROR (about a minute)..."
if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$ROOTFS.log" 2>&1; then
    tail -n 20 "$ROOTFS.log" >&2
    say "debootstrap failed (full log: $ROOTFS.log)"
    exit 1
fi
rm -f "$ROOTFS.log"

# Nothing in the sandbox installs packages or reads manuals: drop caches, docs and logs.
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/tmp/*

if ! chroot "$ROOTFS" python3 -I -S -c 'import json, resource, sys; assert sys.version_info[:2] == (3, 11)'
then
    say "the built root filesystem has no working python3 3.11"
    exit 1
fi

say "importing it as $TAG..."
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "Debian $SUITE minbase + python3, built by scripts/build-sandbox-image.sh" \
    - "$TAG" >/dev/null

size=$(docker image inspect "$TAG" --format '{{.Size}}')
say "built $TAG ($((size / 1024 / 1024)) MB) in $(($(date +%s) - started)) s"
