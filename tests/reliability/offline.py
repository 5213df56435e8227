"""Helpers for the offline tests: network namespaces (``unshare -n``) and ``strace`` of every
connect/sendto made by a process tree, native code (llama.cpp, Qt) included."""

from __future__ import annotations

import functools
import ipaddress
import re
import shutil
import subprocess
import sys

_CALL = re.compile(r"(connect|sendto|sendmsg)\(\d+, (?:\{msg_name=)?\{sa_family=(AF_[A-Z0-9]+)([^}]*)\}")
_IP = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')
_PATH = re.compile(r'sun_path=(?:@)?"([^"]*)"')


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
    for m in _CALL.finditer(trace_text):
        call, family, body = m.groups()
        if family not in ("AF_INET", "AF_INET6"):
            p = _PATH.search(body)
            out.append({"call": call, "family": family, "address": p.group(1) if p else "", "local": True})
            continue
        ipm = _IP.search(body)
        ip = (ipm.group(1) or ipm.group(2)) if ipm else None
        try:
            local = ip is not None and ipaddress.ip_address(ip).is_loopback
        except ValueError:
            local = False
        out.append({"call": call, "family": family, "address": ip or "?", "local": local})
    return out
