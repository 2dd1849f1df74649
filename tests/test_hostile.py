"""Regressions for hostile captures found by the fuzz work (issue 12), each crafted byte by
byte (tests/fuzz/hostile.py) and run through the real CLI in a subprocess with a timeout: a
hang is a failure, not a stuck CI.

(a) a back-leg X-Real-IP holding an invalid UTF-8 byte (`192.168.56.1\\xe3`) used to hang
    lbreport (lxml refused the PDML, then the pipeline waited for a tshark blocked on a full
    pipe);
(b) a client's own X-Forwarded-For behind nginx (appended to) and haproxy (a second line)
    must not create a role nor unlink the back legs, and the request says what the client
    wrote (`client_sent_forwarded_for`);
(c) a pcapng cut short before its first packet must say so;
(d) BEL in a URI shows as `\\x07` in text;
(e) a NUL in a URI does not cut the URI: what follows is kept, the NUL marked.

Then what the fuzz suite (tests/test_fuzz.py) found: a pcap record's sub-second field past
one second, and damaged forwarded addresses that become roles.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from craft import CAPTURES
from fuzz import hostile

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

TIMEOUT = 60
UA = b"User-Agent: curl/7.88.1"
PLAIN = b"GET /ejemplo.html HTTP/1.1"


def lbreport(path: Path, fmt: str = "json") -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "lbreport", "report", str(path), "--format", fmt]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"hang: `lbreport report {path} --format {fmt}` still running after "
                    f"{TIMEOUT} s (killed); stderr: {err.decode('utf-8', 'replace')!r}",
                    pytrace=False)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def report_json(path: Path) -> dict:
    result = lbreport(path, "json")
    err = result.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in result.stderr, err
    assert result.returncode == 0, f"exit {result.returncode}: {err}"
    result.stdout.decode("utf-8")  # strict: valid UTF-8
    return json.loads(result.stdout)


def plain_exchanges(n: int, first_port: int) -> list[bytes]:
    frames: list[bytes] = []
    for i in range(n):
        frames += hostile.m3_exchange(first_port + i, PLAIN, [UA], hostile.nginx_back_headers(),
                                      backend=("M1", "M2")[i % 2])
    return frames


# ----------------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("xff", ["absent", "damaged"])
def test_invalid_utf8_in_back_leg_x_real_ip(tmp_path: Path, xff: str) -> None:
    """The damaged request first, then enough plain ones that tshark's PDML outgrows the
    1 MB pipe: the hang needs tshark blocked on a full pipe."""
    back = [b"X-Real-IP: 192.168.56.1\xe3"]
    if xff == "damaged":
        back.append(b"X-Forwarded-For: , ,")  # no address in it: X-Real-IP is used
    frames = hostile.m3_exchange(41000, PLAIN, [UA], back)
    frames += plain_exchanges(100, 41001)
    capture = hostile.write(tmp_path / "realip-e3.pcap", frames)
    for fmt in ("text", "markdown", "csv"):  # every output valid UTF-8, not only JSON's
        out = lbreport(capture, fmt)
        assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
        out.stdout.decode("utf-8")
        out.stderr.decode("utf-8")
    rep = report_json(capture)
    assert rep["summary"]["requests"] == 101
    assert rep["requests"][0]["uri"] == "/ejemplo.html"
    s = rep["summary"]
    assert s["frames_in_requests"] + s["frames_other"] == s["frames_total"] == len(frames)


# ----------------------------------------------------------------------------------- (b)


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_client_sent_x_forwarded_for(tmp_path: Path, balancer: str) -> None:
    back = {"nginx": hostile.nginx_back_headers, "haproxy": hostile.haproxy_back_headers}
    frames: list[bytes] = []
    for i, backend in enumerate(("M1", "M2")):
        frames += hostile.m3_exchange(41000 + i, PLAIN, [UA, b"X-Forwarded-For: 6.6.6.6"],
                                      back[balancer](b"6.6.6.6"), backend=backend)
    rep = report_json(hostile.write(tmp_path / f"xff-{balancer}.pcap", frames))
    problems = []
    if "6.6.6.6" in json.dumps(rep["roles"]):
        problems.append(f"a header the client wrote made a role: roles {rep['roles']}")
    for req in rep["requests"]:
        steps = [s["step"] for s in req["steps"]]
        if req["backend_evidence"] != "back-leg" or "up-request" not in steps:
            problems.append(f"request {req['index']}: back leg not linked: backend "
                            f"{req['backend']} by {req['backend_evidence']}, anomalies "
                            f"{req['anomalies']}, steps {steps}")
        own = req.get("client_sent_forwarded_for") or ""
        if "6.6.6.6" not in own:
            problems.append(f"request {req['index']}: client_sent_forwarded_for is {own!r}, "
                            f"the client wrote 6.6.6.6")
    if [r["backend"] for r in rep["requests"]] != ["M1", "M2"]:
        problems.append(f"backends {[r['backend'] for r in rep['requests']]}, sent to M1, M2")
    if rep["summary"]["frames_other"] != 0:
        problems.append(f"{rep['summary']['frames_other']} frames in no request (the back "
                        f"legs' frames, left out)")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------- (c)

# classic-client.pcapng: section header block 0-163, interface description 164-231, first
# packet 232-339.
@pytest.mark.parametrize("cut", [72, 28, 120, 200, 300])
def test_pcapng_cut_before_the_first_packet(tmp_path: Path, cut: int) -> None:
    capture = tmp_path / f"cut{cut}.pcapng"
    capture.write_bytes((CAPTURES / "classic-client.pcapng").read_bytes()[:cut])
    result = lbreport(capture)
    err = result.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in result.stderr, err
    assert result.returncode == 1, f"exit {result.returncode}: {err}"
    assert re.search(r"cut short.*before.*first packet", err, re.S | re.I), err
    assert "balancer's address" not in err, err


# ----------------------------------------------------------------------------------- (d)


def test_bel_in_uri_shows_as_x07(tmp_path: Path) -> None:
    capture = hostile.write(tmp_path / "bel.pcap",
                            hostile.client_exchange(41000, b"GET /a\x07bell HTTP/1.1", [UA]))
    result = lbreport(capture, "text")
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    text = result.stdout.decode("utf-8")
    assert "\x07" not in text
    assert "/a\\x07bell" in text, [ln for ln in text.splitlines() if "GET" in ln]
    assert "\\x7bell" not in text  # reads as "\x7b" + "ell" ("{ell"): wrong byte


# ----------------------------------------------------------------------------------- (e)


@pytest.mark.parametrize("view", ["client", "m3"])
def test_nul_in_uri_keeps_the_rest(tmp_path: Path, view: str) -> None:
    line = b"GET /before\x00after HTTP/1.1"
    frames = (hostile.client_exchange(41000, line, [UA]) if view == "client"
              else hostile.m3_exchange(41000, line, [UA], hostile.nginx_back_headers()))
    capture = hostile.write(tmp_path / "nul.pcap", frames)
    uri = report_json(capture)["requests"][0]["uri"]
    assert "after" in uri and uri != "/beforeafter", f"NUL dropped or unmarked: {uri!r}"
    result = lbreport(capture, "text")
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    text = result.stdout.decode("utf-8")
    assert "\x00" not in text
    assert "/before\\x00after" in text, [ln for ln in text.splitlines() if "GET" in ln]


# ------------------------------------------------------------------- found by the fuzz suite


def test_sub_second_field_past_one_second(tmp_path: Path) -> None:
    """A pcap record whose microsecond field holds 3,000,000 (fuzz recipe `time`,
    frac-overflow): tshark prints the epoch time as `1700000000.-…` in PDML."""
    capture = hostile.write(tmp_path / "usec.pcap",
                            hostile.client_exchange(41000, PLAIN, [UA]))
    data = bytearray(capture.read_bytes())
    offset = 24  # the first record's header: seconds, microseconds, lengths
    for _ in range(3):
        sec, usec, caplen, _orig = struct.unpack_from("<IIII", data, offset)
        struct.pack_into("<I", data, offset + 4, usec + 3_000_000)
        offset += 16 + caplen
    capture.write_bytes(bytes(data))
    rep = report_json(capture)
    assert rep["summary"]["requests"] == 1


@pytest.mark.parametrize("header", [
    b"X-Real-IP: \xe3\x1b[2J",
    b"X-Real-IP:ufd00:52::1",
    b"X-Forwarded-For: 192.168.56.1, not-an-address",
])
def test_garbage_forwarded_address_makes_no_role(tmp_path: Path, header: bytes) -> None:
    """What the balancer forwards, damaged (a flipped byte, fuzz recipe `errors`): no role
    may be named after something that is not an IP address."""
    frames = hostile.m3_exchange(41000, PLAIN, [UA], [header])
    frames += hostile.m3_exchange(41001, PLAIN, [UA], hostile.nginx_back_headers(),
                                  backend="M2")
    rep = report_json(hostile.write(tmp_path / "garbage.pcap", frames))
    for role, value in rep["roles"].items():
        for addr in value if isinstance(value, list) else [value]:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                pytest.fail(f"role {role} named after {addr!r}: roles {rep['roles']}")
    assert rep["summary"]["requests"] == 2


def test_damaged_back_leg_xff_in_m3_view_makes_no_client(tmp_path: Path) -> None:
    """At M3 the clients are seen on the front leg. A back-leg X-Forwarded-For naming an
    address that sent no packet at all (one flipped byte: 192 → 191, fuzz recipe `errors`,
    seeds 20261201 and 1) must not add a client role: only a backend's own view needs
    X-Forwarded-For to know its clients."""
    frames = hostile.m3_exchange(41000, PLAIN, [UA],
                                 [b"X-Real-IP: 192.168.56.1", b"X-Forwarded-For: 191.168.56.1"])
    frames += hostile.m3_exchange(41001, PLAIN, [UA], hostile.nginx_back_headers(),
                                  backend="M2")
    rep = report_json(hostile.write(tmp_path / "xff191.pcap", frames))
    assert rep["capture_point"] == "M3"
    assert rep["roles"]["client"] == ["192.168.56.1"], rep["roles"]
    assert rep["summary"]["requests"] == 2
