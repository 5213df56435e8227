"""The vocabulary check run before training."""

from __future__ import annotations

from training import tokenizer as tk
from training import vocab_check


def test_own_tokenizer_represents_every_row(real_rows, tiny_tokenizer):
    rep = vocab_check.check(tiny_tokenizer, real_rows, context=64)
    assert rep.ok and rep.rows == len(real_rows) and rep.max_tokens > 0
    assert rep.too_long_rows == sum(len(tiny_tokenizer.encode(r, add_special_tokens=False)) + 2 > 64 for r in real_rows)


def test_missing_tags_and_unrepresentable_characters(real_rows, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    no_tags = tk.train_bpe(real_rows, 400, tags=[])
    rep = vocab_check.check(no_tags, real_rows[:20])
    assert rep.missing_tags == tk.logos_tags() and not rep.ok
    assert "<MoleculeS>" in rep.summary()
    # a word-level vocabulary without the letter 'Z' cannot write it
    vocab = {"[UNK]": 0, "<MoleculeS>": 1, "<MoleculeE>": 2, "C": 3, "O": 4}
    wl = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    wl.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=wl, unk_token="[UNK]")
    fast.add_tokens(["<MoleculeS>", "<MoleculeE>"])
    rep = vocab_check.check(fast, ["<MoleculeS>CCO<MoleculeE>", "<MoleculeS>CZO<MoleculeE>"])
    assert rep.lossy_rows >= 1 and "Z" in rep.unknown_chars
    assert "cannot represent" in rep.summary()
