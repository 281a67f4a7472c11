"""Run the CLI the way users do: in a subprocess, checking exit status and one-line errors."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


# The CLI as a base install (no torch) runs it: importing torch fails as if it were not installed.
# (A finder, not ``sys.modules['torch'] = None``: scipy looks torch up in sys.modules and trips on None.)
_WITHOUT_TORCH = """
import sys
from importlib.abc import MetaPathFinder

class NoTorch(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
from litepose_nas.cli import main
main(sys.argv[1:], prog_name="litepose-nas")
"""


def run_cli(*args: str | Path, cwd: Path | None = None, env: dict | None = None, timeout: float = 300,
            without_torch: bool = False) -> Result:
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    entry = ["-c", _WITHOUT_TORCH] if without_torch else ["-m", "litepose_nas.cli"]
    proc = subprocess.run(
        [sys.executable, *entry, *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: Result, status: int, *fragments: str) -> None:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
