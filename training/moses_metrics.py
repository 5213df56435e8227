"""MOSES's metric suite, computed the way MOSES computes it, for samples of a GGUF drawn by the engine.

Metrics (Polykovskiy et al. 2020, "Molecular Sets (MOSES)", Frontiers in Pharmacology; the
definitions below follow the molsets 0.3.1 metric code, whose numbers the published table reports):

* **validity**: fraction of the samples RDKit parses and sanitises (an empty string is invalid);
  every later metric sees only the valid samples, as canonical SMILES, duplicates kept.
* **unique@k**: distinct canonical SMILES among the first k valid samples (over fewer than k when
  there are fewer: MOSES warns and does the same; the table says so).
* **FCD/Test**: Fréchet distance between Gaussians fitted to the penultimate-layer ChemNet
  activations (``fcd_torch``'s ChemNet weights, MIT) of the valid samples and of the test set.
  The test statistics are computed here over the test set (all 176,074 molecules unless
  ``--test-rows``; about 9 minutes on 2 cores, then cached). MOSES ships its own in molsets
  (``test_stats.npz``), but as a pickle, which product code never loads; the tests compare the two
  (5.8e-7 apart).
* **SNN/Test**: mean over the valid samples of the largest Tanimoto similarity to a test molecule
  (Morgan radius 2, 1,024 bits; two empty fingerprints count as similarity 1).
* **Frag/Test**, **Scaf/Test**: cosine similarity of the count vectors of BRICS fragments, and of
  Bemis–Murcko scaffolds with at least two rings (MOSES's ``min_rings=2``), samples against test.
* **IntDiv_p**: 1 − mean over samples x of (mean over samples y of T(x, y)^p)^(1/p), all ordered
  pairs, x = y included (for p = 1 this is 1 − the mean pairwise Tanimoto; the p = 2 form is
  MOSES's code, which takes the root per molecule before averaging).
* **novelty**: fraction of the distinct valid samples that are not in the MOSES train split (the
  train split re-canonicalised with this RDKit, cached).

Sampling goes through the engine (``engine.runtime.llama.Runtime``, the path ``logos generate``
takes) at the MOSES convention: temperature 1, no top-k, no top-p, no min-p, no repetition penalty.

    python -m training.moses_metrics --model resources/models/logos-demo-q8_0.gguf -n 10240

torch is imported only for ChemNet (``fcd_torch``), never by the engine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

PACKAGE = "molsets"
TEST = "moses/dataset/data/test.csv.gz"
TRAIN = "moses/dataset/data/train.csv.gz"
TEST_STATS = "moses/dataset/data/test_stats.npz"
FP_BITS = 1024
FP_RADIUS = 2
SCAFFOLD_MIN_RINGS = 2

# MOSES's published means (the molsets README / paper table, Test columns), metric -> value.
BASELINES: dict[str, dict[str, float]] = {
    "Train (MOSES)": {"validity": 1.0, "unique@1k": 1.0, "unique@10k": 1.0, "FCD/Test": 0.008,
                      "SNN/Test": 0.6419, "Frag/Test": 1.0, "Scaf/Test": 0.9907, "IntDiv": 0.8567,
                      "IntDiv2": 0.8508, "novelty": 1.0},
    "CharRNN": {"validity": 0.9748, "unique@1k": 1.0, "unique@10k": 0.9994, "FCD/Test": 0.0732,
                "SNN/Test": 0.6015, "Frag/Test": 0.9998, "Scaf/Test": 0.9242, "IntDiv": 0.8562,
                "IntDiv2": 0.8503, "novelty": 0.8419},
    "VAE": {"validity": 0.9767, "unique@1k": 1.0, "unique@10k": 0.9984, "FCD/Test": 0.099,
            "SNN/Test": 0.6257, "Frag/Test": 0.9994, "Scaf/Test": 0.9386, "IntDiv": 0.8558,
            "IntDiv2": 0.8498, "novelty": 0.6949},
    "JTN-VAE": {"validity": 1.0, "unique@1k": 1.0, "unique@10k": 0.9996, "FCD/Test": 0.3954,
                "SNN/Test": 0.5477, "Frag/Test": 0.9965, "Scaf/Test": 0.8964, "IntDiv": 0.8551,
                "IntDiv2": 0.8493, "novelty": 0.9143},
    "AAE": {"validity": 0.9368, "unique@1k": 1.0, "unique@10k": 0.9973, "FCD/Test": 0.5555,
            "SNN/Test": 0.6081, "Frag/Test": 0.991, "Scaf/Test": 0.9022, "IntDiv": 0.8557,
            "IntDiv2": 0.8499, "novelty": 0.7931},
    "LatentGAN": {"validity": 0.8966, "unique@1k": 1.0, "unique@10k": 0.9968, "FCD/Test": 0.2968,
                  "SNN/Test": 0.5371, "Frag/Test": 0.9986, "Scaf/Test": 0.8867, "IntDiv": 0.8565,
                  "IntDiv2": 0.8505, "novelty": 0.9498},
}
COLUMNS = ["validity", "unique@1k", "unique@10k", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test",
           "IntDiv", "IntDiv2", "novelty"]
# The goals at temperature 1.
GOALS = {"validity": (">=", 0.95), "FCD/Test": ("<=", 0.2)}


# ----------------------------------------------------------------------------------------------
# molecules

def _quiet_rdkit():
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def get_mol(smiles: str):
    """An RDKit molecule, or None where the text is empty or does not parse and sanitise."""
    from rdkit import Chem

    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical(smiles: str) -> str | None:
    from rdkit import Chem

    mol = get_mol(smiles)
    return Chem.MolToSmiles(mol) if mol is not None else None


def valid_canonical(samples: list[str]) -> list[str]:
    """Canonical SMILES of the valid samples, in order, duplicates kept (MOSES's ``remove_invalid``)."""
    _quiet_rdkit()
    out = []
    for s in samples:
        c = canonical(s)
        if c is not None:
            out.append(c)
    return out


def read_smiles_column(text: str, where: str) -> list[str]:
    """The SMILES column of a MOSES csv; a missing column is named with the file."""
    rows = text.splitlines()
    if not rows:
        raise ValueError(f"{where}: empty file")
    header = rows[0].split(",")
    if "SMILES" not in header:
        raise ValueError(f"{where}, line 1: no SMILES column (header {rows[0]!r})")
    col = header.index("SMILES")
    return [r.split(",")[col] for r in rows[1:] if r]


def moses_split(member: str) -> list[str]:
    from engine import datasets

    return read_smiles_column(datasets.read_text(PACKAGE, member), f"{PACKAGE}:{member}")


# ----------------------------------------------------------------------------------------------
# fingerprints, fragments, scaffolds

def fingerprints(mols) -> np.ndarray:
    """Morgan (radius 2, 1,024 bits) fingerprints, packed 8 bits a byte: shape (n, 128), uint8."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    out = np.zeros((len(mols), FP_BITS // 8), dtype=np.uint8)
    for i, m in enumerate(mols):
        out[i] = np.packbits(gen.GetFingerprintAsNumPy(m).astype(bool))
    return out


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=FP_BITS).astype(np.float32)


def _tanimoto_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto similarities of unpacked rows a (n, bits) against b (m, bits): (n, m); two empty
    fingerprints have similarity 1 (MOSES replaces the 0/0 with 1)."""
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = inter / union
    sim[union == 0] = 1.0
    return sim


def max_similarity(ref_packed: np.ndarray, gen_packed: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each gen row, its largest Tanimoto similarity to any ref row."""
    gen = _unpack(gen_packed)
    best = np.zeros(len(gen), dtype=np.float32)
    for j in range(0, len(ref_packed), chunk):
        sim = _tanimoto_block(_unpack(ref_packed[j:j + chunk]), gen)
        np.maximum(best, sim.max(0), out=best)
    return best


def snn(ref_packed: np.ndarray, gen_packed: np.ndarray, weights: np.ndarray | None = None) -> float:
    """SNN: mean (weighted by each row's count) of the nearest-neighbour similarity to ref."""
    best = max_similarity(ref_packed, gen_packed).astype(np.float64)
    w = np.ones(len(best)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float((best * w).sum() / w.sum())


def internal_diversity(gen_packed: np.ndarray, weights: np.ndarray | None = None, p: int = 1,
                       chunk: int = 2048) -> float:
    """IntDiv_p over a multiset given as distinct fingerprints and their counts."""
    w = np.ones(len(gen_packed)) if weights is None else np.asarray(weights, dtype=np.float64)
    n = w.sum()
    allfp = _unpack(gen_packed)
    per_row = np.zeros(len(allfp))
    for i in range(0, len(allfp), chunk):
        sim = _tanimoto_block(allfp[i:i + chunk], allfp).astype(np.float64)
        if p != 1:
            sim = sim ** p
        per_row[i:i + chunk] = (sim @ w) / n
    if p != 1:
        per_row = per_row ** (1.0 / p)
    return float(1.0 - (per_row * w).sum() / n)


def fragments(mol) -> list[str]:
    """BRICS fragments of one molecule as canonical SMILES (with their dummy-atom labels)."""
    from rdkit import Chem

    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def scaffold(mol, min_rings: int = SCAFFOLD_MIN_RINGS) -> str | None:
    """Bemis–Murcko scaffold SMILES, or None when it has fewer than ``min_rings`` rings."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        scaf = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smi = Chem.MolToSmiles(scaf)
    if not smi or scaf.GetRingInfo().NumRings() < min_rings:
        return None
    return smi


def count_fragments(mols, weights=None) -> Counter:
    out: Counter = Counter()
    for i, m in enumerate(mols):
        k = 1 if weights is None else int(weights[i])
        for f in fragments(m):
            out[f] += k
    return out


def count_scaffolds(mols, weights=None) -> Counter:
    out: Counter = Counter()
    for i, m in enumerate(mols):
        s = scaffold(m)
        if s is not None:
            out[s] += 1 if weights is None else int(weights[i])
    return out


def cosine(ref: dict, gen: dict) -> float:
    """Cosine similarity of two count vectors keyed by name (absent = 0); NaN when one is empty."""
    if not ref or not gen:
        return float("nan")
    dot = sum(v * gen.get(k, 0) for k, v in ref.items())
    nr = np.sqrt(sum(v * v for v in ref.values()))
    ng = np.sqrt(sum(v * v for v in gen.values()))
    return float(dot / (nr * ng))


# ----------------------------------------------------------------------------------------------
# FCD

def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 − mu2||² + tr(S1) + tr(S2) − 2 tr((S1 S2)^½); the last trace from the eigenvalues of
    the symmetric S1^½ S2 S1^½, which has the same spectrum as S1 S2."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(root @ s2 @ root)
    tr_cross = np.sqrt(np.clip(ev, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_cross)


class ChemNet:
    """ChemNet's penultimate activations through ``fcd_torch`` (its shipped weights)."""

    def __init__(self, threads: int | None = None, batch_size: int = 512):
        try:
            import torch
            from fcd_torch import FCD
        except ImportError as exc:  # pragma: no cover - the training extra installs both
            raise SystemExit(f"FCD needs torch and fcd_torch (pip install -e .[training]): {exc}")
        if threads:
            torch.set_num_threads(int(threads))
        self._fcd = FCD(device="cpu", n_jobs=1, batch_size=batch_size)
        self._chunk = 2 * batch_size

    def activations(self, smiles: list[str]) -> np.ndarray:
        """(n, 512) activations. fcd_torch keeps each batch's last LSTM step as a view of the whole
        (batch, 350, 512) output until it stacks them (about 370 MB a batch of 512: 126 GB for the
        176,074 test molecules), so it is called on two batches at a time."""
        import warnings

        smiles = list(smiles)
        out = np.zeros((len(smiles), 512), dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # np.row_stack inside fcd_torch
            for i in range(0, len(smiles), self._chunk):
                out[i:i + self._chunk] = self._fcd.get_predictions(smiles[i:i + self._chunk])
        return out.astype(np.float64)


def gaussian(acts: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of activation rows, each row counted ``weights[i]`` times."""
    fw = None if weights is None else np.asarray(weights, dtype=np.int64)
    mu = np.average(acts, axis=0, weights=fw)
    sigma = np.cov(acts.T, fweights=fw)
    return mu, sigma


# ----------------------------------------------------------------------------------------------
# reference statistics, cached

def _cache_root() -> Path:
    from engine import paths

    return paths.cache_dir() / "moses_metrics"


def _versions() -> str:
    import rdkit

    from engine import datasets

    try:
        from importlib.metadata import version

        fcd = version("fcd_torch")
    except Exception:  # noqa: BLE001 - not installed: FCD refuses later with its own message
        fcd = "none"
    return f"{datasets.archive(PACKAGE).name}|rdkit {rdkit.__version__}|fcd_torch {fcd}"


def _key(*parts) -> str:
    return hashlib.sha256("|".join(map(str, (_versions(),) + parts)).encode()).hexdigest()[:16]


def train_set(rows: int | None = None, log=print) -> set[str]:
    """The MOSES train split (its first ``rows``; all by default), canonicalised with this RDKit
    (cached as gzip text)."""
    smiles = moses_split(TRAIN)
    if rows:
        smiles = smiles[:rows]
    path = _cache_root() / f"train_canonical_{len(smiles)}_{_key('train', len(smiles))}.txt.gz"
    if path.is_file():
        return set(gzip.decompress(path.read_bytes()).decode().split())
    t = time.time()
    _quiet_rdkit()
    out = []
    for s in smiles:
        c = canonical(s)
        out.append(c if c is not None else s)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress("\n".join(out).encode(), 6))
    tmp.replace(path)
    log(f"canonicalised the MOSES train split ({len(out):,} rows) in {time.time() - t:.0f} s -> {path}")
    return set(out)


def test_reference(rows: int | None = None, log=print) -> dict:
    """Fingerprints, fragment and scaffold counts of the MOSES test split (first ``rows``; all by
    default), cached."""
    smiles = moses_split(TEST)
    if rows:
        smiles = smiles[:rows]
    root = _cache_root() / f"test_{len(smiles)}_{_key('test', len(smiles))}"
    if (root / "fps.npy").is_file():
        return {"fps": np.load(root / "fps.npy"), "n": len(smiles),
                "frag": Counter(json.loads((root / "frag.json").read_text())),
                "scaf": Counter(json.loads((root / "scaf.json").read_text()))}
    t = time.time()
    _quiet_rdkit()
    mols = [m for m in (get_mol(s) for s in smiles) if m is not None]
    ref = {"fps": fingerprints(mols), "frag": count_fragments(mols), "scaf": count_scaffolds(mols),
           "n": len(smiles)}
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "fps.npy", ref["fps"])
    (root / "frag.json").write_text(json.dumps(ref["frag"]))
    (root / "scaf.json").write_text(json.dumps(ref["scaf"]))
    log(f"test reference ({len(smiles):,} molecules: fingerprints, BRICS fragments, scaffolds) in "
        f"{time.time() - t:.0f} s -> {root}")
    return ref


def own_fcd_stats(chemnet: ChemNet, rows: int | None = None, log=print) -> tuple[np.ndarray, np.ndarray, float]:
    """ChemNet statistics of the first ``rows`` test molecules computed here (cached); the third
    value is the seconds the computation took (0 when read from the cache)."""
    smiles = moses_split(TEST)
    if rows:
        smiles = smiles[:rows]
    path = _cache_root() / f"fcd_test_{len(smiles)}_{_key('fcd', len(smiles))}.npz"
    if path.is_file():
        z = np.load(path)
        return z["mu"], z["sigma"], 0.0
    t = time.time()
    mu, sigma = gaussian(chemnet.activations(smiles))
    took = time.time() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mu=mu, sigma=sigma)
    log(f"ChemNet statistics of {len(smiles):,} test molecules in {took:.0f} s -> {path}")
    return mu, sigma, took


# ----------------------------------------------------------------------------------------------
# the suite

def fcd_floor(chemnet: ChemNet, fcd_ref: tuple, n: int, seed: int = 0) -> float:
    """FCD/Test of ``n`` random MOSES test molecules against ``fcd_ref``: the finite-sample floor a
    perfect sampler would score with ``n`` valid samples (it halves as ``n`` doubles)."""
    rows = moses_split(TEST)
    pick = np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False)
    return frechet_distance(*gaussian(chemnet.activations([rows[i] for i in pick])), *fcd_ref)


def compute(samples: list[str], *, ref: dict, train: set[str], fcd_ref: tuple | None,
            chemnet: ChemNet | None, ks=(1000, 10000)) -> dict:
    """Every metric of the suite for raw samples. ``ref``: test_reference(); ``fcd_ref``: (mu,
    sigma) of the test set, or None to leave FCD out."""
    _quiet_rdkit()
    n = len(samples)
    valid = valid_canonical(samples)
    out: dict = {"samples": n, "valid": len(valid), "validity": len(valid) / n if n else 0.0}
    for k in ks:
        head = valid[:k]
        name = f"unique@{k // 1000}k" if k % 1000 == 0 else f"unique@{k}"
        out[name] = len(set(head)) / len(head) if head else 0.0
        out[name + "_over"] = len(head)
    if not valid:
        return out
    counts = Counter(valid)
    distinct = list(counts)
    weights = np.array([counts[s] for s in distinct], dtype=np.float64)
    mols = [get_mol(s) for s in distinct]
    fps = fingerprints(mols)
    if fcd_ref is not None and chemnet is not None:
        if len(valid) < 2:
            out["FCD/Test"] = float("nan")
        else:
            mu, sigma = gaussian(chemnet.activations(distinct), weights)
            out["FCD/Test"] = frechet_distance(mu, sigma, *fcd_ref)
    out["SNN/Test"] = snn(ref["fps"], fps, weights)
    out["Frag/Test"] = cosine(ref["frag"], count_fragments(mols, weights))
    out["Scaf/Test"] = cosine(ref["scaf"], count_scaffolds(mols, weights))
    out["IntDiv"] = internal_diversity(fps, weights, p=1)
    out["IntDiv2"] = internal_diversity(fps, weights, p=2)
    out["novelty"] = len(set(distinct) - train) / len(distinct)
    return out


def sample_engine(model: Path, n: int, seed: int = 0, threads: int = 2, batch: int = 256,
                  max_new_tokens: int = 120, log=print) -> list[str]:
    """``n`` samples of ``<MoleculeS>`` through the engine's runtime at the MOSES convention
    (temperature 1, top-k 0, top-p 1, min-p 0, repetition penalty 1)."""
    from engine.runtime.llama import Runtime
    from engine.runtime.sampling import SamplingParams

    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0,
                            max_new_tokens=max_new_tokens)
    # one sequence per sample, ``batch`` at a time (256 draw about 20 times faster than 64 here)
    rt = Runtime.load(model, n_gpu_layers=0, n_ctx=4096, n_threads=threads, n_seq_max=batch)
    texts: list[str] = []
    t = time.time()
    try:
        stop = rt.token_id("<MoleculeE>")
        if stop is None:
            raise SystemExit(f"{model}: the vocabulary has no <MoleculeE> token; not a LOGOS molecule model")
        while len(texts) < n:
            k = min(batch, n - len(texts))
            got, _ = rt.generate("<MoleculeS>", n=k, params=params, seed=seed + len(texts), stop_ids=[stop])
            texts += [smp.text.split("<MoleculeE>", 1)[0] for smp in got]
            if len(texts) % (batch * 8) == 0:
                log(f"  {len(texts):,}/{n:,} samples ({time.time() - t:.0f} s)")
    finally:
        rt.close()
    return texts


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and np.isnan(v):
        return "nan"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def table(result: dict, label: str) -> str:
    """A markdown table: our row beside MOSES's published baselines."""
    head = "| model | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    lines.append(f"| **{label}** | " + " | ".join(_fmt(result.get(c)) for c in COLUMNS) + " |")
    for name, row in BASELINES.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def goal_lines(result: dict) -> list[str]:
    out = []
    for key, (op, target) in GOALS.items():
        v = result.get(key)
        if v is None:
            continue
        ok = v >= target if op == ">=" else v <= target
        out.append(f"{key} {v:.4f} (goal {op} {target}): {'met' if ok else 'NOT met'}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.moses_metrics", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="GGUF to sample through the engine")
    src.add_argument("--samples", type=Path, help="a text file of samples, one a line, instead of sampling")
    ap.add_argument("-n", type=int, default=10240, help="samples to draw (default 10,240)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-samples", type=Path, help="write the raw samples here, one a line")
    ap.add_argument("--test-rows", type=int, default=0,
                    help="use the first N test molecules for SNN/Frag/Scaf (and own FCD); 0 = all 176,074")
    ap.add_argument("--train-rows", type=int, default=0,
                    help="novelty against the first N train molecules; 0 = all 1,584,663")
    ap.add_argument("--no-fcd", action="store_true", help="leave FCD out (no torch needed)")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the FCD of as many random test molecules as there are valid samples")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--card", action="store_true",
                    help="with --model: put FCD/Test, SNN/Test, Frag/Test, Scaf/Test and IntDiv in the molecule task "
                         "of the GGUF's embedded card (and its card JSON and MODEL_CARD.md beside it)")
    args = ap.parse_args(argv)
    if args.card and args.model is None:
        ap.error("--card needs --model (the GGUF whose card takes the figures)")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    timings: dict[str, float] = {}
    if args.samples is not None:
        if not args.samples.is_file():
            ap.error(f"{args.samples}: no such file")
        samples = args.samples.read_text().split("\n")
        if samples and samples[-1] == "":
            samples.pop()
        label = args.samples.name
    else:
        if not args.model.is_file():
            ap.error(f"{args.model}: no such file")
        if args.n < 1:
            ap.error("-n must be at least 1")
        from engine.runtime.llama import ModelFileError, PlanError, RuntimeLoadError

        t = time.time()
        try:
            samples = sample_engine(args.model, args.n, args.seed, args.threads, log=log)
        except (ModelFileError, PlanError, RuntimeLoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        timings["sampling_s"] = time.time() - t
        label = args.model.name
        if args.save_samples:
            args.save_samples.write_text("\n".join(s.replace("\n", " ") for s in samples) + "\n")
    from engine import datasets

    t = time.time()
    try:
        ref = test_reference(args.test_rows or None, log=log)
    except datasets.DatasetMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timings["test_reference_s"] = time.time() - t
    t = time.time()
    train = train_set(args.train_rows or None, log=log)
    timings["train_set_s"] = time.time() - t
    chemnet = fcd_ref = None
    fcd_label = "none"
    if not args.no_fcd:
        chemnet = ChemNet(threads=args.threads)
        t = time.time()
        mu, sigma, took = own_fcd_stats(chemnet, args.test_rows or None, log=log)
        fcd_ref = (mu, sigma)
        timings["fcd_reference_s"] = took
        fcd_label = f"computed here over {ref['n']:,} test molecules"
    t = time.time()
    result = compute(samples, ref=ref, train=train, fcd_ref=fcd_ref, chemnet=chemnet)
    timings["metrics_s"] = time.time() - t
    if fcd_ref is not None and not args.no_floor and result["valid"] >= 2:
        t = time.time()
        result["FCD floor"] = fcd_floor(chemnet, fcd_ref, result["valid"], args.seed)
        timings["fcd_floor_s"] = time.time() - t
    result.update({"model": label, "sampling": "T 1, top-k 0, top-p 1, min-p 0, penalty 1 (engine.runtime)",
                   "test_molecules": ref["n"], "fcd_reference": fcd_label,
                   "timings_s": {k: round(v, 1) for k, v in timings.items()}})
    print(table(result, label))
    print()
    print(f"{result['samples']:,} samples, {result['valid']:,} valid; SNN/Frag/Scaf against "
          f"{ref['n']:,} test molecules; FCD reference: {fcd_label}")
    for k in ("1k", "10k"):
        over = result.get(f"unique@{k}_over")
        if over is not None and over < int(k[:-1]) * 1000:
            print(f"unique@{k} is over the {over:,} valid samples there are (fewer than {k})")
    if "FCD floor" in result:
        print(f"FCD/Test of {result['valid']:,} random test molecules against the same reference: "
              f"{result['FCD floor']:.4f} (what a model that samples the test distribution exactly scores "
              "at this sample size)")
    for line in goal_lines(result):
        print(line)
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.card:
        from training.card import _today, add_suite_figures, suite_figures

        figs = suite_figures(result, f"llama.cpp on the GGUF, seed {args.seed}, {_today()}, "
                                     "python -m training.moses_metrics")
        try:
            add_suite_figures(args.model, figs)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"card: {', '.join(f.text() for f in figs)} -> {args.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
