"""What a result is made of, for a viewer to draw: the parts of its decoded record.

``result_picture`` reads the objects a task stored with a result (``Task.parse``) and, when they
are missing or of an older shape, decodes the record itself (``codec.decode``). It returns a
JSON-ready dict; the GUI only draws it:

* ``{"kind": "molecule", "smiles"}``
* ``{"kind": "material", "metal", "metals", "linkers"}``: the metal node's formula, the metal
  elements in it, and the linkers (canonical SMILES) as the record lists them
* ``{"kind": "sequence", "chains": [{"name", "sequence", "marked", "labels"}]}``: proteins,
  antibodies (heavy and light chain) and binding-site annotations; ``marked`` are 0-based positions
  of the pocket residues, ``labels`` their residue labels (e.g. ``A:ASP25``) where known
* ``{"kind": "reaction", "reactants", "products"}``: a retrosynthesis proposal or a reaction
"""

from __future__ import annotations

from engine.grammar import validate as V


def _metals(node: str) -> list[str]:
    try:
        return list(dict.fromkeys(V.metal_elements(node)[0])) if node else []
    except Exception:  # noqa: BLE001 - an unreadable node draws without its metal list
        return []


def _strs(values) -> list[str]:
    return [str(v) for v in (values or []) if isinstance(v, str) and v.strip()]


def _positions(values, n: int) -> list[int]:
    out = []
    for v in values or []:
        try:
            i = int(v)
        except (TypeError, ValueError):
            continue
        if 0 <= i < n:
            out.append(i)
    return sorted(set(out))


def _chain(name: str, sequence: str, marked=(), labels=()) -> dict:
    seq = "".join(str(sequence or "").split())
    pos = _positions(marked, len(seq))
    labels = [str(x) for x in labels or []]
    return {"name": name, "sequence": seq, "marked": pos,
            "labels": labels if len(labels) == len(pos) else []}


def from_objects(objects) -> dict | None:
    """The picture of a task's stored objects (a dict with ``type``), or None if they say too little."""
    if not isinstance(objects, dict):
        return None
    kind = objects.get("type")
    if kind == "material" and (objects.get("metal") or objects.get("linkers")):
        metal = str(objects.get("metal") or "")
        return {"kind": "material", "metal": metal, "metals": _metals(metal),
                "linkers": _strs(objects.get("linkers"))}
    if kind == "antibody" and objects.get("heavy"):
        chains = [_chain("Heavy chain", objects["heavy"])]
        if objects.get("light"):
            chains.append(_chain("Light chain", objects["light"]))
        return {"kind": "sequence", "chains": chains}
    if kind == "binding_site" and objects.get("sequence"):
        chain = objects.get("chain")
        return {"kind": "sequence", "chains": [_chain(f"Chain {chain}" if chain else "Protein", objects["sequence"],
                                                      objects.get("positions"), objects.get("residues"))]}
    if kind == "protein" and objects.get("sequence"):
        chain = objects.get("chain")
        return {"kind": "sequence", "chains": [_chain(f"Chain {chain}" if chain else "Protein", objects["sequence"],
                                                      objects.get("pockets"))]}
    if kind == "retrosynthesis" and objects.get("product") and objects.get("reactants"):
        return {"kind": "reaction", "reactants": _strs(objects["reactants"]), "products": _strs([objects["product"]])}
    if isinstance(objects.get("smiles"), str) and objects["smiles"].strip():
        return {"kind": "molecule", "smiles": objects["smiles"]}
    return None


def from_record(record: str) -> dict | None:
    """The picture of a record decoded by ``codec.decode`` (the task's objects were not stored)."""
    from engine.grammar.codec import decode

    if not isinstance(record, str) or not record.strip():
        return None
    d = decode(record)
    objs = [o for o in d.objects if isinstance(o, dict)]
    if d.kind == "material":
        return from_objects(next((o for o in objs if o.get("type") == "material"), None))
    if d.kind == "antibody" and objs:
        return from_objects(objs[0])
    if d.kind == "protein" and objs:
        return from_objects(objs[0])
    if d.kind in ("search", "trans") and objs:
        return from_objects(objs[-1])  # the answer, with its pocket marks
    if d.kind in ("reaction", "retrosynthesis") and d.record is not None:
        rxn = d.record
        return {"kind": "reaction", "reactants": [m.smiles for m in rxn.reactants],
                "products": [m.smiles for m in rxn.products]}
    if d.kind in ("molecule", "complex") and d.record is not None:
        lig = d.record if d.kind == "molecule" else d.record.ligand
        return {"kind": "molecule", "smiles": lig.smiles}
    return None


def result_picture(objects=None, record: str | None = None, smiles: str | None = None,
                   sequence: str | None = None) -> dict | None:
    """The picture of a stored result: from its objects, else its record, else its SMILES or sequence."""
    if isinstance(objects, list):  # several objects: the first one that makes a picture
        for o in objects:
            found = from_objects(o)
            if found is not None:
                return found
    found = from_objects(objects) if isinstance(objects, dict) else None
    if found is None and isinstance(objects, dict) and objects.get("type") not in (None, "molecule", "reaction"):
        found = from_record(record or "")
    if found is None and smiles:
        found = {"kind": "molecule", "smiles": smiles}
    if found is None and sequence:
        found = {"kind": "sequence", "chains": [_chain("Sequence", sequence)]}
    if found is None:
        found = from_record(record or "")
    return found
