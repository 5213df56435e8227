"""A fuzz worker process: reads one case per request, answers one JSON line per case.

Run as ``python -m tests.reliability.fuzz_worker``; driven by :class:`tests.reliability.pool.WorkerPool`.
Requests on stdin: ``{"path": FILE, "mode": "read" | "encode"}``. Answers on the original stdout
(file descriptor 1 is pointed at stderr first, so RDKit's or gemmi's own prints cannot break the
protocol): ``{"outcome": ..., "message": ..., ...}``.

Outcomes:
* ``loaded``   read_file returned objects, and every one gave a summary and (not a sequence) an atom
               table; ``nonfinite`` counts atoms whose coordinates are NaN or infinite.
* ``rejected`` StructureReadError (mode read) or a non-zero exit with a one-line message on stderr
               (mode encode); ``message`` is what the user sees.
* ``error``    any other exception, or a traceback on stderr: a defect (``message`` holds it).
* ``encoded``  ``logos encode`` exited 0 with output.

A hang or a crash (the process dies) is seen by the pool, not here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import sys
import traceback

MEMORY_LIMIT = int(os.environ.get("LOGOS_FUZZ_MEMORY", str(6 * 2**30)))


def _limit_memory() -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass


def read_case(path: str, timeout: float | None = None) -> dict:
    import numpy as np

    from engine.structures import io as sio
    from engine.structures.atoms import atom_table
    from engine.structures.model import StructureReadError

    try:
        objs = sio.read_file(path, timeout=timeout)
    except StructureReadError as exc:
        return {"outcome": "rejected", "message": str(exc), "line": exc.line,
                "path_in_message": os.path.basename(path) in str(exc)}
    except Exception as exc:  # noqa: BLE001 - exactly what the fuzz test looks for
        return {"outcome": "error", "message": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}
    nonfinite = 0
    stage = "summary"
    try:
        for obj in objs:
            stage = "summary"
            obj.summary()
            if obj.kind != "sequence":
                stage = "atom_table"
                table = atom_table(obj)
                nonfinite += int((~np.isfinite(np.asarray(table.xyz, dtype=float))).any(axis=1).sum())
    except Exception as exc:  # noqa: BLE001
        return {"outcome": "error", "message": f"{stage} after a successful read: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}
    return {"outcome": "loaded", "objects": len(objs), "kinds": sorted({o.kind for o in objs}),
            "warnings": sum(len(o.warnings) for o in objs), "nonfinite": nonfinite}


def encode_case(path: str) -> dict:
    """``logos encode FILE`` through the real command-line entry point, in this process."""
    from engine.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["encode", path])
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # noqa: BLE001 - escaped the command: a defect
        return {"outcome": "error", "message": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}
    stderr = err.getvalue()
    if "Traceback (most recent call last)" in stderr:
        return {"outcome": "error", "message": "traceback on stderr", "traceback": stderr[-3000:]}
    if rc == 0:
        if not out.getvalue().strip():
            return {"outcome": "error", "message": "exit 0 but nothing printed"}
        return {"outcome": "encoded", "chars": len(out.getvalue())}
    message = stderr.strip()
    return {"outcome": "rejected", "message": message, "rc": rc,
            "path_in_message": os.path.basename(path) in message}


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _limit_memory()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        if req.get("mode") == "encode":
            ans = encode_case(req["path"])
        elif req.get("mode") == "ping":
            ans = {"outcome": "pong"}
        else:
            ans = read_case(req["path"], req.get("timeout"))
        ans["id"] = req.get("id")
        proto.write(json.dumps(ans, default=str) + "\n")
        proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
