"""Real public data -> LOGOS grammar text, with train/validation splits and a report.

Each builder returns a :class:`Split` (train rows, validation rows, held-out rows for evaluation)
and fills a :class:`BuildReport` with what it read, kept and skipped (and why). Sources, all real
and read from registry packages through ``engine.datasets`` (see requirements/data.txt):

* molecules: the MOSES train split (molsets 0.3.1, MIT). MOSES's ``test_scaffolds`` set is read
  only to make sure none of its molecules reaches training.
* retrosynthesis: datamol 0.13's retro templates (Apache-2.0) applied to real MOSES molecules.
  These pairs are TEMPLATE-GENERATED (labelled so everywhere), not USPTO reactions.
* proteins: UniProt sequences from Debian's mmseqs2-examples (CC BY 4.0).
* materials: CoRE MOF 2019 frameworks (CC BY 4.0) decomposed by ``engine.structures.framework``.
* pockets: real protein-ligand complexes (posebusters, MDAnalysisTests) through
  ``engine.structures.pocket``.

User files (``load_rows``) are text (one record per line), JSONL (``record``/``text`` key) or CSV
(a ``record`` column); rows that the grammar cannot parse are skipped and counted with file, line
and reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine import datasets

MOSES = "molsets"
MOSES_TRAIN = "moses/dataset/data/train.csv.gz"
MOSES_TEST_SCAFFOLDS = "moses/dataset/data/test_scaffolds.csv.gz"
DATAMOL = "datamol"
DATAMOL_REACTIONS = "datamol/data/reactions.json"
MMSEQS_FASTA = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
AMINO = set("ACDEFGHIKLMNPQRSTVWY")

MOL_S, MOL_E = "<MoleculeS>", "<MoleculeE>"
PROT_S, PROT_E = "<ProteinS>", "<ProteinE>"
POCK_S, POCK_E = "<PocketS>", "<PocketE>"
MAT_S, MAT_E = "<MaterialS>", "<MaterialE>"
METAL_S, METAL_E = "<MetalS>", "<MetalE>"
REVERSE = "<ReverseReact>"
SEARCH = "<Search>"


@dataclass
class BuildReport:
    """What each builder read, kept and skipped; ``skipped`` maps a reason to a count."""

    read: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    skipped: dict[str, Counter] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # first few skip messages (file:line: why)
    sources: dict[str, str] = field(default_factory=dict)

    def skip(self, source: str, reason: str, where: str | None = None) -> None:
        self.skipped.setdefault(source, Counter())[reason] += 1
        if where is not None and len(self.examples) < 50:
            self.examples.append(f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"read": dict(self.read), "kept": dict(self.kept),
                "skipped": {k: dict(v) for k, v in self.skipped.items()},
                "skip_examples": list(self.examples), "sources": dict(self.sources)}


@dataclass
class Split:
    train: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    heldout: list = field(default_factory=list)  # builder-specific items for evaluation

    def extend(self, other: "Split") -> None:
        self.train += other.train
        self.validation += other.validation
        self.heldout += other.heldout


def _split(items: list, n_val: int, n_heldout: int, seed: int) -> tuple[list, list, list]:
    rng = random.Random(seed)
    items = list(items)
    rng.shuffle(items)
    return items[n_val + n_heldout:], items[:n_val], items[n_val:n_val + n_heldout]


# ----------------------------------------------------------------------------------------------
# records (the grammar's layouts, LOGOS-GRAMMAR.md)

def molecule_record(smiles: str) -> str:
    return f"{MOL_S}{smiles}{MOL_E}"


def retro_record(product: str, reactants: list[str]) -> str:
    return f"{MOL_S}{product}{MOL_E}{REVERSE}" + "".join(molecule_record(r) for r in reactants)


def protein_record(seq: str, pocket: set[int] | None = None, residue_text=None) -> str:
    """A protein block; residues at ``pocket`` positions (0-based) are wrapped in Pocket tags."""
    if not pocket:
        return f"{PROT_S}{seq}{PROT_E}"
    parts = []
    for i, aa in enumerate(seq):
        if i in pocket:
            parts.append(f"{POCK_S}{residue_text(aa) if residue_text else aa}{POCK_E}")
        else:
            parts.append(aa)
    return PROT_S + "".join(parts) + PROT_E


def material_record(metal: str, linkers: list[str]) -> str:
    return f"{MAT_S}{METAL_S}{metal}{METAL_E}" + "".join(molecule_record(s) for s in linkers) + MAT_E


def canonical(smiles: str) -> str | None:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    return Chem.MolToSmiles(mol)


# ----------------------------------------------------------------------------------------------
# molecules: MOSES

def moses_smiles(member: str = MOSES_TRAIN) -> list[str]:
    text = datasets.read_text(MOSES, member)
    rows = text.splitlines()
    header = rows[0].split(",")
    col = header.index("SMILES")
    return [r.split(",")[col] for r in rows[1:] if r]


def build_molecules(n_train: int, n_val: int, n_heldout: int, seed: int,
                    report: BuildReport) -> tuple[Split, set[str]]:
    """MOSES train molecules as ``<MoleculeS>`` records.

    Returns the split (heldout = canonical SMILES kept aside) and the set of ALL MOSES train
    canonical SMILES that were sampled (the novelty reference is the whole train file, see
    training.evaluate)."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    src = f"{MOSES} {MOSES_TRAIN}"
    report.sources["molecules"] = "MOSES train split (molsets 0.3.1, MIT)"
    all_train = moses_smiles()
    forbidden = set(moses_smiles(MOSES_TEST_SCAFFOLDS))
    rng = random.Random(seed)
    picked = rng.sample(range(len(all_train)), min(len(all_train), n_train + n_val + n_heldout))
    out: list[str] = []
    for i in picked:
        report.read["molecules"] += 1
        smi = all_train[i]
        can = canonical(smi)
        if can is None:
            report.skip("molecules", "RDKit cannot parse the SMILES", f"{src}:{i + 2}")
            continue
        if smi in forbidden or can in forbidden:
            report.skip("molecules", "molecule is in MOSES test_scaffolds", f"{src}:{i + 2}")
            continue
        out.append(can)
    train, val, held = out[n_val + n_heldout:], out[:n_val], out[n_val:n_val + n_heldout]
    report.kept["molecules"] += len(out)
    split = Split([molecule_record(s) for s in train], [molecule_record(s) for s in val], held)
    return split, set(out)


# ----------------------------------------------------------------------------------------------
# retrosynthesis: datamol retro templates applied to real molecules (template-generated)

def load_templates() -> list[tuple[str, object]]:
    from rdkit.Chem import AllChem

    data = json.loads(datasets.read_text(DATAMOL, DATAMOL_REACTIONS))
    out = []
    for name in sorted(data, key=lambda k: (data[k].get("tier", 9), k)):
        smarts = data[name].get("retro_smarts")
        if not smarts:
            continue
        try:
            rxn = AllChem.ReactionFromSmarts(smarts)
            rxn.Initialize()
        except Exception:  # noqa: BLE001 - a template RDKit cannot read is skipped
            continue
        out.append((name, rxn))
    return out


def apply_retro(smiles: str, templates) -> tuple[str, list[str]] | None:
    """The first template (tier, then name order) that gives sane reactants: (name, reactants).

    Reactants are canonical SMILES, sorted largest first (heavy atoms, then text)."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    elements = {a.GetSymbol() for a in mol.GetAtoms()}
    for name, rxn in templates:
        if not mol.HasSubstructMatch(rxn.GetReactantTemplate(0)):
            continue
        try:
            outcomes = rxn.RunReactants((mol,), 5)
        except Exception:  # noqa: BLE001
            continue
        candidates = []
        for outcome in outcomes:
            parts = []
            for frag in outcome:
                try:
                    Chem.SanitizeMol(frag)
                    s = Chem.MolToSmiles(frag)
                except Exception:  # noqa: BLE001
                    parts = None
                    break
                m = Chem.MolFromSmiles(s)
                if m is None or any(a.GetNumRadicalElectrons() for a in m.GetAtoms()):
                    parts = None
                    break
                parts.append(Chem.MolToSmiles(m))
            # every element of the product must come from a reactant (the grammar checks this too:
            # a few datamol templates leave out the reagent that brings N or O)
            if parts and all(p != smiles for p in parts) and elements <= {
                    a.GetSymbol() for p in parts for a in Chem.MolFromSmiles(p).GetAtoms()}:
                parts.sort(key=lambda s: (-Chem.MolFromSmiles(s).GetNumHeavyAtoms(), s))
                candidates.append(parts)
        if candidates:
            candidates.sort()
            return name, candidates[0]
    return None


def build_retrosynthesis(products: list[str], n_val: int, n_heldout: int, seed: int,
                         report: BuildReport) -> Split:
    """Template-generated retrosynthesis pairs; heldout = (product, reactants, template)."""
    report.sources["retrosynthesis"] = ("TEMPLATE-GENERATED: datamol 0.13 retro templates "
                                        "(Apache-2.0) applied to MOSES molecules; not USPTO")
    templates = load_templates()
    pairs = []
    for smi in products:
        report.read["retrosynthesis"] += 1
        res = apply_retro(smi, templates)
        if res is None:
            report.skip("retrosynthesis", "no template applies")
            continue
        pairs.append((smi, res[1], res[0]))
    report.kept["retrosynthesis"] += len(pairs)
    train, val, held = _split(pairs, n_val, n_heldout, seed)
    return Split([retro_record(p, r) for p, r, _ in train], [retro_record(p, r) for p, r, _ in val], held)


# ----------------------------------------------------------------------------------------------
# proteins: UniProt sequences (mmseqs2-examples)

def read_fasta(path: Path) -> list[tuple[str, str]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    out, name, seq = [], None, []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    out.append((name, "".join(seq)))
                name, seq = line[1:].split()[0], []
            elif line:
                seq.append(line)
    if name is not None:
        out.append((name, "".join(seq)))
    return out


def build_proteins(n_train: int, n_val: int, max_len: int, seed: int, report: BuildReport,
                   fasta: Path = MMSEQS_FASTA) -> Split:
    report.sources["proteins"] = "UniProt sequences from Debian mmseqs2-examples (CC BY 4.0)"
    seqs = []
    for name, seq in read_fasta(fasta):
        report.read["proteins"] += 1
        if len(seq) > max_len:
            report.skip("proteins", f"longer than {max_len} residues")
            continue
        if set(seq) - AMINO:
            report.skip("proteins", "non-standard residue letters", f"{fasta}:{name}")
            continue
        seqs.append(seq)
    rng = random.Random(seed)
    rng.shuffle(seqs)
    seqs = seqs[:n_train + n_val]
    report.kept["proteins"] += len(seqs)
    return Split([protein_record(s) for s in seqs[n_val:]], [protein_record(s) for s in seqs[:n_val]])


# ----------------------------------------------------------------------------------------------
# user files and project rows

def validate_record(text: str) -> str | None:
    """None when the grammar accepts ``text``, else the reason."""
    from engine.grammar import codec

    try:
        decoded = codec.decode(text)
    except Exception as exc:  # noqa: BLE001 - the codec's reason is reported to the user
        return str(exc) or exc.__class__.__name__
    if not decoded.valid:
        return "; ".join(decoded.reasons) or "not a valid LOGOS record"
    return None


def _rows_of(path: Path):
    """(line number, text) for each row of a text, JSONL or CSV file."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    suffix = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
    if suffix in (".jsonl", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"not JSON ({exc.msg})"
                continue
            rec = obj.get("record") or obj.get("text") if isinstance(obj, dict) else None
            yield n, rec, None if rec else "no 'record' or 'text' field"
    elif suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        if not reader.fieldnames or "record" not in reader.fieldnames:
            raise ValueError(f"{path}:1: a CSV needs a 'record' column (found {reader.fieldnames})")
        for n, row in enumerate(reader, 2):
            rec = row.get("record")
            yield n, rec, None if rec else "empty record"
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield n, line.strip(), None


def load_rows(files: list[Path], report: BuildReport, validate=validate_record) -> list[str]:
    """Records from user files; unparseable rows are skipped and counted (file:line: reason)."""
    out = []
    for path in files:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such data file")
        for n, rec, why in _rows_of(path):
            report.read[str(path)] += 1
            if why is None:
                why = validate(rec)
            if why is not None:
                report.skip(str(path), why, f"{path}:{n}")
                continue
            out.append(rec)
            report.kept[str(path)] += 1
    return out


def project_rows(project_path: Path, report: BuildReport, valid_only: bool = True,
                 validate=validate_record) -> list[str]:
    """Records of a project's results (``engine.store``), checked by the grammar like file rows."""
    from engine.store.project import Project
    from engine.store import queries

    out = []
    with Project.open(project_path) as p:
        offset = 0
        while True:
            page = p.query_results(queries.ResultQuery(offset=offset, limit=500))
            rows = list(getattr(page, "rows", page))
            if not rows:
                break
            for row in rows:
                report.read[str(project_path)] += 1
                rec = getattr(row, "record", None)
                if valid_only and not getattr(row, "valid", True):
                    report.skip(str(project_path), "result marked invalid", f"{project_path}:result {row.id}")
                    continue
                why = validate(rec) if rec else "empty record"
                if why is not None:
                    report.skip(str(project_path), why, f"{project_path}:result {getattr(row, 'id', '?')}")
                    continue
                out.append(rec)
                report.kept[str(project_path)] += 1
            offset += len(rows)
    return out


def split_rows(rows: list[str], val_fraction: float, seed: int) -> Split:
    n_val = max(1, int(len(rows) * val_fraction)) if len(rows) > 1 else 0
    train, val, _ = _split(rows, n_val, 0, seed)
    return Split(train, val)
