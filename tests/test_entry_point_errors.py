"""The entry points' one-line errors: bad input and an unreachable model server."""

from __future__ import annotations

import pytest

from search.inputs import InputError, exit_on_input_error, exit_on_server_error
from search.remote import ServerUnavailable


def test_input_error_becomes_one_line_and_exit_status_1() -> None:
    with pytest.raises(SystemExit) as exited, exit_on_input_error():
        raise InputError("rows.jsonl:3: expected key 'answer'")
    assert exited.value.code == "error: rows.jsonl:3: expected key 'answer'"


def test_server_error_is_found_behind_a_wrapping_error() -> None:
    def instantiate() -> None:  # as Hydra's instantiate wraps what a constructor raised
        try:
            raise ServerUnavailable("no server at http://127.0.0.1:9/v1; fix: start it")
        except ServerUnavailable as error:
            raise RuntimeError("Error in call to target 'RemotePolicy'") from error

    with pytest.raises(SystemExit) as exited, exit_on_server_error():
        instantiate()
    assert exited.value.code == "error: no server at http://127.0.0.1:9/v1; fix: start it"


def test_other_errors_keep_their_traceback() -> None:
    with pytest.raises(KeyError), exit_on_server_error():
        raise KeyError("a bug, not a server")
