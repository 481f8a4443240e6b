"""JUnit XML with one test case per budget, for CI systems that show test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from edgepack.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from edgepack.gate.budgets import BudgetResult


def junit_xml(results: list[BudgetResult], suite: str) -> bytes:
    """The XML document: a `testsuite` named `suite`, a failing `testcase` per exceeded budget."""
    failures = sum(not r.passed for r in results)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    node = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures), errors="0", skipped="0"
    )
    for result in results:
        case = ET.SubElement(node, "testcase", classname=f"edgepack.budgets.{suite}", name=result.name)
        if not result.passed:
            failure = ET.SubElement(case, "failure", type="budget-exceeded", message=describe(result))
            failure.text = describe(result)
        elif result.estimated:  # a pass against an estimate says so too
            ET.SubElement(case, "system-out").text = describe(result)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(results: list[BudgetResult], suite: str, path: Path) -> None:
    """Write the JUnit file atomically."""
    atomic_write_bytes(path, junit_xml(results, suite))


def describe(result: BudgetResult) -> str:
    """`max_size: measured 81234 bytes, limit 80000 bytes, over by 1234 bytes` (an estimate: `NAME (estimated):
    estimated ..., BASIS`)."""
    if result.measured is None:
        return f"{result.name}: not measured ({result.detail}), limit {_fmt(result.limit)} {result.unit}"
    if result.estimated:
        margin = abs(result.margin or 0.0)
        word = "left" if result.passed else "over by"
        return (
            f"{result.label}: estimated {_fmt(result.measured)} {result.unit}, limit {_fmt(result.limit)} "
            f"{result.unit}, {word} {_fmt(margin)} {result.unit} ({result.detail})"
        )
    margin = result.margin or 0.0
    upper = result.name.startswith(("max", "latency", "fits.")) or (
        result.name.startswith("convert.") and result.unit != "dB"
    )
    word = "left" if result.passed else ("over by" if upper else "short by")
    line = (
        f"{result.name}: measured {_fmt(result.measured)} {result.unit}, limit {_fmt(result.limit)} "
        f"{result.unit}, {word} {_fmt(abs(margin))} {result.unit}"
    )
    named = result.name.startswith(("fits.", "gpu_", "min_gpu"))  # the board; the ops the GPU delegate refuses
    return f"{line} ({result.detail})" if named else line


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1e6 else f"{value:.6g}"
