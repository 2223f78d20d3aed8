#!/usr/bin/env python3
"""Diff an Autobahn (kosoku) run against the checked-in expected results.

    scripts/autobahn_check.py OUTDIR EXPECTED_JSON [--update] [--full] [--subset]

OUTDIR holds the run's index.json ({agent: {case_id: {"behavior": ..., "behaviorClose": ...}}}).
EXPECTED_JSON is autobahn/expected-server.json or autobahn/expected-client.json:
{case_id: {"behavior": ..., "behaviorClose": ...}}, keys sorted in case order.

Exit status 1 if any case FAILED / UNIMPLEMENTED / ERROR (or its close FAILED), differs from
the expected file, or is in the expected file but did not run. --update rewrites the expected
file from the run instead, and refuses to if any case failed. --subset (used with kosoku -i/-x)
checks only the cases that ran, and --update then merges them into the expected file.
--full prints every case, not only the offending ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Verdicts that are conformant. Anything else in "behavior" is a failure.
PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
# A close handshake failed by the wrong endpoint is a failure whatever the message verdict.
# The softer close verdicts ("WRONG CODE", "UNCLEAN", "FAILED BY CLIENT") are tolerated only
# when the expected file records them, so a change in either direction shows up as a diff.
FAILING_CLOSE = ("FAILED",)


def case_key(case_id: str) -> tuple[int, ...]:
    """Sort key so 1.1.10 follows 1.1.9."""
    try:
        return tuple(int(part) for part in case_id.split("."))
    except ValueError:
        return (sys.maxsize,)


def load_run(outdir: Path) -> dict[str, dict[str, str]]:
    index_path = outdir / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        sys.exit(f"{index_path}: not found (the run produced no report)")
    except json.JSONDecodeError as e:
        sys.exit(f"{index_path}: not valid JSON: {e}")
    if not isinstance(index, dict) or len(index) != 1:
        agents = ", ".join(index) if isinstance(index, dict) else "?"
        sys.exit(f"{index_path}: expected exactly one agent, found: [{agents}]")
    ((agent, cases),) = index.items()
    if not cases:
        sys.exit(f"{index_path}: agent {agent!r} ran no cases")
    return {
        case_id: {
            "behavior": str(result.get("behavior")),
            "behaviorClose": str(result.get("behaviorClose")),
        }
        for case_id, result in cases.items()
    }, cases


def result_text(outdir: Path, entry: dict | None) -> str:
    """kosoku's explanation of a verdict, from the case's own report file."""
    if not entry or not entry.get("reportfile"):
        return ""
    try:
        report = json.loads((outdir / entry["reportfile"]).read_text())
    except (OSError, json.JSONDecodeError):
        return ""
    parts = [report.get("result"), report.get("resultClose")]
    return "; ".join(str(p) for p in parts if p)


def is_failure(result: dict[str, str]) -> bool:
    return result["behavior"] not in PASSING or result["behaviorClose"] in FAILING_CLOSE


def show(result: dict[str, str] | None) -> str:
    if result is None:
        return "(not run)"
    return f"{result['behavior']} / close {result['behaviorClose']}"


def write_expected(path: Path, results: dict[str, dict[str, str]]) -> None:
    """One case per line, in case order, so a changed verdict is a one-line diff."""
    lines = [
        f"  {json.dumps(case_id)}: "
        + json.dumps({key: results[case_id][key] for key in ("behavior", "behaviorClose")})
        for case_id in sorted(results, key=case_key)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="kosoku report directory (holds index.json)")
    parser.add_argument("expected", type=Path, help="checked-in expected results JSON")
    parser.add_argument("--update", action="store_true", help="rewrite EXPECTED from this run")
    parser.add_argument("--full", action="store_true", help="print every case's result")
    parser.add_argument(
        "--subset", action="store_true", help="only some cases ran (kosoku -i/-x): check those"
    )
    args = parser.parse_args()

    # "expected-server.json" -> "server"
    label = args.expected.stem.removeprefix("expected-")
    run, entries = load_run(args.outdir)

    def why(case_id: str) -> str:
        text = result_text(args.outdir, entries.get(case_id))
        return f" -- {text}" if text else ""

    counts = {verdict: 0 for verdict in PASSING}
    failed = []
    for case_id in sorted(run, key=case_key):
        result = run[case_id]
        if is_failure(result):
            failed.append(case_id)
        elif result["behavior"] in counts:
            counts[result["behavior"]] += 1
    summary = (
        f"autobahn {label}: {len(run)} cases, {counts['OK']} ok, "
        f"{counts['NON-STRICT']} non-strict, {counts['INFORMATIONAL']} informational"
        + (f", {len(failed)} failed" if failed else "")
    )

    if args.full:
        for case_id in sorted(run, key=case_key):
            print(f"  {case_id:<10} {show(run[case_id])}")

    if args.update:
        for case_id in failed:
            print(f"  {case_id:<10} {show(run[case_id])}{why(case_id)}")
        print(summary)
        if failed:
            print(
                f"refusing to write {args.expected}: {len(failed)} case(s) failed; fix them first",
                file=sys.stderr,
            )
            return 1
        results = dict(run)
        if args.subset and args.expected.exists():
            results = {**json.loads(args.expected.read_text()), **run}
        write_expected(args.expected, results)
        print(f"wrote {len(results)} cases to {args.expected}")
        return 0

    if not args.expected.exists():
        for case_id in failed:
            print(f"  {case_id:<10} {show(run[case_id])}{why(case_id)}")
        print(summary)
        print(
            f"{args.expected} does not exist yet: review the run "
            f"({args.outdir / 'index.html'}), then rerun with --update to record it",
            file=sys.stderr,
        )
        return 1
    expected = json.loads(args.expected.read_text())

    problems = []  # (case_id, what is wrong)
    for case_id in sorted(set(run) | set(expected), key=case_key):
        got, want = run.get(case_id), expected.get(case_id)
        if got is None:
            if not args.subset:
                problems.append((case_id, f"expected {show(want)}, but the case did not run"))
        elif is_failure(got):
            was = f"expected {show(want)}" if want else "not in the expected file"
            problems.append((case_id, f"{show(got)} ({was}){why(case_id)}"))
        elif want is None:
            problems.append((case_id, f"{show(got)}, not in the expected file"))
        elif got != want:
            problems.append((case_id, f"{show(got)}, expected {show(want)}{why(case_id)}"))

    for case_id, text in problems:
        print(f"  {case_id:<10} {text}")
    print(summary)
    if problems:
        print(
            f"autobahn {label}: {len(problems)} case(s) differ from {args.expected}. "
            "Fix the regression, or if the new result is intended, rerun with --update.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
