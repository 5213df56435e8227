"""LoRA adapters (peft) on Llama/Qwen-style checkpoints, and merging them back for export."""

from __future__ import annotations


def apply(model, cfg, train_embeddings: bool = False):
    """Wrap ``model`` with LoRA adapters on ``cfg.target_modules``; only adapters train.

    ``train_embeddings``: also train the input embeddings and output head in full (needed when
    tokens such as the LOGOS tags were just added: their rows start untrained)."""
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in cfg.target_modules if t in present]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {cfg.target_modules} is in this model")
    extra = None
    if train_embeddings:
        extra = [n for n in ("embed_tokens", "lm_head") if n in present]
    peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=targets, task_type="CAUSAL_LM", modules_to_save=extra)
    return get_peft_model(model, peft_cfg)


def is_lora(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def merged(model):
    """A plain transformers model with the adapters folded into the weights."""
    if is_lora(model):
        return model.merge_and_unload()
    return model


def trainable_fraction(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
