"""The lblab plugin, run by the real tshark over every reference capture."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from lblab_fields import (
    CAPTURES,
    PLUGIN,
    Labelled,
    Row,
    keylog_of,
    label,
    load_truth,
    prefs_from_truth,
    truth_files,
)

TRUTHS = truth_files()
IDS = [p.name.removesuffix(".truth.json") for p in TRUTHS]

BACKEND_VIEW_STEPS = ("up-request", "up-response")


def keylog_args(capture: Path) -> list[str]:
    """An HTTPS capture is compared with label()'s rows, which read it with its key log."""
    keylog = keylog_of(capture)
    return ["-o", f"tls.keylog_file:{keylog}"] if keylog else []


def capture_of(truth_path: Path) -> Path:
    return truth_path.with_name(load_truth(truth_path)["capture"])


def is_backend_view(truth: dict) -> bool:
    return truth["capture_point"] not in ("client", "M3")


def visible_truth_requests(truth: dict) -> list[dict]:
    """The truth's requests that the capture point can see."""
    if is_backend_view(truth):
        return [r for r in truth["requests"] if r["backend"] == truth["capture_point"]]
    return truth["requests"]


def found_requests(labelled: Labelled, backend_view: bool) -> dict[int, dict]:
    """Per request index: what the plugin's labels say about it."""
    request_step, response_step = (
        BACKEND_VIEW_STEPS if backend_view else ("request", "response")
    )
    found: dict[int, dict] = defaultdict(dict)
    for row in labelled.rows:
        if row.req is None:
            continue
        req = found[row.req]
        if row.client:
            req.setdefault("client", row.client)
        req.setdefault("backend", row.backend or None)
        req.setdefault("evidence", row.evidence)
        if row.step == request_step and row.method:
            req.setdefault("method", row.method)
            req.setdefault("uri", row.uri)
            req.setdefault("request_frame", row.frame)
        if row.step == response_step and row.status is not None:
            req.setdefault("status", row.status)
    return dict(found)


def client_key(client: str, backend_view: bool) -> str:
    """Clients compare by ip:port, or by address alone where ports are unseen."""
    if not backend_view:
        return client
    if client.count(":") == 1 or "]" in client:  # ip:port or [v6]:port
        return client.rsplit(":", 1)[0].strip("[]")
    return client


@pytest.fixture(params=TRUTHS, ids=IDS)
def truth_path(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_no_lua_errors_with_and_without_prefs(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    for prefs in ((), prefs_from_truth(truth)):
        labelled = label(capture_of(truth_path), prefs)
        assert "Lua:" not in labelled.stderr, labelled.stderr
        errors = [row.frame for row in labelled.rows if row.lua_error]
        assert errors == [], f"frames with _ws.lua.error: {errors[:10]}"


def test_lua_error_filter_matches_nothing(truth_path: Path) -> None:
    """The same check the way a user would run it: a display filter."""
    proc = subprocess.run(
        ["tshark", "-n", "-2", "-r", str(capture_of(truth_path)), "-X", f"lua_script:{PLUGIN}",
         "-Y", "_ws.lua.error"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    assert "Lua:" not in proc.stderr


def test_every_frame_is_labelled_or_other(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    labelled = label(capture_of(truth_path))
    assert len(labelled.rows) == truth["frames"]
    assert [r.frame for r in labelled.rows] == list(range(1, truth["frames"] + 1))
    in_requests = sum(1 for r in labelled.rows if r.req is not None)
    assert 0 < in_requests <= truth["frames"]


def test_every_truth_request_is_found(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    backend_view = is_backend_view(truth)
    labelled = label(capture_of(truth_path))
    found = found_requests(labelled, backend_view)
    expected = visible_truth_requests(truth)
    assert sorted(found) == list(range(1, len(expected) + 1)), "indices are 1..N"

    by_client: dict[str, list[dict]] = defaultdict(list)
    for index in sorted(found, key=lambda i: found[i].get("request_frame", 0)):
        by_client[client_key(found[index]["client"], backend_view)].append(found[index])
    for want in expected:
        key = client_key(want["client"], backend_view)
        assert by_client[key], f"no request found for {want['client']} {want['uri']}"
        # HTTP/2 streams of one connection are in flight together: the balancer logs them in
        # no particular order, so each is matched by its URI (the https-h2 URIs differ).
        same_uri = [i for i, g in enumerate(by_client[key]) if g.get("uri") == want["uri"]]
        got = by_client[key].pop(same_uri[0] if same_uri else 0)
        assert got.get("method") == want["method"]
        assert got.get("uri") == want["uri"]
        assert got.get("status") == want["status"]
        if truth["capture_point"] == "M3" or backend_view:
            assert got["backend"] == want["backend"], (want, got)
            if want["backend"] is not None:
                assert got["evidence"] == "back-leg"
        elif got["evidence"] in ("marker", "arp"):
            assert got["backend"] == want["backend"], (want, got)
    assert not any(by_client.values()), f"requests not in the truth: {dict(by_client)}"


def test_front_packets_carry_their_request(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    labelled = label(capture_of(truth_path))
    if is_backend_view(truth):
        legs = [r for r in labelled.rows if r.leg == "back"]
    else:
        legs = [r for r in labelled.rows if r.leg == "front"]
    assert legs
    # ab opens spare connections that never carry a request: those are "other".
    request_step = "up-request" if is_backend_view(truth) else "request"
    carrying = {r.conn for r in legs if r.step == request_step}
    legs = [r for r in legs if r.conn in carrying]
    missing = [r.frame for r in legs if r.req is None]
    assert missing == [], f"front-leg frames without a request index: {missing[:20]}"


# HTTP/2 streams of one connection are in flight together (their frames interleave): the
# order check below applies to the other captures only, and is not generated for those.
HTTP1_TRUTHS = [p for p in TRUTHS
                if not any(r.get("http_version") == "2" for r in load_truth(p)["requests"])]


@pytest.mark.parametrize("truth_path", HTTP1_TRUTHS,
                         ids=[p.name.removesuffix(".truth.json") for p in HTTP1_TRUTHS])
def test_request_index_never_goes_back_on_a_connection(truth_path: Path) -> None:
    """HTTP/1: within one connection the index never goes backwards."""
    truth = load_truth(truth_path)
    labelled = label(capture_of(truth_path))
    leg = "back" if is_backend_view(truth) else "front"
    request_step = "up-request" if is_backend_view(truth) else "request"
    carrying = {r.conn for r in labelled.rows if r.leg == leg and r.step == request_step}
    legs = [r for r in labelled.rows if r.leg == leg and r.conn in carrying]
    assert legs
    last: dict[int, int] = {}
    for row in legs:
        assert row.conn is not None and row.req is not None
        assert row.req >= last.get(row.conn, 0), row
        last[row.conn] = row.req


def comparable(row: Row) -> tuple:
    return (row.frame, row.src_role, row.dst_role, row.req, row.step, row.leg, row.backend,
            row.evidence, row.client)


def test_configured_and_inferred_roles_agree(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    capture = capture_of(truth_path)
    inferred = label(capture)
    configured = label(capture, prefs_from_truth(truth))
    diffs = [
        (a, b) for a, b in zip(inferred.rows, configured.rows, strict=True)
        if comparable(a) != comparable(b)
    ]
    assert diffs == [], f"{len(diffs)} frames differ, first: {diffs[:3]}"


def test_role_definitions_match_the_truth(truth_path: Path) -> None:
    truth = load_truth(truth_path)
    labelled = label(capture_of(truth_path))
    defs: dict[str, set[str]] = defaultdict(set)
    for row in labelled.rows:
        for d in row.role_def:
            role, addr = d.split("=", 1)
            defs[role].add(addr)
    for role, addrs in truth["roles"].items():
        if role == "client" or role == "M3" or role == truth["capture_point"]:
            continue
        # Backends are only visible where M3 talks to them or asks for them.
        if defs.get(role):
            assert defs[role] <= set(addrs), (role, defs[role], addrs)
    assert defs["M3"] <= set(truth["roles"]["M3"]) and defs["M3"]


CLASSIC_STEPS = ["SYN", "SYN/ACK", "ACK", "request", "response", "ACK-resp"]
CLASSIC_CLOSE = {"FIN-client", "FIN-M3", "last-ACK"}


def test_classic_client_view_reads_like_the_exercise() -> None:
    truth_path = Path(__file__).resolve().parent.parent / "captures" / "classic-client.truth.json"
    if not truth_path.exists():
        pytest.skip("classic-client capture not generated")
    truth = load_truth(truth_path)
    for two_pass in (True, False):
        labelled = label(capture_of(truth_path), two_pass=two_pass)
        by_req: dict[int, list[Row]] = defaultdict(list)
        for row in labelled.rows:
            if row.req is not None:
                by_req[row.req].append(row)
        assert sorted(by_req) == [1, 2, 3]
        arp_targets = set()
        for index, rows in by_req.items():
            # M3's own ACK of the request (delayed ACK) is real but optional.
            front = [r.step for r in rows if r.leg == "front" and r.step != "ACK-req"]
            assert front[:6] == CLASSIC_STEPS, (two_pass, index, front)
            assert set(front[6:]) == CLASSIC_CLOSE and len(front) == 9, (index, front)
            arps = [r for r in rows if r.step == "ARP-who-has" and r.src_role == "M3"]
            for arp in arps:
                request_row = next(r for r in rows if r.step == "request")
                response_row = next(r for r in rows if r.step == "response")
                assert request_row.frame < arp.frame < response_row.frame
                arp_targets.add(arp.arp_target)
            if two_pass:
                want = truth["requests"][index - 1]
                assert rows[0].backend == want["backend"]
                assert rows[0].evidence in ("marker", "arp")
                if arps:
                    assert arps[0].arp_target == want["backend"]
        # M3 flushed its neighbour cache: it asked for both backends.
        assert arp_targets == {"M1", "M2"}


def expert_frames(capture: Path, expert: str) -> list[int]:
    proc = subprocess.run(
        ["tshark", "-n", "-2", "-r", str(capture), "-X", f"lua_script:{PLUGIN}",
         "-Y", f"lblab.expert.{expert}", "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [int(line) for line in proc.stdout.split()]


def test_expert_info_on_backend_down() -> None:
    """Failover, RST and the balancer's own 502 are filterable expert info."""
    truth_path = Path(__file__).resolve().parent.parent / "captures" / "backend-down.truth.json"
    truth = load_truth(truth_path)
    capture = capture_of(truth_path)
    labelled = {row.frame: row for row in label(capture).rows}
    failover = expert_frames(capture, "failover")
    want_failover = [i + 1 for i, r in enumerate(truth["requests"]) if len(r["upstreams"]) > 1]
    assert [labelled[f].req for f in failover] == want_failover
    assert all(labelled[f].step == "request" for f in failover)
    balancer_5xx = expert_frames(capture, "balancer_5xx")
    want_5xx = [i + 1 for i, r in enumerate(truth["requests"])
                if r["status"] >= 500 and r["backend"] is None]
    assert [labelled[f].req for f in balancer_5xx] == want_5xx
    assert all(labelled[f].step == "response" for f in balancer_5xx)
    resets = expert_frames(capture, "rst")
    assert resets and all(labelled[f].step in ("RST", "up-RST") for f in resets)
    assert expert_frames(capture, "no_response") == []
    assert expert_frames(capture, "orphan_backleg") == []


def test_health_checks_are_orphan_back_legs() -> None:
    """haproxy's own HTTP checks serve no client: flagged, and in no request."""
    truth_path = Path(__file__).resolve().parent.parent / "captures" / "haproxy-checks.truth.json"
    capture = capture_of(truth_path)
    proc = subprocess.run(
        ["tshark", "-n", "-2", "-r", str(capture), "-X", f"lua_script:{PLUGIN}", "-Y",
         'lblab.step == "up-request"', "-T", "fields", "-e", "tcp.stream",
         "-e", "http.x_forwarded_for", "-e", "lblab.req"],
        capture_output=True, text=True, check=True,
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    checks = {stream for stream, xff, _req in rows if not xff}
    assert len(checks) >= 2, "the capture should hold several health checks"
    assert all(req == "" for _stream, xff, req in rows if not xff)
    assert all(req != "" for _stream, xff, req in rows if xff)
    orphans = expert_frames(capture, "orphan_backleg")
    assert len(orphans) == len(checks)


def test_compact_mode_carries_the_same_labels(truth_path: Path) -> None:
    """lblab.pkt (what lbreport reads) equals the separate fields (what the GUI shows)."""
    capture = capture_of(truth_path)
    proc = subprocess.run(
        ["tshark", "-n", "-2", "-Y", "frame", "-r", str(capture), "-X", f"lua_script:{PLUGIN}",
         "-o", "lblab.compact:TRUE", *keylog_args(capture), "-T", "fields", "-e", "lblab.pkt",
         "-e", "lblab.step"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0 and "Lua:" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    full = label(capture).rows
    assert len(lines) == len(full)
    for line, row in zip(lines, full, strict=True):
        pkt, separate_step = (line.split("\t") + [""])[:2]
        assert separate_step == "", "compact mode adds no separate label fields"
        want = [str(row.req) if row.req is not None else "", row.step, row.src_role,
                row.dst_role, row.leg, row.backend, row.evidence, row.flags, row.arp_target,
                row.kind, str(row.direct) if row.direct is not None else ""]
        assert pkt.split(";") == want, (row.frame, pkt)


def test_two_pass_without_a_filter_labels_as_one_pass() -> None:
    """`tshark -2` alone builds no tree in its first pass (no extractor reads anything):
    the plugin labels on the second pass as one pass does, never "other" everywhere, and
    says so on frame 1 with an expert info."""
    capture = CAPTURES / "classic-m3.pcapng"
    fields = ["-T", "fields", "-e", "frame.number", "-e", "lblab.req", "-e", "lblab.step",
              "-e", "lblab.src_role", "-e", "lblab.dst_role", "-e", "lblab.backend",
              "-e", "lblab.backend_evidence", "-e", "lblab.kind"]

    def run(*args: str) -> list[str]:
        proc = subprocess.run(["tshark", "-n", *args, "-r", str(capture),
                               "-X", f"lua_script:{PLUGIN}", *fields],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "Lua:" not in proc.stderr, proc.stderr
        return proc.stdout.splitlines()

    one_pass = run()
    assert any("\trequest\t" in line for line in one_pass)
    assert run("-2") == one_pass
    assert expert_frames(capture, "one_pass") == []  # with -Y: a real first pass
    proc = subprocess.run(["tshark", "-n", "-2", "-r", str(capture), "-X", f"lua_script:{PLUGIN}",
                           "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"],
                          capture_output=True, text=True, check=True)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("1\t") and "tshark -2 without a filter" in first
