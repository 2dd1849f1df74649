"""The lab file (TOML) → a validated `Lab` → the plugin's `-o lblab.*` preferences.

Configuration has one home: the same values reach the GUI through the same preferences.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lbreport.errors import LbreportError
from lbreport.messages import t

BACKEND_ROLE = re.compile(r"^M[0-9]+$")
POLICIES = ("round-robin", "weights", "ip-hash", "least-conn")
_SECTIONS: dict[str, tuple[str, ...] | None] = {
    "farm": ("clients", "balancer", "ports", "https_ports"),
    "backends": None,  # any backend role name
    "markers": None,
    "policy": ("kind", "weights"),
    "tls": ("keylog",),
}


@dataclass(frozen=True, slots=True)
class Lab:
    """A farm's description. Empty `balancer` and `backends` mean: let the plugin infer roles."""

    clients: tuple[str, ...] = ()
    balancer: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    backends: dict[str, tuple[str, ...]] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    # "" = none declared: the report then says which known policies the traffic fits.
    policy: str = ""
    weights: dict[str, int] = field(default_factory=dict)
    source: str = ""  # where it came from, for the report's header
    # HTTPS: the balancer's TLS port(s) (empty: the plugin's default, 443) and an NSS key log
    # to decrypt them (resolved against the lab file's folder).
    https_ports: tuple[int, ...] = ()
    keylog: Path | None = None

    @property
    def has_addresses(self) -> bool:
        return bool(self.balancer or self.backends)


def classic_lab() -> Lab:
    """The embedded default: the original exercise's farm."""
    text = resources.files("lbreport").joinpath("data/classic.toml").read_text("utf-8")
    return parse_lab(tomllib.loads(text), source=t("lab.default_name"), path="classic.toml")


def inferred_lab(base: Lab) -> Lab:
    """No addresses (the plugin infers the roles) but the same policy expectations."""
    return Lab(policy=base.policy, weights=base.weights, source="",
               https_ports=base.https_ports, keylog=base.keylog)


def load_lab(path: Path) -> Lab:
    if not path.is_file():
        raise LbreportError(t("err.lab_missing", path=path))
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LbreportError(t("err.lab_toml", path=path, detail=exc)) from None
    except OSError as exc:
        raise LbreportError(t("err.unreadable", path=path, reason=exc.strerror)) from None
    return parse_lab(data, source=str(path), path=str(path))


def parse_lab(data: dict[str, Any], *, source: str, path: str) -> Lab:
    """Validate the TOML document; every problem names its key."""
    doc = _LabDocument(data, path)
    for name in data:
        if name not in _SECTIONS:
            raise doc.bad(name, t("lab.unknown_key", expected=", ".join(_SECTIONS)))
    farm = doc.table("farm")
    clients = doc.addresses("farm.clients", farm.get("clients", []))
    balancer = doc.addresses("farm.balancer", farm.get("balancer", []))
    ports = doc.ports(farm, "farm.ports")
    https_ports = doc.ports(farm, "farm.https_ports")
    keylog = doc.keylog()
    backends = doc.backends()
    if backends and not balancer:
        raise doc.bad("farm.balancer", t("lab.need_balancer"))
    markers = doc.markers()
    kind, weights = doc.policy(backends)
    return Lab(
        clients=clients,
        balancer=balancer,
        ports=ports,
        backends=backends,
        markers=markers,
        policy=kind,
        weights=weights if kind == "weights" else {},
        source=source,
        https_ports=https_ports,
        keylog=keylog,
    )


class _LabDocument:
    """A lab file's TOML document, read section by section; each reader raises on the first
    problem, naming its key."""

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def bad(self, key: str, problem: str) -> LbreportError:
        return LbreportError(t("err.lab_key", path=self.path, key=key, problem=problem))

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.bad(name, t("lab.not_table"))
        allowed = _SECTIONS[name]
        for key in value:
            if allowed is not None and key not in allowed:
                raise self.bad(f"{name}.{key}", t("lab.unknown_key", expected=", ".join(allowed)))
        return value

    def addresses(self, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, t("lab.not_list_str"))
        for v in value:
            try:
                host_address(v)
            except ValueError:
                raise self.bad(key, t("lab.bad_address", value=v)) from None
        return tuple(value)

    def backend_role(self, key: str, role: str) -> str:
        if not BACKEND_ROLE.match(role) or role == "M3":
            raise self.bad(key, t("lab.bad_role", value=role))
        return role

    def ports(self, farm: dict[str, Any], key: str) -> tuple[int, ...]:
        raw = farm.get(key.partition(".")[2], [])
        if not isinstance(raw, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in raw
        ):
            raise self.bad(key, t("lab.not_list_port"))
        return tuple(raw)

    def keylog(self) -> Path | None:
        raw = self.table("tls").get("keylog")
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw:
            raise self.bad("tls.keylog", t("lab.not_str"))
        # Relative to the lab file, so a lab folder (lab.toml + keys) can be moved as a whole.
        return Path(self.path).parent / Path(raw).expanduser()

    def backends(self) -> dict[str, tuple[str, ...]]:
        backends: dict[str, tuple[str, ...]] = {}
        for role, addrs in self.table("backends").items():
            key = f"backends.{role}"
            backends[self.backend_role(key, role)] = self.addresses(key, addrs)
        return backends

    def markers(self) -> dict[str, str]:
        markers: dict[str, str] = {}
        for role, text in self.table("markers").items():
            key = f"markers.{role}"
            if not isinstance(text, str):
                raise self.bad(key, t("lab.not_str"))
            if not text or ";" in text:
                raise self.bad(key, t("lab.bad_marker"))
            markers[self.backend_role(key, role)] = text
        return markers

    def policy(self, backends: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, int]]:
        """(kind, weights)."""
        policy = self.table("policy")
        kind = policy.get("kind", "")
        if kind not in POLICIES and not (kind == "" and "kind" not in policy):
            raise self.bad("policy.kind", t("lab.bad_policy"))
        raw = policy.get("weights", {})
        if not isinstance(raw, dict):
            raise self.bad("policy.weights", t("lab.not_table"))
        weights: dict[str, int] = {}
        for role, weight in raw.items():
            key = f"policy.weights.{role}"
            self.backend_role(key, role)
            if backends and role not in backends:
                raise self.bad(key, t("lab.weight_unknown", value=role))
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
                raise self.bad(key, t("lab.bad_weight"))
            weights[role] = weight
        if kind == "weights" and not weights:
            raise self.bad("policy.weights", t("lab.weights_needed"))
        return kind, weights


def preferences(lab: Lab) -> list[str]:
    """`-o` values for tshark, one argv item each (never a shell string)."""
    prefs: list[str] = []
    if lab.balancer:
        prefs.append("lblab.balancer:" + ",".join(lab.balancer))
    if lab.backends:
        pairs = (f"{role}={addr}" for role, addrs in lab.backends.items() for addr in addrs)
        prefs.append("lblab.backends:" + ",".join(pairs))
    if lab.clients:
        prefs.append("lblab.clients:" + ",".join(lab.clients))
    if lab.ports:
        prefs.append("lblab.ports:" + ",".join(str(p) for p in lab.ports))
    if lab.https_ports:
        prefs.append("lblab.https_ports:" + ",".join(str(p) for p in lab.https_ports))
    if lab.markers:
        prefs.append("lblab.markers:" + ";".join(f"{r}={m}" for r, m in lab.markers.items()))
    return prefs


def host_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP address of a lab address: an address, or an address:port identity where one
    host runs the whole farm (`127.0.0.1:81`, `[::1]:81`: the plugin matches these as they
    are, so they are passed on unchanged). ValueError if it is neither."""
    host, port = value, ""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(value)
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(value)
    return ipaddress.ip_address(host)


def lab_addresses(lab: Lab) -> set[str]:
    """The balancer's addresses, normalised, for the "is this the classic lab?" check."""
    return {str(host_address(a)) for a in lab.balancer}


def to_toml(
    clients: list[str],
    balancer: list[str],
    ports: list[int],
    backends: dict[str, list[str]],
    header: str,
    markers_hint: str,
    policy_hint: str = '# kind = "round-robin"  # or "weights" (+ weights = { M1 = 3, M2 = 1 }), '
                       '"ip-hash", "least-conn"',
) -> str:
    """A lab file (what `lbreport roles` prints)."""

    def strings(values: list[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    lines = [header, "", "[farm]", f"clients = {strings(clients)}"]
    lines += [f"balancer = {strings(balancer)}", f"ports = [{', '.join(map(str, ports))}]", ""]
    lines.append("[backends]")
    lines += [f"{role} = {strings(addrs)}" for role, addrs in backends.items()]
    # No policy is suggested: the traffic alone cannot prove one, and without a kind the report
    # says which known policies it fits.
    lines += ["", "[markers]", markers_hint, "", "[policy]", policy_hint, ""]
    return "\n".join(lines)
