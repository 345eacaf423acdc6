#!/usr/bin/env bash
# System packages the test suite needs beyond Python: a Chromium for the browser tests, fonts
# so its screenshots show the app's text and emoji icons, and slirp4netns with iproute2 for
# code nodes with `network: true` in the process sandbox (docs/sandbox.md).
#
# Playwright's own browser download is not used: it needs network access to a CDN that CI
# machines often block, and its builds lack the system libraries a slim Debian has. Debian's
# chromium package pulls in everything it needs, and tests launch /usr/bin/chromium directly.
# Idempotent: does nothing when everything is already there. Tests that need a missing piece
# skip (saying why) when it cannot be installed, so the rest of the suite still runs.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]] && command -v slirp4netns >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install Chromium yourself at $CHROMIUM" \
        "(browser tests will be skipped until then)" >&2
    exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "install-system-deps: not root and no passwordless sudo; run" \
            "'apt-get install -y chromium' as root (browser tests will be skipped)" >&2
        exit 0
    fi
fi

PACKAGES=(chromium fonts-liberation fonts-noto-color-emoji slirp4netns iproute2)
echo "install-system-deps: installing ${PACKAGES[*]} (browser tests, networked sandboxes)..."
# Waits for another apt (unattended upgrades, a parallel job) instead of failing at once.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq)
if ! "${APT[@]}" update \
    || ! "${APT[@]}" install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null; then
    echo "install-system-deps: apt-get could not install ${PACKAGES[*]} (the tests that" \
        "need them will be skipped)" >&2
    exit 0
fi
echo "install-system-deps: $("$CHROMIUM" --version 2>/dev/null || echo chromium installed)"
