"""The tables of the choices a run made: the mode search, an "auto" optimize value (sparsity, rank), the Dense
layers' granularity, and TFLM's look-up-table compression."""

from __future__ import annotations

from typing import Any

from edgepack.summary.figures import METRIC_NAMES, drop_text, figure
from edgepack.table import Column, Piece, Span, Table

PICK = Span("<-", "strong")


def search_table(search: dict[str, Any]) -> Table:
    """Every candidate: size, latency, arena, the task's metric; which meet the criterion, the Pareto front
    (over all four), the pick and why."""
    from edgepack.evaluate.judge import criterion_text, search_goal

    metric = search.get("metric", "accuracy")
    verdict = Span("met", "good") if search["met"] else Span("no candidate meets it: the best is kept", "bad")
    criterion = {**(search.get("criterion") or {}), "allowed_drop": search["allowed_drop"]}
    title: list[Piece] = [
        f"search: the {search_goal(search)} with {criterion_text(criterion, metric)} (",
        verdict,
        f"); latency on {search['device']}",
    ]
    if search.get("why"):
        title.append(f"\n{search['chosen']} kept: {search['why']}")
    name = METRIC_NAMES.get(metric, metric)
    columns = ("candidate", "size", f"p50 on {search['device']}", "arena", name, "worse by", "SQNR", "meets", "Pareto")
    table = Table.of(
        title,
        [Column(c, "left" if c in ("candidate", "meets", "Pareto", "pick") else "right") for c in (*columns, "pick")],
    )
    for c in search["candidates"]:
        worse = "-" if c["drop"] is None else drop_text(metric, c["drop"])
        table.add_row(
            c["mode"],
            f"{c['size_bytes']:,} B",
            f"{c['latency_p50_ms']:.3f} ms",
            "-" if c.get("arena_bytes") is None else f"{c['arena_bytes']:,} B",
            figure(metric, c["value"]),
            worse,
            figure("sqnr_db", c["worst_sqnr_db"]),
            "yes" if c["meets"] else Span("no", "bad"),
            "yes" if c["pareto"] else "",
            PICK if c["chosen"] else "",
        )
    return table


def _budgets_held(budgets: list[dict[str, Any]]) -> Piece:
    failed = [b["name"] for b in budgets if not b["passed"]]
    return "hold" if not failed else Span(f"break {', '.join(failed)}", "bad")


def tune_table(search: dict[str, Any], metric: str) -> Table:
    """An "auto" optimize value (`final_sparsity`, `rank`): each try's value, its fine-tuned model's
    metric, the budgets, the pick."""
    tries, field = search["tries"], search.get("field", "final_sparsity")  # records before rank search: sparsity
    columns = (field, METRIC_NAMES.get(metric, metric), "budgets", "time", "pick")
    table = Table.of(tune_summary(search), [Column(c, "right" if c in (field, "time") else "left") for c in columns])
    for t in tries:
        table.add_row(
            f"{t[field]:g}",
            figure(metric, t["metrics"].get(metric)),
            _budgets_held(t["budgets"]),
            "cached" if t["cached"] else f"{t['seconds']:.1f} s",
            PICK if t["chosen"] else "",
        )
    return table


def tune_summary(search: dict[str, Any]) -> str:
    """One line: which stage's value was searched, what was kept and why, how many tries in how long."""
    return (
        f"optimize[{search['stage']}].{search.get('field', 'final_sparsity')} = 'auto': {search['chosen']:g} kept ({search['why']}); "
        f"{len(search['tries'])} of {len(search['grid'])} grid values tried in {search['seconds']:.1f} s"
    )


def granularity_table(choice: dict[str, Any]) -> Table:
    """`dense_granularity = "auto"`: both conversions, their figures, the budgets each holds, the pick and why."""
    metric = choice.get("metric", "accuracy")
    columns = ("Dense layers", "size", METRIC_NAMES.get(metric, metric), "worse by", "SQNR", "budgets", "pick")
    table = Table.of(
        f"Dense layers: {choice['chosen']} kept ({choice['why']})",
        [Column(c, "left" if c in ("Dense layers", "budgets", "pick") else "right") for c in columns],
    )
    for c in choice["candidates"]:
        table.add_row(
            c["dense_granularity"],
            f"{c['size_bytes']:,} B",
            figure(metric, c["value"]),
            "-" if c["drop"] is None else drop_text(metric, c["drop"]),
            figure("sqnr_db", c["worst_sqnr_db"]),
            _budgets_held(c["budgets"]),
            PICK if c["chosen"] else "",
        )
    return table


def compression_table(record: dict[str, Any]) -> Table:
    """`compression = "lut"`: each compressed tensor (bits, table mode, bytes before and after), the file's
    size before and after, and TFLM's arena with what it includes."""
    ratio = f"{record['ratio']:.2f}x" if record.get("ratio") is not None else "-"
    title = (
        f"TFLM look-up-table compression: {record['size_before_bytes']:,} B -> {record['size_bytes']:,} B ({ratio}), "
        f"{len(record['tensors'])} tensor(s), {len(record.get('skipped') or [])} left as they were"
    )
    arena = record.get("arena") or {}
    if arena.get("how") == "measured":
        plain = arena.get("uncompressed_model_bytes")
        title += f"; arena {arena['bytes']:,} B" + (
            f" ({plain:,} B uncompressed + {arena['decoded_bytes']:,} B of decoded tensors)"
            if plain is not None
            else ""
        )
    columns = ("tensor", "values", "bits", "tables", "before", "after")
    table = Table.of(title, [Column(c, "left" if c in ("tensor", "tables") else "right") for c in columns])
    for t in record["tensors"]:
        tables = "1 (per tensor)" if t["mode"] == "per-tensor" else f"{t['tables']} (per channel, axis {t['axis']})"
        table.add_row(
            t["name"], str(t["values"]), str(t["bits"]), tables, f"{t['bytes_before']:,} B", f"{t['bytes_after']:,} B"
        )
    return table
