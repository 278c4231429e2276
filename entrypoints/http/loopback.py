"""Loopback names and addresses: where a server that lets anyone in (``writ console``'s development sign-in,
``writ mcp`` over HTTP without ``--allowed-host``) may listen, and the ``Host`` values it accepts, so a page
on another site cannot reach it through a name rebound to 127.0.0.1 (DNS rebinding)."""

from __future__ import annotations

import ipaddress

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""The ``Host`` names (port left out) of this machine's loopback, IPv6 bracketed as in a header."""


def is_loopback(host: str) -> bool:
    """``host`` reaches this machine only: ``localhost`` or a loopback address."""
    found = address(host)
    return host == "localhost" or (found is not None and found.is_loopback)


def address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address (brackets allowed), None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def bracketed(host: str) -> str:
    """``host`` as a ``Host`` header names it (an IPv6 address in brackets)."""
    found = address(host)
    return f"[{found}]" if isinstance(found, ipaddress.IPv6Address) else host
