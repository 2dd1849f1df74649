#!/usr/bin/env bash
# Runs the whole test suite (real tshark, real captures, real servers in
# network namespaces). Sets the machine up first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Wireshark 4.4 and 4.6 (tests/test_wireshark_versions.py) run in Debian chroots that
# scripts/wireshark-chroot.sh builds once (~1.5 min) and then reuses; here their tests must
# run, not skip. LBLAB_SKIP_VERSIONS=1 skips both the build and those tests (quick local runs).
if [ "${LBLAB_SKIP_VERSIONS:-}" = 1 ]; then
    echo "test: LBLAB_SKIP_VERSIONS=1: no Wireshark 4.4/4.6 chroots, their tests skip" >&2
else
    start=$SECONDS
    # A failed build doesn't stop the rest of the suite: those tests then fail, not skip.
    if bash scripts/wireshark-chroot.sh build; then
        echo "test: Wireshark 4.4/4.6 chroots ready in $((SECONDS - start))s" >&2
    else
        echo "test: building the Wireshark 4.4/4.6 chroots failed (see above)" >&2
    fi
    export LBLAB_REQUIRE_VERSIONS=1
fi
.venv/bin/ruff check postproc tests bench captures/lab
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
