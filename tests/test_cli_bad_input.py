"""Every kind of bad input ends with a clear message, a non-zero exit and no traceback.
Real tshark and real (sometimes deliberately damaged) files throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from craft import CAPTURES, assert_clean_failure, invoke, plugin_failing_on
from lbreport import tshark
from lbreport.errors import LbreportError

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

CLASSIC_CLIENT = CAPTURES / "classic-client.pcapng"
CLASSIC_M3 = CAPTURES / "classic-m3.pcapng"


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_failure(invoke("report", str(tmp_path / "nope.pcapng")), "No such file")


def test_directory(tmp_path: Path) -> None:
    assert_clean_failure(invoke("report", str(tmp_path)), "is a directory")


@pytest.mark.parametrize("content", [b"hello\n", b"These are my lab notes, not a capture.\n"])
def test_text_file_named_pcapng(tmp_path: Path, content: bytes) -> None:
    fake = tmp_path / "notes.pcapng"
    fake.write_bytes(content)
    assert_clean_failure(invoke("report", str(fake)), "not a")


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "zero.pcapng"
    empty.touch()
    assert_clean_failure(invoke("report", str(empty)), "empty file")


def test_capture_without_packets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcapng"
    subprocess.run(["editcap", "-r", str(CLASSIC_CLIENT), str(empty), "0"], check=True)
    assert_clean_failure(invoke("report", str(empty)), "holds no packets")


def test_capture_without_http(tmp_path: Path) -> None:
    arp_only = tmp_path / "arp.pcapng"
    subprocess.run(["tshark", "-r", str(CLASSIC_CLIENT), "-Y", "arp", "-w", str(arp_only)],
                   check=True, capture_output=True)
    result = invoke("report", str(arp_only))
    assert_clean_failure(result, "none of its", "HTTP")


def test_truncated_capture_reports_what_was_read(tmp_path: Path) -> None:
    data = CLASSIC_M3.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) - 40])  # in the middle of the last packet
    result = invoke("report", str(cut), "--format", "json")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert "cut short" in result.stderr
    rep = json.loads(result.stdout)
    assert rep["truncated"] is True
    assert rep["requests"], "the requests before the cut are reported"
    s = rep["summary"]
    assert s["frames_in_requests"] + s["frames_other"] == s["frames_total"] > 0
    text = invoke("report", str(cut))
    assert "CUT SHORT" in text.stdout


def test_tshark_missing(tmp_path: Path) -> None:
    result = invoke("report", str(CLASSIC_CLIENT), env={"PATH": str(tmp_path)})
    assert_clean_failure(result, "tshark was not found", "apt-get install tshark")


def test_doctor_without_tshark(tmp_path: Path) -> None:
    result = invoke("doctor", env={"PATH": str(tmp_path)})
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "apt-get install tshark" in result.stdout


VERSION_NO_LUA = """TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3).

Compiled (64-bit) using GCC 12.2.0, with GLib 2.74.6, with PCRE2, with zlib
1.2.13, with libpcap, with POSIX capabilities (Linux), with libnl 3, without
Lua, with GnuTLS 3.7.9 and PKCS #11 support.
"""


VERSION_46 = """TShark (Wireshark) 4.6.9 (Git v4.6.9 packaged as 4.6.9-1).

Compiled (64-bit) using GCC 15.2.0, with GLib 2.86.0, with libpcap, with POSIX
capabilities (Linux), with libnl 3, +Lua 5.4.9, +GnuTLS 3.8.9, +Gcrypt 1.11.2.
"""


def test_version_text_wordings() -> None:
    """The Lua version is read from any wording (messages only); the version from each."""
    real = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout
    assert tshark.parse_version(real, "tshark").lua  # "with Lua\n5.2.4" wraps on Debian 12
    new = tshark.parse_version(VERSION_46, "tshark")
    assert (new.version, new.lua) == ((4, 6, 9), "5.4.9")
    assert tshark.parse_version(VERSION_NO_LUA, "tshark").lua == ""
    assert tshark.parse_version(VERSION_46.replace("+Lua 5.4.9", "-Lua"), "tshark").lua == ""


def _probe_outputs(version: str, fields: str = "", errors: str = "") -> dict:
    return {"version": (version, "", 0), "fields": ("", "", 0), "fields_x": (fields, errors, 0)}


def test_runner_decided_by_loading_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether Lua works is what loading the plugin says, whatever `tshark -v` words."""
    monkeypatch.setattr(tshark, "unprivileged", lambda: None)
    loaded = "F\tRequest index\tlblab.req\tFT_UINT32\tlblab\nF\tx\tlblab.pkt\tFT_STRING\tlblab\n"
    runner = tshark.make_runner(_probe_outputs(VERSION_46, loaded), "tshark")
    assert runner.compact and runner.plugin[0] == "-X" and runner.unprivileged is None
    with pytest.raises(LbreportError, match="without Lua"):
        tshark.make_runner(_probe_outputs(VERSION_NO_LUA), "tshark")
    with pytest.raises(LbreportError, match="Lua error"):
        tshark.make_runner(_probe_outputs(VERSION_46, "", "tshark: Lua: Error during loading"),
                           "tshark")
    with pytest.raises(LbreportError, match="too old"):
        tshark.make_runner(_probe_outputs(VERSION_NO_LUA.replace("4.0.17", "3.6.2")), "tshark")
    monkeypatch.setattr(tshark.os, "geteuid", lambda: 0)
    with pytest.raises(LbreportError, match="run_user_scripts_when_superuser"):
        tshark.make_runner(_probe_outputs(VERSION_46), "tshark")


def test_pdml_reader_survives_invalid_utf8() -> None:
    """A raw non-UTF-8 byte in PDML (a dissector copying packet bytes) must not stop the
    parse: libxml2 would give up on the whole document."""
    import io

    from lbreport.pdml import PdmlReader

    pdml = (b'<?xml version="1.0" encoding="utf-8"?>\n<pdml creator="x">\n'
            b'<packet><proto name="geninfo"><field name="num" show="1"/>'
            b'<field name="timestamp" show="x" value="1.5"/></proto>'
            b'<proto name="lblab"><field name="lblab.uri" show="/a\xe3b\xc3"/></proto></packet>'
            b'<packet><proto name="geninfo"><field name="num" show="2"/>'
            b'<field name="timestamp" show="x" value="2.5"/></proto></packet></pdml>')
    for chunk in (1, 3, 7, 1 << 16):  # split multibyte sequences at every boundary
        class Chunked(io.BytesIO):
            def read(self, size: int = -1, _c: int = chunk) -> bytes:  # noqa: ARG002
                return super().read(_c)

        records = list(PdmlReader(Chunked(pdml)))
        assert [r.frame for r in records] == [1, 2]
        assert records[0].uri == "/a\ufffdb\ufffd"


@pytest.mark.parametrize(
    ("lab", "key"),
    [
        ('[farm]\nbalancer = "192.168.56.103"\n', "farm.balancer"),
        ('[farm]\nbalancer = ["192.168.56.300"]\n', "farm.balancer"),
        ('[farm]\nbalancer = ["192.168.56.103"]\nports = ["80"]\n', "farm.ports"),
        ('[farm]\nbalancers = ["192.168.56.103"]\n', "farm.balancers"),
        ('[farm]\nbalancer = ["192.168.56.103"]\n[backends]\nweb1 = ["192.168.56.101"]\n',
         "backends.web1"),
        ('[markers]\nM1 = "a;b"\n', "markers.M1"),
        ('[policy]\nkind = "random"\n', "policy.kind"),
        ('[policy]\nkind = "weights"\nweights = { M1 = 0 }\n', "policy.weights.M1"),
        ("[nonsense]\n", "nonsense"),
        ("[farm\n", "not valid TOML"),
    ],
)
def test_invalid_lab_file_names_the_key(tmp_path: Path, lab: str, key: str) -> None:
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text(lab)
    assert_clean_failure(invoke("report", str(CLASSIC_CLIENT), "--lab", str(lab_file)), key)


def test_missing_lab_file(tmp_path: Path) -> None:
    result = invoke("report", str(CLASSIC_CLIENT), "--lab", str(tmp_path / "lab.toml"))
    assert_clean_failure(result, "Lab file not found")


def _broken_plugin(tmp_path: Path, kind: str) -> Path:
    if kind != "syntax":
        return plugin_failing_on(3, "injected by the test", tmp_path)
    path = tmp_path / "lblab.lua"
    path.write_text(tshark.REPO_PLUGIN.read_text() + "\nlocal x = = 1\n")
    return path


@pytest.mark.parametrize("kind", ["syntax", "runtime"])
def test_plugin_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    if not tshark.REPO_PLUGIN.is_file():
        pytest.skip("plugin not in the tree")
    monkeypatch.setattr(tshark, "REPO_PLUGIN", _broken_plugin(tmp_path, kind))
    result = invoke("report", str(CLASSIC_CLIENT))
    assert_clean_failure(result, "Lua")
    if kind == "runtime":
        assert "frame 3" in result.stderr and "injected by the test" in result.stderr


def test_unwritable_output(tmp_path: Path) -> None:
    result = invoke("report", str(CLASSIC_CLIENT), "-o", str(tmp_path / "no" / "such" / "x"))
    assert_clean_failure(result, "Cannot write")


def test_roles_on_bad_input(tmp_path: Path) -> None:
    assert_clean_failure(invoke("roles", str(tmp_path / "nope.pcapng")), "No such file")
    fake = tmp_path / "notes.pcapng"
    fake.write_bytes(b"These are my lab notes, not a capture.\n")
    assert_clean_failure(invoke("roles", str(fake)), "not a")


def test_doctor_reports_a_broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tshark, "REPO_PLUGIN", _broken_plugin(tmp_path, "syntax"))
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "Lua" in result.stdout
