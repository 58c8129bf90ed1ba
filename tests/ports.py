"""A localhost port nobody listens on: for a server to start on, or to stand for a dead one."""
from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
