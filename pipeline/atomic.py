"""Writing result files so that a crash or a full disk never leaves a cut-short file under its
final name: every file vapipe writes is made under a temporary name in the same folder,
flushed to disk (file and folder), then renamed."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from pipeline.errors import OutputError

__all__ = ["OutputError", "check_writable_folder", "output_error", "publish", "write_atomically"]


def output_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """A one-line error for an OSError met while writing `path`; says so when the disk is full."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"{path}: the disk is full; free some space and run again")
    return OutputError(f"{path}: cannot write ({error.strerror or error})")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make the renames in `folder` durable (a no-op where folders cannot be synced)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def publish(partial: Path, final: Path) -> None:
    """Rename `partial`, complete and synced, to `final`, and sync the folder (OutputError)."""
    try:
        os.replace(partial, final)
        fsync_folder(final.parent)
    except OSError as error:
        raise output_error(final, error) from None


def write_atomically(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace `path` with `data` all at once: a reader, a crash or a full disk sees either
    the previous complete file or the new one, never part of it. Makes missing folders.
    Raises OutputError naming the file (and saying when the disk is full)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # Our own name rather than tempfile's: mkstemp makes files only their owner may read.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise output_error(path, error) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        fsync_folder(path.parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise output_error(path, error) from None


def check_writable_folder(folder: str | os.PathLike, option: str = "--out") -> None:
    """Raise OutputError naming `folder` and why unless files can be made in it.

    Checked by trying (permission bits do not stop root, a read-only mount does): the missing
    folders are made, a probe file written and removed, and the folders made here removed
    again, so that nothing is left behind if the run then fails before any work.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {folder}: is a file, not a folder; give a folder")
    created: list[Path] = []
    try:
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for part in reversed(missing):
            part.mkdir()
            created.append(part)
        probe = folder / f".vapipe-probe-{secrets.token_hex(4)}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"{option} {folder}: cannot write there ({reason})") from None
    finally:
        for part in reversed(created):
            with contextlib.suppress(OSError):
                part.rmdir()
