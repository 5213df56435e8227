"""Before training: what the tokenizer cannot represent in the training rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from training import tokenizer as tk


@dataclass
class VocabReport:
    missing_tags: list[str] = field(default_factory=list)   # tags that are not one token
    unknown_chars: Counter = field(default_factory=Counter)  # characters mapped to <unk> / lost
    lossy_rows: int = 0                                      # rows that do not decode back to themselves
    too_long_rows: int = 0                                   # rows longer than the context
    rows: int = 0
    max_tokens: int = 0
    mean_tokens: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing_tags and not self.unknown_chars and not self.lossy_rows

    def summary(self) -> str:
        lines = [f"{self.rows} rows, mean {self.mean_tokens:.1f} tokens, max {self.max_tokens}"]
        if self.missing_tags:
            lines.append("tags that are not single tokens: " + " ".join(self.missing_tags))
        if self.unknown_chars:
            chars = ", ".join(f"{c!r}x{n}" for c, n in self.unknown_chars.most_common(10))
            lines.append(f"characters the tokenizer cannot represent: {chars}")
        if self.lossy_rows:
            lines.append(f"{self.lossy_rows} rows do not survive encode -> decode")
        if self.too_long_rows:
            lines.append(f"{self.too_long_rows} rows are longer than the context and will be cut")
        return "\n".join(lines)


def check(tokenizer, rows: list[str], context: int | None = None, sample: int = 5000) -> VocabReport:
    rep = VocabReport(missing_tags=tk.missing_tags(tokenizer))
    unk = tokenizer.unk_token_id
    total = 0
    for text in rows[:sample]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        rep.rows += 1
        total += len(ids)
        rep.max_tokens = max(rep.max_tokens, len(ids))
        if context and len(ids) + 2 > context:
            rep.too_long_rows += 1
        back = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if back != text:
            rep.lossy_rows += 1
            if unk is not None and unk in ids:
                for ch in set(text):
                    if unk in tokenizer.encode(ch, add_special_tokens=False):
                        rep.unknown_chars[ch] += 1
    rep.mean_tokens = total / rep.rows if rep.rows else 0.0
    return rep
