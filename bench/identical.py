"""Are the shipped recipes' bundles byte-identical on this tree and on an earlier commit?

A refactoring of the pipeline must not change what ships. For each recipe named (default: every
shipped recipe), both sides run `edgepack run RECIPE --no-cache` in their own work directories with
the same interpreter and packages, the earlier commit checked out into a temporary git worktree and
put first on PYTHONPATH. Stage ids hash edgepack's own code (so an edited tree never reuses a stale
stage); both sides fix that fingerprint to one value, so the ids, and with them the whole manifest,
may be compared. The table gives, per recipe, whether model.tflite, manifest.json (the build
section: everything but the run-specific measurements.json) and every other bundle file are
identical, naming the first differing file. It is printed and written to `bench/results/identical.md`.

    python bench/identical.py --ref 3cac50a                     # every shipped recipe (long: MobileNetV2)
    python bench/identical.py --ref 3cac50a digits ptq-int8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "identical.md"
RUN = (
    "import sys\n"
    "import edgepack.pipeline.cache as cache\n"
    "cache.code_fingerprint = lambda package=None: 'fixed'  # both sides hash the same 'code' into stage ids\n"
    "from edgepack.cli.app import main\n"
    "sys.argv = ['edgepack', *sys.argv[1:]]\n"
    "main()\n"
)
RUN_SPECIFIC = {"measurements.json", "report.html", "manifest.sig"}  # when and where it ran; report.html shows it


def bundle_of(tree: Path, recipe: str, scratch: Path) -> Path:
    """The bundle of `recipe` made by the code in `tree` (run from that tree, its recipes and datasets)."""
    workdir, out = scratch / "work", scratch / "bundle"
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", RUN, "run", recipe, "--no-cache", "--workdir", str(workdir), "--out", str(out)]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: a budget exceeded; the bundle is still written
        raise SystemExit(f"{tree}: {recipe}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return out


def files(bundle: Path) -> dict[str, bytes]:
    return {p.relative_to(bundle).as_posix(): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}


def compare(before: dict[str, bytes], after: dict[str, bytes]) -> tuple[str, str, str]:
    """model.tflite, manifest.json, and the first other file that differs (or is only on one side)."""

    def same(name: str) -> str:
        return "identical" if before.get(name) == after.get(name) and name in before else "DIFFERS"

    others = sorted((set(before) | set(after)) - RUN_SPECIFIC - {"model.tflite", "manifest.json"})
    differing = [n for n in others if before.get(n) != after.get(n)]
    return same("model.tflite"), same("manifest.json"), differing[0] if differing else f"all {len(others)} identical"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("recipes", nargs="*", help="recipe names (default: every recipe in recipes/)")
    args = parser.parse_args()
    recipes = args.recipes or sorted(p.stem for p in (ROOT / "recipes").glob("*.toml"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgepack-identical-") as scratch:
        before = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.ref], check=True)
        try:
            for recipe in recipes:
                sides = [bundle_of(tree, recipe, Path(tempfile.mkdtemp(dir=scratch))) for tree in (before, ROOT)]
                row = compare(files(sides[0]), files(sides[1]))
                rows.append((recipe, *row))
                print(f"{recipe}: {row}", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    lines = [
        f"# Shipped recipes' bundles: this tree against {args.ref}",
        "",
        "| recipe | model.tflite | manifest.json | other files |",
        "|---|---|---|---|",
        *(f"| {r} | {m} | {j} | {o} |" for r, m, j, o in rows),
        "",
        "measurements.json, report.html and manifest.sig record the run's time and host, and are not compared.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
