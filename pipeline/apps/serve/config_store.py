"""The service's running config and where its changes go: written back to the config file,
or (read-only) kept in memory, the API's cameras surviving a reload."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pipeline.apps.serve.config import CameraConfig, ConfigError, ServiceConfig, load_config
from pipeline.apps.serve.config_file import ConfigFile
from pipeline.errors import VapipeError


class ConfigWriteError(VapipeError):
    """The config file could not be updated; the change was not applied."""


class ConfigStore:
    """`config` as the service runs it. Not locked: the service serialises its changes.

    With a `file`, `save` writes a change to it (comments and key order kept); without one
    (`--read-only-config`, or a config not read from a file) changes stay in memory, and the
    cameras the API added are kept over `reread`."""

    def __init__(self, config: ServiceConfig, file: ConfigFile | None) -> None:
        self.config = config
        self._file = file
        self._memory_only: dict[str, CameraConfig] = {}  # read-only: the API's cameras

    @classmethod
    def for_config(cls, config: ServiceConfig, read_only: bool = False) -> ConfigStore:
        """Written back to the file `config` was read from, unless `read_only`."""
        file = None if read_only or config.path is None else ConfigFile(config.path)
        return cls(config, file)

    def set_camera(self, name: str, camera: CameraConfig | None) -> None:
        """Put (or with None, drop) a camera in the running config."""
        cameras = {k: v for k, v in self.config.cameras.items() if k != name}
        if camera is not None:
            cameras[name] = camera
        self.config = dataclasses.replace(self.config, cameras=cameras)
        if self._file is None:
            if camera is None:
                self._memory_only.pop(name, None)
            else:
                self._memory_only[name] = camera

    def save(self, change: Callable[[ConfigFile], None]) -> None:
        """Apply `change` to the config file (nothing when read-only); ConfigWriteError if it
        cannot be written."""
        if self._file is None:
            return
        try:
            change(self._file)
        except (OSError, ConfigError) as error:
            raise ConfigWriteError(
                f"cannot update {self._file.path}: {error}; the change was not applied "
                "(start with --read-only-config to keep changes in memory only)"
            ) from None

    def reread(self) -> ServiceConfig:
        """The config file as it is now (read-only: with the API's cameras it lacks); not yet
        applied (set `config` once it is)."""
        if self.config.path is None:
            raise ConfigError("this service has no config file to reload")
        new = load_config(self.config.path)
        if self._file is None and self._memory_only:
            kept = {k: v for k, v in self._memory_only.items() if k not in new.cameras}
            new = dataclasses.replace(new, cameras={**new.cameras, **kept})
        return new
