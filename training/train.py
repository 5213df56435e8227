"""The training loop: one function to read top to bottom.

``train(cfg, train_rows, val_rows, out_dir, ...)`` builds or loads the model (scratch Llama, or any
Hugging Face checkpoint, optionally with LoRA), packs the rows into BOS/EOS-separated token streams,
and runs AdamW with warm-up + cosine decay. It resumes from the newest complete checkpoint in
``out_dir``, stops cleanly when ``should_stop()`` turns true (saving a checkpoint), reports progress
through ``on_progress(dict)`` and is deterministic under ``cfg.seed``: the batch of step ``s`` is a
function of (seed, s, rank) only, so a resumed run sees the same data as an uninterrupted one.

Under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1) it runs DDP (gloo on CPU, NCCL on
CUDA); rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from training import checkpoint as ckpt
from training import lora as lora_mod
from training import tokenizer as tk
from training import vocab_check
from training.data import MOL_E
from training.config import TrainConfig


class TrainingError(Exception):
    """A problem the user can fix (message says what and where)."""


@dataclass
class TrainResult:
    status: str                      # "finished" | "cancelled" | "time-limit"
    step: int
    final_dir: Path | None
    last_checkpoint: Path | None
    train_loss: float | None
    val_loss: float | None
    tokens_seen: int
    seconds: float
    tokens_per_s: float
    history: list[dict] = field(default_factory=list)
    vocab: vocab_check.VocabReport | None = None
    added_tags: list[str] = field(default_factory=list)
    precision: str = "float32"       # what cfg.precision resolved to on this device


def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    if world > 1:
        return torch.distributed.get_rank(), world
    return 0, 1


def _tag_set(tokenizer, tags, what: str) -> set[int]:
    """The ids of ``tags`` (each one token of the tokenizer, else a TrainingError naming ``what``)."""
    if not tags:
        return set()
    missing = tk.missing_tags(tokenizer, list(tags))
    if missing:
        raise TrainingError(f"{what}: {' '.join(missing)} is not one token of this tokenizer")
    return set(tk.tag_ids(tokenizer, list(tags)).values())


def _stream(tokenizer, rows: list[str], block: int, answer_only=(), first_block_only=()) -> tuple:
    """All rows as one token stream: BOS row EOS BOS row EOS ... (long enough for one block), and
    beside it whether each token is a loss target. A row holding one of the ``answer_only`` tags is
    a task record: its tokens up to and including the tag are its prompt, read but not targets. A
    row holding one of the ``first_block_only`` tags is read without learning its first molecule
    block: its tokens up to and including its first ``<MoleculeE>`` are not targets."""
    ids: list[int] = []
    target: list[bool] = []
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    tag_ids = _tag_set(tokenizer, answer_only, "answer_only")
    first_ids = _tag_set(tokenizer, first_block_only, "first_block_only")
    block_end = next(iter(_tag_set(tokenizer, [MOL_E], "first_block_only"))) if first_ids else None
    enc = tokenizer(rows, add_special_tokens=False)["input_ids"] if rows else []
    for r in enc:
        if bos is not None:
            ids.append(bos)
            target.append(True)
        cut = 0
        if tag_ids:
            cut = next((i + 1 for i, t in enumerate(r) if t in tag_ids), 0)
        if first_ids and not cut and any(t in first_ids for t in r):
            cut = next((i + 1 for i, t in enumerate(r) if t == block_end), 0)
        ids.extend(r)
        target.extend([False] * cut + [True] * (len(r) - cut))
        ids.append(eos)
        target.append(True)
    if not ids:
        raise TrainingError("no training rows left after filtering")
    while len(ids) < block + 1:
        ids, target = ids + ids, target + target
    return torch.tensor(ids, dtype=torch.long), torch.tensor(target, dtype=torch.bool)


def _record_starts(stream: torch.Tensor, tokenizer, block: int) -> torch.Tensor:
    """Positions where a record begins (its BOS, else the token after an EOS) that leave a full block."""
    if tokenizer.bos_token_id is not None:
        starts = (stream == tokenizer.bos_token_id).nonzero().flatten()
    else:
        starts = torch.cat([torch.zeros(1, dtype=torch.long),
                            (stream == tokenizer.eos_token_id).nonzero().flatten() + 1])
    starts = starts[starts <= len(stream) - block]
    return starts if len(starts) else torch.zeros(1, dtype=torch.long)


def _batch(stream: torch.Tensor, starts: torch.Tensor, block: int, batch: int, seed: int, step: int, rank: int,
           target: torch.Tensor | None = None):
    """``batch`` windows of ``block`` tokens, each beginning at a record start (as at inference), and
    their labels: the tokens, with -100 (no loss) where ``target`` says a token is a prompt's."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) * 131 + rank)
    pick = torch.randint(0, len(starts), (batch,), generator=g)
    at = starts[pick].tolist()
    x = torch.stack([stream[s:s + block] for s in at])
    labels = x
    if target is not None:
        keep = torch.stack([target[s:s + block] for s in at])
        if not bool(keep.all()):
            labels = x.masked_fill(~keep, -100)
    return x, labels


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def build_model(cfg: TrainConfig, tokenizer, add_missing_tags: bool):
    """(model, tokenizer, added tags). Scratch: a new Llama; else the checkpoint at cfg.base."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    added: list[str] = []
    if cfg.base == "scratch":
        if tokenizer is None:
            raise TrainingError("training from scratch needs a tokenizer (see training.tokenizer.train_bpe)")
        model = LlamaForCausalLM(cfg.model.to_hf(tokenizer))
    else:
        base = Path(cfg.base)
        if not (base / "config.json").is_file():
            raise TrainingError(f"{base}: not a Hugging Face checkpoint directory (no config.json)")
        if tokenizer is None:
            tokenizer = tk.load(base)
        model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, use_safetensors=True,
                                                     local_files_only=True)
        missing = tk.missing_tags(tokenizer)
        if missing:
            if not add_missing_tags:
                raise TrainingError(
                    f"{base}: the tokenizer lacks the LOGOS tags {' '.join(missing)}; "
                    "rerun with --add-tags to add them (the embeddings are resized)")
            added = tk.add_tags(tokenizer, model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.lora is not None:
        model = lora_mod.apply(model, cfg.lora, train_embeddings=bool(added))
    return model, tokenizer, added


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (an error without a GPU: never a silent fallback) or ``auto``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("training on CUDA was asked for, but torch sees no CUDA GPU")
    if name not in ("cpu", "cuda"):
        raise TrainingError(f"unknown training device {name!r} (use cpu, cuda or auto)")
    return torch.device(name)


PRECISIONS = ("float32", "bfloat16", "auto")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 products in hardware (AVX512-BF16 or AMX): elsewhere
    torch emulates them and mixed precision gains nothing. Read from /proc/cpuinfo (Linux only)."""
    text = cpuinfo
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(name: str, device: torch.device) -> str:
    """``float32`` or ``bfloat16`` for this device. ``bfloat16`` asked for where the device lacks
    it is an error (never a silent fallback); ``auto`` takes bfloat16 only where it is native."""
    if name not in PRECISIONS:
        raise TrainingError(f"unknown training precision {name!r} (use {', '.join(PRECISIONS)})")
    if name == "float32":
        return name
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = cpu_has_native_bf16()
    if name == "bfloat16" and not native:
        raise TrainingError(f"bfloat16 training was asked for, but this {device.type.upper()} does not compute "
                            "bfloat16 natively (use --precision float32 or auto)")
    return "bfloat16" if native else "float32"


def _autocast(device: torch.device, precision: str):
    import contextlib

    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_loss(model, stream: torch.Tensor, starts: torch.Tensor, cfg: TrainConfig,
                  target: torch.Tensor | None = None) -> float:
    model.eval()
    losses = []
    for i in range(cfg.eval_batches):
        x, y = _batch(stream, starts, cfg.block_size, cfg.batch_size, cfg.seed + 7, i, 0, target)
        dev = _device_of(model)
        losses.append(model(input_ids=x.to(dev), labels=y.to(dev)).loss.item())
    model.train()
    return sum(losses) / len(losses)


def train(cfg: TrainConfig, train_rows: list[str], val_rows: list[str], out_dir: Path,
          tokenizer=None, on_progress=None, should_stop=None, add_missing_tags: bool = False,
          resume: bool = True, progress_every: int = 10) -> TrainResult:
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.threads)
    rank, world = _dist()
    model, tokenizer, added = build_model(cfg, tokenizer, add_missing_tags)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    model.to(device)
    vocab = vocab_check.check(tokenizer, train_rows, context=cfg.block_size)
    if vocab.missing_tags:
        raise TrainingError("the tokenizer does not encode these tags as single tokens: "
                            + " ".join(vocab.missing_tags))
    if vocab.unknown_chars:
        raise TrainingError("the tokenizer cannot represent: " + vocab.summary())
    train_stream, train_target = _stream(tokenizer, train_rows, cfg.block_size, cfg.answer_only,
                                         cfg.first_block_only)
    val_stream, val_target = _stream(tokenizer, val_rows or train_rows[:50], cfg.block_size, cfg.answer_only,
                                     cfg.first_block_only)
    if not cfg.answer_only and not cfg.first_block_only:  # every token a target: no mask to gather at each step
        train_target = val_target = None
    train_starts = _record_starts(train_stream, tokenizer, cfg.block_size)
    val_starts = _record_starts(val_stream, tokenizer, cfg.block_size)

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    if rank == 0:
        ckpt.ensure_space(out_dir, 2 * ckpt.estimate_bytes(model, optimizer))
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(out_dir / ckpt.CONFIG)

    start, tokens_seen, history, before_s = 0, 0, [], 0.0
    last = ckpt.latest(out_dir) if resume else None
    if last is not None:
        state = ckpt.load_state(last)
        ckpt.load_weights(model, last)
        optimizer.load_state_dict(state["optimizer"])
        start, tokens_seen, history = state["step"], state["tokens_seen"], state.get("history", [])
        before_s = _seconds_before(state, cfg.batch_size * cfg.block_size * world)

    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    model.train()
    t0, t_last, tok_last = time.time(), time.time(), tokens_seen
    step, status, loss_val, val_loss = start, "finished", None, None
    last_saved = last

    def save(name: str):
        if rank != 0:
            return None
        state = {"step": step, "tokens_seen": tokens_seen, "history": history,
                 "train_seconds": before_s + time.time() - t0,  # wall time of all runs to this step
                 "metrics": {"train_loss": loss_val, "val_loss": val_loss, "step": step,
                             "tokens_seen": tokens_seen}}
        return ckpt.save(out_dir, name, model, tokenizer, cfg, state, optimizer, keep=cfg.keep_checkpoints)

    while step < cfg.steps:
        stop = bool(should_stop and should_stop())
        if world > 1:  # every rank must agree to stop
            flag = torch.tensor([1 if stop else 0])
            torch.distributed.all_reduce(flag)
            stop = bool(flag.item())
        if stop:
            status = "cancelled"
            break
        if cfg.max_seconds and time.time() - t0 > cfg.max_seconds:
            status = "time-limit"
            break
        lr = _lr(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = _batch(train_stream, train_starts, cfg.block_size, cfg.batch_size, cfg.seed, step, rank,
                      train_target)
        x = x.to(device)
        with _autocast(device, precision):
            loss = net(input_ids=x, labels=y.to(device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        step += 1
        tokens_seen += x.numel() * world
        loss_val = loss.item()
        if step % progress_every == 0 or step == cfg.steps:
            now = time.time()
            tps = (tokens_seen - tok_last) / max(now - t_last, 1e-9)
            elapsed = now - t0
            eta = elapsed / (step - start) * (cfg.steps - step)
            event = {"step": step, "steps": cfg.steps, "loss": loss_val, "lr": lr,
                     "tokens_per_s": tps, "eta_s": eta, "tokens_seen": tokens_seen}
            history.append({k: event[k] for k in ("step", "loss", "tokens_per_s")})
            t_last, tok_last = now, tokens_seen
            if on_progress and rank == 0:
                on_progress(event)
        if cfg.eval_every and step % cfg.eval_every == 0:
            val_loss = evaluate_loss(model, val_stream, val_starts, cfg, val_target)
            history.append({"step": step, "val_loss": val_loss})
            if on_progress and rank == 0:
                on_progress({"step": step, "steps": cfg.steps, "val_loss": val_loss})
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
            last_saved = save(f"step-{step:06d}") or last_saved

    seconds = time.time() - t0
    if status == "finished":
        val_loss = evaluate_loss(model, val_stream, val_starts, cfg, val_target)
    if step > start or last_saved is None:
        last_saved = save(f"step-{step:06d}") or last_saved
    final_dir = None
    if status == "finished" and rank == 0:
        final_dir = export_final(model, tokenizer, cfg, out_dir / "final",
                                 {"train_loss": loss_val, "val_loss": val_loss, "steps": step,
                                  "tokens_seen": tokens_seen})
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    # a resumed run reports the wall time and rate of all its runs together (the card's figures)
    total = before_s + seconds
    return TrainResult(status, step, final_dir, last_saved, loss_val, val_loss, tokens_seen, total,
                       tokens_seen / total if total > 0 else 0.0,
                       history, vocab, added, precision)


def _seconds_before(state: dict, tokens_per_step: int) -> float:
    """The training wall time up to a checkpoint: saved in it, or (checkpoints written before it
    was) summed from its progress history, each entry's tokens over its rate."""
    if state.get("train_seconds") is not None:
        return float(state["train_seconds"])
    total, prev = 0.0, 0
    for h in state.get("history", []):
        if h.get("tokens_per_s"):
            total += (h["step"] - prev) * tokens_per_step / h["tokens_per_s"]
            prev = h["step"]
    return total


def export_final(model, tokenizer, cfg: TrainConfig, folder: Path, metrics: dict) -> Path:
    """Merged weights (LoRA folded in) + tokenizer + config: a plain HF checkpoint directory."""
    import json
    import shutil

    plain = lora_mod.merged(model)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    ckpt.ensure_space(folder.parent, ckpt.estimate_bytes(plain))
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    cfg.save(tmp / ckpt.CONFIG)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
