"""Test harness shared by every test.

* A network guard: any test that opens a socket to a non-loopback address fails (tests never
  touch the network; installs at set-up are the only network use).
* Every test gets its own data directory (``LOGOS_DATA_DIR``), so the user's registry is untouched.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

pytest_plugins = ["tests.fixtures.plugins"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_create_connection = socket.create_connection


class NetworkAccessError(AssertionError):
    pass


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: not allowed


def _guarded(real):
    def wrapper(self, address, *args, **kwargs):
        target = args[-1] if real is _real_sendto and args else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(target):
            raise NetworkAccessError(f"test tried to reach the network: {target!r}")
        return real(self, address, *args, **kwargs)

    return wrapper


def _guarded_create_connection(address, *args, **kwargs):
    if not _is_local(address):
        raise NetworkAccessError(f"test tried to reach the network: {address!r}")
    return _real_create_connection(address, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(request, monkeypatch):
    if request.node.get_closest_marker("network_ok"):
        yield
        return
    monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))
    monkeypatch.setattr(socket.socket, "sendto", _guarded(_real_sendto))
    monkeypatch.setattr(socket, "create_connection", _guarded_create_connection)
    yield


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LOGOS_DATA_DIR", str(tmp_path_factory.mktemp("logos-data")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
