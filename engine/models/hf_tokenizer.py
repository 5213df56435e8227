"""Map a Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) to GGUF.

What llama.cpp needs (GGUF keys ``tokenizer.ggml.*``): the model name ``gpt2`` (byte-level BPE),
the pre-tokenizer name, every token's text and type, the merges, the BOS/EOS/pad ids and whether
BOS/EOS are added. Added tokens keep their type: ``special`` ones become CONTROL (matched only when
the caller parses special tokens, hidden when rendering unless asked), the others USER_DEFINED
(always matched as one token, like Hugging Face does). Ids past the tokenizer and up to the
embedding size become UNUSED padding tokens ``[PAD<id>]``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from engine.modelfiles.errors import TokenizerMappingError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6  # gguf.TokenType values


@dataclass
class GGUFVocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str                       # tokenizer.ggml.pre
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    add_eos: bool
    n_tokenizer: int               # tokens the tokenizer itself defines (before padding)
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _pretokenizer_table() -> dict:
    text = resources.files("engine.models").joinpath("pretokenizers.json").read_text(encoding="utf-8")
    return json.loads(text)


def known_pretokenizers() -> dict:
    """name -> {"patterns", "chkhsh", "ignore_merges", "normalizers"} (engine/models/pretokenizers.json)."""
    return {k: v for k, v in _pretokenizer_table().items() if not k.startswith("_")}


def check_text() -> str:
    """The text llama.cpp's converter encodes to recognise a pre-tokenizer by its token ids."""
    return _pretokenizer_table()["_check_text"]


def check_hash(tj_path: Path) -> str | None:
    """SHA-256 of ``str(ids)``, the token ids the checkpoint's own tokenizer (tokenizer.json, its
    post-processor included, as ``tokenizer.encode`` does) gives for :func:`check_text`: the
    fingerprint llama.cpp's converter compares with the published checkpoints it knows. None when
    the ``tokenizers`` library cannot load the file (the exact-regex rule still applies)."""
    try:
        from tokenizers import Tokenizer

        ids = Tokenizer.from_file(str(tj_path)).encode(check_text()).ids
    except Exception:  # noqa: BLE001 - an unloadable file falls back to the regex rule
        return None
    return hashlib.sha256(str(list(ids)).encode()).hexdigest()


def _gpt2_regex() -> str:
    """The regex the Hugging Face ByteLevel pre-tokenizer applies when ``use_regex`` is true."""
    return known_pretokenizers()["gpt-2"]["patterns"][0]


def _load_json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            raise TokenizerMappingError(path, "file not found")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerMappingError(path, f"not valid JSON ({exc})") from None


def _split_patterns(pre: dict | None, path: Path) -> tuple[list[str], bool]:
    """(Split regexes in order, whether a ByteLevel step is present) of a pre_tokenizer tree. A
    ByteLevel step with ``use_regex`` contributes the GPT-2 regex it applies."""
    if not pre:
        raise TokenizerMappingError(path, "no pre-tokenizer: only byte-level BPE tokenizers are supported",
                                    field="pre_tokenizer")
    kind = pre.get("type")
    if kind == "Sequence":
        patterns: list[str] = []
        byte_level = False
        for step in pre.get("pretokenizers", []):
            p, b = _split_patterns(step, path)
            patterns += p
            byte_level |= b
        return patterns, byte_level
    if kind == "Split":
        pattern = pre.get("pattern", {})
        regex = pattern.get("Regex", pattern.get("String"))
        if regex is None or pre.get("invert"):
            raise TokenizerMappingError(path, f"unsupported Split step {pattern!r}", field="pre_tokenizer")
        return [regex], False
    if kind == "ByteLevel":
        if pre.get("add_prefix_space"):
            raise TokenizerMappingError(path, "ByteLevel add_prefix_space=true has no llama.cpp equivalent "
                                        "(llama.cpp does not add a space before the text)", field="pre_tokenizer")
        if pre.get("use_regex", True):
            return [_gpt2_regex()], True
        return [], True
    raise TokenizerMappingError(path, f"pre-tokenizer step {kind!r} has no llama.cpp equivalent",
                                field="pre_tokenizer")


def recognise_pretokenizer(tok: dict, path: Path) -> str:
    """The ``tokenizer.ggml.pre`` name llama.cpp's converter would write for this tokenizer: by the
    token ids of the check text (a published checkpoint's tokenizer), else by the exact regexes
    (a tokenizer of its own with a known pre-tokenizer); anything else is refused with the list."""
    patterns, byte_level = _split_patterns(tok.get("pre_tokenizer"), path)
    if not byte_level:
        raise TokenizerMappingError(path, "no ByteLevel step: only byte-level BPE tokenizers are supported",
                                    field="pre_tokenizer")
    normalizer = tok.get("normalizer")
    norm_kind = normalizer.get("type") if normalizer else None
    known = known_pretokenizers()
    name = None
    chkhsh = check_hash(path) if path.is_file() else None
    if chkhsh is not None:
        name = next((n for n, spec in known.items() if chkhsh in spec.get("chkhsh", {})), None)
    if name is None:
        name = next((n for n, spec in known.items() if patterns == spec["patterns"]), None)
    if name is None:
        shown = patterns[0] if patterns else "(none)"
        raise TokenizerMappingError(
            path, f"unrecognised pre-tokenizer regex {shown[:80]!r} (check-text hash {str(chkhsh)[:16]}); "
            f"known: {', '.join(known)} (engine/models/pretokenizers.json)", field="pre_tokenizer")
    if norm_kind not in known[name]["normalizers"]:
        raise TokenizerMappingError(path, f"normalizer {norm_kind!r} is not supported with pre-tokenizer "
                                    f"{name!r}", field="normalizer")
    return name


def _token_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("content")
    return str(value)


def _template_special_ids(post: dict | None, tok: dict) -> tuple[list[int], list[int]]:
    """Ids that the post-processor puts before and after a single sequence."""
    if not post:
        return [], []
    if post.get("type") == "Sequence":
        before, after = [], []
        for step in post.get("processors", []):
            b, a = _template_special_ids(step, tok)
            before += b
            after += a
        return before, after
    if post.get("type") != "TemplateProcessing":
        return [], []
    specials = post.get("special_tokens", {})
    before, after, seen_seq = [], [], False
    for item in post.get("single", []):
        if "Sequence" in item:
            seen_seq = True
        elif "SpecialToken" in item:
            sid = item["SpecialToken"]["id"]
            ids = specials.get(sid, {}).get("ids", [])
            (after if seen_seq else before).extend(ids)
    return before, after


def map_tokenizer(folder: Path, n_vocab: int, config: dict | None = None) -> GGUFVocab:
    """Read the tokenizer of the checkpoint in ``folder`` for an embedding of ``n_vocab`` rows."""
    folder = Path(folder)
    tj_path = folder / "tokenizer.json"
    tc_path = folder / "tokenizer_config.json"
    tok = _load_json(tj_path)
    tcfg = _load_json(tc_path, required=False)
    config = config or {}
    warnings: list[str] = []

    model = tok.get("model") or {}
    if model.get("type") != "BPE":
        raise TokenizerMappingError(tj_path, f"tokenizer model {model.get('type')!r} is not supported; only "
                                    "byte-level BPE (GPT-2, Llama-3 and Qwen2 style)", field="model.type")
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise TokenizerMappingError(tj_path, f"{key}={model[key]!r} has no llama.cpp equivalent", field=f"model.{key}")
    if model.get("byte_fallback"):
        raise TokenizerMappingError(tj_path, "byte_fallback BPE is SentencePiece-style, not byte-level",
                                    field="model.byte_fallback")
    pre = recognise_pretokenizer(tok, tj_path)
    decoder = tok.get("decoder") or {}
    if decoder.get("type") != "ByteLevel":
        raise TokenizerMappingError(tj_path, f"decoder {decoder.get('type')!r} is not ByteLevel", field="decoder")
    if bool(model.get("ignore_merges", False)) != known_pretokenizers()[pre]["ignore_merges"]:
        warnings.append(f"{tj_path.name}: model.ignore_merges={model.get('ignore_merges')} but llama.cpp uses "
                        f"{known_pretokenizers()[pre]['ignore_merges']} for {pre!r}; a few words may split differently")

    vocab: dict = model.get("vocab") or {}
    by_id: dict[int, tuple[str, int]] = {}
    for text, idx in vocab.items():
        by_id[int(idx)] = (text, NORMAL)
    for added in tok.get("added_tokens", []):
        idx, text = int(added["id"]), added["content"]
        by_id[idx] = (text, CONTROL if added.get("special") else USER_DEFINED)
    if not by_id:
        raise TokenizerMappingError(tj_path, "the vocabulary is empty", field="model.vocab")
    top = max(by_id)
    if top >= n_vocab:
        text = by_id[top][0]
        raise TokenizerMappingError(
            tj_path, f"token {text!r} has id {top} but the embedding has only {n_vocab} rows "
            "(config.json vocab_size / model.embed_tokens.weight): tokenizer and weights do not belong together",
            field="added_tokens" if by_id[top][1] != NORMAL else "model.vocab")
    tokens, types = [], []
    for i in range(n_vocab):
        text, ttype = by_id.get(i, (f"[PAD{i}]", UNUSED))
        tokens.append(text)
        types.append(ttype)
    n_gaps = sum(1 for i in range(top + 1) if i not in by_id)
    if n_gaps:
        warnings.append(f"{tj_path.name}: {n_gaps} ids below {top} have no token; written as unused [PAD<id>]")

    merges = []
    for m in model.get("merges", []):
        if isinstance(m, str):
            merges.append(m)
        else:
            a, b = m
            if " " in a or " " in b:
                raise TokenizerMappingError(tj_path, f"merge {m!r} contains a space", field="model.merges")
            merges.append(f"{a} {b}")

    index = {t: i for i, t in reversed(list(enumerate(tokens)))}

    def resolve(name: str) -> int | None:
        text = _token_text(tcfg.get(name))
        if text is not None:
            if text not in index:
                raise TokenizerMappingError(tc_path, f"{text!r} is not a token of {tj_path.name}", field=name)
            return index[text]
        cid = config.get(f"{name}_id")
        if isinstance(cid, list):
            cid = cid[0] if cid else None
        if cid is not None:
            if not 0 <= int(cid) < n_vocab:
                raise TokenizerMappingError(folder / "config.json", f"id {cid} is outside the vocabulary", field=f"{name}_id")
            return int(cid)
        return None

    bos, eos, pad, unk = (resolve(n) for n in ("bos_token", "eos_token", "pad_token", "unk_token"))
    before, after = _template_special_ids(tok.get("post_processor"), tok)
    if "add_bos_token" in tcfg:
        add_bos = bool(tcfg["add_bos_token"])
    else:
        add_bos = bool(before) and (bos is None or before[0] == bos)
    if add_bos and bos is None:
        if before:
            bos = before[0]
        else:
            raise TokenizerMappingError(tc_path, "add_bos_token is true but no bos_token is defined", field="bos_token")
    add_eos = bool(tcfg["add_eos_token"]) if "add_eos_token" in tcfg else bool(after) and (eos is None or after[-1] == eos)
    return GGUFVocab(tokens=tokens, types=types, merges=merges, pre=pre, bos_id=bos, eos_id=eos, pad_id=pad,
                     unk_id=unk, add_bos=add_bos, add_eos=add_eos, n_tokenizer=top + 1, warnings=warnings)
