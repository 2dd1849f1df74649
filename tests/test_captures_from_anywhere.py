"""Captures not made at the classic lab's seats (captures/anywhere/, issue 18): web servers
behind one gateway MAC and no balancer, the farm inside VXLAN or an ERSPAN mirror, a farm on
one host's loopback ports, two balancers on one switch, a client writing its own
X-Forwarded-For behind a router, an IPv6 front with an IPv4 back, a layer-4 balancer seen from
a backend. The plugin must name the roles the truth names (those visible on the wire), or
say there is no balancer; never M3 without evidence, never a role from an outer header."""

from __future__ import annotations

from pathlib import Path

import pytest
from anywhere_common import frame_fields, roles, table, truth

CAPTURES = sorted((Path(__file__).resolve().parent.parent / "captures" / "anywhere")
                  .glob("*.pcapng"))
POINT = {"M3": "balancer", "switch": "balancer", "client": "client"}


def test_every_case_is_there() -> None:
    names = {p.stem for p in CAPTURES}
    assert names >= {"gateway-client", "vxlan-mirror", "erspan-mirror", "loopback-farm",
                     "loopback-farm-v6", "two-proxies", "client-own-xff-client",
                     "ipv6-front-m3", "l4-backend"}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_roles_are_the_truths(capture: Path) -> None:
    t = truth(capture)
    found = roles(capture)
    visible = set(t.get("visible_roles") or t["roles"])
    for role in visible:
        assert found.get(role) == set(t["roles"][role]), (role, found)
    # Nothing visible gets a role the truth does not give it (the gateway, a tunnel's ends).
    named = {a for role, addrs in t["roles"].items() for a in addrs}
    for role, addrs in found.items():
        assert addrs <= named, (role, addrs - named)
    if t["balancer"] is None:
        assert "M3" not in found
        assert frame_fields(capture, "lblab.balancer_evidence")[0] == [""]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.stem)
def test_requests_are_the_truths(capture: Path) -> None:
    t = truth(capture)
    rows, meta = table(capture)
    point = t["capture_point"]
    expected = t["requests"]
    if point not in POINT:  # a backend's own capture: what it served
        expected = [r for r in expected if r["backend"] == point]
    assert meta["capture_point"] == [
        "no-balancer" if t["balancer"] is None else POINT.get(point, point)]
    assert [(r["method"], r["uri"], r["status"]) for r in rows] == [
        (r["method"], r["uri"], str(r["status"])) for r in expected]
    if t.get("backends_see_clients") is not False:
        assert [r["client"] for r in rows] == [r["client"] for r in expected]
    for row, want in zip(rows, expected, strict=True):
        if want["backend"] is None:
            assert row["backend"] == "" and row["evidence"] == "none", row
        elif row["evidence"] in ("back-leg", "marker"):
            assert row["backend"] == want["backend"], (row, want)
    # Every frame is in a request or counted as other; the two farms' other one is named.
    total, in_requests, other = (int(x) for x in meta["frames"])
    assert total == t["frames"] == in_requests + other


def test_two_proxies_names_the_other_balancer() -> None:
    capture = next(p for p in CAPTURES if p.stem == "two-proxies")
    t = truth(capture)
    other = frame_fields(capture, "lblab.other_balancer")[0]
    assert other == [f"{o['address']}={o['requests']}" for o in t["other_balancers"]]


def test_tunnels_are_read_by_their_inner_header() -> None:
    for name in ("vxlan-mirror", "erspan-mirror"):
        capture = next(p for p in CAPTURES if p.stem == name)
        t = truth(capture)
        found = roles(capture)
        tunnel = t["tunnel"]
        outer = {a for addrs in tunnel.get("underlay", {}).values() for a in addrs}
        outer |= {tunnel[k] for k in ("switch", "collector") if k in tunnel}
        assert not outer & {a for addrs in found.values() for a in addrs}, (name, found)
