"""What the generation GUI reads from and writes to the open project (``engine.store``):
provenance of a row, runs left "running" by a crashed engine, tags."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Provenance:
    result_id: int
    run_id: int
    task: str
    status: str
    prompt: str
    params: dict
    seed: int | None
    model_path: str | None = None
    model_sha256: str | None = None
    model_quant: str | None = None
    model_adapter: str | None = None
    model_base: str | None = None
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (name, sha256)
    input_ids: list[int] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None
    error: str | None = None

    @property
    def sampling(self) -> dict:
        p = self.params or {}
        if isinstance(p.get("sampling"), dict):
            return dict(p["sampling"])
        return {k: v for k, v in p.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"}

    @property
    def options(self) -> dict:
        return dict((self.params or {}).get("options") or {})

    @property
    def n(self) -> int | None:
        return (self.params or {}).get("n")

    @property
    def rerunnable(self) -> bool:
        return self.why_not_rerunnable is None

    @property
    def why_not_rerunnable(self) -> str | None:
        if not self.prompt:
            return "the run has no stored prompt"
        return None

    @property
    def command(self) -> str:
        """The ``logos generate`` command the engine logged for the run (or one rebuilt from it)."""
        if (self.params or {}).get("command"):
            return str(self.params["command"])
        args = ["logos", "generate", "--task", self.task]
        if self.inputs:
            args += ["--input", self.inputs[0][0]]
        if self.n:
            args += ["-n", str(self.n)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.model_path:
            args += ["--model", self.model_path]
        s = self.sampling
        if "temperature" in s:
            args += ["--temperature", str(s["temperature"])]
        if "top_p" in s:
            args += ["--top-p", str(s["top_p"])]
        return " ".join(shlex.quote(str(a)) for a in args)


def provenance(project, result_id: int) -> Provenance:
    row = project.get_result(result_id)
    run = project.get_run(row.run_id)
    prov = Provenance(result_id=row.id, run_id=run.id, task=run.task, status=run.status, prompt=run.prompt,
                      params=dict(run.params or {}), seed=run.seed, versions=dict(run.versions or {}),
                      started=run.started_at, finished=run.finished_at, error=run.error,
                      input_ids=list(run.input_ids or []))
    if run.model is not None:
        m = run.model
        prov.model_path, prov.model_sha256 = m.path, m.sha256
        prov.model_quant, prov.model_adapter, prov.model_base = m.quant, m.adapter, m.base
    for iid in run.input_ids or []:
        info = project.get_input(iid)
        prov.inputs.append((info.name, info.sha256))
    return prov


def fail_running_runs(project, since: datetime, reason: str) -> list[int]:
    """Mark runs still "running" that started at or after ``since`` (naive UTC) as failed; their
    stored results stay. Returns the run ids changed."""
    changed = []
    for run in project.runs():
        if run.status == "running" and run.started_at is not None and run.started_at >= since:
            project.finish_run(run.id, status="failed", error=reason)
            changed.append(run.id)
    return changed


def params_text(params: dict) -> str:
    return json.dumps(params, sort_keys=True)
