"""The one error boundary: typed errors become a message and an exit code, never a traceback; native log
lines are kept off the terminal while a command runs (not with --debug)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from edgepack.cli import output
from edgepack.errors import EXIT_FAILURE, EdgepackError

F = TypeVar("F", bound=Callable[..., Any])


def boundary(func: F) -> F:
    """Wrap a command: render `EdgepackError`s and unexpected failures, exit with their code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgepack.native import captured_native_logs

        try:
            # TensorFlow's and LiteRT's C++ log lines (absl, oneDNN, CUDA stubs, XNNPACK) stay off the terminal in
            # every command unless --debug; a failing command's error carries their tail
            with captured_native_logs(not output.state.debug):
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
            output.render_error(
                EdgepackError(
                    f"internal error: {type(exc).__name__}: {exc}",
                    hint="re-run with --debug for the traceback, and report it with the recipe",
                    code="internal-error",
                )
            )
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]
