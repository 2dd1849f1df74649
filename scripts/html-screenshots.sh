#!/usr/bin/env bash
# Regenerates the README's screenshots of the HTML report (docs/html-*.png) with headless
# Chromium, the same way tests/test_html.py loads the page.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shot() {  # capture, png, height
    .venv/bin/lbreport report "captures/$1.pcapng" --format html -o "$tmp/$1.html"
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --user-data-dir="$tmp/profile-$1" \
        --screenshot="docs/$2" --window-size="1280,$3" "file://$tmp/$1.html" 2>/dev/null
}
shot classic-client html-classic-client.png 1750
shot ab-concurrency html-ab-concurrency.png 1250
