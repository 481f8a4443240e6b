"""The one error boundary: typed errors become a message and an exit code, never a traceback."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import typer

from edgepack.cli import output
from edgepack.errors import EXIT_FAILURE, EdgepackError

F = TypeVar("F", bound=Callable[..., Any])


def boundary(func: F) -> F:
    """Wrap a command: render `EdgepackError`s and unexpected failures, exit with their code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except EdgepackError as exc:
            if output.state.debug:
                raise
            output.render_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # the boundary: anything unexpected is reported, not dumped
            if output.state.debug:
                raise
            output.render_error(EdgepackError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="re-run with --debug for the traceback, and report it with the recipe",
                code="internal-error",
            ))
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]
