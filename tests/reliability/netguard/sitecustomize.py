"""Network guard for Python subprocesses started by the tests (loaded through PYTHONPATH).

Python imports ``sitecustomize`` at start-up from the first folder on ``sys.path`` that has one;
the test fixture ``tests.fixtures.netguard`` puts this folder first in ``PYTHONPATH`` for every
test, so every ``python`` the tests start (the engine process, ``logos`` commands, worker pools)
runs this file before anything else.

It installs an audit hook (PEP 578) on the socket events that the C socket module raises for
every connect, sendto, sendmsg and name lookup, whoever calls them (our code, a library, a thread).
Each event is appended as one JSON line to ``$LOGOS_NET_LOG`` (loopback and AF_UNIX included, so a
test can show what WAS opened); a non-loopback destination is refused with ``PermissionError``
(an ``OSError``, what code sees on an air-gapped machine) and marked ``"blocked": true``. The
fixture fails the test when the log holds a blocked line.

``LOGOS_NET_GUARD=off`` (read at each event) turns it off: only for tests marked ``network_ok``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys

_LOCAL_NAMES = {"localhost", "", "ip6-localhost", "ip6-loopback", "localhost.localdomain"}
_INET = (socket.AF_INET, socket.AF_INET6)
try:
    _OWN_NAME = socket.gethostname()
except OSError:
    _OWN_NAME = "localhost"


def _host_is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    if host.lower() in _LOCAL_NAMES or host == _OWN_NAME:
        return True  # this machine's own name resolves through /etc/hosts
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # any other name would need DNS


def _address_is_local(family, address) -> bool:
    if family not in _INET:
        return True  # AF_UNIX, AF_NETLINK, socketpair: not the network
    if not isinstance(address, tuple) or not address:
        return True
    return _host_is_local(address[0])


def _record(entry: dict) -> None:
    path = os.environ.get("LOGOS_NET_LOG")
    if not path:
        return
    entry.setdefault("pid", os.getpid())
    entry.setdefault("argv", " ".join(sys.argv[:3])[:200])
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=repr) + "\n")
    except OSError:
        pass


_busy = False


def _hook(event: str, args) -> None:
    global _busy
    if not event.startswith("socket.") or _busy or os.environ.get("LOGOS_NET_GUARD") == "off":
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[1]
        family = getattr(sock, "family", None)
        local = _address_is_local(family, address)
        where = address
    elif event == "socket.getaddrinfo":
        where, local = args[0], _host_is_local(args[0])
    elif event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        where, local = args[0], _host_is_local(args[0])
    else:
        return
    _busy = True  # opening the log file raises no socket event, but stay safe from re-entry
    try:
        _record({"event": event, "address": repr(where), "local": local, "blocked": not local})
    finally:
        _busy = False
    if not local:
        raise PermissionError(f"LOGOS test network guard: {event} to {where!r} refused (tests run offline)")


_installed = False


def install() -> None:
    """Add the hook to this interpreter (once; audit hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


install()
