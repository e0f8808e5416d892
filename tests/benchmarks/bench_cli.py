"""Running a benchmark script's ``main()`` in a test: the flags it refuses, and that it refuses
them before its heavy work (one helper for every script's bad-flag tests)."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import pytest


def refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    script: ModuleType,
    argv: list[str],
    *heavy: str,
) -> str:
    """``script.main()`` run with ``argv`` must end in a parser error (exit 2) before any of
    the functions named ``heavy`` (attributes of ``script``: a model build, an export, a
    read) is called; returns what it wrote to stderr."""

    def forbidden(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"{script.__name__}.{name} ran before the flags were checked")

        return call

    for name in heavy:
        monkeypatch.setattr(script, name, forbidden(name))
    monkeypatch.setattr(sys, "argv", [f"{script.__name__}.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        script.main()
    assert exit_info.value.code == 2
    return capsys.readouterr().err
