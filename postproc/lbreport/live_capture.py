"""The live capture's plumbing: checks before capturing, the capture filter, and pyshark's
`LiveCapture` (dumpcap → tshark + the plugin) turned into a queue of `Record`s.

Why PDML and not pyshark's faster JSON mode: tshark's JSON writer only closes a packet's object
(`},`) when the *next* packet starts, so pyshark cannot hand over the last packet of a burst
(the last ACK of a teardown) until more traffic arrives. PDML closes `</packet>` at once, and
with `-J lblab` it is as fast as JSON here (~2,200 packets/s with the plugin, measured on
captures/ab-concurrency.pcapng).

Why `output_file=` for --write: tshark writes every packet it reads (pyshark adds `-w FILE`)
while still printing PDML, so the written file holds exactly the packets that were labelled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbreport import pipeline, tshark
from lbreport.config import Lab, classic_lab
from lbreport.errors import LbreportError
from lbreport.messages import t
from lbreport.pdml import Record, record_from_fields

# --------------------------------------------------------------------------- before capturing


def check_interface(iface: str) -> None:
    """Fail now, with the reason, instead of waiting silently: `dumpcap -L -i IFACE` opens the
    device, so it tells both "no such interface" and "no permission to capture"."""
    proc = subprocess.run(["dumpcap", "-L", "-i", iface], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=20)
    if proc.returncode == 0:
        return
    err = proc.stderr
    if "No such device" in err or "no such device" in err or "doesn't exist" in err:
        raise LbreportError(t("live.err.no_iface", iface=iface, interfaces=_interfaces()))
    if "permission" in err.lower() or "not permitted" in err:
        raise LbreportError(t("live.err.no_permission", iface=iface))
    first = next((ln for ln in err.splitlines() if ln.strip()), t("live.no_message"))
    raise LbreportError(t("live.err.dumpcap", iface=iface,
                          reason=first.removeprefix("dumpcap: ")))


def _interfaces() -> str:
    proc = subprocess.run(["dumpcap", "-D"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=20)
    return proc.stdout.strip() or t("live.none_listed")


def capture_filter(lab: Lab) -> str:
    """BPF that keeps the farm's traffic only: its HTTP port(s) (front and back leg), ARP, and
    IPv6 neighbour discovery (ICMPv6 135/136, read at ip6[40]: ND carries no extension
    header)."""
    # The plugin's defaults for lblab.ports and lblab.https_ports (HTTPS is a front leg too).
    ports = [*(lab.ports or (80,)), *(lab.https_ports or (443,))]
    tcp = " or ".join(f"tcp port {p}" for p in dict.fromkeys(ports))
    return f"({tcp}) or arp or (icmp6 and (ip6[40] == 135 or ip6[40] == 136))"


def interface_networks(iface: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks configured on an interface (`ip -j addr`), [] when unknown."""
    try:
        out = subprocess.run(["ip", "-j", "addr", "show", "dev", iface], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
        info = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    nets = []
    for link in info:
        for a in link.get("addr_info", []):
            with contextlib.suppress(KeyError, ValueError):
                nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def choose_live_lab(lab_path: Path | None, iface: str) -> tuple[Lab, str]:
    """The same decision as `lbreport report` (pipeline.choose_lab), made before any packet:
    the classic lab applies when its balancer's address lies on this interface's network
    (vboxnet0 = 192.168.56.1/24, or M3's own interface), else the plugin infers the roles."""
    seen: set[str] = set()
    if lab_path is None:
        nets = interface_networks(iface)
        for addr in classic_lab().balancer:
            ip = ipaddress.ip_address(addr)
            if any(ip.version == n.version and ip in n for n in nets):
                seen.add(addr)
    return pipeline.choose_lab(lab_path, seen)


# --------------------------------------------------------------------------- pyshark → records


def packet_record(pkt: Any) -> tuple[Record, str]:
    """A pyshark PDML packet → (Record, Lua error text or ""), decoded by pdml.py exactly as
    the report decodes tshark's PDML: a new lblab field is parsed in one place."""
    return record_from_fields(int(pkt.number), float(pkt.sniff_timestamp), _fields(pkt))


def _fields(pkt: Any) -> Iterator[tuple[str, str]]:
    """Every field pyshark kept, as PDML's (name, show): the lblab layer's (each occurrence:
    role_def repeats), and the unnamed item where a Lua error inside a dissector lands."""
    for layer in pkt.layers:
        containers = getattr(layer, "_all_fields", None) or {}
        for name, container in containers.items():
            if layer.layer_name == "lblab" or name == "":  # pdml.py keeps only Lua errors
                for f in container.all_fields:
                    yield name, str(f.show)


@dataclass(frozen=True, slots=True)
class CaptureEnd:
    """Put on the queue when the capture ends; `error` is why, if it failed."""

    error: str = ""


class LiveSource:
    """pyshark's LiveCapture, read in a worker thread into `self.queue`.

    The thread owns pyshark's event loop (pyshark makes one per thread), so the main thread is
    free to keep time (request timeouts, --duration) and to handle Ctrl-C. `stop()` ends the
    capture the clean way: SIGTERM to the dumpcap that pyshark started (by its pid); tshark
    then sees the end of its input, labels and prints what is left, closes the --write file
    and exits, and the thread puts `CaptureEnd`.
    """

    def __init__(self, iface: str, bpf: str, runner: tshark.Runner, prefs: list[str],
                 write: Path | None) -> None:
        self.iface = iface
        self.bpf = bpf
        self.plugin = runner.plugin
        self.prefs = prefs
        self.write = write
        # As root on a Wireshark that skips user Lua scripts, tshark dissects as an ordinary
        # user (dumpcap still captures as root): it writes --write into its own folder first.
        self.tshark_path: str | None = None
        self._written: Path | None = write
        if runner.unprivileged is not None:
            self.tshark_path = str(runner.unprivileged.tshark_wrapper(runner.info.path))
            if write is not None:
                self._written = runner.unprivileged.home / "live.pcapng"
        self.queue: queue.Queue[Record | CaptureEnd | tuple[str, str]] = queue.Queue()
        self._capture: Any = None
        self._stop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lbreport-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import pyshark  # imported here: only `lbreport live` needs it

        logging.getLogger("asyncio").addFilter(_NoUnknownChild())
        error = ""

        try:
            override = dict(p.split(":", 1) for p in self.prefs)
            # -J lblab: PDML with geninfo (frame number, time) and the plugin's labels only.
            self._capture = pyshark.LiveCapture(
                interface=self.iface, bpf_filter=self.bpf,
                custom_parameters=[*self.plugin, "-J", "lblab"],
                override_prefs=override,
                output_file=str(self._written) if self._written else None,
                tshark_path=self.tshark_path,
            )  # fmt: skip
            for pkt in self._capture.sniff_continuously():
                record, lua_error = packet_record(pkt)
                if lua_error:
                    self.queue.put(("lua", lua_error))
                self.queue.put(record)
            error = self._stderr_error()
        except Exception as exc:  # noqa: BLE001 - reported to the main thread, which exits 1
            error = f"{type(exc).__name__}: {exc}".strip()
        finally:
            self._close_quietly()
            if self._written is not None and self.write is not None and self._written != self.write:
                with contextlib.suppress(OSError):
                    shutil.copyfile(self._written, self.write)
        self.queue.put(CaptureEnd(error))

    def _close_quietly(self) -> None:
        """Reap pyshark's processes now, in this thread and its event loop, instead of in
        `Capture.__del__` at exit. The exit status of a dumpcap we stopped on purpose is no
        error, and asyncio may not even know it (its child watcher then reports 255 and pyshark
        calls that a crash)."""
        if self._capture is None:
            return
        with contextlib.suppress(Exception):
            self._capture.close()
        with contextlib.suppress(Exception):
            self._capture._running_processes.clear()

    def _stderr_error(self) -> str:
        """tshark's or dumpcap's last complaint when the capture ended on its own."""
        last = getattr(self._capture, "_last_error_line", None) or ""
        return last if "rror" in last or "failed" in last.lower() else ""

    def _pids(self) -> list[tuple[int, str]]:
        procs = getattr(self._capture, "_running_processes", None) or set()
        out = []
        for p in list(procs):
            try:
                name = Path(f"/proc/{p.pid}/comm").read_text().strip()
            except OSError:
                name = ""
            out.append((p.pid, name))
        return out

    def capturing(self) -> bool:
        """True once tshark has started its own dumpcap on our dumpcap's pipe: from then on
        every packet on the interface is labelled (pyshark itself never says so)."""
        for pid, name in self._pids():
            if name != "tshark":
                continue
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    for child in children:
                        if Path(f"/proc/{child}/comm").read_text().strip() == "dumpcap":
                            return True
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dumpcap (ours, by pid) and wait for tshark to drain; then tshark, then kill
        what is left. Safe to call twice and when the capture already ended."""
        with self._stop_lock:
            pids = self._pids()
            _close_leaked_pipe([pid for pid, name in pids if name == "dumpcap"])
            for pid, name in pids:
                if name == "dumpcap":
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            # tshark ends by itself once its input ends; if not (an old pyshark), SIGTERM makes
            # it stop capturing, print what it has read and close the --write file.
            for sig, wait in ((None, timeout / 2), (signal.SIGTERM, timeout / 2),
                              (signal.SIGKILL, 2.0)):
                if sig is not None:
                    for pid, _name in self._pids():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, sig)
                self._thread.join(wait)
                if not self._thread.is_alive():
                    return


class _NoUnknownChild(logging.Filter):
    """asyncio's "Unknown child process pid N, will report returncode 255" about a dumpcap we
    stopped ourselves says nothing a student can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Unknown child process" not in record.getMessage()


def _close_leaked_pipe(dumpcap_pids: list[int]) -> None:
    """pyshark 0.6 makes the dumpcap → tshark pipe with os.pipe() and never closes its own copy
    of the write end, so tshark would never see the end of its input when dumpcap stops. Close
    that copy (Linux /proc; found by the pipe's inode and the write-only flag)."""
    targets = set()
    for pid in dumpcap_pids:
        with contextlib.suppress(OSError):
            targets.add(os.readlink(f"/proc/{pid}/fd/1"))
    if not targets:
        return
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") not in targets:
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = next(int(ln.split()[1], 8) for ln in info if ln.startswith("flags:"))
            if flags & 3 == os.O_WRONLY:
                os.close(int(fd))
        except (OSError, StopIteration, ValueError):
            continue


def plugin_and_prefs(lab: Lab, keylog: Path | None = None) -> tuple[tshark.Runner, list[str]]:
    """tshark.py's one decision on how tshark runs the plugin, and the lab's preferences (with
    the TLS key log as the dissecting user can read it, as tshark.py gives it)."""
    from lbreport.config import preferences

    runner = tshark.preflight(None).runner
    return runner, [*preferences(lab), *runner.keylog_pref(keylog)]
