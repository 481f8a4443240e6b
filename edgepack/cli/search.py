"""`edgepack search RECIPE`: the recipe's `[convert.search]` as an Optuna study that `--workers N` processes
here, and the same command on other machines sharing its storage (and the work folder), work through."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from edgepack.cli import output
from edgepack.cli.boundary import boundary
from edgepack.cli.stages import NO_CACHE, RECIPE, WORKDIR
from edgepack.errors import BadInputError, StageError
from edgepack.table import Span

STORAGE = typer.Option(
    None,
    "--storage",
    help='The study\'s storage, shared by every worker: "journal:PATH" (a file) or a database URL '
    "(sqlite:///search.db); default: the recipe's search.storage, else (with --workers over 1) "
    "journal:WORKDIR/RECIPE/search.journal.",
    show_default=False,
)
WORKERS = typer.Option(1, "--workers", "-j", min=1, max=64, help="Worker processes on this machine.")
CHILD = [sys.executable, "-c", "from edgepack.cli.app import main; main()"]  # this edgepack, as a worker process


def register(app: typer.Typer) -> None:
    """Add `search` to the top-level app."""

    @app.command()
    @boundary
    def search(
        recipe: str = RECIPE,
        workdir: Path = WORKDIR,
        no_cache: bool = NO_CACHE,
        storage: str = STORAGE,
        workers: int = WORKERS,
    ) -> None:
        """Run the recipe's [convert.search] as an Optuna study several workers and machines share.

        Each candidate is one trial, run by one worker; every worker ends with the same pick, read from the
        study. Run the same command on another machine that reaches the storage and the work folder to join
        it. A worker stopped mid-trial marks it failed (killed outright: the next worker started on its
        machine does), and the candidate is run again.
        """
        from dataclasses import replace

        from edgepack.pipeline import Pipeline
        from edgepack.pipeline.search import storage_url
        from edgepack.pipeline.study import open_storage
        from edgepack.recipe import load_recipe

        if no_cache and workers > 1:  # each worker would rebuild the stages the others are reading
            raise BadInputError(
                "--no-cache with --workers over 1: every worker would rebuild the stages the others read",
                context="--no-cache",
                hint="run `edgepack convert RECIPE --no-cache` first (or clear the work folder), then search",
                code="search-no-cache",
            )
        loaded = load_recipe(recipe)
        settings = loaded.recipe.convert.search
        if settings is None:
            raise BadInputError(
                f"recipe '{loaded.recipe.name}' has no [convert.search]: there is nothing to search",
                context=str(loaded.path or recipe),
                hint='add [convert.search] with modes = ["int8", "dynamic", ...] (docs/recipe.md)',
                code="search-none",
            )
        if storage:
            from edgepack.recipe.convert import storage_form

            try:
                storage_form(storage)
            except ValueError as exc:
                raise BadInputError(f"--storage {exc}", context="--storage", code="search-storage") from exc
        url = storage_url(storage, Path.cwd()) if storage else None  # the recipe's: relative to its folder
        url = url or (storage_url(settings.storage, loaded.base_dir) if settings.storage else None)
        if url is None and workers > 1:
            url = f"journal:{(workdir / loaded.recipe.name / 'search.journal').resolve()}"
        if url is not None:
            convert = loaded.recipe.convert.model_copy(update={"search": settings.model_copy(update={"storage": url})})
            loaded = replace(loaded, recipe=loaded.recipe.model_copy(update={"convert": convert}))
            open_storage(url)  # a storage that cannot be opened is said before anything trains
        ref = str(loaded.path) if loaded.path is not None else (recipe or "digits")
        args = ["--json", "search", ref, "--workdir", str(workdir.resolve()), "--workers", "1"]
        args += ["--storage", url] if url else []
        children = [_spawn(args) for _ in range(workers - 1)]  # url is set when there are any
        try:
            pipeline = Pipeline(
                loaded, workdir, output.reporter(), use_cache=not no_cache, quiet_native=not output.state.debug
            )
            found = pipeline.searched
        except BaseException:
            for proc, _ in children:  # this worker failed or was stopped: so are the others it started
                proc.terminate()
            _wait(children)
            raise
        failed = _wait(children)
        if failed:
            raise StageError(
                f"{len(failed)} of {workers - 1} other worker(s) failed: {failed[0]}", code="search-worker"
            )
        _show(found.report)


def _spawn(args: list[str]) -> tuple[subprocess.Popen[bytes], Any]:
    """A worker process (`--json`: its result, or its error, on stdout), its output kept in a file."""
    log = tempfile.TemporaryFile()
    return subprocess.Popen([*CHILD, *args], stdout=log, stderr=subprocess.STDOUT), log


def _wait(children: list[tuple[subprocess.Popen[bytes], Any]]) -> list[str]:
    """Wait for every worker; what each failed one said: its error's code and message, else its last line."""
    import json

    failed = []
    for proc, log in children:
        if proc.wait() != 0:
            log.seek(0)
            text = log.read().decode(errors="replace")
            start = text.rfind('{\n  "error"')
            try:
                error = json.loads(text[start:]) if start >= 0 else None
                said = f"{error['error']}: {error['message']}" if isinstance(error, dict) else None
            except (ValueError, KeyError):
                said = None
            lines = text.strip().splitlines()
            failed.append(f"exit {proc.returncode}: {said or (lines[-1] if lines else 'no message')}")
        log.close()
    return failed


def _show(report: dict[str, Any]) -> None:
    from edgepack.summary.search import search_table

    study = report.get("study")
    line: list[str | Span] | None = None
    if study is not None:
        states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(study["trials"].items()))
        line = [
            Span("study", "strong"),
            f" {study['name']} in {study['storage']}: {states}; {len(study['ran_here'])} run by this worker",
        ]
    output.result(report, search_table(report), line, [Span("chosen", "strong"), f" {report['chosen']}"])
