"""A run directory: one writer at a time, and a fingerprint of what determines its results.

``RunLock`` holds an exclusive ``flock`` on ``<dir>/.lock`` for as long as a run writes there.
A second run into the same directory is refused, naming the process that holds it. The
kernel drops the lock when its process dies (even by ``kill -9``), so the lock file a killed
run leaves behind is stale by construction: the next run takes it over and says so.

``check_fingerprint`` keeps ``<dir>/fingerprint.json``: the settings that determine the
records (strategy and its settings, aggregation, policy and scorer with their sampling
settings, dataset identity, seed), without those that only decide how much is done or how
fast (``dataset.limit``, batch sizes, devices, progress bars, how a model server is
reached). A run that resumes into a directory whose records were made with other settings is
refused before any model loads, naming the keys that differ; extending a run (a larger
``dataset.limit``) resumes.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import logging
import os
import socket
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from search.inputs import InputError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
FINGERPRINT_FILE = "fingerprint.json"
HYDRA_FILES = (".hydra", LOCK_FILE)  # with ``*.log``: what a run directory holds before records

# Keys (at any depth) that decide how much is done, or how fast, but not what a record holds.
NOT_RESULTS = frozenset(
    {
        "limit",
        "count",
        "start",
        "batch_size",
        "batch_problems",
        "chunk_problems",
        "chunk_solutions",
        "progress",
        "report",
        "save_trees",
        "device",
        "gpu_memory_utilization",
        "cpu_kvcache_space_gib",
        "kv_cache_space_gib",
        "enable_prefix_caching",
        "block_size",
        "reuse_prefix_cache",
        "prefix_cache_tokens",
        "shared_prompt_attention",  # the rows of a prompt read it once: the same tokens
        "shared_prompt_min_rows",  # from how many rows a chunk does so
        "output_dir",
        "launcher",
        # how a model server is reached; what it serves is named by the model keys, which
        # stay (a resume may go to a restarted server, with longer timeouts, fewer requests
        # in flight, or one choice per request: the same seeds, the same records)
        "base_url",
        "api_key_env",
        "timeout_s",
        "connect_timeout_s",
        "max_concurrency",
        "max_retries",
        "backoff_s",
        "max_backoff_s",
        "split_n",
    }
)


class RunDirError(InputError):
    """A run directory that this run must not write into (held by another run, or made
    with other settings)."""


class RunLock:
    """Exclusive use of ``directory`` by this process (re-entrant within it).

    Use as a context manager; ``held_by`` reads the holder a lock file names.
    """

    _held: ClassVar[dict[Path, tuple[int, int]]] = {}  # path -> (fd, depth)

    def __init__(self, directory: Path) -> None:
        self.path = (Path(directory) / LOCK_FILE).resolve()

    def __enter__(self) -> RunLock:
        if self.path in self._held:
            fd, depth = self._held[self.path]
            self._held[self.path] = (fd, depth + 1)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"expected {self.path.parent} to be free, got a run writing there "
                f"({self.held_by()}); two runs in one directory would write every record "
                f"twice; fix: wait for it to finish, or choose another directory ({NEW_DIR})"
            ) from None
        previous = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
        if previous:
            log.warning(
                "taking over the stale lock of a run that is no longer alive (%s)", previous
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._held[self.path] = (fd, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        fd, depth = self._held[self.path]
        if depth > 1:
            self._held[self.path] = (fd, depth - 1)
            return
        del self._held[self.path]
        os.ftruncate(fd, 0)  # a clean exit leaves an empty (not stale) lock file
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def held_by(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "holder unknown"
        if not isinstance(holder, dict) or "pid" not in holder:
            return "holder unknown"
        return f"pid {holder['pid']} on {holder.get('host')}, since {holder.get('started')}"


def fingerprint(config: Mapping[str, Any], ignore: frozenset[str] = NOT_RESULTS) -> dict[str, Any]:
    """``config`` (a plain nested mapping) without the keys in ``ignore``, at any depth."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in ignore:
            continue
        out[key] = fingerprint(value, ignore) if isinstance(value, Mapping) else value
    return out


def schema_defaults(node: Any) -> dict[str, Any]:
    """The defaults of the structured-config schemas (dataclasses) typing ``node`` and its
    sub-nodes, nested like the config: what a run made before a field existed ran with."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(node, DictConfig):
        return {}
    out: dict[str, Any] = {}
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        for field in dataclasses.fields(schema):
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
                if dataclasses.is_dataclass(default):
                    continue  # a nested schema: its own node is read below
            else:
                continue
            out[field.name] = default.name if isinstance(default, Enum) else default
    for key in node:
        child = node._get_node(key)
        nested = schema_defaults(child) if isinstance(child, DictConfig) else {}
        if nested:
            out[str(key)] = nested
    return out


def differences(
    old: Any, new: Any, prefix: str = "", defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs. A key ``old`` lacks
    counts as its value in ``defaults`` (a field added after ``old`` was written); two
    spellings of one existing path do not differ (``same_file``)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        defaults = defaults or {}
        out = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            default = defaults.get(key)
            if key not in new:
                out.append(f"{name}: {old[key]!r} -> (absent)")
            elif key not in old:
                if isinstance(default, Mapping) and isinstance(new[key], Mapping):
                    out.extend(differences({}, new[key], name + ".", default))  # a new group
                elif key not in defaults or default != new[key]:
                    out.append(f"{name}: (absent) -> {new[key]!r}")
            else:
                nested = default if isinstance(default, Mapping) else None
                out.extend(differences(old[key], new[key], name + ".", nested))
        return out
    if old == new or same_file(old, new):
        return []
    return [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def same_file(old: Any, new: Any) -> bool:
    """Whether two settings are one existing file or directory under two spellings
    (``runs/x`` through a link and ``/abs/x``): a resumed run is the same run."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return False
    try:
        return os.path.samefile(old, new)
    except (OSError, ValueError):  # either is not a path that exists
        return False


# where each entry point takes its directory, for the fixes below
NEW_DIR = (
    "python -m search: hydra.run.dir=DIR, or hydra.sweep.dir=DIR with -m; prm.sample, "
    "prm.label, prm.train: output_dir=DIR"
)


def check_fingerprint(
    directory: Path,
    current: dict[str, Any],
    has_records: bool,
    defaults: Mapping[str, Any] | None = None,
    ignore: frozenset[str] = NOT_RESULTS,
) -> None:
    """Refuse to add records to ``directory`` that were made with other settings.

    Without records yet, ``current`` is (re)written, so a run that failed before producing
    anything can be fixed and rerun in place. With records, the stored fingerprint must
    equal ``current``, a key it lacks read as its value in ``defaults`` (``schema_defaults``:
    a field added since, which that run ran with), and without the keys in ``ignore`` (those
    ``current`` was made without: one that joined them since that run no longer counts); a
    directory with records but no fingerprint (made before fingerprints existed) gets
    ``current``.
    """
    path = Path(directory) / FINGERPRINT_FILE
    if has_records and path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise RunDirError(
                f"{path}: expected the JSON fingerprint of the run that wrote this directory, "
                f"got unreadable text ({error}); fix: choose a new directory"
            ) from None
        # keys that have joined ``ignore`` (the keys ``current`` was made without) since that
        # run wrote its fingerprint drop out
        changed = differences(fingerprint(stored, ignore), current, defaults=defaults)
        if changed:
            shown = "; ".join(changed[:12]) + ("; ..." if len(changed) > 12 else "")
            raise RunDirError(
                f"expected the settings of the run that wrote {directory} (in {path}), got "
                f"{len(changed)} different: {shown}; resuming would mix records of two "
                f"configurations; fix: choose a new directory ({NEW_DIR}), or rerun with the "
                "original settings"
            )
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def discard_unused_run_dir() -> Path | None:
    """Remove the current Hydra job's output directory when nothing in it is worth keeping:
    only ``.hydra/``, a ``.lock``, a fingerprint and log files that are all empty (a run
    refused on its inputs before it logged a line), so bad inputs leave no empty run
    directories. A fingerprint alone holds nothing: without records beside it, the next run
    writes its own (``check_fingerprint``). A directory with records, a user's file or any
    logged line (a long run's log, a reused folder's history) is left alone, as is a
    symlinked one and the folders above it. Returns the directory removed, if any."""
    import shutil

    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    directory = Path(HydraConfig.get().runtime.output_dir)
    if directory.is_symlink() or not directory.is_dir():
        return None
    if directory.resolve() == Path.cwd().resolve():
        return None
    for entry in directory.iterdir():
        if entry.name in (*HYDRA_FILES, FINGERPRINT_FILE) and not entry.is_symlink():
            continue
        empty_log = entry.suffix == ".log" and entry.is_file() and not entry.is_symlink()
        if empty_log and entry.stat().st_size == 0:
            continue
        return None
    try:
        shutil.rmtree(directory)
    except OSError as error:
        log.debug("could not remove the unused run directory %s: %s", directory, error)
        return None
    _discard_empty_hydra_folder(directory)
    return directory


def _discard_empty_hydra_folder(directory: Path) -> None:
    """The ``hydra/`` folder above a removed job directory in the PRM pipeline's layout
    (``OUTPUT_DIR/hydra/<time>``), when empty; ``OUTPUT_DIR`` stays, whoever made it (a script
    may have made it to write there next)."""
    parent = directory.parent
    if parent.name != "hydra" or parent.is_symlink():
        return
    try:
        os.rmdir(parent)  # refuses a folder that holds anything
    except OSError:
        return
