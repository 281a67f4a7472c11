"""Atomic file writes: a reader never sees a half-written file, a killed job leaves none."""
from __future__ import annotations

import glob
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    # the writer's pid in the name tells a later writer whether the file is abandoned
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give the result the mode a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary files of ``target`` left by writers that were killed (SIGKILL skips cleanup)."""
    prefix = f".{target.name}."
    for name in glob.glob(glob.escape(str(target.parent / prefix)) + "*.tmp"):
        pid = Path(name).name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        try:
            os.unlink(name)
        except OSError:
            pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


# ---------------------------------------------------------------------------------- bounded reads
# Every reader of a user file has a size bound (checked before reading: /dev/zero or a FIFO is
# refused, a 3 GB "architecture" is not read) and JSON a nesting bound (checked on the bytes,
# without recursion). The bounds are far above any real file of the kind.
MiB = 1 << 20
LIMITS: dict[str, int] = {
    "architecture JSON": 1 * MiB,
    "search space": 1 * MiB,
    "latency table header": 1 * MiB,
    "latency table": 256 * MiB,
    "predictor": 16 * MiB,
    "predictor arrays": 256 * MiB,
    "evaluations table": 256 * MiB,
    "export metadata": 1 * MiB,
    "collection provenance": 1 * MiB,
    "search result": 64 * MiB,
    "progress file": 256 * MiB,
    "annotation file": 2048 * MiB,
    "results file": 2048 * MiB,
    "image": 256 * MiB,
    "checkpoint": 4096 * MiB,
    "ONNX model": 2048 * MiB,
}
MAX_JSON_DEPTH = 64


def check_readable_file(path: str | os.PathLike, kind: str, error: type[Exception] = ValueError,
                        limit: int | None = None) -> int:
    """The size of ``path`` after checking that it is a regular file within the bound of ``kind``
    (see :data:`LIMITS`); raises ``error`` naming the file otherwise. Special files (devices,
    FIFOs, sockets) are refused before anything is read from them."""
    import stat

    limit = LIMITS[kind] if limit is None else limit
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: {kind} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {kind} ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a folder, expected a {kind} file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a device, pipe or socket), expected a {kind} file")
    if st.st_size > limit:
        raise error(f"{path}: {st.st_size} bytes, larger than the {limit // MiB} MiB allowed for a {kind}")
    return st.st_size


def read_bytes_bounded(path: str | os.PathLike, kind: str, error: type[Exception] = ValueError,
                       limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most the bound of ``kind`` (it is re-checked while
    reading: a file that grows meanwhile is refused, not read without end)."""
    limit = LIMITS[kind] if limit is None else limit
    check_readable_file(path, kind, error, limit)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read {kind} ({exc.strerror})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than the {limit // MiB} MiB allowed for a {kind}")
    return data


def read_text_bounded(path: str | os.PathLike, kind: str, error: type[Exception] = ValueError,
                      limit: int | None = None) -> str:
    """:func:`read_bytes_bounded` decoded as UTF-8; a binary file is refused naming it."""
    return decode_text(read_bytes_bounded(path, kind, error, limit), path, kind, error)


def decode_text(data: bytes, path: str | os.PathLike, kind: str, error: type[Exception] = ValueError) -> str:
    """``data`` (read from ``path``) as UTF-8, or ``error`` naming the file and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file (byte {exc.start} is not UTF-8), expected a {kind}") from None


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text, outside strings, without parsing it
    (vectorized over the bytes, so neither recursion nor a Python loop per character)."""
    import numpy as np

    raw = data.encode("utf-8") if isinstance(data, str) else data
    b = np.frombuffer(raw, dtype=np.uint8)
    quotes = np.flatnonzero(b == ord('"'))
    if len(quotes):
        # a quote after an odd run of backslashes is escaped (part of a string)
        escaped = quotes[(quotes > 0) & (b[np.maximum(quotes - 1, 0)] == ord("\\"))]
        real = np.ones(len(quotes), dtype=bool)
        for i, q in zip(np.searchsorted(quotes, escaped).tolist(), escaped.tolist()):
            run = 0
            while q - run - 1 >= 0 and b[q - run - 1] == ord("\\"):
                run += 1
            real[i] = run % 2 == 0
        quotes = quotes[real]
    opens = np.flatnonzero((b == ord("[")) | (b == ord("{")))
    closes = np.flatnonzero((b == ord("]")) | (b == ord("}")))
    pos = np.concatenate((opens, closes))
    step = np.concatenate((np.ones(len(opens), np.int64), -np.ones(len(closes), np.int64)))
    outside = np.searchsorted(quotes, pos) % 2 == 0     # an even number of quotes before it
    pos, step = pos[outside], step[outside]
    if not len(pos):
        return 0
    return int(np.cumsum(step[np.argsort(pos, kind="stable")]).max())


def loads_json_bounded(text: str | bytes, source: str, error: type[Exception] = ValueError,
                       max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses text nested deeper than ``max_depth`` (before parsing it) and
    reports invalid JSON on one line naming ``source``."""
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{source}: JSON nested {depth} levels deep (allowed: at most {max_depth})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply (allowed: at most {max_depth} levels)") from None
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not a text file (byte {exc.start} is not UTF-8)") from None


def read_json_bounded(path: str | os.PathLike, kind: str, error: type[Exception] = ValueError,
                      limit: int | None = None) -> Any:
    """A JSON file of ``kind``, within its size and nesting bounds."""
    return loads_json_bounded(read_bytes_bounded(path, kind, error, limit), str(path), error)


CSV_FIELD_LIMIT = 128 * 1024   # Python's csv default (131072 characters), stated here


def csv_rows(text: str, source: str, error: type[Exception] = ValueError, dict_reader: bool = False) -> list:
    """All rows of CSV text (lists, or dicts keyed by the first line); a field over
    :data:`CSV_FIELD_LIMIT` characters or a malformed line is refused naming ``source`` and the line."""
    import csv
    import io as _io

    reader = csv.DictReader(_io.StringIO(text)) if dict_reader else csv.reader(_io.StringIO(text))
    rows = []
    try:
        for row in reader:
            rows.append(row)
    except csv.Error as exc:
        line = reader.line_num
        if "field larger than field limit" in str(exc):
            raise error(f"{source}: line {line}: a field is longer than {CSV_FIELD_LIMIT} characters "
                        f"(allowed: at most {CSV_FIELD_LIMIT})") from None
        raise error(f"{source}: line {line}: not valid CSV ({exc})") from None
    return rows


def load_npz_bounded(path: str | os.PathLike, kind: str, error: type[Exception] = ValueError,
                     limit: int | None = None, sha256: str | None = None,
                     recorded_in: str = "its recorded SHA-256") -> dict[str, Any]:
    """The arrays of an ``.npz`` file, read without pickles, after checking each member's header:
    a member whose shape claims more bytes than the member holds (or than the bound of ``kind``)
    is refused before anything is allocated for it. Truncated or non-zip files are refused too,
    and with ``sha256`` a file whose digest differs (``recorded_in`` says where it was recorded)."""
    import hashlib
    import io as _io
    import zipfile

    import numpy as np

    limit = LIMITS[kind] if limit is None else limit
    data = read_bytes_bounded(path, kind, error, limit)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise error(f"{path}: does not match {recorded_in}")
    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if dtype.hasobject:
                    raise error(f"{path}: not a safe numpy .npz file (member {info.filename} holds Python "
                                "objects; pickles are not read)")
                if need > info.file_size or need > limit:
                    raise error(f"{path}: not a safe numpy .npz file (member {info.filename} claims {need} "
                                f"bytes of {dtype} {tuple(shape)} but holds {info.file_size}: truncated or forged)")
        with np.load(_io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{path}: not a safe numpy .npz file ({type(exc).__name__}: {exc})") from None


def check_output_path(path: str | os.PathLike, what: str = "output", error: type[Exception] = ValueError,
                      folder: bool = False) -> Path:
    """Check, before any work, that ``path`` (a file, or a folder with ``folder``) can be written:
    no name too long, no file where a folder is needed, an existing folder on the way that is
    writable, and not a folder where a file goes. Raises ``error`` as ``<path>: <problem>``."""
    target = Path(path)
    for part in target.parts:
        if len(os.fsencode(part)) > 255:
            raise error(f"{path}: a name in the {what} path is longer than 255 bytes (File name too long)")
    if target.exists():
        if folder and not target.is_dir():
            raise error(f"{path}: {what} is a file, not a folder")
        if not folder and target.is_dir():
            raise error(f"{path}: {what} is a folder, expected a file name")
    parent = target if folder else target.parent
    ancestor = parent.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise error(f"{path}: {ancestor} is a file, not a folder (Not a directory)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise error(f"{path}: cannot write the {what} in {ancestor} (Permission denied or read-only)")
    return target
