"""Talking to model servers over HTTP: the client shared by the remote policy
(``search.generators.openai_server``) and the remote PRM (``prm.scoring.server_backend``)."""

from search.remote.client import (
    ABANDONED,
    ServerClient,
    ServerError,
    ServerSettings,
    ServerUnavailable,
    server_error,
)

__all__ = [
    "ABANDONED",
    "ServerClient",
    "ServerError",
    "ServerSettings",
    "ServerUnavailable",
    "server_error",
]
