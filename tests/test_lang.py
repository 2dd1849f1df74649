"""`--lang es|en`: one catalogue (messages.EN + messages_es.ES, same keys and placeholders),
Spanish in every human-readable format, and JSON (the lbreport/1 contract) unchanged."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import string
from pathlib import Path

import pytest
from craft import CAPTURES, invoke
from lbreport import vocabulary
from lbreport.messages import EN
from lbreport.messages_es import ES

ROOT = Path(__file__).resolve().parent.parent
CLASSIC = str(CAPTURES / "classic-client.pcapng")
CLASSIC_M3 = str(CAPTURES / "classic-m3.pcapng")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_spanish_has_exactly_the_english_keys_and_placeholders() -> None:
    assert sorted(set(EN) - set(ES)) == []  # a message with no Spanish
    assert sorted(set(ES) - set(EN)) == []  # a Spanish message nothing uses
    for key, template in EN.items():
        assert _fields(ES[key]) == _fields(template), key


def test_spanish_is_translated() -> None:
    # Identical strings are only allowed where Spanish says it the same way (TCP flags,
    # formats, placeholders): anything else left in English is a forgotten translation.
    same = sorted(k for k in EN if EN[k] == ES[k])
    allowed = re.compile(r"^(step\.(up-)?(SYN|SYN/ACK|ACK|RST|FIN-M3|ACK-FIN|"
                         r"TLS-ClientHello|TLS-ServerHello|TLS-Finished)|csv\.(uri|total)|"
                         r"hdr\.(title|roles|https)|ladder\.time|warn\.stderr|batch\.(title|no|col\.error)|"
                         r"html\.col\.index|doc\.lua_version|live\.roles)$")
    assert [k for k in same if not allowed.match(k)] == []


def test_every_documented_step_has_a_name() -> None:
    fields_md = (ROOT / "docs" / "fields.md").read_text(encoding="utf-8")
    table = fields_md.split("## Steps", 1)[1].split("\n\n", 2)[1]
    steps = set(re.findall(r"`([A-Za-z0-9/-]+)`", table)) - {"up-"}  # "with an `up-` prefix"
    assert steps == vocabulary.all_step_names()
    assert sorted(s for s in steps if f"step.{s}" not in EN) == []


def _run(*args: str) -> str:
    result = invoke("report", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@needs_tshark
def test_text_in_spanish() -> None:
    out = _run(CLASSIC_M3, "--lang", "es")
    for words in ("Punto de captura", "Petición 1", "Servidor final", "Resumen",
                  "Peticiones por servidor final", "Reparto de carga", "compatible con round",
                  "│──────petición──────>│", "up-respuesta", "FIN-cliente", "ACK-final",
                  "ARP-quién-tiene M1", "tiempo hasta la respuesta"):
        assert words in out, words
    for english in ("Request 1", "Summary", "Backend", "response", "FIN-client", "who-has"):
        assert not re.search(rf"\b{english}\b", out), english


@needs_tshark
def test_english_is_the_default_and_comes_back() -> None:
    _run(CLASSIC, "--lang", "es")  # the catalogue is per process: it must not stick
    out = _run(CLASSIC)
    assert "Request 1  GET /ejemplo.html" in out and "Petición" not in out
    assert "│─ARP-who-has M1─>│" in out  # the README's ladder, unchanged


@needs_tshark
def test_markdown_in_spanish() -> None:
    out = _run(CLASSIC, "--format", "markdown", "--lang", "es")
    assert "## Petición 1: `GET /ejemplo.html`" in out
    assert "| Servidor final | M1 (marca (la respuesta dice qué servidor la generó)) |" in out
    assert "## Resumen" in out and "ACK-respuesta" in out


@needs_tshark
def test_csv_header_in_spanish_cells_unchanged() -> None:
    en = list(csv.reader(io.StringIO(_run(CLASSIC, "--format", "csv"))))
    es = list(csv.reader(io.StringIO(_run(CLASSIC, "--format", "csv", "--lang", "es"))))
    assert en[0][:4] == ["index", "client", "method", "uri"]
    assert es[0][:6] == ["peticion", "cliente", "metodo", "uri", "estado", "servidor_final"]
    assert es[1:] == en[1:]  # the cells are data: codes and numbers


@needs_tshark
def test_json_is_never_translated() -> None:
    en = json.loads(_run(CLASSIC_M3, "--format", "json"))
    es = json.loads(_run(CLASSIC_M3, "--format", "json", "--lang", "es"))
    # Only the human sentence that explains the balance verdict follows --lang.
    # The classic lab declares no policy: the sentence names the ones the sequence fits.
    assert es["summary"]["balance"]["explanation"].startswith(
        "no se ha declarado política; observado M1 2, M2 1: compatible con round robin")
    assert en["summary"]["balance"]["explanation"].startswith(
        "no policy declared; observed M1 2, M2 1: consistent with round robin")
    es["summary"]["balance"]["explanation"] = en["summary"]["balance"]["explanation"]
    assert es == en
    assert {s["step"] for r in es["requests"] for s in r["steps"]} >= {"request", "up-response"}


@needs_tshark
def test_errors_in_spanish(tmp_path: Path) -> None:
    result = invoke("report", str(tmp_path / "nada.pcap"), "--lang", "es")
    assert result.exit_code == 1
    assert "No existe el fichero" in result.stderr


@needs_tshark
def test_anomalies_in_spanish_have_no_english(tmp_path: Path) -> None:
    """The anomaly sentences come from the typed anomaly, so their details (counts, step
    names) are Spanish too; JSON keeps the contract's strings."""
    from craft import exchange, write_pcap

    ex = exchange(b"GET /a HTTP/1.1", 41000)
    # The request sent twice (a retransmission), and the client never sends the last ACK: a
    # step whose Spanish name differs (ACK-final), so the step's words are checked too.
    capture = write_pcap(tmp_path / "anomalies.pcap", ex[:4] + [ex[3]] + ex[4:8])
    en = _run(str(capture))
    assert "missing step: last-ACK" in en and "retransmission: 1 frame(s)" in en
    es = _run(str(capture), "--lang", "es")
    assert "falta el paso: ACK-final" in es and "retransmisión: 1 trama(s)" in es
    for english in ("frame(s)", "missing step", "retransmission", "last-ACK"):
        assert english not in es, english
    anomalies = json.loads(_run(str(capture), "--lang", "es", "--format", "json"))[
        "requests"][0]["anomalies"]
    assert anomalies == ["missing-step: last-ACK", "retransmission: 1 frame(s)"]
