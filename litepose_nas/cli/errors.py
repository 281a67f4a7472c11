"""Turn errors into one clear line and the right exit status (2: usage, 1: runtime)."""
from __future__ import annotations

import os
import sys
from typing import Callable, TypeVar

import click

from ..errors import InputError, JobError

T = TypeVar("T")

USAGE_EXIT = 2
RUNTIME_EXIT = 1


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def run_cli_command(call: Callable[[], T]) -> T:
    """Run a command; known failures print ``error: ...`` on one line, without a traceback.

    ``LITEPOSE_NAS_DEBUG=1`` re-raises them for debugging.
    """
    try:
        return call()
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except InputError as exc:
        _fail(exc, USAGE_EXIT)
    except (JobError, OSError, MemoryError) as exc:
        _fail(exc, RUNTIME_EXIT)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: still no traceback for users
        if os.environ.get("LITEPOSE_NAS_DEBUG"):
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                   "(rerun with LITEPOSE_NAS_DEBUG=1 for the traceback)", err=True)
        sys.exit(RUNTIME_EXIT)
    raise AssertionError("unreachable")


def _fail(exc: BaseException, status: int) -> None:
    if os.environ.get("LITEPOSE_NAS_DEBUG"):
        raise exc
    message = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
        message = f"{exc.filename}: {exc.strerror or message}"
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(status)
