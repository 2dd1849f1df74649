#!/usr/bin/env python3
"""Every output of the product on every reference capture, written to a folder, so that a
refactoring can be checked byte for byte: `diff -r BEFORE AFTER`.

For each capture in captures/ (with its key log when there is one): the plugin's labels
(two passes, every lblab field) and lbreport's report in every format, in English and
Spanish; `lbreport roles` too. Captures from ../shared/public-captures are added when present.

    python3 scripts/snapshot_outputs.py /tmp/before
    ... change ...
    python3 scripts/snapshot_outputs.py /tmp/after && diff -r /tmp/before /tmp/after

Further arguments keep only the captures whose name contains one of them (a quick check):
    python3 scripts/snapshot_outputs.py /tmp/after classic ab-concurrency
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "lblab.lua"
LBREPORT = ROOT / ".venv" / "bin" / "lbreport"
FORMATS = ("json", "text", "markdown", "csv", "html")


def lblab_fields() -> list[str]:
    out = subprocess.run(["tshark", "-G", "fields", "-X", f"lua_script:{PLUGIN}"],
                         capture_output=True, text=True, check=True).stdout
    names = [line.split("\t")[2] for line in out.splitlines()
             if line.startswith("F\t") and line.split("\t")[4] == "lblab"]
    return [n for n in names if not n.startswith("lblab.vocab.")]


def keylog_args(cap: Path) -> list[str]:
    keys = cap.with_suffix(".keys")
    return ["-o", f"tls.keylog_file:{keys}"] if keys.exists() else []


def snapshot(cap: Path, dest: Path, fields: list[str]) -> None:
    keys = cap.with_suffix(".keys")
    labels = ["tshark", "-n", "-2", "-Y", "frame", "-X", f"lua_script:{PLUGIN}", "-r", str(cap),
              *keylog_args(cap), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in ["frame.number", *fields]:
        labels += ["-e", f]
    (dest / f"{cap.stem}.labels.tsv").write_bytes(
        subprocess.run(labels, capture_output=True).stdout)
    key_opt = ["--keylog", str(keys)] if keys.exists() else []
    for lang in ("en", "es"):
        for fmt in FORMATS:
            if lang == "es" and fmt in ("json", "csv"):
                continue  # the contract formats are never translated
            p = subprocess.run([str(LBREPORT), "report", str(cap), "-f", fmt, "--lang", lang,
                                *key_opt], capture_output=True)
            (dest / f"{cap.stem}.{lang}.{fmt}").write_bytes(
                p.stdout + b"\n--- stderr ---\n" + p.stderr + f"\n--- rc {p.returncode}\n".encode())
    p = subprocess.run([str(LBREPORT), "roles", str(cap)], capture_output=True)
    (dest / f"{cap.stem}.roles.toml").write_bytes(p.stdout + p.stderr)


def main() -> None:
    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    caps = sorted(ROOT.glob("captures/*.pcapng"))
    public = ROOT.parent / "shared" / "public-captures"
    if public.is_dir():
        caps += sorted(p for p in public.iterdir() if p.suffix in (".pcap", ".pcapng"))
    if sys.argv[2:]:
        caps = [c for c in caps if any(word in c.name for word in sys.argv[2:])]
    fields = lblab_fields()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: snapshot(c, dest, fields), caps))
    print(f"{len(caps)} captures → {dest}")


if __name__ == "__main__":
    main()
