"""Seeded mutations of real structure files, for the reader fuzz tests.

Every case is made from one real seed file (tests/data/structures, tests/data/reliability; sources
in tests/data/SOURCES.md) by one mutation kind, with a ``random.Random`` seeded from
``(base seed, seed file, case number)``: the same ``LOGOS_FUZZ_SEED`` and ``LOGOS_FUZZ_N`` give the
same bytes on every machine, so a failing case can be rebuilt from its id alone.

Kinds (what a user's disk, a half-finished download or another program really produces):
truncate, truncate_lines, byte_flip, shift_columns, huge_number, nan_number, negative_number,
wrong_extension, empty, delete_lines, duplicate_lines, swap_lines, garbage_insert, crlf_mix,
damaged_gzip.

``python -m tests.reliability.mutations OUT_DIR [N]`` writes the corpus to a folder.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

# reader (format) -> real seed files; each is read cleanly by engine.structures.io before mutation
SEEDS: dict[str, list[str]] = {
    "smi": ["reliability/nci_first8.smi"],
    "sdf": ["structures/1ia1_ligand.sdf", "reliability/nci_first4.props.sdf", "reliability/molecule.sdf"],
    "mol": ["reliability/CHEMBL2321810_scaffold.mol"],
    "mol2": ["reliability/Molecule.mol2", "reliability/zinc_856218.mol2"],
    "xyz": ["reliability/1ia1_ligand_TQ3.xyz"],
    "pdb": ["structures/adk_open_10res.pdb", "structures/1hvr.pdb", "structures/xl_serial.pdb"],
    "mmcif": ["structures/1YJP.cif"],
    "cif": ["reliability/NaCl.cif", "reliability/aspirin-c.cif"],
    "poscar": ["reliability/Fd3.vasp"],
    "fasta": ["reliability/1hvr_chains.fasta"],
}
READERS = tuple(SEEDS)
EXTENSIONS = {"smi": ".smi", "sdf": ".sdf", "mol": ".mol", "mol2": ".mol2", "xyz": ".xyz", "pdb": ".pdb",
              "mmcif": ".cif", "cif": ".cif", "poscar": ".vasp", "fasta": ".fasta"}
KINDS = ("truncate", "truncate_lines", "byte_flip", "shift_columns", "huge_number", "nan_number",
         "negative_number", "wrong_extension", "empty", "delete_lines", "duplicate_lines", "swap_lines",
         "garbage_insert", "crlf_mix", "damaged_gzip")
DEFAULT_N = 1000
DEFAULT_SEED = 20261126

_NUMBER = re.compile(rb"(?<![A-Za-z_])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
HUGE = [b"1e308", b"-1e308", b"9e999", b"99999999999999999999", b"1" * 400, b"4294967296",
        b"2147483648", b"1.7976931348623157e309", b"123456789.123456789"]
NONFINITE = [b"nan", b"NaN", b"-nan", b"inf", b"-inf", b"Infinity", b"NAN"]
NEGATIVE = [b"-1", b"-0", b"-999999", b"-2147483649", b"0"]


@dataclass(frozen=True)
class Case:
    id: str        # "<reader>-<n>-<kind>", unique within a corpus
    reader: str    # the seed's format: which reader the case is aimed at
    seed_file: str  # relative to tests/data
    kind: str
    name: str      # file name to write (extension included; wrong on purpose for wrong_extension)
    data: bytes

    def write(self, folder: Path) -> Path:
        path = Path(folder) / self.name
        path.write_bytes(self.data)
        return path


def budget() -> int:
    """Number of cases: ``LOGOS_FUZZ_N`` (default 1,000, the CI budget)."""
    try:
        return max(len(READERS), int(os.environ.get("LOGOS_FUZZ_N", DEFAULT_N)))
    except ValueError:
        return DEFAULT_N


def base_seed() -> int:
    try:
        return int(os.environ.get("LOGOS_FUZZ_SEED", DEFAULT_SEED))
    except ValueError:
        return DEFAULT_SEED


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _replace_numbers(data: bytes, rng: random.Random, pool: list[bytes], k_max: int = 5) -> bytes:
    spans = [m.span() for m in _NUMBER.finditer(data)]
    if not spans:
        return data + rng.choice(pool)
    chosen = sorted(rng.sample(spans, min(len(spans), rng.randint(1, k_max))), reverse=True)
    out = bytearray(data)
    for a, b in chosen:
        out[a:b] = rng.choice(pool)
    return bytes(out)


def mutate(data: bytes, kind: str, rng: random.Random, reader: str) -> tuple[bytes, str | None]:
    """(mutated bytes, replacement extension or None)."""
    n = len(data)
    lines = _lines(data)
    if kind == "truncate":
        return data[: rng.randint(1, max(1, n - 1))], None
    if kind == "truncate_lines":
        return b"".join(lines[: rng.randint(1, max(1, len(lines) - 1))]), None
    if kind == "byte_flip":
        out = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
            i = rng.randrange(n)
            out[i] ^= rng.randint(1, 255)
        return bytes(out), None
    if kind == "shift_columns":
        a = rng.randrange(len(lines))
        b = min(len(lines), a + rng.randint(1, max(1, len(lines) // 5)))
        out = list(lines)
        for i in range(a, b):
            ln = out[i]
            col = rng.randint(0, max(0, len(ln.rstrip(b"\r\n")) - 1))
            if rng.random() < 0.5:
                out[i] = ln[:col] + b" " * rng.randint(1, 3) + ln[col:]
            else:
                out[i] = ln[:col] + ln[col + rng.randint(1, 3):]
        return b"".join(out), None
    if kind == "huge_number":
        return _replace_numbers(data, rng, HUGE), None
    if kind == "nan_number":
        return _replace_numbers(data, rng, NONFINITE), None
    if kind == "negative_number":
        return _replace_numbers(data, rng, NEGATIVE), None
    if kind == "wrong_extension":
        others = [e for r, e in EXTENSIONS.items() if e != EXTENSIONS[reader]] + [".txt", "", ".dat", ".gz"]
        return data, rng.choice(others)
    if kind == "empty":
        return rng.choice([b"", b"\n", b"   \n\n  ", b"\x00", b"\r\n" * 10, b"\xef\xbb\xbf"]), None
    if kind == "delete_lines":
        out = list(lines)
        for _ in range(rng.randint(1, max(1, len(out) // 4))):
            if len(out) > 1:
                del out[rng.randrange(len(out))]
        return b"".join(out), None
    if kind == "duplicate_lines":
        a = rng.randrange(len(lines))
        b = min(len(lines), a + rng.randint(1, 10))
        return b"".join(lines[:b] + lines[a:b] * rng.randint(1, 5) + lines[b:]), None
    if kind == "swap_lines":
        out = list(lines)
        for _ in range(rng.randint(1, 6)):
            i, j = rng.randrange(len(out)), rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        return b"".join(out), None
    if kind == "garbage_insert":
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            junk = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))),
                               "ΩØ∑ 化学 🧪".encode(), b"\x00\x00\x00", b"\xff\xfe", b"\x1b[31m"])
            i = rng.randrange(len(out) + 1)
            out[i:i] = junk
        return bytes(out), None
    if kind == "crlf_mix":
        out = [ln.rstrip(b"\r\n") + rng.choice([b"\r\n", b"\r", b"\n", b"\n\r"]) for ln in lines]
        return b"".join(out), None
    if kind == "damaged_gzip":
        packed = gzip.compress(data, mtime=0)
        cut = rng.randint(10, max(11, len(packed) - 1))
        damaged = bytearray(packed[:cut])
        if rng.random() < 0.5 and len(damaged) > 20:
            damaged[rng.randrange(10, len(damaged))] ^= 0x5A
        return bytes(damaged), EXTENSIONS[reader] + ".gz"
    raise ValueError(f"unknown mutation kind {kind!r}")


def corpus(n: int | None = None, seed: int | None = None) -> list[Case]:
    """``n`` cases spread evenly over the readers and, within a reader, over its seeds and kinds."""
    n = budget() if n is None else n
    seed = base_seed() if seed is None else seed
    per_reader = -(-n // len(READERS))
    cases: list[Case] = []
    for reader in READERS:
        seeds = SEEDS[reader]
        for i in range(per_reader):
            seed_file = seeds[i % len(seeds)]
            kind = KINDS[(i // len(seeds)) % len(KINDS)] if i < len(KINDS) * len(seeds) else None
            rng = _rng(seed, reader, seed_file, i)
            kind = kind or rng.choice(KINDS)
            original = (DATA / seed_file).read_bytes()
            data, ext = mutate(original, kind, rng, reader)
            stem = Path(seed_file).name.split(".")[0]
            name = f"{reader}-{i:05d}-{kind}-{stem}" + (ext if ext is not None else EXTENSIONS[reader])
            cases.append(Case(f"{reader}-{i:05d}-{kind}", reader, seed_file, kind, name, data))
    return cases  # ceil(n / readers) per reader: at least n


def write_corpus(folder: Path, cases: list[Case]) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {c.id: c.write(folder) for c in cases}


if __name__ == "__main__":  # python -m tests.reliability.mutations OUT_DIR [N]
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus")
    cs = corpus(int(sys.argv[2]) if len(sys.argv) > 2 else None)
    write_corpus(out, cs)
    print(f"{len(cs)} cases in {out}")
