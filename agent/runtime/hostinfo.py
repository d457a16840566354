"""This host's address for the host interceptor (kept out of the pure interceptor module)."""

from __future__ import annotations

import socket


def local_host(use_ip: bool) -> str:
    """The local IP address (``use_ip``) or canonical host name; loopback if unresolvable."""
    try:
        name = socket.gethostname()
        if use_ip:
            return socket.gethostbyname(name)
        return socket.getfqdn(name)
    except OSError:
        return "127.0.0.1" if use_ip else "localhost"
