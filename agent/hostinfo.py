"""This host's name or address, for the host interceptor and the hdfs sink's %{host}: a leaf
module (only ``socket``), so both import it at the top without pulling in the runtime."""

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
