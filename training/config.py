"""Training configuration: dataclasses, saved beside every checkpoint as YAML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class ModelConfig:
    """A Llama-architecture model trained from scratch (hidden sizes multiples of 256)."""

    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    vocab_size: int = 0  # filled from the tokenizer

    def check(self) -> None:
        if self.hidden_size % 256 or self.intermediate_size % 256:
            raise ValueError("hidden_size and intermediate_size must be multiples of 256")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")

    def to_hf(self, tokenizer):
        from transformers import LlamaConfig

        self.check()
        return LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            max_position_embeddings=self.max_position_embeddings,
            rope_theta=self.rope_theta,
            rms_norm_eps=self.rms_norm_eps,
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainConfig:
    base: str = "scratch"             # "scratch" or a Hugging Face checkpoint directory
    steps: int = 1000
    batch_size: int = 16              # sequences per step (per process)
    block_size: int = 256             # tokens per sequence (records packed, EOS-separated)
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    threads: int = 2
    eval_every: int = 200
    eval_batches: int = 8
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    lora: LoraConfig | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    val_fraction: float = 0.05
    max_seconds: float | None = None  # stop (and save) after this much wall time
    device: str = "cpu"               # "cpu", "cuda" or "auto" (CUDA when torch sees a GPU)
    # "float32"; "bfloat16": mixed precision, the matrix products in bfloat16 under autocast while
    # the weights, optimizer state, loss and validation stay float32; "auto": bfloat16 where the
    # device computes it natively (CUDA with bf16, a CPU with AVX512-BF16 or AMX), else float32
    precision: str = "float32"
    # task tags whose records are trained on their answer only: the tokens up to and including the
    # tag (the task's prompt, e.g. the product before <ReverseReact>) are read but never targets
    answer_only: list[str] = field(default_factory=list)
    # task tags whose records are trained without their first molecule block: the tokens up to and
    # including the record's first <MoleculeE> (the block that opens like the molecule task's
    # prompt) are read, not targets; the rest, a forward record's second reactant included, is trained
    first_block_only: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        if isinstance(d.get("model"), dict):
            d["model"] = ModelConfig(**d["model"])
        if isinstance(d.get("lora"), dict):
            d["lora"] = LoraConfig(**d["lora"])
        return cls(**d)

    def save(self, path: Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        import yaml

        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})
