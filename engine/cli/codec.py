"""``logos encode FILE`` (structure file -> LOGOS record) and ``logos decode`` (record -> checked objects)."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "encode", help="write a structure file as a LOGOS record",
        description="Read a structure file (SMILES, SDF, MOL, MOL2, XYZ, PDB, mmCIF, CIF, POSCAR, FASTA; "
                    "gzip/bzip2 too) and print its LOGOS record. A protein-ligand complex gives the "
                    "pocket-annotated complex; a metal-organic framework CIF gives the material record. "
                    "Files with several objects print one record (or JSON object) per line.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", dest="fmt", default=None, help="read as this format instead of guessing")
    p.add_argument("--ligand", metavar="RESNAME", help="ligand residue name (default: the largest hetero group "
                   "that is not water, an ion or an additive)")
    p.add_argument("--chain", metavar="C", help="ligand chain id")
    p.add_argument("--resnum", metavar="N", type=int, help="ligand residue number")
    p.add_argument("--cutoff", metavar="Å", type=float, default=None,
                   help="contact distance for pocket residues, heavy atoms (default 4.5)")
    p.add_argument("--granularity", choices=("plain", "pocket", "smiles"), default="pocket",
                   help="complex record: plain sequence, pocket marks by letter (default) or by residue SMILES")
    p.add_argument("--json", action="store_true", help="print JSON objects instead of records")
    p.set_defaults(func=_encode)

    d = sub.add_parser(
        "decode", help="check a LOGOS record read from standard input",
        description="Read LOGOS text on standard input (one record, or one record per line) and print the "
                    "objects with a validity verdict and the reasons.")
    d.add_argument("--json", action="store_true", help="print one JSON object per record")
    d.set_defaults(func=_decode)


def _warn(msg: str) -> None:
    print(f"logos encode: warning: {msg}", file=sys.stderr)


def _encode(args) -> int:
    from engine.cli import CliError
    from engine.grammar import codec
    from engine.structures import io as sio
    from engine.structures.model import StructureReadError

    try:
        objs = sio.read_file(args.file, fmt=args.fmt)
    except StructureReadError as exc:
        raise CliError(str(exc)) from None
    if args.chain is not None or args.resnum is not None or args.ligand:
        complexes = [o for o in objs if o.structure is not None]
        if not complexes:
            raise CliError(f"{args.file}: --ligand/--chain/--resnum need a protein structure "
                           f"(PDB or mmCIF), this file holds {objs[0].kind}s")
    rows = []
    for obj in objs:
        try:
            rows.extend(_encode_object(obj, args))
        except codec.GrammarError as exc:
            if len(objs) == 1:
                raise CliError(f"{args.file}: {obj.name}: {exc}") from None
            _warn(f"{obj.name}: skipped: {exc}")
    if not rows:
        raise CliError(f"{args.file}: nothing could be encoded")
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            for w in row.get("warnings", []):
                _warn(w)
            print(row["record"])
    return 0


def _encode_object(obj, args) -> list[dict]:
    from engine.cli import CliError
    from engine.grammar import codec
    from engine.structures import framework, pocket

    warns = list(obj.warnings)
    base = {"name": obj.name, "source": str(obj.source) if obj.source else None, "format": obj.fmt}
    if obj.kind == "molecule" and obj.mol is not None:
        rec = codec.encode_molecule(obj.mol)
        smi = rec[len("<MoleculeS>"):-len("<MoleculeE>")]
        return [{"kind": "molecule", "record": rec, "smiles": smi, **base, "warnings": warns}]
    if obj.kind == "sequence":
        rec = codec.encode_protein(obj.sequence)
        return [{"kind": "protein", "record": rec, "sequence": obj.sequence, **base, "warnings": warns}]
    if obj.kind == "crystal":
        fw = framework.decompose(obj, obj.name)
        if not fw.ok:
            raise CliError(f"{args.file}: {obj.name}: not decomposed into a metal node and sane linkers: "
                           + "; ".join(fw.reasons))
        return [{"kind": "material", "record": fw.record, "metal": fw.metal, "linkers": fw.linkers,
                 "nodes": fw.to_dict()["nodes"], **base, "warnings": warns + fw.warnings}]
    if obj.structure is not None:
        wants_pocket = obj.kind == "complex" or args.ligand or args.chain is not None or args.resnum is not None
        if wants_pocket:
            try:
                pk = pocket.find_pocket(obj, ligand=args.ligand, chain=args.chain, resnum=args.resnum,
                                        cutoff=args.cutoff if args.cutoff is not None else pocket.DEFAULT_CUTOFF)
            except pocket.PocketError as exc:
                raise CliError(f"{args.file}: {exc}") from None
            if not pk.residues:
                raise CliError(f"{args.file}: no protein residue within {pk.cutoff} Å of ligand "
                               f"{pk.ligand.resname} {pk.ligand.chain}{pk.ligand.resnum}")
            if not pk.ligand.smiles:
                raise CliError(f"{args.file}: ligand {pk.ligand.resname}: " + "; ".join(pk.warnings))
            rec = pk.record(args.granularity)
            return [{"kind": "complex", "record": rec, "granularity": args.granularity,
                     "ligand": pk.ligand.to_dict(), "pocket_residues": [r.to_dict() for r in pk.residues],
                     "chains": pk.chains, "cutoff": pk.cutoff, **base, "warnings": warns + pk.warnings}]
        from engine.structures.atoms import chain_sequences

        seqs = chain_sequences(obj.structure)
        if not seqs:
            raise CliError(f"{args.file}: no amino-acid chain to encode")
        return [{"kind": "protein", "record": codec.encode_protein(seq), "sequence": seq, "chain": ch, **base,
                 "warnings": warns if k == 0 else []} for k, (ch, seq) in enumerate(seqs.items())]
    raise CliError(f"{args.file}: {obj.name}: a {obj.kind} cannot be encoded")


def _decode(args) -> int:
    from engine.cli import CliError
    from engine.grammar import codec

    if sys.stdin is None or sys.stdin.isatty():
        raise CliError("reads a LOGOS record on standard input, e.g. echo '<MoleculeS>CCO<MoleculeE>' | logos decode")
    text = sys.stdin.read(64 * 1024 * 1024 + 1)
    if len(text) > 64 * 1024 * 1024:
        raise CliError("input over 64 MiB")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise CliError("empty input: no LOGOS record on standard input")
    records = lines if len(lines) > 1 and all(ln.startswith("<") for ln in lines) else ["".join(lines)]
    for rec in records:
        d = codec.decode(rec)
        checks = _reaction_check(d)
        row = d.to_dict()
        if checks is not None:
            row["reaction_check"] = checks
        if d.valid:
            row["record"] = "".join(codec.encode(r) for r in d.records)
        if args.json:
            print(json.dumps(row))
            continue
        print(f"kind: {d.kind}")
        print(f"valid: {'yes' if d.valid else 'no'}")
        for r in d.reasons:
            print(f"reason: {r}")
        for o in d.objects:
            print("object: " + _describe(o))
        if d.valid:
            print(f"canonical: {row['record']}")
        if len(records) > 1:
            print()
    return 0


def _reaction_check(d) -> list[dict] | None:
    """A grammatically valid reaction or retrosynthesis record is valid only when its reactants can
    make its products (the engine's one reaction check, as the tasks use it): reasons are added to
    ``d``; returns the per-product details for the JSON row."""
    if d.kind not in ("reaction", "retrosynthesis") or not d.valid or not d.records:
        return None
    from engine.tasks.reaction_check import check_reaction_record

    reasons, checks = check_reaction_record(d.records[0])
    if reasons:
        d.reasons = list(d.reasons) + reasons
        d.valid = False
    return [c.to_dict() for c in checks]


def _describe(o: dict) -> str:
    t = o.get("type")
    if t == "protein":
        marks = f", pocket {o['pocket_letters']} at {[p + 1 for p in o['pockets']]}" if o.get("pockets") else ""
        return f"protein ({o['length']} residues{marks}): {o['sequence']}"
    if t == "molecule":
        return f"{o.get('role', 'molecule')}: {o['smiles']}{'' if o.get('valid', True) else ' (invalid)'}"
    if t == "material":
        return f"material: node {o['metal']} with {len(o['linkers'])} linker(s)"
    if t == "antibody":
        return f"antibody: heavy {o['heavy']}" + (f", light {o['light']}" if o.get("light") else "")
    return json.dumps(o)
