"""Tiny random Llama and Qwen3 checkpoints with a plain GPT-2 byte-level BPE tokenizer: the Hugging
Face ``tokenizers`` ByteLevel pre-tokenizer with its own regex (``use_regex=True``), no Split step,
no normaliser, no BOS added (the tokenizer of most small chemistry models). Trained on the grammar
corpus of tests/fixtures/tiny_models.py; LOGOS tags are special added tokens."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.tiny_models import LOGOS_TAGS, grammar_corpus


def train_gpt2_tokenizer(vocab_size: int = 700, add_prefix_space: bool = False):
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    text = list(grammar_corpus(600, seed=2))
    for tag in LOGOS_TAGS:
        text = [t.replace(tag, " ") for t in text]
    trainer = BpeTrainer(vocab_size=vocab_size, show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(text, trainer)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LOGOS_TAGS])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def build_gpt2_tokenizer_model(out_dir: str | Path, arch: str = "llama", seed: int = 0) -> Path:
    """A tiny random ``arch`` ("llama" or "qwen3") checkpoint with a GPT-2 tokenizer in ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = train_gpt2_tokenizer()
    eot = tok.token_to_id("<|endoftext|>")
    n_tok = tok.get_vocab_size(with_added_tokens=True)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     unk_token="<|endoftext|>")
    hf_tok.add_bos_token = False
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=n_tok, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5, tie_word_embeddings=False,
            bos_token_id=eot, eos_token_id=eot, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            initializer_range=0.1, architectures=["LlamaForCausalLM"],
        )
        model_cls = LlamaForCausalLM
    else:
        config = Qwen3Config(
            vocab_size=(n_tok + 127) // 128 * 128, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=1024,
            rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=eot, eos_token_id=eot,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            initializer_range=0.1, architectures=["Qwen3ForCausalLM"],
        )
        model_cls = Qwen3ForCausalLM
    torch.manual_seed(seed)
    model = model_cls(config).to(torch.float32)
    model.save_pretrained(out_dir)
    hf_tok.save_pretrained(out_dir)
    return out_dir
