#!/usr/bin/env bash
# Makes a Docker daemon answer on this machine, for `sandbox.backend: docker` and its tests.
#
# Idempotent: does nothing when `docker info` already works. Otherwise installs Debian's
# docker.io if dockerd is missing and starts dockerd in the background. There is no systemd
# on the development and CI machines, so the daemon is started by hand, detached from this
# shell so it outlives it, logging to $DOCKERD_LOG (default /var/log/dockerd.log).
set -euo pipefail

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
WAIT_SECONDS=60
PID_FILE=/var/run/docker.pid

say() { echo "start-docker: $*" >&2; }

if docker info >/dev/null 2>&1; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    say "the Docker daemon is not reachable and starting it needs root:" \
        "run 'sudo $0' (or 'sudo systemctl start docker' where systemd runs)"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "dockerd is not installed and apt-get is not available: install Docker yourself"
        exit 1
    fi
    say "installing docker.io..."
    export DEBIAN_FRONTEND=noninteractive
    APT=(apt-get -o DPkg::Lock::Timeout=600 -qq)
    "${APT[@]}" update
    "${APT[@]}" install -y --no-install-recommends docker.io >/dev/null
fi

# The `docker` client may be missing even where dockerd is (a daemon-only install).
if ! command -v docker >/dev/null 2>&1; then
    say "the docker client is not installed: apt-get install docker.io (or docker-ce-cli)"
    exit 1
fi

# Waits until the daemon with PID $1 answers; fails if it exits or takes too long.
wait_for_daemon() {
    local pid=$1 waited=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || ((waited >= WAIT_SECONDS)); then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# A dockerd that is still starting (or shutting down) holds the pid file, and a second one
# would refuse to start: wait for it to answer or to be gone.
if [[ -s "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    say "a dockerd (pid $(cat "$PID_FILE")) is already running; waiting for it..."
    running=$(cat "$PID_FILE")
    if wait_for_daemon "$running"; then
        exit 0
    fi
    if kill -0 "$running" 2>/dev/null; then
        say "dockerd (pid $running) runs but has not answered for $WAIT_SECONDS s: see $LOG"
        exit 1
    fi
fi

# dockerd picks the storage driver itself: the one its existing images use, else the best
# the kernel supports (overlay2 on our machines). Where overlay mounts fail only when a
# container starts (some nested setups), set DOCKERD_STORAGE_DRIVER=vfs.
flags=()
if [[ -n "${DOCKERD_STORAGE_DRIVER:-}" ]]; then
    flags=(--storage-driver="$DOCKERD_STORAGE_DRIVER")
fi
mkdir -p "$(dirname "$LOG")"
started=$(date +%s)
say "starting dockerd${flags[*]:+ ${flags[*]}} (log in $LOG)..."
setsid dockerd "${flags[@]}" >>"$LOG" 2>&1 </dev/null &
pid=$!
if ! wait_for_daemon "$pid"; then
    say "dockerd did not come up within $WAIT_SECONDS s; last lines of $LOG:"
    tail -n 10 "$LOG" >&2 || true
    kill "$pid" 2>/dev/null || true
    exit 1
fi
say "dockerd is up (pid $pid, storage driver $(docker info --format '{{.Driver}}')) after" \
    "$(($(date +%s) - started)) s"
