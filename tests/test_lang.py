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


# --------------------------------------------------------------------------- every command


def test_environment_language() -> None:
    from lbreport.messages import environment_language

    assert environment_language({}) == "en"
    assert environment_language({"LANG": "es_ES.UTF-8"}) == "es"
    assert environment_language({"LANG": "es"}) == "es"
    assert environment_language({"LANG": "es_AR.UTF-8@euro"}) == "es"
    assert environment_language({"LANG": "C.UTF-8"}) == "en"
    assert environment_language({"LANG": "fr_FR.UTF-8"}) == "en"  # a language lbreport lacks
    assert environment_language({"LANG": "estonian"}) == "en"
    # POSIX order: LC_ALL, then LC_MESSAGES, then LANG; an empty one does not count.
    assert environment_language({"LC_ALL": "C", "LANG": "es_ES.UTF-8"}) == "en"
    assert environment_language({"LC_MESSAGES": "es_ES.UTF-8", "LANG": "en_US.UTF-8"}) == "es"
    assert environment_language({"LC_ALL": "", "LANG": "es_ES.UTF-8"}) == "es"


SPANISH_ENV = {"LC_ALL": None, "LC_MESSAGES": None, "LANG": "es_ES.UTF-8"}


def _cli(*args: str, env: dict | None = None):  # noqa: ANN202 - typer's Result
    from lbreport.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args), env=env)


def _flat(help_text: str) -> str:
    """The help's words without its box and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", help_text).split())


def test_help_in_spanish() -> None:
    for args in (["--lang", "es", "--help"], ["--help"]):
        out = _cli(*args, env=SPANISH_ENV if args == ["--help"] else None).stdout
        assert "Explica el recorrido de cada petición HTTP" in out, args
        for command in ("report", "roles", "doctor", "install", "bundle", "batch", "live"):
            assert re.search(rf"│ {command} +[A-ZÁÉÍÓÚ]", out), command
        assert "Muestra esta ayuda y termina." in out
        assert "Report each request" not in out
    for command in ("report", "roles", "doctor", "install", "bundle", "batch", "live"):
        out = _flat(_cli(command, "--help", "--lang", "es").stdout)
        assert "Idioma de lo que se muestra" in out, command
        assert "Show this message" not in out and "Language of" not in out, command
    out = _flat(_cli("report", "--help", "--lang", "es").stdout)
    assert "Fichero de laboratorio (TOML). Por defecto: el laboratorio clásico." in out
    assert "Un fichero pcap o pcapng." in out
    # English by default, and --lang en wins over the environment.
    assert "Report each request's lifecycle" in _cli("--help").stdout
    out = _flat(_cli("report", "--help", "--lang", "en", env=SPANISH_ENV).stdout)
    assert "Report each request's lifecycle" in out and "Informe" not in out


@needs_tshark
def test_environment_picks_the_language_and_the_flag_wins() -> None:
    out = _cli("report", CLASSIC, env=SPANISH_ENV)
    assert out.exit_code == 0, out.output
    assert "Petición 1" in out.stdout
    out = _cli("report", CLASSIC, "--lang", "en", env=SPANISH_ENV)
    assert "Request 1" in out.stdout and "Petición" not in out.stdout
    out = _cli("report", CLASSIC, env={**SPANISH_ENV, "LC_ALL": "C.UTF-8"})
    assert "Request 1" in out.stdout
    # The contract never follows the environment.
    es = _cli("report", CLASSIC, "-f", "json", env=SPANISH_ENV).stdout
    en = _cli("report", CLASSIC, "-f", "json").stdout
    assert json.loads(es)["requests"] == json.loads(en)["requests"]
    assert _cli("--lang", "es", "report", CLASSIC).stdout.count("Petición 1") == 1


@needs_tshark
def test_roles_in_spanish() -> None:
    out = _cli("roles", CLASSIC_M3, "--lang", "es")
    assert out.exit_code == 0, out.output
    assert "# Fichero de laboratorio deducido por `lbreport roles`" in out.stdout
    en = _cli("roles", CLASSIC_M3).stdout
    assert "lab file" in en.lower() and "Fichero" not in en
    # Only the comments change: the lab itself is data.
    data = [ln for ln in en.splitlines() if ln and not ln.startswith("#")]
    assert data == [ln for ln in out.stdout.splitlines() if ln and not ln.startswith("#")]


@needs_tshark
def test_doctor_in_spanish() -> None:
    out = _cli("doctor", "--lang", "es")
    assert out.exit_code == 0, out.output
    assert "[bien] tshark en el PATH" in out.stdout
    assert "Todo lo que necesita lbreport está en su sitio." in out.stdout
    assert "[  ok]" not in out.stdout


@needs_tshark
def test_install_and_bundle_in_spanish(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "lbreport", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = run("install", "--lang", "es")
    assert "plugin 0" in out and "instalado:" in out and "úsalo: wireshark -C LB-Lab" in out
    assert "installed" not in out
    out = run("install", "--uninstall", "--lang", "es")
    assert "eliminado" in out and "removed" not in out
    out = run("bundle", "-o", str(tmp_path / "b.zip"), "--lang", "es")
    assert out.startswith(f"escrito {tmp_path / 'b.zip'} (lblab ")
    out = run("bundle", "-o", str(tmp_path / "b.zip"))
    assert out.startswith(f"wrote {tmp_path / 'b.zip'} (lblab ")


@pytest.mark.skipif(not shutil.which("dumpcap") or __import__("os").geteuid() != 0,
                    reason="needs root and dumpcap")
def test_live_in_spanish() -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lbreport", "live", "-i", "lo", "--duration",
                           "1", "--filter", "tcp port 9", "--lang", "es"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "postproc")})
    assert proc.returncode == 0, proc.stderr
    assert "lbreport live: no se capturó ningún paquete en lo (filtro: tcp port 9)." \
        in proc.stderr
    assert "capturing" not in proc.stderr and "no packet" not in proc.stderr
