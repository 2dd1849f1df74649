"""HTTPS at the balancer (issue 11), end to end: real tshark, the real plugin, the https-*
reference captures, with and without their key logs (`<name>.keys`).

With the key log every request must be what the balancer logged (tests/test_report_truth.py
checks the common keys too; here also scheme, http_version and evidence). Without it the same
requests must still be found, marked encrypted, with a sentence saying why method, URI and
status are missing; at M3 the status and backend come from the plain back leg.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from craft import CAPTURES, assert_clean_failure, invoke

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

HTTPS_TRUTHS = sorted(p for p in CAPTURES.glob("https-*.truth.json"))
IDS = [p.name.removesuffix(".truth.json") for p in HTTPS_TRUTHS]


def _truth(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _capture(truth: dict[str, Any]) -> Path:
    return CAPTURES / truth["capture"]


def _keys(truth: dict[str, Any]) -> Path:
    return CAPTURES / truth["keylog"]


@functools.cache
def _run(capture: Path, keylog: Path | None, fmt: str = "json", lang: str = "en"
         ) -> tuple[int, str, str]:
    args = ["report", str(capture), "--format", fmt, "--lang", lang]
    if keylog is not None:
        args += ["--keylog", str(keylog)]
    result = invoke(*args)
    return result.exit_code, result.stdout, result.stderr


def _json(capture: Path, keylog: Path | None) -> dict[str, Any]:
    code, out, err = _run(capture, keylog)
    assert code == 0, err
    assert "Lua" not in err, err
    return json.loads(out)


def _match(got: list[dict[str, Any]], want: list[dict[str, Any]]
           ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pair each truth request with a reported one from the same client ip:port, in order; by
    URI when several share a connection (HTTP/2 streams are logged in no reliable order)."""
    by_client: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in got:
        by_client[r["client"]].append(r)
    pairs = []
    for w in want:
        mine = by_client[w["client"]]
        assert mine, f"no request found for {w['client']} {w['uri']}"
        same = [i for i, r in enumerate(mine) if r["uri"] == w["uri"]]
        pairs.append((mine.pop(same[0] if same else 0), w))
    assert not any(by_client.values()), f"requests not in the truth: {dict(by_client)}"
    return pairs


# -- with the key log: the truth ------------------------------------------------------------


@pytest.mark.parametrize("truth_path", HTTPS_TRUTHS, ids=IDS)
def test_with_keylog_every_request_is_the_truth(truth_path: Path) -> None:
    truth = _truth(truth_path)
    rep = _json(_capture(truth), _keys(truth))
    assert rep["capture_point"] == truth["capture_point"]
    assert len(rep["requests"]) == len(truth["requests"])
    for got, want in _match(rep["requests"], truth["requests"]):
        where = (want["client"], want["uri"])
        assert got["method"] == want["method"], where
        assert got["uri"] == want["uri"], where
        assert got["status"] == want["status"], where
        assert got["scheme"] == want["scheme"], where
        assert got["http_version"] == want["http_version"], where
        assert got["encrypted"] is False, where
        assert got["status_source"] == "front", where
        if truth["capture_point"] == "M3":
            assert got["backend"] == want["backend"], where
            assert got["backend_evidence"] == ("back-leg" if want["backend"] else "none"), where
        elif got["backend"] is not None:  # the client sees a marker or M3's ARP, or nothing
            assert got["backend"] == want["backend"], where
            assert got["backend_evidence"] in ("marker", "arp"), where
    assert rep["summary"]["encrypted"] == 0


# -- without it: the same requests, encrypted ------------------------------------------------


@pytest.mark.parametrize("truth_path", HTTPS_TRUTHS, ids=IDS)
def test_without_keylog_the_same_requests_are_found(truth_path: Path) -> None:
    truth = _truth(truth_path)
    rep = _json(_capture(truth), None)
    got, want = rep["requests"], truth["requests"]
    assert len(got) == len(want)
    assert Counter(r["client"] for r in got) == Counter(r["client"] for r in want)
    at_m3 = truth["capture_point"] == "M3"
    both_legs_tls = truth["scenario"] == "https-reencrypt"
    for g, w in _match(got, want):
        where = (w["client"], w["uri"], w["scheme"])
        assert g["scheme"] == w["scheme"], where
        if w["scheme"] == "http":  # the port-80 redirect: plain HTTP, read as ever
            assert g["encrypted"] is False, where
            assert (g["method"], g["uri"], g["status"]) == (w["method"], w["uri"], w["status"])
            continue
        assert g["encrypted"] is True, where
        assert g["http_version"] is None, where  # the client's HTTP version is unreadable
        if at_m3:
            assert g["backend"] == w["backend"], where
            assert g["backend_evidence"] == "back-leg", where
            if not both_legs_tls:  # the plain back leg says what was asked and answered
                assert g["status"] == w["status"], where
                assert g["status_source"] == "back-leg", where
                assert (g["method"], g["uri"]) == (w["method"], w["uri"]), where
        else:
            assert (g["method"], g["uri"], g["status"]) == ("", "", None), where
    https = sum(1 for w in want if w["scheme"] == "https")
    assert rep["summary"]["encrypted"] == https
    assert sum(rep["summary"]["status_counts"].values()) == len(got)


@pytest.mark.parametrize("truth_path", HTTPS_TRUTHS, ids=IDS)
def test_without_keylog_the_report_says_why(truth_path: Path) -> None:
    """One plain sentence, once, in every human format and both languages; the request line
    says "(encrypted)" where method and URI are unknown."""
    truth = _truth(truth_path)
    capture = _capture(truth)
    for fmt in ("text", "markdown", "html"):
        for lang, needle, line in (("en", "--keylog FILE", "(encrypted)"),
                                   ("es", "--keylog FICHERO", "(cifrada)")):
            code, out, err = _run(capture, None, fmt, lang)
            assert code == 0, err
            assert out.count(needle) == 1, (fmt, lang)
            if truth["capture_point"] == "client":
                assert line in out, (fmt, lang)
    code, out, _ = _run(capture, _keys(truth), "text", "en")
    assert code == 0 and "--keylog" not in out and "(encrypted)" not in out


def test_reencrypt_at_m3_says_what_cannot_be_known() -> None:
    """Both legs TLS and no key log: the report still lists the requests (exit 0) and says
    that method, URI and status cannot be known and the backend is linked by timing only."""
    truth = _truth(CAPTURES / "https-reencrypt-m3.truth.json")
    code, out, err = _run(_capture(truth), None, "text", "en")
    assert code == 0, err
    assert "both legs" in out and "cannot be known" in out and "timing" in out
    rep = _json(_capture(truth), None)
    assert rep["summary"]["encrypted_both_legs"] == len(truth["requests"])


# -- redirects: answered by M3 itself ---------------------------------------------------------


@pytest.mark.parametrize("keys", [True, False], ids=["keylog", "no-keylog"])
def test_redirect_is_answered_by_the_balancer(keys: bool) -> None:
    truth = _truth(CAPTURES / "https-redirect-m3.truth.json")
    rep = _json(_capture(truth), _keys(truth) if keys else None)
    redirects = [r for r in rep["requests"] if r["status"] in (301, 302, 307, 308)]
    assert len(redirects) == sum(1 for r in truth["requests"] if r["status"] == 301) == 2
    for r in redirects:
        assert r["answered_by_balancer"] is True
        assert r["backend"] is None and r["backend_evidence"] == "none"
        assert not [a for a in r["anomalies"] if a.startswith("no-upstream")], r["anomalies"]
    others = [r for r in rep["requests"] if r not in redirects]
    assert others and not any(r["answered_by_balancer"] for r in others)
    code, out, _ = _run(_capture(truth), _keys(truth) if keys else None, "text", "en")
    assert out.count("answered by the balancer itself (a redirect, HTTP 301)") == 2


# -- the key log: options, lab file, errors ---------------------------------------------------


def test_lab_file_keylog_is_relative_to_the_lab_file(tmp_path: Path) -> None:
    truth = _truth(CAPTURES / "https-m3.truth.json")
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    shutil.copy(_keys(truth), lab_dir / "secrets.keys")
    lab = lab_dir / "lab.toml"
    lab.write_text('[farm]\nbalancer = ["192.168.56.103"]\nports = [80]\nhttps_ports = [443]\n'
                   '[backends]\nM1 = ["192.168.56.101"]\nM2 = ["192.168.56.102"]\n'
                   '[tls]\nkeylog = "secrets.keys"\n', encoding="utf-8")
    result = invoke("report", str(_capture(truth)), "--lab", str(lab), "--format", "json")
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert [r["method"] for r in rep["requests"]] == ["GET"] * 3
    assert not any(r["encrypted"] for r in rep["requests"])


def test_https_ports_reach_the_plugin(tmp_path: Path) -> None:
    """[farm] https_ports replaces 443: with 8443 declared, port 443 is no farm port and the
    TLS there is no request (nor a TLS step). (With the key log tshark reads HTTP on 443, and
    a port HTTP requests are sent to is a farm port whatever the lab says: issue 18.)"""
    from lbreport.config import load_lab, preferences

    lab = tmp_path / "lab.toml"
    lab.write_text('[farm]\nhttps_ports = [8443, 443]\n', encoding="utf-8")
    assert "lblab.https_ports:8443,443" in preferences(load_lab(lab))
    lab.write_text('[farm]\nhttps_ports = [8443]\n', encoding="utf-8")
    result = invoke("report", "captures/https-client.pcapng", "--lab", str(lab),
                    "--format", "json")
    assert result.exit_code == 1
    lab.write_text('[farm]\nhttps_ports = ["443"]\n', encoding="utf-8")
    assert_clean_failure(invoke("report", "captures/https-client.pcapng", "--lab", str(lab)),
                         "farm.https_ports")


def test_pdml_command_passes_the_keylog(tmp_path: Path) -> None:
    from lbreport import tshark

    runner = tshark.preflight(None).runner
    keys = CAPTURES / "https-m3.keys"
    argv = tshark.pdml_command(runner, CAPTURES / "https-m3.pcapng", [], keys)
    prefs = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert any(p.startswith("tls.keylog_file:") and p.endswith("https-m3.keys") for p in prefs)
    assert not any(p.startswith("tls.") for p in
                   [a for a in tshark.pdml_command(runner, keys, []) if "keylog" in a])


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_unprivileged_user_gets_a_readable_copy(tmp_path: Path) -> None:
    """As root lbreport may dissect as an ordinary user: a 0600 key log is copied for it."""
    import os

    from lbreport import tshark

    if os.geteuid() != 0:
        pytest.skip("needs root")
    drop = tshark.unprivileged()
    assert drop is not None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    keys = private / "secret.keys"
    shutil.copy(CAPTURES / "https-m3.keys", keys)
    keys.chmod(0o600)
    runner = tshark.Runner(tshark.preflight(None).runner.info, [], unprivileged=drop)
    (pref,) = runner.keylog_pref(keys)
    copy = Path(pref.removeprefix("tls.keylog_file:"))
    assert copy != keys and copy.read_bytes() == keys.read_bytes()
    probe = subprocess.run(drop.wrap(["test", "-r", str(copy)]), check=False)
    assert probe.returncode == 0


@pytest.mark.parametrize("kind", ["missing", "directory", "not-a-keylog", "empty"])
def test_bad_keylog_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.keys"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-a-keylog":
        path.write_text("this is my lab write-up, not a key log\n", encoding="utf-8")
    elif kind == "empty":
        path.write_bytes(b"")
    result = invoke("report", "captures/https-client.pcapng", "--keylog", str(path))
    needle = {"missing": "not found", "directory": "directory"}.get(kind, "not a TLS key log")
    assert_clean_failure(result, needle, str(path))
    es = invoke("report", "captures/https-client.pcapng", "--keylog", str(path), "--lang", "es")
    assert_clean_failure(es, str(path))


def test_tls_without_any_request_names_tls_and_the_keylog(tmp_path: Path) -> None:
    """Only the TCP and TLS handshakes of a connection (no request yet): the error names TLS,
    port 443 and --keylog, not the balancer's address."""
    cut = tmp_path / "handshake-only.pcapng"
    subprocess.run(["editcap", "-r", str(CAPTURES / "https-client.pcapng"), str(cut), "1-9"],
                   check=True, capture_output=True)
    result = invoke("report", str(cut))
    assert_clean_failure(result, "TLS", "443", "--keylog")
    assert "balancer's address" not in result.stderr


def test_batch_and_live_take_the_keylog(tmp_path: Path) -> None:
    from lbreport import live_capture
    from lbreport.config import Lab

    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(CAPTURES / "https-m3.pcapng", folder)
    result = invoke("batch", str(folder), "--keylog", str(CAPTURES / "https-m3.keys"),
                    "--format", "csv", "--jobs", "1")
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().splitlines()
    assert rows[1].startswith("https-m3.pcapng,3,3,"), rows
    missing = invoke("batch", str(folder), "--keylog", str(tmp_path / "nope.keys"))
    assert_clean_failure(missing, "nope.keys")
    bpf = live_capture.capture_filter(Lab())
    assert "tcp port 443" in bpf and "tcp port 80" in bpf
    assert "tcp port 8443" in live_capture.capture_filter(Lab(https_ports=(8443,)))
