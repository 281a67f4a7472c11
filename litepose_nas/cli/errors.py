"""Turn errors into one clear line and the right exit status (2: usage, 1: runtime)."""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, TypeVar

import click

from ..errors import InputError, JobError

T = TypeVar("T")

USAGE_EXIT = 2
RUNTIME_EXIT = 1
TORCH_HINT = "pip install 'litepose-nas[torch]'"


def _one_line(message: str) -> str:
    return " ".join(_unwrap_worker_error(str(message)).split())


_WORKER_MARK = "\nOriginal Traceback (most recent call last):"


def _unwrap_worker_error(message: str) -> str:
    """PyTorch re-raises a DataLoader worker's exception with the worker's whole traceback in the
    message ("Caught X in DataLoader worker process N. Original Traceback ..."); keep its last
    line, the original message, without the exception's qualified name."""
    if _WORKER_MARK not in message:
        return message
    lines = [line for line in message.split(_WORKER_MARK, 1)[1].splitlines() if line.strip()]
    if not lines:
        return message.split(_WORKER_MARK, 1)[0]
    return re.sub(r"^[A-Za-z_][\w.]*(Error|Exception|Warning|Interrupt|Exit): ", "", lines[-1].strip())


def run_cli_command(call: Callable[[], T]) -> T:
    """Run a command; known failures print ``error: ...`` on one line, without a traceback.

    ``LITEPOSE_NAS_DEBUG=1`` re-raises them for debugging.
    """
    try:
        return call()
    except (click.exceptions.Exit, click.exceptions.Abort):
        raise
    except click.UsageError as exc:
        # click's own format spans three lines (usage, hint, error); keep the one-line contract
        command = exc.ctx.command_path if exc.ctx is not None else "litepose-nas"
        click.echo(f"error: {_one_line(exc.format_message())} (see '{command} --help')", err=True)
        sys.exit(USAGE_EXIT)
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except InputError as exc:
        _fail(exc, USAGE_EXIT)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "torch" or os.environ.get("LITEPOSE_NAS_DEBUG"):
            raise
        # a base install (no torch) runs search, profiling and table tools; training and models need the extra
        click.echo(f"error: {_command_name()} needs torch: {TORCH_HINT}", err=True)
        sys.exit(RUNTIME_EXIT)
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(RUNTIME_EXIT)
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


def _command_name() -> str:
    """``litepose-nas <command>`` as typed (first non-option word), for messages."""
    words = [w for w in sys.argv[1:] if not w.startswith("-")]
    return "litepose-nas" + (f" {words[0]}" if words else "")


def _fail(exc: BaseException, status: int) -> None:
    if os.environ.get("LITEPOSE_NAS_DEBUG"):
        raise exc
    message = str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
        message = f"{exc.filename}: {exc.strerror or message}"
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(status)
