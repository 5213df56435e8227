"""What a docking run amounts to, for the summary, the histograms and the chemical-space map.

Headless (no Qt): the GUI draws what these functions return, the CLI may print it.

    run_summary(rows, reference)   # n, docked, mean −Vina (the paper's metric), best, reference, PoseBusters
    distributions(rows)            # arrays of Vina score, QED, SA and molecular weight
    reference_values(smiles, score)  # the reference ligand's place on those axes
    chemical_space(smiles, ref)    # (n[+1], 2) map of Morgan fingerprints (t-SNE on Jaccard, PCA when few)

A row is anything with ``scores`` (and optionally ``valid`` and ``smiles``): a store ``ResultRow``,
the GUI's row, or a plain dict. A docked result carries ``scores["vina"]`` (kcal/mol, lower is
better), ``scores["vina_rmsd"]`` and ``scores["posebusters_ok"]``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from engine.grammar.chem import parse_smiles

# rows the map embeds with t-SNE from this many valid fingerprints on; fewer are projected by PCA
# (t-SNE needs its perplexity below the number of points and says little about a handful)
TSNE_MIN_POINTS = 8
# up to this many points the Tanimoto distances are computed whole by RDKit (n² floats); more go
# through scikit-learn's Jaccard metric on the bits (slower, but without the n × n matrix)
PRECOMPUTED_MAX = 5000
FP_RADIUS = 2
FP_BITS = 2048


def _field(row: Any, name: str, default=None):
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def _scores(row: Any) -> Mapping:
    s = _field(row, "scores")
    return s if isinstance(s, Mapping) else {}


def _number(value) -> float | None:
    """A finite float, or None (missing, text, NaN, True/False are not numbers here)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _valid(row: Any) -> bool:
    v = _field(row, "valid", True)
    return True if v is None else bool(v)


def _posebusters(value) -> bool | None:
    """The stored verdict as True/False, None when the checks did not run."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if not math.isfinite(float(value)) else bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "1", "pass", "passed"):
            return True
        if low in ("false", "no", "0", "fail", "failed"):
            return False
    return None


def _reference_value(reference: Any, name: str):
    if reference is None:
        return None
    return _field(reference, name)


def run_summary(rows: Iterable[Any], reference: Any = None) -> dict:
    """The figures of one docking run.

    ``n``: rows given; ``n_valid``: of them valid; ``n_docked``: valid rows with a Vina score;
    ``mean_neg_vina``: the paper's metric, mean −Vina over those (``engine.docking.paper_metric``);
    ``best_score`` / ``best_id``: the lowest Vina score and its row; ``median_score``;
    ``reference_score`` / ``reference_neg_vina`` / ``reference_rmsd`` / ``reference_name``: the
    reference ligand docked the same way (from the docking's ``reference``); ``n_checked``: docked
    rows with a PoseBusters verdict, ``n_posebusters_ok`` of them passing, ``posebusters_share`` the
    share (None when none was checked); ``better_than_reference``: docked rows scoring below the
    reference (None without one).
    """
    from engine.docking import paper_metric

    n = n_valid = 0
    docked: list[tuple[float, Any]] = []
    checked = passed = 0
    for row in rows:
        n += 1
        if not _valid(row):
            continue
        n_valid += 1
        scores = _scores(row)
        vina = _number(scores.get("vina"))
        if vina is None:
            continue
        docked.append((vina, _field(row, "id")))
        verdict = _posebusters(scores.get("posebusters_ok"))
        if verdict is not None:
            checked += 1
            passed += int(verdict)
    values = [v for v, _ in docked]
    best = min(docked, key=lambda t: t[0]) if docked else (None, None)
    ref_score = _number(_reference_value(reference, "score"))
    out = {
        "n": n, "n_valid": n_valid, "n_docked": len(docked),
        "mean_neg_vina": paper_metric(values),
        "mean_score": round(float(np.mean(values)), 3) if values else None,
        "median_score": round(float(np.median(values)), 3) if values else None,
        "best_score": best[0], "best_id": best[1],
        "reference_name": _reference_value(reference, "name"),
        "reference_score": ref_score,
        "reference_neg_vina": round(-ref_score, 3) if ref_score is not None else None,
        "reference_rmsd": _number(_reference_value(reference, "rmsd")),
        "n_checked": checked, "n_posebusters_ok": passed,
        "posebusters_share": round(passed / checked, 4) if checked else None,
        "better_than_reference": (sum(1 for v in values if v < ref_score) if ref_score is not None else None),
    }
    return out


# score name in the results -> other names the same figure may be stored under
_ALIASES = {"vina": ("vina",), "qed": ("qed", "QED"), "sa": ("sa", "sa_score", "SA"),
            "mw": ("mw", "MW", "mol_wt", "molecular_weight")}


def _score(scores: Mapping, key: str) -> float | None:
    for name in _ALIASES[key]:
        if name in scores:
            v = _number(scores[name])
            if v is not None:
                return v
    return None


def molecular_weight(smiles: str | None) -> float | None:
    """Average molecular weight (RDKit ``Descriptors.MolWt``, as the tasks' scores), None if the
    SMILES does not parse."""
    if not smiles:
        return None
    from rdkit.Chem import Descriptors

    mol, _ = parse_smiles(str(smiles))
    return round(float(Descriptors.MolWt(mol)), 2) if mol is not None else None


def distributions(rows: Iterable[Any]) -> dict:
    """Values for the histograms, over the valid rows: ``vina`` (kcal/mol, docked rows only),
    ``qed``, ``sa`` and ``mw`` (g/mol; computed with RDKit from the SMILES where a row lacks it).
    Each is a float array without missing values; ``ids`` maps each name to the row ids in the
    same order (None where a row has no id)."""
    values: dict[str, list[float]] = {k: [] for k in _ALIASES}
    ids: dict[str, list] = {k: [] for k in _ALIASES}
    for row in rows:
        if not _valid(row):
            continue
        scores = _scores(row)
        rid = _field(row, "id")
        for key in _ALIASES:
            v = _score(scores, key)
            if v is None and key == "mw":
                v = molecular_weight(_field(row, "smiles"))
            if v is not None:
                values[key].append(v)
                ids[key].append(rid)
    out: dict = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    out["ids"] = ids
    return out


def reference_values(smiles: str | None, score=None) -> dict:
    """The reference ligand's own values on the histograms' axes: its docked Vina ``score`` and
    the QED, SA and molecular weight the tasks compute (``engine.tasks.scoring.drug_scores``);
    None where unknown."""
    out = {"vina": _number(score), "qed": None, "sa": None, "mw": None}
    if not smiles:
        return out
    from engine.tasks.scoring import drug_scores

    mol, _ = parse_smiles(str(smiles))
    if mol is None:
        return out
    scores = drug_scores(mol)
    for key in ("qed", "sa", "mw"):
        out[key] = _number(scores.get(key))
    return out


def _fingerprints(smiles: Sequence[str | None]):
    """Boolean (n, FP_BITS) Morgan fingerprints, a mask of the SMILES RDKit could read, and the
    RDKit bit vectors of those."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    fps = np.zeros((len(smiles), FP_BITS), dtype=bool)
    ok = np.zeros(len(smiles), dtype=bool)
    vects = []
    RDLogger.DisableLog("rdApp.*")
    try:
        for i, smi in enumerate(smiles):
            if not smi or not isinstance(smi, str):
                continue
            try:
                mol = Chem.MolFromSmiles(smi)
            except Exception:  # noqa: BLE001 - RDKit raises on a few odd inputs instead of returning None
                mol = None
            if mol is None or mol.GetNumAtoms() == 0:
                continue
            fp = gen.GetFingerprint(mol)
            vects.append(fp)
            fps[i] = np.frombuffer(fp.ToBitString().encode(), dtype=np.uint8) == ord("1")
            ok[i] = True
    finally:
        RDLogger.EnableLog("rdApp.*")
    return fps, ok, vects


def tanimoto_distances(vects) -> np.ndarray:
    """1 − Tanimoto similarity between every pair of RDKit bit vectors (RDKit's bulk routine)."""
    from rdkit import DataStructs

    n = len(vects)
    d = np.zeros((n, n))
    for i in range(1, n):
        d[i, :i] = 1.0 - np.asarray(DataStructs.BulkTanimotoSimilarity(vects[i], vects[:i]))
    return d + d.T


def chemical_space(smiles: Sequence[str | None], reference: str | None = None, seed: int = 0) -> np.ndarray:
    """2D coordinates of the molecules, nearby points being similar molecules.

    Morgan fingerprints (radius 2, 2048 bits, RDKit); from ``TSNE_MIN_POINTS`` readable molecules
    on, t-SNE (scikit-learn) on the Tanimoto distance (1 − similarity, the Jaccard distance of the bits);
    fewer are projected by PCA of the bits. Returns an ``(n, 2)`` array, or ``(n + 1, 2)`` with
    the reference as the last row; a SMILES that does not parse gets a NaN row. The same input
    and seed give the same map.
    """
    items = list(smiles) + ([reference] if reference is not None else [])
    out = np.full((len(items), 2), np.nan)
    if not items:
        return out
    fps, ok, vects = _fingerprints(items)
    idx = np.flatnonzero(ok)
    m = len(idx)
    if m == 0:
        return out
    if m == 1:
        out[idx] = 0.0
        return out
    x = fps[idx]
    if m < TSNE_MIN_POINTS:
        from sklearn.decomposition import PCA

        k = min(2, m - 1)
        xf = x.astype(float)
        if np.allclose(xf, xf[0]):  # identical fingerprints: one point
            out[idx] = 0.0
            return out
        emb = PCA(n_components=k, random_state=seed).fit_transform(xf)
        if k == 1:
            emb = np.column_stack([emb[:, 0], np.zeros(m)])
        out[idx] = emb
        return out
    from sklearn.manifold import TSNE

    perplexity = float(max(2.0, min(30.0, (m - 1) / 3.0)))
    import warnings

    with warnings.catch_warnings():
        # scikit-learn warns that a boolean matrix is converted for the Jaccard metric
        warnings.simplefilter("ignore")
        if m <= PRECOMPUTED_MAX:
            tsne = TSNE(n_components=2, metric="precomputed", init="random", perplexity=perplexity,
                        random_state=seed, n_jobs=1)
            out[idx] = tsne.fit_transform(tanimoto_distances(vects))
        else:
            tsne = TSNE(n_components=2, metric="jaccard", init="random", perplexity=perplexity,
                        random_state=seed, n_jobs=1)
            out[idx] = tsne.fit_transform(x)
    return out


__all__ = ["TSNE_MIN_POINTS", "chemical_space", "distributions", "molecular_weight", "reference_values",
           "run_summary"]
