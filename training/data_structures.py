"""Grammar text from real structures: CoRE MOF materials and pocket-annotated complexes.

Both go through ``engine.structures`` (``framework.decompose``, ``pocket.find_pocket``): the
training data is written by the same code that the app uses to encode a user's files.

DEFAULTS of the demonstration data (documented in the model card):
* materials: every ``materials_every``-th CIF of CoRE MOF 2019-ASR; only complete records
  (``Framework.ok``: a metal node and only sane linkers) are kept.
* pockets: a chain longer than ``POCKET_WINDOW`` residues is cut to the window of that length
  centred on its contact residues, so that a ``<Search>`` record fits the small model's context.
"""

from __future__ import annotations

import random

from training.data import BuildReport, Split

POCKET_WINDOW = 100

# Real protein-ligand complexes shipped in registry packages (requirements/data.txt), with the
# ligand to use where the file holds several hetero groups (None: the pocket module chooses).
POSEBUSTERS = ("1ia1", "1of6", "1s3v", "1uou")
MDA_FILES = (
    "MDAnalysisTests/data/1hvr.pdb", "MDAnalysisTests/data/1a28.pdb.gz", "MDAnalysisTests/data/19hc.pdb.gz",
    "MDAnalysisTests/data/4E43.pdb", "MDAnalysisTests/data/5a7u.pdb",
    "MDAnalysisTests/data/mmcif/3KPR.cif.gz", "MDAnalysisTests/data/mmcif/3PWP.cif.gz",
    "MDAnalysisTests/data/mmcif/7ETN.cif.gz", "MDAnalysisTests/data/mmcif/1BD2.cif.gz",
    "MDAnalysisTests/data/analysis/1k5i_c36.pdb.gz",
)
MDA_DSSP = "MDAnalysisTests/data/dssp/"


def build_materials(s, report: BuildReport) -> Split:
    """CoRE MOF 2019-ASR frameworks -> ``<MaterialS>`` records; heldout = held-out records."""
    from engine.structures import framework

    report.sources["materials"] = "CoRE MOF 2019-ASR (core-mof 2019.1; CC BY 4.0 data), decomposed by engine.structures.framework"
    total = 12020  # CIFs in 2019-ASR (about); ``every`` spreads the sample over the archive
    every = max(1, total // max(1, s.materials))
    records = []
    for name, cif in framework.iter_core_mof("2019-ASR", limit=s.materials, every=every):
        report.read["materials"] += 1
        fw = framework.decompose(cif, name=name, timeout=5.0)
        if not fw.ok or not fw.record:
            report.skip("materials", (fw.reasons or ["incomplete record"])[0][:80], f"CoRE_MOF 2019-ASR:{name}")
            continue
        records.append(fw.record)
    rng = random.Random(s.seed)
    rng.shuffle(records)
    n_val, n_held = s.materials_val, s.materials_heldout
    # a framework's record appears once even when CoRE MOF holds it several times (solvated,
    # relaxed): the held-out and validation records are never in the training rows
    seen, unique = set(), []
    for r in records:
        if r in seen:
            report.skip("materials", "same record as another CIF")
            continue
        seen.add(r)
        unique.append(r)
    report.kept["materials"] += len(unique)
    train = unique[n_val + n_held:] * max(1, getattr(s, "materials_repeats", 1))
    return Split(train, unique[:n_val], unique[n_val:n_val + n_held])


def _complexes(report: BuildReport):
    """(name, LoadedObject, ligand RDKit mol or None) for each real complex we can read."""
    from engine import datasets
    from engine.structures import io as sio

    for code in POSEBUSTERS:
        try:
            prot = datasets.read_bytes("posebusters", f"datasets/pdb/{code}/{code}_protein_one_lig_removed.pdb")
            lig = datasets.read_text("posebusters", f"datasets/pdb/{code}/{code}_ligand.sdf")
            objs = sio.read_bytes(prot, "pdb", name=f"{code}.pdb")
            mols = sio.read_text(lig, "sdf", name=f"{code}_ligand.sdf")
            yield f"posebusters:{code}", objs[0], mols[0].mol
        except Exception as exc:  # noqa: BLE001 - counted, never fatal
            report.skip("pockets", f"unreadable: {str(exc)[:80]}", f"posebusters:{code}")
    names = list(MDA_FILES)
    try:
        names += sorted(m.split("mdanalysistests-2.11.0/", 1)[-1] for m in datasets.members("mdanalysistests", MDA_DSSP)
                        if m.endswith(".pdb.gz") and "wrong" not in m and "failing" not in m)
    except Exception:  # noqa: BLE001
        pass
    for member in names:
        try:
            data = datasets.read_bytes("mdanalysistests", member)
            objs = sio.read_bytes(data, None, name=member.rsplit("/", 1)[-1])
            yield f"mdanalysistests:{member.rsplit('/', 1)[-1]}", objs[0], None
        except Exception as exc:  # noqa: BLE001
            report.skip("pockets", f"unreadable: {str(exc)[:80]}", f"mdanalysistests:{member}")


def _window(seq: str, pockets: list[int]) -> tuple[str, list[int]]:
    if len(seq) <= POCKET_WINDOW:
        return seq, pockets
    mid = (min(pockets) + max(pockets)) // 2
    start = max(0, min(len(seq) - POCKET_WINDOW, mid - POCKET_WINDOW // 2))
    inside = [p - start for p in pockets if start <= p < start + POCKET_WINDOW]
    return seq[start:start + POCKET_WINDOW], inside


def pocket_items(report: BuildReport) -> list[dict]:
    """One item per real complex: name, chains [(window sequence, pocket positions)], ligand SMILES."""
    from engine.grammar import codec
    from engine.structures import pocket

    items = []
    for name, obj, lig in _complexes(report):
        report.read["pockets"] += 1
        try:
            pk = pocket.find_pocket(obj, ligand_mol=lig) if lig is not None else pocket.find_pocket(obj)
        except Exception as exc:  # noqa: BLE001
            report.skip("pockets", f"no pocket: {str(exc)[:80]}", name)
            continue
        if not pk.ligand.smiles or len(pk.residues) < 3:
            report.skip("pockets", "no ligand SMILES or fewer than 3 contact residues", name)
            continue
        chains = []
        for prot in pk.proteins():
            seq, pos = _window(prot.sequence, sorted(prot.pockets))
            try:
                codec.encode_protein(seq, pos)
            except codec.GrammarError as exc:
                report.skip("pockets", f"chain not encodable: {exc}", name)
                continue
            if pos:
                chains.append((seq, pos))
        if chains:
            items.append({"name": name, "chains": chains, "ligand": pk.ligand.smiles})
    report.kept["pockets"] += len(items)
    return items


def pocket_records(item: dict) -> list[str]:
    """Binding-site search per chain, and the pocket-granularity complex record."""
    from engine.grammar import codec

    out = [codec.encode_search(seq, pos) for seq, pos in item["chains"]]
    try:
        out.append(codec.encode_complex(item["chains"], item["ligand"], "pocket"))
    except codec.GrammarError:
        pass
    return out


class UnknownComplex(ValueError):
    """A complex named to hold out that is not among the readable ones."""


def complex_code(name: str) -> str:
    """The PDB code of a complex named by ``_complexes`` ("mdanalysistests:1hvr.pdb" -> "1hvr")."""
    return name.rsplit(":", 1)[-1].split(".", 1)[0].lower()


def build_pockets(s, report: BuildReport) -> Split:
    """Real complexes -> pocket records; about a quarter of the complexes are held out whole,
    always those named in ``s.pocket_heldout`` (PDB codes), the rest drawn under the seed."""
    report.sources["pockets"] = ("posebusters 0.6.5 (BSD-3; PDB entries CC0) and MDAnalysisTests 2.11 "
                                 "(LGPL-3 package; PDB coordinates CC0), pockets by engine.structures.pocket")
    items = pocket_items(report)
    rng = random.Random(s.seed)
    wanted = {c.lower() for c in getattr(s, "pocket_heldout", None) or ()}
    named = [it for it in items if complex_code(it["name"]) in wanted]
    missing = wanted - {complex_code(it["name"]) for it in named}
    if missing:  # a typo would otherwise train on the complex it meant to hold out
        raise UnknownComplex(f"complexes to hold out not among the {len(items)} readable ones: "
                         f"{', '.join(sorted(missing))} (readable: "
                         f"{', '.join(sorted(complex_code(it['name']) for it in items))})")
    rest = [it for it in items if complex_code(it["name"]) not in wanted]
    rng.shuffle(rest)
    n_held = max(1, len(items) // 4) if len(items) > 1 else 0
    more = max(0, n_held - len(named))  # the named complexes count towards the held-out quarter
    held, train = named + rest[:more], rest[more:]
    rows = [r for it in train for r in pocket_records(it)]
    heldout = [(seq, pos) for it in held for seq, pos in it["chains"]]
    return Split(rows * s.pocket_repeats, [r for it in held for r in pocket_records(it)], heldout)
