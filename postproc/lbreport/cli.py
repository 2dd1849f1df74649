"""Typer commands only: parse options, call the pipeline, print, map errors to exit codes."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from lbreport import doctor as doctor_mod
from lbreport import pipeline, roles_cmd
from lbreport.errors import LbreportError
from lbreport.messages import set_language
from lbreport.progress import TsharkProgress
from lbreport.render import renderer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Explain every HTTP request's journey through a load-balanced web farm.",
)

EXIT_TRUNCATED = 3  # the report came out, but the capture was cut short


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    csv = "csv"
    html = "html"


class Lang(StrEnum):
    en = "en"
    es = "es"


LangOption = Annotated[
    Lang, typer.Option("--lang", help="Language of the report (JSON keys never change).")
]
# HTTPS (issue 11): the TLS secrets tshark needs to read the encrypted leg as HTTP.
KeylogOption = Annotated[
    Path | None,
    typer.Option("--keylog", help="TLS key log (NSS format, e.g. from SSLKEYLOGFILE) to read "
                 "HTTPS. Default: the lab file's tls.keylog."),
]


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def _errors_to_exit():
    try:
        yield
    except LbreportError as exc:
        _err(f"lbreport: {exc.message}")
        raise typer.Exit(exc.exit_code) from None


@contextmanager
def _output(path: Path | None):
    if path is None:
        yield sys.stdout
        return
    try:
        f = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        from lbreport.messages import t

        raise LbreportError(t("err.output", path=path, reason=exc.strerror)) from None
    with f:
        yield f


@app.command()
def report(
    capture: Annotated[Path, typer.Argument(help="A pcap or pcapng file.")],
    lab: Annotated[
        Path | None, typer.Option("--lab", help="Lab file (TOML). Default: the classic lab.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    keep_pdml: Annotated[
        Path | None, typer.Option("--keep-pdml", help="Also save tshark's PDML to FILE.")
    ] = None,
    lang: LangOption = Lang.en,
    keylog: KeylogOption = None,
) -> None:
    """Report each request's lifecycle: roles, steps, backend and evidence, timings."""
    set_language(lang.value)  # before the pipeline: its errors and warnings are messages too
    with _errors_to_exit():
        result = pipeline.build_report(
            capture, lab, keep_pdml, progress=TsharkProgress, warn=_err, keylog=keylog
        )
        with _output(output) as out:
            _write(renderer(fmt.value), result, out)
    if result.truncated:
        raise typer.Exit(EXIT_TRUNCATED)


def _write(render, result, out: TextIO) -> None:  # noqa: ANN001
    try:
        render(result, out)
    except BrokenPipeError:  # `lbreport report … | head`
        sys.stderr.close()


@app.command()
def roles(capture: Annotated[Path, typer.Argument(help="A pcap or pcapng file.")]) -> None:
    """Print the roles inferred from a capture as a ready-to-use lab file."""
    with _errors_to_exit():
        typer.echo(roles_cmd.inferred_lab_file(capture))


@app.command()
def doctor() -> None:
    """Check tshark, its Lua support and the plugin; say how to fix what fails."""
    checks = doctor_mod.run_checks()
    typer.echo(doctor_mod.format_checks(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def install(
    system: Annotated[
        bool, typer.Option("--system", help="Wireshark's global Lua plugin folder (root).")
    ] = False,
    uninstall: Annotated[
        bool, typer.Option("--uninstall", help="Remove what install put there.")
    ] = False,
) -> None:
    """Install the plugin and the LB-Lab profile into Wireshark's folders (tshark -G folders)."""
    from lbreport import install as install_mod

    with _errors_to_exit():
        outcome = (install_mod.uninstall if uninstall else install_mod.install)(system)
    typer.echo(outcome.text())


@app.command()
def bundle(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Default: lblab-student-VERSION.zip")
    ] = None,
) -> None:
    """Write the student zip: plugin, LB-Lab profile (importable), guide in English and Spanish."""
    from lbreport import bundle as bundle_mod

    with _errors_to_exit():
        made = bundle_mod.build(output or Path(bundle_mod.default_name()))
    typer.echo(f"wrote {made.path} (lblab {made.version}): " + ", ".join(made.members))


class BatchFormat(StrEnum):
    csv = "csv"
    markdown = "markdown"


@app.command()
def batch(
    directory: Annotated[Path, typer.Argument(help="A folder of captures (subfolders too).")],
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Captures read at once. Default: cores.")
    ] = None,
    fmt: Annotated[
        BatchFormat, typer.Option("--format", "-f", help="Output format.")
    ] = BatchFormat.markdown,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    lab: Annotated[
        Path | None, typer.Option("--lab", help="Lab file (TOML) for every capture.")
    ] = None,
    lang: LangOption = Lang.en,
    keylog: KeylogOption = None,
) -> None:
    """One row per capture of a folder (a class's captures): requests, complete lifecycles,
    backends and evidence, anomalies, capture point, errors. Exit 1 only when the folder
    itself is unusable; a capture that fails is a row with its error."""
    from lbreport import batch as batch_mod

    set_language(lang.value)
    with _errors_to_exit():
        if jobs is not None and jobs < 1:
            from lbreport.messages import t

            raise LbreportError(t("batch.err.jobs"))
        if keylog is not None:  # one key log for the whole class: checked once, here
            from lbreport.tshark import check_keylog

            check_keylog(keylog)
        captures = batch_mod.find_captures(directory)
        workers = min(jobs or batch_mod.default_jobs(), len(captures))
        with batch_mod.Progress(len(captures)) as bar:
            rows = batch_mod.run(directory, captures, workers, lab, lang.value, bar.advance,
                                 keylog)
        with _output(output) as out:
            if fmt is BatchFormat.csv:
                batch_mod.write_csv(rows, out)
            else:
                batch_mod.write_markdown(rows, directory, out)


class LiveFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


@app.command()
def live(
    interface: Annotated[str, typer.Option("-i", "--interface", help="Interface to capture on.")],
    lab: Annotated[
        Path | None, typer.Option("--lab", help="Lab file (TOML). Default: the classic lab.")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-c", min=1, help="Stop after N requests.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", "-d", min=0, help="Stop after S seconds.")
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help="Also save the capture (pcapng).")
    ] = None,
    fmt: Annotated[LiveFormat, typer.Option("--format", "-f", help="Output.")] = LiveFormat.text,
    bpf: Annotated[
        str | None,
        typer.Option("--filter", help="Capture filter (BPF). Default: the farm's traffic."),
    ] = None,
    keylog: KeylogOption = None,
) -> None:
    """Explain each request as it happens: capture on an interface of the running lab."""
    from lbreport import live as live_mod

    with _errors_to_exit():
        code = live_mod.run(live_mod.LiveOptions(
            interface, lab, count, duration, write, fmt.value, bpf, keylog))
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
