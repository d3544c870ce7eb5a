"""Writing camera changes made through the API back to the config file.

tomlkit edits the document in place, so the user's comments, blank lines and key order
survive; only the keys that changed are touched. The file is replaced atomically (a temporary
file in the same folder, fsynced, then renamed over it, then the folder fsynced), so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from pipeline.apps.serve.config import (
    CameraConfig,
    ConfigError,
    parse_camera,
    parse_config,
    parse_toml,
)


def _toml_value(key: str, value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # as a person writes it: max_fps = 5
    if key in ("lines", "zones"):
        inline = tomlkit.inline_table()
        inline.update(value)
        return inline
    return value


def _replace(table: Table, key: str, value: Any) -> None:
    """Set `table[key]`, keeping the comment at the end of the old value's line."""
    old = table.get(key)
    new = tomlkit.item(value)
    if old is not None and hasattr(old, "trivia"):
        new.trivia.comment_ws = old.trivia.comment_ws
        new.trivia.comment = old.trivia.comment
        new.trivia.trail = old.trivia.trail
    table[key] = new


class ConfigFile:
    """The config file on disk; each change rereads it, edits one camera's table and writes it
    back atomically. Thread-safe (changes are serialised)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def put_camera(self, camera: CameraConfig) -> None:
        """Add the camera's table, or update it in place (only the keys that differ)."""
        with self._lock:
            document = self._read()
            cameras = document.get("cameras")
            if cameras is None:
                cameras = tomlkit.table(is_super_table=True)
                document["cameras"] = cameras
            wanted = camera.to_table()
            table = cameras.get(camera.name)
            if table is None:
                table = tomlkit.table()
                for key, value in wanted.items():
                    table[key] = _toml_value(key, value)
                cameras[camera.name] = table
            else:
                current = parse_camera_table(camera.name, table)
                for key in [k for k in table if k not in wanted]:
                    del table[key]
                for key, value in wanted.items():
                    if current.get(key) != value:
                        _replace(table, key, _toml_value(key, value))
            self._write(document)

    def remove_camera(self, name: str) -> None:
        with self._lock:
            document = self._read()
            cameras = document.get("cameras")
            if cameras is not None and name in cameras:
                del cameras[name]
                self._write(document)

    def _read(self) -> tomlkit.TOMLDocument:
        text = self.path.read_text(encoding="utf-8")
        parse_toml(text, str(self.path))  # a syntax error: a one-line ConfigError
        return tomlkit.parse(text)

    def _write(self, document: tomlkit.TOMLDocument) -> None:
        text = tomlkit.dumps(document)
        # The file must still read back as a valid config; anything else is a bug here.
        parse_config(parse_toml(text, str(self.path)), self.path.parent)
        write_atomically(self.path, text)


def parse_camera_table(name: str, table: Table) -> dict[str, Any]:
    """A camera table's keys as `CameraConfig.to_table` gives them (to compare values)."""
    try:
        return parse_camera(name, table.unwrap()).to_table()
    except ConfigError:
        return {}  # a broken table is rewritten whole


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: temporary file, fsync, rename, fsync of the folder. The
    file keeps its permission bits."""
    folder = path.parent
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
