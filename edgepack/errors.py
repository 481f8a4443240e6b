"""Typed errors raised by library code and rendered once, by the CLI boundary.

Each error carries a message (what went wrong), a context (where: file, field, layer, device),
a hint (how to fix it), a kebab-case code and the process exit code the CLI uses.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_BUDGET = 3
EXIT_DEVICE = 4


class EdgepackError(Exception):
    """Base class of every error edgepack reports to a user."""

    code = "edgepack-failed"
    exit_code = EXIT_FAILURE

    def __init__(
        self,
        message: str,
        *,
        context: str | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        self.hint = hint
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, object]:
        """The error as plain data, for `--json` output."""
        return {
            "error": self.code,
            "message": self.message,
            "context": self.context,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class BadInputError(EdgepackError):
    """The user gave something edgepack cannot use: a file, a value, a model."""

    code = "bad-input"
    exit_code = EXIT_BAD_INPUT


class RecipeError(BadInputError):
    """A recipe file is missing, unreadable or does not validate."""

    code = "recipe-invalid"


class DatasetError(BadInputError):
    """A dataset cannot be found or read, or its contents do not fit the recipe."""

    code = "dataset-invalid"


class ModelError(BadInputError):
    """A model cannot be loaded or built, or does not fit the data."""

    code = "model-invalid"


class BundleError(BadInputError):
    """A bundle is missing or its manifest cannot be read."""

    code = "bundle-invalid"


class StageError(EdgepackError):
    """A pipeline stage failed while running (training, conversion, the runtime)."""

    code = "stage-failed"


class BudgetExceeded(EdgepackError):
    """One or more budgets of the recipe were exceeded."""

    code = "budget-exceeded"
    exit_code = EXIT_BUDGET


class DeviceUnreachable(EdgepackError):
    """A device could not be reached or has no usable runtime."""

    code = "device-unreachable"
    exit_code = EXIT_DEVICE
