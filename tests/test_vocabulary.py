"""One vocabulary: the plugin's own answer (`tshark -G values`) against lbreport's."""

from __future__ import annotations

import subprocess

import pytest
from lbreport import messages, messages_es, vocabulary
from lbreport.tshark import REPO_PLUGIN
from lbreport.vocabulary import (
    ARP_STEPS,
    BALANCER_EVIDENCE,
    EVIDENCE,
    LEGS,
    PKT_ORDER,
    ROLES,
    STEP_SETS,
    STEPS,
)


@pytest.fixture(scope="module")
def published() -> dict[str, dict[int, str]]:
    out = subprocess.run(["tshark", "-G", "values", "-X", f"lua_script:{REPO_PLUGIN}"],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, dict[int, str]] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "V" and parts[1].startswith("lblab.vocab."):
            found.setdefault(parts[1].removeprefix("lblab.vocab."), {})[int(parts[2])] = parts[3]
    return found


@pytest.mark.parametrize("leg", sorted(STEP_SETS))
def test_tcp_steps_agree_in_order(published: dict[str, dict[int, str]], leg: str) -> None:
    """Same names, and the same meaning by position (SYN is step 1 ... interim step 18), for
    each leg and for a web server's front leg where there is no balancer (`server`)."""
    plugin = published[leg]
    assert [plugin[i] for i in sorted(plugin)] == list(STEP_SETS[leg].names())


def test_interim_and_server_steps() -> None:
    """A 1xx answer is a step of its own on both legs; a web server closes with FIN-server."""
    assert (STEPS["front"].interim, STEPS["back"].interim) == ("interim", "up-interim")
    assert STEP_SETS["server"].fin_b == "FIN-server"
    assert STEP_SETS["server"].fin_a == STEPS["front"].fin_a == "FIN-client"


def test_balancer_evidence_agrees_in_order(published: dict[str, dict[int, str]]) -> None:
    """What shows a balancer, strongest first (frame 1's lblab.balancer_evidence)."""
    plugin = published["balancer_evidence"]
    assert [plugin[i] for i in sorted(plugin)] == list(BALANCER_EVIDENCE)


def test_arp_steps_and_evidence_agree(published: dict[str, dict[int, str]]) -> None:
    assert sorted(published["arp"].values()) == sorted(ARP_STEPS)
    assert sorted(published["evidence"].values()) == sorted(EVIDENCE)


def test_roles_and_legs_agree(published: dict[str, dict[int, str]]) -> None:
    assert sorted(published["roles"].values()) == sorted(ROLES)
    assert sorted(published["legs"].values()) == sorted(LEGS)
    # The balancer is a role of its own; a backend's name is none of them.
    assert vocabulary.BALANCER in ROLES and not any(map(vocabulary.is_backend, ROLES))


def test_compact_labels_agree_in_order(published: dict[str, dict[int, str]]) -> None:
    """lblab.pkt's slots (1-based) name the label fields in the order the plugin writes
    them; pdml.py decodes them in vocabulary.PKT_ORDER's."""
    plugin = published["pkt"]
    assert [plugin[i] for i in sorted(plugin)] == list(PKT_ORDER)
    assert sorted(plugin) == list(range(1, len(PKT_ORDER) + 1))


def test_the_plugin_publishes_every_leg(published: dict[str, dict[int, str]]) -> None:
    assert set(published) == {*STEP_SETS, "arp", "evidence", "roles", "legs", "pkt",
                              "balancer_evidence"}


def test_backends_are_m_n_but_m3() -> None:
    assert [r for r in ("client", "M3", "broadcast", "M1", "M12", "M", "Mx", "")
            if vocabulary.is_backend(r)] == ["M1", "M12"]
    assert vocabulary.role_sort(["M12", "broadcast", "M2", "M3", "client", "M1"]) == [
        "client", "M3", "M1", "M2", "M12", "broadcast"]


@pytest.mark.parametrize("catalogue", [messages.EN, messages_es.ES], ids=["en", "es"])
def test_every_step_has_words(catalogue: dict[str, str]) -> None:
    missing = {n for n in vocabulary.all_step_names() if f"step.{n}" not in catalogue}
    assert not missing
    missing = {e for e in EVIDENCE if f"evidence.{e}" not in catalogue}
    assert not missing


def test_new_words_are_the_plugins() -> None:
    """The plugin's request window says these exact words (tests/test_requests_table.py
    compares them too); the evidence word is what comes before its explanation."""
    assert [messages_es.ES[f"step.{s}"] for s in ("interim", "up-interim", "FIN-server")] == [
        "provisional", "up-provisional", "FIN-servidor"]
    assert [messages.EN[f"step.{s}"] for s in ("interim", "up-interim", "FIN-server")] == [
        "interim", "up-interim", "FIN-server"]
    assert messages.EN["evidence.cache"].split(" (")[0] == "cache"
    assert messages_es.ES["evidence.cache"].split(" (")[0] == "caché"


def test_back_leg_repeats_use_back_leg_names() -> None:
    """The old check built back-leg names by prefixing "up-" to front names, so it looked
    for up-FIN-client (never emitted) and missed two up-FIN-backend frames."""
    from lbreport.lifecycle import _leg_anomalies
    from lbreport.model import Step

    def step(name: str, frame: int) -> Step:
        return Step(frame, frame / 1000, "M1", "M3", "back", name, (), "")

    names = ["up-SYN", "up-SYN/ACK", "up-ACK", "up-request", "up-response", "up-FIN-backend",
             "up-FIN-backend", "up-FIN-M3", "up-last-ACK"]
    found = _leg_anomalies([step(n, i) for i, n in enumerate(names)], STEPS["back"], False)
    assert [(a.code, a.steps, a.count) for a in found] == [
        ("repeated-step", ("up-FIN-backend",), 2)]
