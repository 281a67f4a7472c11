"""Reliability report: run the reliability tests and count the cases tried and passed.

    python benchmarks/reliability_report.py [--json OUT] [--quick] [--threads 2]

Runs ``tests/test_{bad_input,fuzz,safe_loading,resource_bounds,interrupted_jobs}.py`` with pytest
(junit XML + Hypothesis statistics) and prints, per area and per command of the bad-input matrix:
cases tried, passed, failed, known defects (strict ``xfail``: they fail today and are listed with
their reason) and skipped. Fuzz tests also report the number of generated examples.
``--quick`` leaves out the interrupted-job tests (the slow ones). The exit status is 1 if any
case failed (a known defect is not a failure; a known defect that passes is, so the list stays true).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AREAS = {
    "test_bad_input": "bad input (CLI matrix)",
    "test_fuzz": "parser fuzzing",
    "test_safe_loading": "safe loading",
    "test_resource_bounds": "resource bounds",
    "test_interrupted_jobs": "interrupted jobs",
}
STATS = re.compile(r"(\S+::\S+):\s*\n\s*\n?\s*- during (?:generate|reuse) phase.*?\n\s*- (\d+) passing examples, (\d+) "
                   r"failing examples, (\d+) invalid examples", re.S)


def run_pytest(files: list[str], threads: int) -> tuple[Path, str, float]:
    xml = Path(tempfile.mkdtemp(prefix="reliability-")) / "junit.xml"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "-o", "junit_family=xunit2", "--hypothesis-show-statistics"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    return xml, proc.stdout + proc.stderr, time.perf_counter() - start


def outcome(case: ET.Element) -> tuple[str, str]:
    for child in case:
        if child.tag in ("failure", "error"):
            message = child.get("message", "")
            if "XPASS(strict)" in message:
                return "failed", "known defect now passes: remove its xfail mark"
            return "failed", message.splitlines()[0][:200] if message else child.tag
        if child.tag == "skipped":
            if child.get("type") == "pytest.xfail":
                return "known_defect", child.get("message", "")
            return "skipped", child.get("message", "")
    return "passed", ""


def group_of(area: str, name: str) -> str:
    """The command of a bad-input case (``test_bad_input[export/weights-bomb]`` -> ``export``)."""
    m = re.search(r"\[(.*)\]$", name)
    if area == "test_bad_input" and m and "/" in m.group(1):
        return m.group(1).split("/")[0]
    return ""


def summarize(xml: Path, log: str) -> dict:
    root = ET.parse(xml).getroot()
    areas: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    commands: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    defects, failures = [], []
    for case in root.iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        name = case.get("name", "")
        state, detail = outcome(case)
        areas[module]["tried"] += 1
        areas[module][state] += 1
        cmd = group_of(module, name)
        if cmd:
            commands[cmd]["tried"] += 1
            commands[cmd][state] += 1
        if state == "known_defect":
            defects.append({"case": f"{module}::{name}", "reason": detail.removeprefix("reason: ")})
        elif state == "failed":
            failures.append({"case": f"{module}::{name}", "message": detail})
    examples = {"passing": 0, "failing": 0, "invalid": 0}
    for _, ok, bad, invalid in STATS.findall(log):
        examples["passing"] += int(ok)
        examples["failing"] += int(bad)
        examples["invalid"] += int(invalid)
    total = defaultdict(int)
    for counts in areas.values():
        for k, v in counts.items():
            total[k] += v
    return {
        "areas": {AREAS.get(k, k): dict(v) for k, v in sorted(areas.items())},
        "bad_input_by_command": {k: dict(v) for k, v in sorted(commands.items())},
        "fuzz_examples": examples,
        "total": dict(total),
        "known_defects": defects,
        "failures": failures,
    }


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_out", default=None, help="Write the counts here.")
    ap.add_argument("--quick", action="store_true", help="Leave out the interrupted-job tests.")
    ap.add_argument("--threads", type=int, default=2, help="OMP/MKL threads of the test processes.")
    args = ap.parse_args()
    names = [n for n in AREAS if not (args.quick and n == "test_interrupted_jobs")]
    xml, log, seconds = run_pytest([f"tests/{n}.py" for n in names], args.threads)
    if not xml.exists():
        print(log[-3000:], file=sys.stderr)
        return 2
    report = summarize(xml, log)
    report["seconds"] = round(seconds, 1)
    report["threads"] = args.threads
    cols = ["tried", "passed", "failed", "known_defect", "skipped"]
    print(table([[a] + [c.get(k, 0) for k in cols] for a, c in report["areas"].items()]
                + [["TOTAL"] + [report["total"].get(k, 0) for k in cols]], ["area"] + cols))
    print()
    print(table([[a] + [c.get(k, 0) for k in cols] for a, c in report["bad_input_by_command"].items()],
                ["bad input: command"] + cols))
    ex = report["fuzz_examples"]
    print(f"\nfuzzing: {ex['passing']} generated examples passed, {ex['failing']} failed, {ex['invalid']} invalid")
    if report["known_defects"]:
        print("\nknown defects (strict xfail):")
        for d in report["known_defects"]:
            print(f"  {d['case']}: {d['reason']}")
    if report["failures"]:
        print("\nFAILED:")
        for f in report["failures"]:
            print(f"  {f['case']}: {f['message']}")
    print(f"\n{seconds:.0f} s (other jobs may share this machine)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
