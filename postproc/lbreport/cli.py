"""Typer commands only: parse options, call the pipeline, print, map errors to exit codes.

Every word printed comes from the catalogue (messages.py), the help too: each command's and
option's help is `help.<command>[.<parameter>]` (else `help.opt.<parameter>`), put in place in
the chosen language when the help is shown. The language: `--lang` (on every command, and
before the command for the help), else the environment's (messages.environment_language).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from lbreport.environment import Environment
from lbreport.errors import LbreportError
from lbreport.messages import (
    LANGUAGES,
    environment_language,
    has,
    language,
    set_language,
    t,
)

# Each command imports what it runs when it runs: `report` starts tshark before the parser, the
# lifecycle and the renderers are imported (pipeline.py), so that their import overlaps with
# tshark's own start.


def _language_in(args: Sequence[str], default: str) -> str:
    """`--lang X` / `--lang=X` among the command line's arguments (wherever it is: the help
    is written while they are parsed, before any option has a value), else `default`."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = arg.partition("=")[2] if arg.startswith("--lang=") else (
            args[i + 1] if arg == "--lang" and i + 1 < len(args) else None)
        if value in LANGUAGES:
            return value
    return default


def _translate(command: Any, name: str) -> None:
    """A command's help and its parameters' help, in the current language."""
    command.help = t(f"help.{name}")
    for param in command.params:
        for key in (f"help.{name}.{param.name}", f"help.opt.{param.name}"):
            if has(key):
                param.help = t(key)
                break


def _drop_prestarted() -> None:
    pipeline = sys.modules.get("lbreport.pipeline")  # not imported: nothing was started
    if pipeline is not None:
        pipeline.drop_prestarted()


def _help_option(option: Any) -> Any:
    """--help's own line (Click's words otherwise)."""
    if option is not None:
        option.help = t("help.opt.help")
    return option


class _Command(TyperCommand):
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        # Not given after the command: as the group chose (`lbreport --lang es report …`).
        set_language(_language_in(args, language() if parent else environment_language()))
        return super().make_context(info_name, args, parent, **extra)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _translate(self, self.name or "")
        super().format_help(ctx, formatter)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(super().get_help_option(ctx))


class _ReportCommand(_Command):
    """`report` starts tshark as soon as the command line names the capture, before Typer
    converts any option (through pydantic: ~0.1 s to import, the help flag's conversion
    included), so the report's fixed cost is Python's start or tshark's, whichever is longer
    (pipeline.prestart). The raw values come from the command's own parser; build_report takes
    the run only if the converted ones are the same."""


def _prestart(command: _Command, info_name: str, args: list[str]) -> bool:
    """Whether a tshark was started for `command`'s arguments."""
    try:
        ctx = command.context_class(command, info_name=info_name, resilient_parsing=True)
        raw, rest, _ = command.make_parser(ctx).parse_args(list(args))
    except Exception:  # noqa: BLE001 - a bad command line: Typer says what is wrong
        return False
    if raw.get("help") or rest or not isinstance(raw.get("capture"), str):
        return False
    from lbreport import pipeline

    paths = [Path(raw[k]) if isinstance(raw.get(k), str) else None for k in ("lab", "keylog")]
    pipeline.prestart(Path(raw["capture"]), *paths)
    return True


class _Group(TyperGroup):
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        """`lbreport --lang es COMMAND …`, `lbreport --lang es --help`: --lang before the
        command is read here and dropped (the group has no option of its own). `report`'s
        tshark starts here, before the group's own parsing converts anything."""
        args = list(args)
        set_language(_language_in(args, environment_language()))
        while args and (args[0] == "--lang" or args[0].startswith("--lang=")):
            value = args[0].partition("=")[2] if args[0] != "--lang" else (
                args[1] if len(args) > 1 else "")
            if value not in LANGUAGES:
                raise typer.BadParameter(t("err.lang", value=value,
                                           choices=", ".join(LANGUAGES)))
            del args[:1 if args[0] != "--lang" else 2]
        command = self.commands.get(args[0]) if args else None
        started = isinstance(command, _ReportCommand) and _prestart(command, args[0], args[1:])
        if not started:  # launch.py's guess, if any, is not what this parser read
            _drop_prestarted()
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except BaseException:
            if started:
                _drop_prestarted()
            raise
        if started:
            ctx.call_on_close(_drop_prestarted)
        return ctx

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _translate(self, "app")
        for name, command in self.commands.items():
            _translate(command, name)
        super().format_help(ctx, formatter)

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option(super().get_help_option(ctx))


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help=t("help.app"),
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


# Default: the environment's language (LC_ALL, LC_MESSAGES, LANG), chosen in make_context.
LangOption = Annotated[Lang | None, typer.Option("--lang", help=t("help.opt.lang"))]
# HTTPS (issue 11): the TLS secrets tshark needs to read the encrypted leg as HTTP.
KeylogOption = Annotated[Path | None, typer.Option("--keylog", help=t("help.opt.keylog"))]
CaptureArgument = Annotated[Path, typer.Argument(help=t("help.opt.capture"))]
OutputOption = Annotated[Path | None, typer.Option("-o", "--output", help=t("help.opt.output"))]


def _language(lang: Lang | None) -> str:
    """The language in use: --lang, else the environment's (already set by make_context)."""
    if lang is not None:
        set_language(lang.value)
    return language()


def _environment(lang: Lang | None) -> Environment:
    """This command's streams and language, decided once (environment.py). The catalogue's
    language is set too: every message of the run, errors included, is worded in it."""
    return Environment(lang=_language(lang))




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
        raise LbreportError(t("err.output", path=path, reason=exc.strerror)) from None
    with f:
        yield f


@app.command(cls=_ReportCommand, help=t("help.report"))
def report(
    capture: CaptureArgument,
    lab: Annotated[Path | None, typer.Option("--lab", help=t("help.opt.lab"))] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help=t("help.opt.fmt"))] = Format.text,
    output: OutputOption = None,
    keep_pdml: Annotated[
        Path | None, typer.Option("--keep-pdml", help=t("help.report.keep_pdml"))
    ] = None,
    lang: LangOption = None,
    keylog: KeylogOption = None,
) -> None:
    from lbreport import pipeline

    env = _environment(lang)  # before the pipeline: its errors and warnings are messages too
    with _errors_to_exit():
        result = pipeline.build_report(
            capture, lab, keep_pdml, progress=lambda run: _progress(run, env), warn=_err,
            keylog=keylog,
        )
        from lbreport.render import renderer

        with _output(output) as out:
            _write(renderer(fmt.value), result, env.with_output(out))
    if result.truncated:
        raise typer.Exit(EXIT_TRUNCATED)


def _progress(run: Any, env: Environment) -> Any:
    """The progress bar for a running tshark (pipeline.ProgressFactory), imported once tshark
    runs."""
    from lbreport.progress import TsharkProgress

    return TsharkProgress(run, env)


def _write(render, result, env: Environment) -> None:  # noqa: ANN001
    try:
        render(result, env)
    except BrokenPipeError:  # `lbreport report … | head`
        sys.stderr.close()


@app.command(cls=_Command, help=t("help.roles"))
def roles(capture: CaptureArgument, lang: LangOption = None) -> None:
    from lbreport import roles_cmd

    _language(lang)
    with _errors_to_exit():
        typer.echo(roles_cmd.inferred_lab_file(capture))


@app.command(cls=_Command, help=t("help.doctor"))
def doctor(lang: LangOption = None) -> None:
    from lbreport import doctor as doctor_mod

    _language(lang)
    checks = doctor_mod.run_checks()
    typer.echo(doctor_mod.format_checks(checks))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command(cls=_Command, help=t("help.install"))
def install(
    system: Annotated[bool, typer.Option("--system", help=t("help.install.system"))] = False,
    uninstall: Annotated[
        bool, typer.Option("--uninstall", help=t("help.install.uninstall"))
    ] = False,
    lab: Annotated[Path | None, typer.Option("--lab", help=t("help.install.lab"))] = None,
    lang: LangOption = None,
) -> None:
    from lbreport import install as install_mod
    from lbreport.config import load_lab

    _language(lang)
    with _errors_to_exit():
        if uninstall:
            outcome = install_mod.uninstall(system)
        else:
            outcome = install_mod.install(system, lab=load_lab(lab) if lab else None)
    typer.echo(outcome.text())


@app.command(cls=_Command, help=t("help.bundle"))
def bundle(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help=t("help.bundle.output"))
    ] = None,
    lang: LangOption = None,
) -> None:
    from lbreport import bundle as bundle_mod

    _language(lang)
    with _errors_to_exit():
        made = bundle_mod.build(output or Path(bundle_mod.default_name()))
    typer.echo(t("bundle.wrote", path=made.path, version=made.version,
                 members=", ".join(made.members)))


class BatchFormat(StrEnum):
    csv = "csv"
    markdown = "markdown"


@app.command(cls=_Command, help=t("help.batch"))
def batch(
    directory: Annotated[Path, typer.Argument(help=t("help.batch.directory"))],
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help=t("help.batch.jobs"))
    ] = None,
    fmt: Annotated[
        BatchFormat, typer.Option("--format", "-f", help=t("help.opt.fmt"))
    ] = BatchFormat.markdown,
    output: OutputOption = None,
    lab: Annotated[Path | None, typer.Option("--lab", help=t("help.batch.lab"))] = None,
    lang: LangOption = None,
    keylog: KeylogOption = None,
) -> None:
    from lbreport import batch as batch_mod

    env = _environment(lang)
    with _errors_to_exit():
        if jobs is not None and jobs < 1:
            raise LbreportError(t("batch.err.jobs"))
        if keylog is not None:  # one key log for the whole class: checked once, here
            from lbreport.tshark import check_keylog

            check_keylog(keylog)
        captures = batch_mod.find_captures(directory)
        workers = min(jobs or batch_mod.default_jobs(), len(captures))
        with batch_mod.Progress(len(captures), env) as bar:
            rows = batch_mod.run(directory, captures, workers, lab, env.lang, bar.advance,
                                 keylog)
        with _output(output) as out:
            if fmt is BatchFormat.csv:
                batch_mod.write_csv(rows, out)
            else:
                batch_mod.write_markdown(rows, directory, out)


class LiveFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


@app.command(cls=_Command, help=t("help.live"))
def live(
    interface: Annotated[
        str, typer.Option("-i", "--interface", help=t("help.live.interface"))
    ],
    lab: Annotated[Path | None, typer.Option("--lab", help=t("help.opt.lab"))] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-c", min=1, help=t("help.live.count"))
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", "-d", min=0, help=t("help.live.duration"))
    ] = None,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help=t("help.live.write"))
    ] = None,
    fmt: Annotated[
        LiveFormat, typer.Option("--format", "-f", help=t("help.opt.fmt"))
    ] = LiveFormat.text,
    bpf: Annotated[
        str | None, typer.Option("--filter", help=t("help.live.bpf"))
    ] = None,
    lang: LangOption = None,
    keylog: KeylogOption = None,
) -> None:
    from lbreport import live as live_mod

    env = _environment(lang)
    with _errors_to_exit():
        code = live_mod.run(live_mod.LiveOptions(
            interface, lab, count, duration, write, fmt.value, bpf, keylog), env)
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
