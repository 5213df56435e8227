"""``logos models info --json`` prints the card per task under ``tasks`` (and a table without --json),
for the bundled model (its embedded card), a tiny model our converter made (the training's
logos_card.json, or no card) and an imported GGUF without keys (unknown, then the registry's sidecar)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from engine import paths
from engine.models.card import CARD_FILE, Figure, ModelCard, TaskCard, card_json, load_card_json
from engine.tasks.registry import TASKS


def logos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def info_json(path) -> dict:
    proc = logos("models", "info", str(path), "--json", "--no-hash")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_bundled_model_card(tmp_path):
    demo = paths.bundled_models()[0]
    out = info_json(demo)
    tasks = out["tasks"]
    assert list(tasks) == list(TASKS)
    assert out["card"]["origin"] == "gguf" and "demonstration model" in out["card"]["summary"]
    saved = load_card_json(demo.with_name("logos-demo-card.json"))
    mol = tasks["molecule"]
    assert mol["status"] == "trained" and mol["usable"] is True
    assert mol["figures"][0]["name"] == "MOSES validity"
    assert mol["figures"][0]["value"] == saved.task("molecule").figures[0].value >= 90
    assert mol["line"].startswith("trained: MOSES validity ")
    site = tasks["binding-site"]
    assert site["status"] == "not_learnt" and site["usable"] is False and "expect invalid output" in site["line"]
    assert tasks["forward"]["status"] == "trained" and tasks["forward"]["usable"] is True
    assert tasks["retro"]["status"] == "trained" and tasks["retro"]["usable"] is True
    assert tasks["antibody"]["status"] == "not_trained" and tasks["antibody"]["trained"] is False
    assert out["architecture"] == "llama" and out["quant"] == "Q8_0"  # the rest of info is still there

    table = logos("models", "info", str(demo), "--no-hash")
    assert table.returncode == 0, table.stderr
    assert "card           in the GGUF" in table.stdout
    assert any(line.split()[:2] == ["binding-site", "not_learnt"] for line in table.stdout.splitlines())
    assert any(line.split()[:3] == ["molecule", "trained", "trained:"] for line in table.stdout.splitlines())


def test_converted_tiny_model_carries_what_the_training_says(tiny_llama_hf, tmp_path):
    hf = tmp_path / "hf"
    shutil.copytree(tiny_llama_hf, hf)
    plain = tmp_path / "plain.gguf"
    proc = logos("models", "convert", str(hf), str(plain))
    assert proc.returncode == 0, proc.stderr
    assert f"no {CARD_FILE}" in proc.stderr
    tasks = info_json(plain)["tasks"]
    assert {t["status"] for t in tasks.values()} == {"unknown"}
    assert all(t["line"].startswith("unknown: no card") and t["trained"] is None for t in tasks.values())

    card = ModelCard({"molecule": TaskCard("trained", "400 MOSES molecules",
                                           figures=[Figure("MOSES validity", 12.5, "%", "app sampling, 64 samples")]),
                      "antibody": TaskCard("not_trained")})
    (hf / CARD_FILE).write_text(card_json(card))
    carded = tmp_path / "carded.gguf"
    proc = logos("models", "convert", str(hf), str(carded))
    assert proc.returncode == 0, proc.stderr
    tasks = info_json(carded)["tasks"]
    assert tasks["molecule"]["line"] == "trained: MOSES validity 12.5 % (app sampling, 64 samples)"
    assert tasks["antibody"]["status"] == "not_trained"
    assert tasks["retro"]["status"] == "unknown"  # what the training did not say stays unknown


def test_imported_gguf_without_a_card_then_its_sidecar(tiny_llama_gguf, tmp_path):
    proc = logos("models", "import", str(tiny_llama_gguf), "--name", "lab-model", "--json")
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)
    out = info_json(entry["path"])
    assert out["card"]["origin"] == "none"
    assert all(t["status"] == "unknown" and "no card" in t["line"] for t in out["tasks"].values())

    side = tmp_path / "lab-card.json"
    side.write_text(card_json(ModelCard({"retro": TaskCard("trained", "USPTO-50k", figures=[
        Figure("top-1 exact", 41.0, "%", "greedy, 5,000 pairs")])}, summary="our lab's retro model")))
    proc = logos("models", "card", "lab-model", "--set", str(side))
    assert proc.returncode == 0, proc.stderr
    out = info_json(entry["path"])
    assert out["card"]["origin"] == "sidecar" and out["card"]["summary"] == "our lab's retro model"
    assert out["tasks"]["retro"]["line"] == "trained: top-1 exact 41.0 % (greedy, 5,000 pairs)"
    assert out["tasks"]["molecule"]["status"] == "unknown"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tasks": {"retro": {"status": "excellent"}}}))
    proc = logos("models", "card", "lab-model", "--set", str(bad))
    assert proc.returncode == 1 and str(bad) in proc.stderr and "excellent" in proc.stderr
    assert "Traceback" not in proc.stderr
    shown = logos("models", "card", "lab-model", "--json")
    assert json.loads(shown.stdout)["tasks"]["retro"]["status"] == "trained"  # the good sidecar stayed
