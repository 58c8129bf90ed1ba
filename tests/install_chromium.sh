#!/usr/bin/env bash
# Debian's Chromium for the tests that check pages in a real browser (tests/browser.py), if no
# Chromium-family browser is on PATH. Needs root or sudo; otherwise says what to do and lets those
# tests fail with the same advice.
set -euo pipefail
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null; then exit 0; fi
done
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "tests/install_chromium.sh: no Chromium and no root: install Debian's chromium, or set CXR_CHROMIUM" >&2
  exit 0
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
