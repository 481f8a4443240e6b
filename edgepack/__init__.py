"""edgepack: take a Keras model from a declarative recipe to a validated, gated edge bundle.

The Python API lives in `edgepack.api` (`pipeline`, `train`, `optimize`, `convert`, `evaluate`,
`validate`, `gate`, `bundle`, `run`); `edgepack.run` is the whole run. Both are imported on first
use, so `import edgepack` stays light. (The stages are not top-level names: `edgepack.convert`,
`edgepack.optimize`, `edgepack.gate` and `edgepack.bundle` are the packages that implement them.)
"""

from typing import Any

__version__ = "0.3.0"
__all__ = ["__version__", "api", "run"]


def __getattr__(name: str) -> Any:
    if name in ("api", "run"):
        import edgepack.api

        return edgepack.api if name == "api" else edgepack.api.run
    raise AttributeError(f"module 'edgepack' has no attribute '{name}'")
