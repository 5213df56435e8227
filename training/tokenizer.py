"""Tokenizers for LOGOS models: our own byte-level BPE, and adding the LOGOS tags to a base one.

Every LOGOS tag is ONE added token that is NOT special: llama.cpp then treats it as a
user-defined token (parsed in prompts, rendered as text in output, usable as a stop string).
BOS/EOS are special tokens with Llama-3 names (the released LOGOS-pretrain tokenizers use them).
"""

from __future__ import annotations

from pathlib import Path

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"

# The pre-tokenizer split of the Qwen2 tokenizers (single digits: SMILES ring closures stay apart).
# llama.cpp knows it by name ("qwen2"), so the engine's GGUF converter can map it; followed by a
# byte-level step without its own regex.
SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

def logos_tags() -> list[str]:
    """All tag tokens, from the engine's tag table (engine.grammar.tags)."""
    from engine.grammar import tags

    return list(tags.ALL_TOKENS)


def train_bpe(texts, vocab_size: int, out_dir: Path | None = None, tags: list[str] | None = None):
    """Train a byte-level BPE on ``texts`` (tags removed first, then added as single tokens).

    Returns a ``transformers.PreTrainedTokenizerFast``; saved in Hugging Face format when
    ``out_dir`` is given."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tags = list(logos_tags() if tags is None else tags)

    def stripped():
        for t in texts:
            for tag in tags:
                t = t.replace(tag, "\n")
            yield t

    tok = Tokenizer(models.BPE(ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(tags),
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(stripped(), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False) for t in tags])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                   clean_up_tokenization_spaces=False)
    fast.add_bos_token = True
    if out_dir is not None:
        save(fast, out_dir)
    return fast


def save(tokenizer, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))


def load(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def missing_tags(tokenizer, tags: list[str] | None = None) -> list[str]:
    """Tags that the tokenizer does not encode as one token of their own."""
    out = []
    for tag in tags or logos_tags():
        ids = tokenizer.encode(tag, add_special_tokens=False)
        if len(ids) != 1 or tokenizer.convert_ids_to_tokens(ids[0]) != tag:
            out.append(tag)
    return out


def add_tags(tokenizer, model=None, tags: list[str] | None = None) -> list[str]:
    """Add the missing LOGOS tags as non-special tokens; resize ``model``'s embeddings to match.

    New embedding rows are the mean of the existing ones (transformers' default for resize)."""
    from tokenizers import AddedToken

    missing = missing_tags(tokenizer, tags)
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in missing])
    if model is not None:
        emb = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > emb:
            model.resize_token_embeddings(len(tokenizer))
    return missing


def tag_ids(tokenizer, tags: list[str] | None = None) -> dict[str, int]:
    return {t: tokenizer.convert_tokens_to_ids(t) for t in tags or logos_tags()}
