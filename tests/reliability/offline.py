"""Helpers for the offline tests: network namespaces (``unshare -n``) and ``strace`` of every
connect/sendto made by a process tree, native code (llama.cpp, Qt) included."""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
import subprocess
import sys

_ADDR = re.compile(r'(connect|sendto|sendmsg)\((\d+), \{sa_family=(AF_INET6?|AF_UNIX|AF_NETLINK)[^}]*?'
                   r'(?:sin6?_addr=inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"\)|sun_path="([^"]*)")?')


@functools.lru_cache(maxsize=1)
def unshare_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", sys.executable, "-c", "pass"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=1)
def strace_available() -> bool:
    if shutil.which("strace") is None:
        return False
    try:
        return subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", "/dev/null", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wrap(cmd: list[str], *, netns: bool, trace_file=None) -> list[str]:
    """``cmd`` inside a new network namespace and/or under strace (connect, sendto, sendmsg)."""
    out = list(cmd)
    if trace_file is not None:
        out = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-e", "signal=none",
               "-o", str(trace_file)] + out
    if netns:
        out = ["unshare", "-n"] + out
    return out


def traced_addresses(trace_text: str) -> list[dict]:
    """Every socket destination in an strace log: family, address, local or not."""
    out = []
    for m in _ADDR.finditer(trace_text):
        call, _fd, family, ip, path = m.groups()
        if family in ("AF_UNIX", "AF_NETLINK"):
            out.append({"call": call, "family": family, "address": path or "", "local": True})
            continue
        local = True
        if ip:
            try:
                local = ipaddress.ip_address(ip).is_loopback
            except ValueError:
                local = False
        out.append({"call": call, "family": family, "address": ip or "?", "local": local})
    return out
