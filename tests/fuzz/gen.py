"""A seeded generator of mutated captures for the fuzz suite (tests/test_fuzz.py).

`plan(seed)` turns a seed into a list of cases (recipe + parameters, no I/O); `build(case, dir)`
makes the case's file. The same seed gives the same corpus, byte for byte, except for `randpkt`
(which takes no seed: the test keeps a copy of any randpkt file that fails).

Recipes, from the reference captures in captures/:

- `errors`: `editcap -E RATE --seed S [-o OFFSET]` (bytes flipped at random, OFFSET spares
  the headers so the HTTP text is hit)
- `cut`: the file cut at a random byte (some in the first 400 bytes: inside the headers)
- `snaplen`: `editcap -s N` (every packet truncated to N bytes)
- `pcap`: `editcap -F pcap` / `-F nsecpcap` copies
- `gzip`: gzip copies (tshark reads them transparently), one cut in the middle
- `merge`: two captures, the second shifted (`editcap -t`) to start inside the first, merged
  by time (`mergecap`)
- `dup`: packets duplicated (all of them with `mergecap F F`, or some at random)
- `shuffle`: packets reordered (all, locally, reversed; timestamps kept or rewritten)
- `time`: timestamps all zero, backwards, jumping by years, far in the future, or with a
  sub-second field past one second
- `linktype`: the same bytes labelled another link type (`editcap -T`)
- `vlan`: an 802.1Q tag inserted in every Ethernet frame (same traffic: same report)
- `randpkt`: `randpkt` output (random packets of one type)
- `synthetic`: seeded random Ethernet/IPv4/TCP frames to port 80 around a few clean exchanges
- `noncapture`: text, empty, random bytes, a PNG header, capture magics followed by garbage
- `hostile`: HTTP crafted byte by byte (tests/fuzz/hostile.py): control bytes, invalid UTF-8,
  NUL in the URI, huge headers, client-sent X-Forwarded-For / X-Real-IP with garbage, both
  legs or the client's view.

Run it by hand to look at a corpus: `python tests/fuzz/gen.py --seed 12 --out /tmp/corpus`.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `craft` and `fuzz` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz import hostile  # noqa: E402

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
DEFAULT_SEED = 20261201
# ab-concurrency (4025 packets) costs ~10x the others: only a few cases start from it.
BIG = "ab-concurrency"


@dataclass(frozen=True)
class Case:
    id: str
    recipe: str
    params: dict = field(hash=False, compare=False)
    all_formats: bool = False  # also run text, markdown, csv (and html on some)
    html: bool = False
    # Crafted cases are well-formed: lbreport must report exactly `expect_requests` (rc 0).
    expect_requests: int | None = None
    # The base capture whose report this one must equal (storage-only changes).
    same_as: str | None = None


# The reference captures the corpus starts from, named (not globbed) so that a capture added
# to captures/ later does not change what a seed means. Add new ones here deliberately.
BASES = (
    "ab-concurrency", "backend-down", "backend-m2", "classic-client", "classic-m3",
    "haproxy-checks", "haproxy-keepalive", "ipv6", "ipv6-client", "three-backends",
    "two-clients", "upstream-keepalive",
)  # fmt: skip


def bases() -> list[str]:
    return list(BASES)


# --------------------------------------------------------------------------- the plan

COUNTS = {  # cases per recipe; the corpus size is their sum
    "errors": 14, "cut": 14, "snaplen": 8, "pcap": 6, "gzip": 6, "merge": 8, "dup": 6,
    "shuffle": 6, "time": 6, "linktype": 4, "vlan": 4, "randpkt": 4, "synthetic": 3,
    "noncapture": 9, "hostile": 20,
}  # fmt: skip
# Recipes that change how the packets are stored, not what they say: the report must be the
# base capture's own (same requests, backends, evidence, frame counts).
EQUIVALENT = {"pcap", "vlan"}
# Which cases also run text, markdown and csv: every 2nd hostile one (their bytes are what
# the renderers must defuse) and every 10th other; html on every 3rd of those.
ALL_FORMATS_EVERY = 10
HTML_EVERY = 3


def plan(seed: int = DEFAULT_SEED, counts: dict[str, int] | None = None) -> list[Case]:
    rng = random.Random(seed)
    names = bases()
    small = [n for n in names if n != BIG]
    counts = counts or COUNTS
    specs: list[tuple[str, dict]] = []

    def base(allow_big: bool = False) -> str:
        return rng.choice(names if allow_big else small)

    for i in range(counts.get("errors", 0)):
        specs.append(("errors", {
            "base": base(allow_big=i == 0),
            "rate": rng.choice([0.0005, 0.002, 0.01, 0.05, 0.2]),
            "offset": rng.choice([0, 0, 14, 34, 54, 66]),
            "seed": rng.randrange(1 << 31),
        }))  # fmt: skip
    for i in range(counts.get("cut", 0)):
        b = base(allow_big=i == 1)
        size = (CAPTURES / f"{b}.pcapng").stat().st_size
        at = rng.randrange(1, 400) if i % 4 == 0 else rng.randrange(1, size)
        specs.append(("cut", {"base": b, "at": at, "pcap": i % 3 == 2}))
    for _ in range(counts.get("snaplen", 0)):
        specs.append(("snaplen", {"base": base(),
                                  "snaplen": rng.choice([1, 14, 20, 34, 54, 60, 66, 100, 200])}))
    for i in range(counts.get("pcap", 0)):
        specs.append(("pcap", {"base": base(), "format": "nsecpcap" if i % 3 == 2 else "pcap"}))
    for i in range(counts.get("gzip", 0)):
        specs.append(("gzip", {"base": base(), "pcap": i % 2 == 1, "cut": i == 0}))
    for _ in range(counts.get("merge", 0)):
        a, b = rng.sample(small, 2)
        specs.append(("merge", {"a": a, "b": b, "where": rng.random()}))
    for i in range(counts.get("dup", 0)):
        specs.append(("dup", {"base": base(), "all": i == 0, "p": rng.choice([0.05, 0.2, 0.5]),
                              "seed": rng.randrange(1 << 31)}))
    for i in range(counts.get("shuffle", 0)):
        specs.append(("shuffle", {"base": base(), "mode": ["full", "local", "reverse"][i % 3],
                                  "retime": i % 2 == 1, "seed": rng.randrange(1 << 31)}))
    for i in range(counts.get("time", 0)):
        specs.append(("time", {"base": base(), "mode": TIME_MODES[i % len(TIME_MODES)],
                               "seed": rng.randrange(1 << 31)}))
    for _ in range(counts.get("linktype", 0)):
        specs.append(("linktype", {"base": base(), "encap": rng.choice(
            ["rawip", "linux-sll", "null", "ppp", "ieee-802-11", "tr", "user0"])}))
    for _ in range(counts.get("vlan", 0)):
        specs.append(("vlan", {"base": base(), "vid": rng.randrange(1, 4095)}))
    for i in range(counts.get("randpkt", 0)):
        specs.append(("randpkt", {"type": ["tcp", "ip", "eth", "random"][i % 4],
                                  "count": rng.choice([20, 50]), "bytes": rng.choice([200, 1500])}))
    for _ in range(counts.get("synthetic", 0)):
        specs.append(("synthetic", {"seed": rng.randrange(1 << 31),
                                    "frames": rng.choice([20, 60])}))
    kinds = ["text", "empty", "random", "png", "pcap-magic", "pcapng-garbage", "gzip-text",
             "pcap-header-only", "html"]
    for i in range(counts.get("noncapture", 0)):
        specs.append(("noncapture", {"kind": kinds[i % len(kinds)],
                                     "seed": rng.randrange(1 << 31)}))
    for _ in range(counts.get("hostile", 0)):
        specs.append(("hostile", hostile_params(rng)))

    cases = []
    formats_seen = hostiles = 0
    for n, (recipe, params) in enumerate(specs):
        hostiles += recipe == "hostile"
        all_formats = (recipe == "hostile" and hostiles % 2 == 1) or n % ALL_FORMATS_EVERY == 0
        html = all_formats and formats_seen % HTML_EVERY == 0
        formats_seen += all_formats
        if recipe == "merge":
            label = f"{params['a']}+{params['b']}"
        elif recipe == "hostile":
            label = f"{params['view']}-{params['uri']}-{params['back']}"
        else:
            label = params.get("base") or params.get("kind") or params.get("type") or ""
        expect = params["n"] if recipe == "hostile" else None
        same = params["base"] if recipe in EQUIVALENT else None
        if recipe == "gzip" and not params["cut"]:
            same = params["base"]
        cases.append(Case(f"{n:03d}-{recipe}" + (f"-{label}" if label else ""), recipe, params,
                          all_formats, html, expect, same))
    return cases


def hostile_params(rng: random.Random) -> dict:
    return {
        "view": rng.choice(["m3", "m3", "client"]),
        "balancer": rng.choice(["nginx", "haproxy"]),
        "n": rng.randint(1, 4),
        "uri": rng.choice(list(hostile.URI_PAYLOADS)),
        "front": rng.sample(list(hostile.FRONT_HEADERS), rng.randint(0, 2)),
        "back": rng.choice(list(hostile.BACK_DAMAGE)),
        "seed": rng.randrange(1 << 31),
    }


# --------------------------------------------------------------------------- building


class Builder:
    """Makes cases' files in `work`; caches the pcap copies of the bases (thread-safe)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pcaps: dict[str, Path] = {}

    def base_path(self, name: str) -> Path:
        return CAPTURES / f"{name}.pcapng"

    def base_pcap(self, name: str) -> Path:
        with self._lock:
            if name not in self._pcaps:
                out = self.work / f"_base-{name}.pcap"
                _run(["editcap", "-F", "pcap", str(self.base_path(name)), str(out)])
                self._pcaps[name] = out
            return self._pcaps[name]

    def build(self, case: Case) -> Path:
        p = case.params
        out = self.work / f"{case.id}.{_ext(case)}"
        recipe = case.recipe
        if recipe == "errors":
            argv = ["editcap", "-E", str(p["rate"]), "--seed", str(p["seed"])]
            if p["offset"]:
                argv += ["-o", str(p["offset"])]
            _run([*argv, str(self.base_path(p["base"])), str(out)])
        elif recipe == "cut":
            src = self.base_pcap(p["base"]) if p["pcap"] else self.base_path(p["base"])
            data = src.read_bytes()
            out.write_bytes(data[: min(p["at"], len(data) - 1)])
        elif recipe == "snaplen":
            _run(["editcap", "-s", str(p["snaplen"]), str(self.base_path(p["base"])), str(out)])
        elif recipe == "pcap":
            _run(["editcap", "-F", p["format"], str(self.base_path(p["base"])), str(out)])
        elif recipe == "gzip":
            src = self.base_pcap(p["base"]) if p["pcap"] else self.base_path(p["base"])
            data = gzip.compress(src.read_bytes(), mtime=0)
            out.write_bytes(data[: len(data) // 2] if p["cut"] else data)
        elif recipe == "merge":
            self._merge(p, out)
        elif recipe == "dup":
            if p["all"]:
                src = self.base_path(p["base"])
                _run(["mergecap", "-w", str(out), str(src), str(src)])
            else:
                rng = random.Random(p["seed"])
                head, recs = read_pcap(self.base_pcap(p["base"]))
                dup = []
                for r in recs:
                    dup.append(r)
                    if rng.random() < p["p"]:
                        dup.append(r)
                write_pcap_records(out, head, dup)
        elif recipe == "shuffle":
            self._shuffle(p, out)
        elif recipe == "time":
            head, recs = read_pcap(self.base_pcap(p["base"]))
            write_pcap_records(out, head, retime(recs, p["mode"], random.Random(p["seed"])))
        elif recipe == "linktype":
            _run(["editcap", "-T", p["encap"], str(self.base_path(p["base"])), str(out)])
        elif recipe == "vlan":
            head, recs = read_pcap(self.base_pcap(p["base"]))
            tag = struct.pack("!HH", 0x8100, p["vid"])
            write_pcap_records(out, head, [r.with_data(r.data[:12] + tag + r.data[12:])
                                           for r in recs])
        elif recipe == "randpkt":
            argv = ["randpkt", "-b", str(p["bytes"]), "-c", str(p["count"])]
            argv += ["-r"] if p["type"] == "random" else ["-t", p["type"]]
            _run([*argv, str(out)])
        elif recipe == "synthetic":
            hostile.write(out, synthetic_frames(random.Random(p["seed"]), p["frames"]))
        elif recipe == "noncapture":
            out.write_bytes(noncapture(p["kind"], random.Random(p["seed"])))
        elif recipe == "hostile":
            hostile.write(out, hostile.frames_for(p))
        else:  # pragma: no cover - a plan/build mismatch
            raise ValueError(recipe)
        return out

    def _merge(self, p: dict, out: Path) -> None:
        a, b = self.base_pcap(p["a"]), self.base_pcap(p["b"])
        _, ra = read_pcap(a)
        _, rb = read_pcap(b)
        start_a, end_a = ra[0].time, ra[-1].time
        # The second capture starts somewhere inside the first: their packets interleave.
        delta = start_a + p["where"] * (end_a - start_a) - rb[0].time
        shifted = self.work / f"_shift-{out.stem}.pcap"
        _run(["editcap", "-t", f"{delta:.6f}", str(b), str(shifted)])
        _run(["mergecap", "-w", str(out), str(self.base_path(p["a"])), str(shifted)])
        shifted.unlink()

    def _shuffle(self, p: dict, out: Path) -> None:
        rng = random.Random(p["seed"])
        head, recs = read_pcap(self.base_pcap(p["base"]))
        times = [r.time for r in recs]
        if p["mode"] == "full":
            rng.shuffle(recs)
        elif p["mode"] == "reverse":
            recs.reverse()
        else:  # local: swap neighbours here and there
            for i in range(len(recs) - 1):
                if rng.random() < 0.3:
                    recs[i], recs[i + 1] = recs[i + 1], recs[i]
        if p["retime"]:  # timestamps in order again: the order itself is the lie
            recs = [r.with_time(t) for r, t in zip(recs, times, strict=True)]
        write_pcap_records(out, head, recs)


def _ext(case: Case) -> str:
    p = case.params
    if case.recipe == "gzip":
        return "pcap.gz" if p["pcap"] else "pcapng.gz"
    if case.recipe in ("pcap", "shuffle", "time", "vlan", "randpkt", "synthetic", "hostile"):
        return "pcap"
    if case.recipe == "dup" and not p["all"] or case.recipe == "cut" and p["pcap"]:
        return "pcap"
    return "pcapng"  # non-captures too: what a student would name them


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.decode(errors='replace')}")


# --------------------------------------------------------------------------- pcap records


@dataclass(frozen=True)
class Rec:
    sec: int
    frac: int
    caplen: int
    origlen: int
    data: bytes
    nsec: bool

    @property
    def time(self) -> float:
        return self.sec + self.frac / (1e9 if self.nsec else 1e6)

    def with_data(self, data: bytes) -> Rec:
        grow = len(data) - len(self.data)
        return Rec(self.sec, self.frac, self.caplen + grow, self.origlen + grow, data, self.nsec)

    def with_time(self, t: float) -> Rec:
        sec = int(t)
        frac = round((t - sec) * (1e9 if self.nsec else 1e6))
        return Rec(sec, frac, self.caplen, self.origlen, self.data, self.nsec)


def read_pcap(path: Path) -> tuple[bytes, list[Rec]]:
    """A little-endian pcap (what editcap writes here) → global header and records."""
    data = path.read_bytes()
    magic = data[:4]
    if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        raise ValueError(f"{path}: not a little-endian pcap")
    nsec = magic == b"\x4d\x3c\xb2\xa1"
    recs, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack_from("<IIII", data, off)
        recs.append(Rec(sec, frac, caplen, origlen, data[off + 16: off + 16 + caplen], nsec))
        off += 16 + caplen
    return data[:24], recs


def write_pcap_records(path: Path, head: bytes, recs: list[Rec]) -> None:
    out = bytearray(head)
    for r in recs:
        out += struct.pack("<IIII", r.sec, r.frac, r.caplen, r.origlen) + r.data
    path.write_bytes(bytes(out))


TIME_MODES = ("zero", "backwards", "jump", "future", "frac-overflow", "jitter")


def retime(recs: list[Rec], mode: str, rng: random.Random) -> list[Rec]:
    if mode == "zero":
        return [Rec(0, 0, r.caplen, r.origlen, r.data, r.nsec) for r in recs]
    if mode == "backwards":
        t0 = recs[0].time
        return [r.with_time(t0 + 1000 - (r.time - t0)) for r in recs]
    if mode == "jump":  # some packets years later, then back
        return [r.with_time(r.time + 3e8) if rng.random() < 0.2 else r for r in recs]
    if mode == "future":  # near the end of the 32-bit seconds field (2106)
        t0 = recs[0].time
        return [r.with_time(4_294_967_000 + (r.time - t0)) for r in recs]
    if mode == "frac-overflow":  # sub-second field past a second: invalid, seen in the wild
        return [Rec(r.sec, r.frac + (3_000_000 if rng.random() < 0.3 else 0), r.caplen,
                    r.origlen, r.data, r.nsec) for r in recs]
    # jitter: each packet moved up to ±50 ms, so replies can precede their requests
    return [r.with_time(max(0.0, r.time + rng.uniform(-0.05, 0.05))) for r in recs]


# --------------------------------------------------------------------------- synthetic

_HTTPISH = [b"GET ", b"POST ", b"HTTP/1.1", b"HTTP/1.1 200 OK", b"\r\n", b"\r\n\r\n", b"/",
            b"Host: ", b"X-Forwarded-For: ", b"X-Real-IP: ", b"Content-Length: 99999999",
            b"Transfer-Encoding: chunked", b"\x00", b"\xe3", b"\xff\xfe", b"\x1b[2J", b"%",
            b"192.168.56.101", b"Soy la m\xc3\xa1quina 2", b"::", b",", b" "]


def synthetic_frames(rng: random.Random, n: int) -> list[bytes]:
    """Random TCP segments between the lab's hosts (random ports, flags, sequence numbers
    and HTTP-looking payloads) around two clean exchanges."""
    frames = hostile.m3_exchange(41000, b"GET /ejemplo.html HTTP/1.1", [],
                                 hostile.nginx_back_headers())
    roles = list(hostile.HOSTS)
    for _ in range(n):
        src, dst = rng.sample(roles, 2)
        payload = b"".join(rng.choice(_HTTPISH) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.3:
            payload += rng.randbytes(rng.randint(0, 200))
        frames.insert(rng.randrange(len(frames) + 1), hostile.frame(
            src, dst, rng.choice([80, 80, rng.randrange(1, 65536)]),
            rng.choice([80, 80, rng.randrange(1, 65536)]), rng.randrange(256),
            rng.randrange(1 << 32), rng.randrange(1 << 32), payload))
    frames += hostile.m3_exchange(41001, b"GET /ejemplo.html HTTP/1.1", [],
                                  hostile.nginx_back_headers(), backend="M2")
    return frames


# --------------------------------------------------------------------------- non-captures

PNG_HEADER = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"
              b"\x00\x00\x00\x1f\xf3\xffa")


def noncapture(kind: str, rng: random.Random) -> bytes:
    if kind == "text":
        return "Notas de la práctica: capturar en M3, no en el cliente.\n".encode()
    if kind == "empty":
        return b""
    if kind == "random":
        return rng.randbytes(rng.choice([3, 64, 4096]))
    if kind == "png":
        return PNG_HEADER + rng.randbytes(100)
    if kind == "pcap-magic":
        return b"\xd4\xc3\xb2\xa1" + rng.randbytes(300)
    if kind == "pcapng-garbage":
        return b"\x0a\x0d\x0d\x0a" + rng.randbytes(300)
    if kind == "gzip-text":
        return gzip.compress(b"not a capture\n" * 50, mtime=0)
    if kind == "pcap-header-only":
        return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    if kind == "html":
        return b"<!doctype html><html><body>\x00\x1b[2J 404</body></html>\n"
    raise ValueError(kind)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=int(os.environ.get("LBREPORT_FUZZ_SEED",
                                                                   DEFAULT_SEED)))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    builder = Builder(args.out)
    manifest = []
    for case in plan(args.seed):
        path = builder.build(case)
        manifest.append({"id": case.id, "file": path.name, "recipe": case.recipe,
                         "params": case.params})
    for p in args.out.glob("_base-*"):
        p.unlink()
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    print(f"{len(manifest)} cases in {args.out} (seed {args.seed})")


if __name__ == "__main__":
    main()
