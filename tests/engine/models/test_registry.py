"""The model registry and the GGUF check: real GGUF files written by our converter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.modelfiles.errors import ModelFileError, PartialFileError
from engine.modelfiles.gguf_info import LOGOS_TAGS, inspect_gguf, sha256_file
from engine.models.registry import Registry, RegistryError, default_model


def _cut(src: Path, dst: Path, n: int) -> Path:
    dst.write_bytes(src.read_bytes()[:n])
    return dst


def test_inspect_reads_metadata_and_tags(tiny_llama_gguf, tiny_gguf):
    info = inspect_gguf(tiny_llama_gguf)
    assert info.architecture == "llama" and info.quant == "F16"
    assert info.context_length == 2048 and info.block_count == 2 and info.embedding_length == 256
    assert 1_000_000 < info.n_params < 3_000_000
    assert info.sha256 == sha256_file(tiny_llama_gguf)
    assert info.all_tags_single and set(info.tags) == set(LOGOS_TAGS)
    assert {v["type"] for v in info.tags.values()} == {"control"}
    plain = inspect_gguf(tiny_gguf("qwen3", "ordinary", "f32"), with_hash=False)
    assert plain.quant == "F32" and plain.architecture == "qwen3" and plain.add_bos is False
    assert {v["type"] for v in plain.tags.values()} == {"user_defined"} and plain.all_tags_single


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.01])
def test_partial_file_refused_with_sizes(tiny_llama_gguf, tmp_path, keep):
    size = tiny_llama_gguf.stat().st_size
    cut = _cut(tiny_llama_gguf, tmp_path / "half.gguf", int(size * keep))
    with pytest.raises(PartialFileError) as err:
        inspect_gguf(cut)
    msg = str(err.value)
    assert str(cut) in msg and "partial" in msg
    if keep > 0.4:  # cut inside the tensor data: the message says how much is there
        assert f"{cut.stat().st_size:,} of {size:,} bytes" in msg


def test_foreign_file_refused(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        inspect_gguf(bad)


def test_import_copy_list_default_remove(tiny_llama_gguf, tiny_gguf, tmp_path):
    reg = Registry()
    assert reg.root.parent == Path(__import__("os").environ["LOGOS_DATA_DIR"])
    assert reg.list() == [] and reg.default() is None
    usb = tmp_path / "usb"
    usb.mkdir()
    src = usb / "LOGOS-tiny.gguf"
    shutil.copy(tiny_llama_gguf, src)
    e = reg.import_file(src)
    assert e.managed and Path(e.path).parent == reg.files and Path(e.path).read_bytes() == src.read_bytes()
    assert e.sha256 == sha256_file(src) and e.tags_single and e.quant == "F16"
    assert reg.default().id == e.id  # the first model becomes the default
    assert default_model() == Path(e.path)
    again = reg.import_file(src)  # same bytes: the existing entry, no second copy
    assert again.id == e.id and len(list(reg.files.iterdir())) == 1
    ref = reg.import_file(tiny_gguf("qwen3", "special", "f32"), copy=False, name="qwen-ref")
    assert not ref.managed and ref.path == str(tiny_gguf("qwen3", "special", "f32").resolve())
    manifest = json.loads(reg.manifest.read_text())
    assert [m["id"] for m in manifest["models"]] == [e.id, "qwen-ref"]
    assert {m["sha256"] for m in manifest["models"]} == {e.sha256, sha256_file(ref.path)}
    reg.set_default("qwen-ref")
    assert reg.default().id == "qwen-ref"
    reg.remove("qwen-ref")  # a referenced file is never deleted
    assert Path(ref.path).is_file() and reg.default() is None
    reg.remove(e.id)  # a copied-in file goes with its entry
    assert not Path(e.path).exists() and reg.list() == []
    with pytest.raises(RegistryError, match="no model 'nothing'"):
        reg.remove("nothing")


def test_partial_import_leaves_registry_untouched(tiny_llama_gguf, tmp_path):
    reg = Registry()
    good = reg.import_file(tiny_llama_gguf)
    before = reg.manifest.read_bytes()
    cut = _cut(tiny_llama_gguf, tmp_path / "copy-interrupted.gguf", tiny_llama_gguf.stat().st_size - 4096)
    with pytest.raises(PartialFileError, match="copy-interrupted.gguf"):
        reg.import_file(cut)
    assert reg.manifest.read_bytes() == before
    assert sorted(p.name for p in reg.files.iterdir()) == [Path(good.path).name]  # no .part left


def test_verify_detects_changed_file(tiny_llama_gguf, tmp_path):
    src = tmp_path / "m.gguf"
    shutil.copy(tiny_llama_gguf, src)
    reg = Registry()
    e = reg.import_file(src, copy=False)
    assert reg.verify(e.id)[0]
    data = bytearray(src.read_bytes())
    data[-10] ^= 0xFF
    src.write_bytes(bytes(data))
    ok, msg = reg.verify(e.id)
    assert not ok and "differs" in msg


def test_damaged_manifest_is_not_overwritten(tiny_llama_gguf):
    reg = Registry()
    reg.root.mkdir(parents=True)
    reg.manifest.write_text("{ not json")
    with pytest.raises(ModelFileError, match="registry.json"):
        reg.import_file(tiny_llama_gguf)
    assert reg.manifest.read_text() == "{ not json"
    assert not reg.files.exists() or not any(reg.files.iterdir())


def test_default_model_falls_back_to_bundled(tmp_path, monkeypatch, tiny_llama_gguf):
    res = tmp_path / "resources"
    (res / "models").mkdir(parents=True)
    monkeypatch.setenv("LOGOS_RESOURCES_DIR", str(res))
    assert default_model() is None
    demo = res / "models" / "logos-demo.gguf"
    shutil.copy(tiny_llama_gguf, demo)
    assert default_model() == demo
    mine = tmp_path / "mine.gguf"
    shutil.copy(tiny_llama_gguf, mine)
    e = Registry().import_file(mine, copy=False)
    assert default_model() == Path(e.path)
    Path(e.path).rename(tmp_path / "moved.gguf")  # the registered file vanished: fall back again
    assert default_model() == demo


def _imports_at_once(reg, jobs):
    """Run ``reg.import_file(path, copy=True)`` for each path in its own thread, all of them
    copying at the same moment (a barrier in the copy's progress callback)."""
    import threading

    barrier = threading.Barrier(len(jobs), timeout=5)
    results, errors = [None] * len(jobs), []

    def progress(stage, done, total):
        if stage == "copy":
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # an import that copies under the lock: no overlap
                pass

    def run(i, path):
        try:
            results[i] = reg.import_file(path, copy=True, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_two_imports_at_once_do_not_collide(tiny_llama_gguf, tiny_gguf, tmp_path):
    """Two different models with the same file name, imported at the same moment: two entries,
    two ids, two files, each file the model its entry says (by SHA-256); no temporary file left."""
    reg = Registry()
    a, b = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for p, src in ((a, tiny_llama_gguf), (b, tiny_gguf("qwen3", "special", "f16"))):
        p.parent.mkdir()
        shutil.copy(src, p)
    results, errors = _imports_at_once(reg, [a, b])
    assert not errors, errors
    entries = reg.list()
    assert len(entries) == 2 and len({e.id for e in entries}) == 2 and len({e.path for e in entries}) == 2
    for e in entries:
        assert sha256_file(e.path) == e.sha256, f"{e.id}: its file is not its model"
    assert {e.sha256 for e in entries} == {sha256_file(a), sha256_file(b)}
    assert sorted(p.name for p in reg.files.iterdir()) == sorted(Path(e.path).name for e in entries)


def test_same_file_imported_twice_at_once(tiny_llama_gguf, tmp_path):
    """The same model imported twice at once: one entry, one file, the other import returns it."""
    reg = Registry()
    a, b = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for p in (a, b):
        p.parent.mkdir()
        shutil.copy(tiny_llama_gguf, p)
    results, errors = _imports_at_once(reg, [a, b])
    assert not errors, errors
    assert len(reg.list()) == 1 and results[0].id == results[1].id
    entry = reg.list()[0]
    assert Path(entry.path).is_file() and sha256_file(entry.path) == entry.sha256
    assert [p.name for p in reg.files.iterdir()] == [Path(entry.path).name]


def _import_in_process(root, path, barrier, out):
    def progress(stage, done, total):
        if stage == "copy":
            try:
                barrier.wait(5)
            except Exception:  # noqa: BLE001 - BrokenBarrierError: no overlap
                pass

    try:
        e = Registry(root).import_file(path, copy=True, progress=progress)
        out.put(("ok", e.id, e.path, e.sha256))
    except Exception as exc:  # noqa: BLE001
        out.put(("error", type(exc).__name__, str(exc), ""))


def test_two_processes_import_at_once(tiny_llama_gguf, tiny_gguf, tmp_path):
    """The GUI and the CLI importing at the same moment (two processes, one registry folder)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    root = tmp_path / "registry"
    a, b = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for p, src in ((a, tiny_llama_gguf), (b, tiny_gguf("qwen3", "special", "f16"))):
        p.parent.mkdir()
        shutil.copy(src, p)
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_import_in_process, args=(root, p, barrier, out)) for p in (a, b)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(r[0] == "ok" for r in results), results
    entries = Registry(root).list()
    assert len(entries) == 2 and len({e.id for e in entries}) == 2 and len({e.path for e in entries}) == 2
    for e in entries:
        assert sha256_file(e.path) == e.sha256
    assert sorted(p.name for p in Registry(root).files.iterdir()) == sorted(Path(e.path).name for e in entries)
