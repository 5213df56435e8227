"""Results out of a project (SDF, CSV, CIF, FASTA) and rows into it (SDF, CSV).

Every exported row carries its provenance: result and run ids, task, validity and reasons,
perplexity, scores (``score_<name>``), tags, notes, rating, and the run's model hash, model file,
quantisation, adapter, prompt, seed, sampling parameters and versions. SDF goes through RDKit,
CIF through gemmi, FASTA through Biopython. A row that cannot be written in the chosen format (no
SMILES for SDF, no sequence for FASTA, no CIF text for CIF) is skipped and listed in the report,
never dropped silently. Docked results export their poses as SDF (``poses="best"`` or ``"all"``):
the pose in the receptor's frame with its Vina score, RMSD, PoseBusters checks (passed and the
named failures), interactions and the docking's receptor hash, box, settings and versions.

Imports keep every record: a molecule RDKit cannot read is stored as an invalid row with the
reason, the record number and the line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engine.store.errors import ProjectError
from engine.store.project import Project
from engine.store.queries import ResultQuery, ResultRow, RunInfo

FORMATS = ("sdf", "csv", "fasta", "cif")
IMPORT_FORMATS = ("sdf", "csv")
IMPORT_TASK = "import"  # the task of the run that an import creates

# provenance and row fields, in the order CSV columns and SDF properties are written
ROW_FIELDS = ["result_id", "run_id", "task", "smiles", "sequence", "valid", "reasons", "ppl", "tags",
              "notes", "rating", "parent_id", "created_at", "record"]
RUN_FIELDS = ["model_sha256", "model_file", "model_quant", "model_adapter", "model_base", "prompt",
              "seed", "sampling", "versions", "run_started_at", "run_status", "input_sha256"]
SCORE_PREFIX = "score_"
POSE_CHOICES = ("best", "all")


class ImportFileError(ProjectError):
    """A file to import cannot be read at all (wrong format, no usable column)."""


@dataclass
class ExportReport:
    fmt: str
    written: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (result id, why)

    def summary(self) -> str:
        text = f"wrote {self.written} row(s) as {self.fmt.upper()}"
        if self.skipped:
            ids = ", ".join(str(i) for i, _ in self.skipped[:10])
            more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            text += f"; skipped {len(self.skipped)} ({self.skipped[0][1]}): ids {ids}{more}"
        return text


@dataclass
class ImportReport:
    run_id: int
    added: int
    invalid: int
    result_ids: list[int]


# ---- export ----------------------------------------------------------------------------------


def iter_results(project: Project, query: ResultQuery | None = None, batch: int = 2000) -> Iterator[ResultRow]:
    """Every row matching ``query`` (its offset/limit respected), fetched in pages. Pages after
    the first start at the previous page's last row (keyset), so page 50 costs what page 1 does."""
    q = query or ResultQuery(limit=None)
    remaining = q.limit  # None: every row
    offset, after = q.offset, q.after
    while remaining is None or remaining > 0:
        size = batch if remaining is None else min(batch, remaining)
        page = project.query_results(ResultQuery(**{**q.__dict__, "offset": offset, "limit": size,
                                                    "after": after, "count_total": False}))
        yield from page.rows
        if len(page.rows) < size or page.next_after is None:
            break
        if remaining is not None:
            remaining -= len(page.rows)
        offset, after = 0, page.next_after


class _Provenance:
    """Run and input look-ups shared by all rows of one export."""

    def __init__(self, project: Project):
        self.project = project
        self._runs: dict[int, RunInfo] = {}
        self._inputs = {i.id: i.sha256 for i in project.inputs()}

    def run(self, run_id: int) -> RunInfo:
        if run_id not in self._runs:
            self._runs[run_id] = self.project.get_run(run_id)
        return self._runs[run_id]

    def fields(self, row: ResultRow) -> dict[str, object]:
        run = self.run(row.run_id)
        m = run.model
        out: dict[str, object] = {
            "result_id": row.id, "run_id": row.run_id, "task": row.task, "smiles": row.smiles,
            "sequence": row.sequence, "valid": int(row.valid), "reasons": "; ".join(row.reasons),
            "ppl": row.ppl, "tags": ",".join(row.tags), "notes": row.notes, "rating": row.rating,
            "parent_id": row.parent_id, "created_at": row.created_at.isoformat(timespec="seconds") + "Z",
            "record": row.record,
            "model_sha256": m.sha256 if m else None, "model_file": m.path if m else None,
            "model_quant": m.quant if m else None, "model_adapter": m.adapter if m else None,
            "model_base": m.base if m else None, "prompt": run.prompt, "seed": run.seed,
            "sampling": json.dumps(run.params, sort_keys=True),
            "versions": json.dumps(run.versions, sort_keys=True),
            "run_started_at": run.started_at.isoformat(timespec="seconds") + "Z",
            "run_status": run.status,
            "input_sha256": ",".join(self._inputs.get(i, "") for i in run.input_ids),
        }
        for name, value in row.scores.items():
            out[SCORE_PREFIX + name] = value
        return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def export_results(project: Project, out: TextIO, fmt: str, query: ResultQuery | None = None,
                   poses: str | None = None) -> ExportReport:
    """Write the rows matching ``query`` to the text stream ``out`` in ``fmt``.

    ``poses`` (SDF only): write the docked poses instead of the stored molecules, ``"best"`` (the
    best pose of each result's newest docking) or ``"all"`` (every pose of every docking), each
    with its Vina score, RMSD, PoseBusters checks and the docking's provenance."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"cannot export as {fmt!r}: choose one of {', '.join(FORMATS)}")
    if poses is not None:
        if poses not in POSE_CHOICES:
            raise ValueError(f"cannot export poses {poses!r}: choose one of {', '.join(POSE_CHOICES)}")
        if fmt != "sdf":
            raise ValueError(f"docked poses are exported as SDF, not {fmt.upper()}")
    q = query or ResultQuery(limit=None)
    prov = _Provenance(project)
    report = ExportReport(fmt)
    if poses is not None:
        _write_pose_sdf(iter_results(project, q), prov, out, report, poses)
        return report
    writer = {"sdf": _write_sdf, "csv": _write_csv, "fasta": _write_fasta, "cif": _write_cif}[fmt]
    writer(iter_results(project, q), prov, out, report)
    return report


def _new_file_mode(path: Path) -> int:
    """The permissions the export gets: those of the file it replaces, else what ``open`` would
    give a new file under the current umask (mkstemp makes its file 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def export_file(project: Project, path: str | os.PathLike, fmt: str | None = None,
                query: ResultQuery | None = None, poses: str | None = None) -> ExportReport:
    """Export to a file through a private temporary file in the same folder (``mkstemp``: a name
    nobody can guess or plant a link at, created exclusively, mode 0600 while written), flushed
    to disk, then renamed over the destination in one step: a failure leaves no half file and the
    old file, if any, as it was."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("fa", "faa"):
        fmt = "fasta"
    tmp: str | None = None
    try:
        mode = _new_file_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            report = export_results(project, fh, fmt, query, poses=poses)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ProjectError(path, f"cannot write the export: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return report


def _sd_value(value) -> str:
    """An SD data value: one line; text with line breaks is written as a JSON string."""
    text = _text(value)
    if "\n" in text or "\r" in text:
        return json.dumps(text)
    return text


def _write_sdf(rows, prov: _Provenance, out: TextIO, report: ExportReport) -> None:
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDepictor

    writer = Chem.SDWriter(out)
    try:
        with rdBase.BlockLogs():
            for row in rows:
                mol = None
                molblock = (row.objects or {}).get("molblock") if isinstance(row.objects, dict) else None
                if molblock:  # imported with coordinates: keep them
                    mol = Chem.MolFromMolBlock(molblock, removeHs=False)
                if mol is None and row.smiles:
                    mol = Chem.MolFromSmiles(row.smiles)
                    if mol is not None:
                        rdDepictor.Compute2DCoords(mol)
                if mol is None:
                    report.skipped.append((row.id, "no molecule RDKit can read" if row.smiles else "no SMILES"))
                    continue
                for key in list(mol.GetPropNames()):
                    mol.ClearProp(key)
                mol.SetProp("_Name", f"logos_result_{row.id}")
                for key, value in prov.fields(row).items():
                    if key == "smiles" or value is None or value == "":
                        continue
                    mol.SetProp(key, _sd_value(value))
                writer.write(mol)
                report.written += 1
    finally:
        writer.close()


def _checks_text(checks) -> tuple[str, str]:
    """PoseBusters' verdict as SD values: passed (1, 0 or "not run") and the named failures."""
    if not isinstance(checks, dict):
        return "not run", ""
    fails = "; ".join(f"{f.get('check')}: {f.get('reason')}" for f in checks.get("failures") or [])
    passed = checks.get("passed")
    return ("not run" if passed is None else str(int(bool(passed)))), fails


def _reference_label(ref: dict) -> str:
    """"XK2 A:263" for a ligand of the receptor file, the name alone for one given beside it."""
    name = ref.get("name") or ""
    if ref.get("chain"):
        return f"{name} {ref['chain']}:{ref.get('resnum')}"
    return name


def _write_pose_sdf(rows, prov: _Provenance, out: TextIO, report: ExportReport, which: str) -> None:
    from rdkit import Chem, rdBase

    writer = Chem.SDWriter(out)
    dockings: dict = {}
    try:
        with rdBase.BlockLogs():
            for row in rows:
                poses = prov.project.poses(row.id)
                if which == "best":
                    poses = poses[:1]  # the newest docking's rank 1
                if not poses:
                    report.skipped.append((row.id, "no docked pose"))
                    continue
                fields = prov.fields(row)
                for pose in poses:
                    mol = Chem.MolFromMolBlock(pose.molblock, removeHs=False)
                    if mol is None:
                        report.skipped.append((row.id, f"pose {pose.rank} of docking {pose.docking_id} "
                                                       "cannot be read by RDKit"))
                        continue
                    if pose.docking_id not in dockings:
                        dockings[pose.docking_id] = prov.project.get_docking(pose.docking_id)
                    d = dockings[pose.docking_id]
                    for key in list(mol.GetPropNames()):
                        mol.ClearProp(key)
                    mol.SetProp("_Name", f"logos_result_{row.id}_docking_{pose.docking_id}_pose_{pose.rank}")
                    passed, fails = _checks_text(pose.checks)
                    ref = d.reference or {}
                    values = {
                        "vina_score": pose.score, "vina_rmsd": pose.rmsd, "pose_rank": pose.rank,
                        "posebusters_passed": passed, "posebusters_failures": fails,
                        "posebusters_n_checks": (pose.checks or {}).get("n_checks"),
                        "interactions": "; ".join(f"{i.get('label')} {i.get('residue')} {i.get('distance')} Å"
                                                  for i in pose.interactions or []),
                        "docking_id": d.id, "receptor_name": d.receptor_name, "receptor_sha256": d.receptor_sha256,
                        "box": json.dumps(d.box, sort_keys=True),
                        "docking_settings": json.dumps(d.settings, sort_keys=True),
                        "docking_versions": json.dumps(d.versions, sort_keys=True),
                        "reference_ligand": _reference_label(ref),
                    }
                    values.update(fields)
                    for key, value in values.items():
                        if value is None or value == "":
                            continue
                        mol.SetProp(key, _sd_value(value))
                    writer.write(mol)
                    report.written += 1
    finally:
        writer.close()


def _write_csv(rows, prov: _Provenance, out: TextIO, report: ExportReport) -> None:
    rows = list(rows)
    score_names: list[str] = []
    for row in rows:
        for name in row.scores:
            if name not in score_names:
                score_names.append(name)
    columns = ROW_FIELDS + [SCORE_PREFIX + n for n in score_names] + RUN_FIELDS
    # RFC 4180 line ends: the csv module then quotes a field holding a CR as well as one holding a LF
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in prov.fields(row).items()})
        report.written += 1


# A text cell that starts with one of these is read as a formula by spreadsheets (OWASP, "CSV
# Injection"): =, +, -, @, and tab and carriage return, which some spreadsheets skip before
# looking at the next character.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    """One CSV cell. Numbers (ints and floats, negative scores included) are written as numbers;
    a text cell that could start a formula gets a leading apostrophe, the rule OWASP gives for
    CSV injection and the one spreadsheets themselves use to mark a cell as text (it is shown,
    not evaluated). ``import_file`` takes the apostrophe off again."""
    text = _text(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def _csv_uncell(text):
    """What ``_csv_cell`` wrote, back: an apostrophe before a formula character is taken off."""
    if isinstance(text, str) and len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


def _write_fasta(rows, prov: _Provenance, out: TextIO, report: ExportReport) -> None:
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    records = []
    for row in rows:
        if not row.sequence:
            report.skipped.append((row.id, "no sequence"))
            continue
        f = prov.fields(row)
        desc = [f"run={row.run_id}", f"task={row.task}", f"valid={int(row.valid)}"]
        if row.ppl is not None:
            desc.append(f"ppl={row.ppl:.4g}")
        if f["model_sha256"]:
            desc.append(f"model_sha256={f['model_sha256']}")
        if f["seed"] is not None:
            desc.append(f"seed={f['seed']}")
        desc.append(f"sampling={json.dumps(prov.run(row.run_id).params, sort_keys=True, separators=(',', ':'))}")
        for name, value in row.scores.items():
            desc.append(f"{SCORE_PREFIX}{name}={_text(value)}")
        records.append(SeqRecord(Seq(row.sequence), id=f"logos_result_{row.id}", description=" ".join(desc)))
        report.written += 1
    SeqIO.write(records, out, "fasta")


def _write_cif(rows, prov: _Provenance, out: TextIO, report: ExportReport) -> None:
    import gemmi

    for row in rows:
        if not row.cif:
            report.skipped.append((row.id, "no CIF text"))
            continue
        try:
            doc = gemmi.cif.read_string(row.cif)
        except (ValueError, RuntimeError) as exc:
            report.skipped.append((row.id, f"stored CIF does not parse: {exc}"))
            continue
        for n, block in enumerate(doc):
            block.name = f"logos_result_{row.id}" + (f"_{n + 1}" if len(doc) > 1 else "")
            for key, value in prov.fields(row).items():
                if key in ("record",) or value is None or value == "":
                    continue
                block.set_pair(f"_logos.{key}", gemmi.cif.quote(_text(value)))
        out.write(doc.as_string())
        if not doc.as_string().endswith("\n"):
            out.write("\n")
        report.written += 1


# ---- import ----------------------------------------------------------------------------------

_KNOWN_TEXT = {"task", "notes", "tags", "reasons", "record", "created_at", "model_sha256", "model_file",
               "model_quant", "model_adapter", "model_base", "prompt", "sampling", "versions",
               "run_started_at", "run_status", "input_sha256"}
_KNOWN_INT = {"result_id", "run_id", "seed", "parent_id"}
_AMINO = set("ACDEFGHIKLMNPQRSTVWYXBZUO")


def _molecule_record(smiles: str) -> str:
    # the LOGOS molecule record (shared/LOGOS-GRAMMAR.md): <MoleculeS>SMILES<MoleculeE>
    return f"<MoleculeS>{smiles}<MoleculeE>"


def _number(text: str):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value


def _fields_to_row(props: dict[str, str], where: str) -> dict:
    """Restore what an export wrote (scores, notes, tags, rating, validity) from text fields."""
    scores: dict[str, object] = {}
    other: dict[str, str] = {}
    provenance: dict[str, str] = {}
    row: dict = {}
    for key, raw in props.items():
        if key is None:
            continue
        value = raw.strip() if isinstance(raw, str) else raw
        if value in (None, ""):
            continue
        if key.startswith(SCORE_PREFIX) and len(key) > len(SCORE_PREFIX):
            num = _number(value)
            scores[key[len(SCORE_PREFIX):]] = num if num is not None else value
        elif key == "notes":
            row["notes"] = value
        elif key == "tags":
            row["tags"] = [t for t in value.split(",") if t]
        elif key == "rating":
            num = _number(value)
            if num is not None and num.is_integer() and 0 <= num <= 5:
                row["rating"] = int(num)
        elif key == "ppl":
            row["ppl"] = _number(value)
        elif key == "valid":
            row["_valid"] = value.lower() in ("1", "true", "yes")
        elif key == "reasons":
            row["_reasons"] = [r for r in value.split("; ") if r]
        elif key in _KNOWN_TEXT or key in _KNOWN_INT:
            provenance[key] = value
        elif key in ("smiles", "sequence", "cif"):
            continue
        else:
            num = _number(value)
            if num is not None:
                scores[key] = num
            else:
                other[key] = value
    row["scores"] = scores
    row["objects"] = {"source": where, "properties": other, "provenance": provenance}
    return row


def _finish(row: dict, ok: bool, reasons: list[str]) -> dict:
    old_valid = row.pop("_valid", True)
    old_reasons = row.pop("_reasons", [])
    row["valid"] = ok and old_valid
    row["reasons"] = reasons + [r for r in old_reasons if r not in reasons]
    return row


def read_sdf_rows(path: Path) -> list[dict]:
    from rdkit import Chem, rdBase

    name = path.name
    rows = []
    with rdBase.BlockLogs():
        supplier = Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)
        line = 1
        for i in range(len(supplier)):
            text = supplier.GetItemText(i)
            mol = supplier[i]
            where = f"{name}:{line}"
            record_no = i + 1
            line += text.count("\n")
            if mol is None:
                rows.append(_finish({"record": text, "objects": {"source": where, "molblock": text},
                                     "scores": {}}, False,
                                    [f"{where}: record {record_no}: RDKit cannot read this molecule block"]))
                continue
            props = {k: str(v) for k, v in mol.GetPropsAsDict(includePrivate=False).items()}
            row = _fields_to_row(props, where)
            row["objects"]["molblock"] = text.split("M  END", 1)[0] + "M  END\n" if "M  END" in text else text
            problems = Chem.DetectChemistryProblems(mol)
            reasons = [f"{where}: record {record_no}: {p.Message()}" for p in problems]
            smiles = None
            if not problems:
                try:
                    Chem.SanitizeMol(mol)
                    smiles = Chem.MolToSmiles(Chem.RemoveHs(mol))
                except Exception as exc:  # RDKit raises its own exception types
                    reasons.append(f"{where}: record {record_no}: {exc}")
            row["smiles"] = smiles
            row["record"] = _molecule_record(smiles) if smiles else text
            rows.append(_finish(row, not reasons, reasons))
    return rows


def read_csv_rows(path: Path) -> list[dict]:
    from rdkit import Chem, rdBase

    name = path.name
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(fh, dialect=dialect)
            columns = reader.fieldnames or []
            lower = {c.lower().strip(): c for c in columns if c}
            smiles_col = next((lower[k] for k in ("smiles", "canonical_smiles", "smi") if k in lower), None)
            seq_col = next((lower[k] for k in ("sequence", "seq") if k in lower), None)
            cif_col = lower.get("cif")
            if not smiles_col and not seq_col:
                raise ImportFileError(path, f"line 1: no 'smiles' or 'sequence' column "
                                            f"(columns: {', '.join(columns) or 'none'})")
            rows = []
            with rdBase.BlockLogs():
                for rec in reader:
                    rec = {k: _csv_uncell(v) for k, v in rec.items()}
                    line = reader.line_num
                    where = f"{name}:{line}"
                    props = {k: v for k, v in rec.items() if k not in (smiles_col, seq_col, cif_col)}
                    row = _fields_to_row(props, where)
                    reasons: list[str] = []
                    smiles_in = (rec.get(smiles_col) or "").strip() if smiles_col else ""
                    seq_in = (rec.get(seq_col) or "").strip() if seq_col else ""
                    if smiles_in:
                        mol = Chem.MolFromSmiles(smiles_in, sanitize=False)
                        if mol is None:
                            reasons.append(f"{where}: RDKit cannot parse the SMILES {smiles_in!r}")
                        else:
                            problems = Chem.DetectChemistryProblems(mol)
                            reasons += [f"{where}: {p.Message()}" for p in problems]
                            if not problems:
                                Chem.SanitizeMol(mol)
                                row["smiles"] = Chem.MolToSmiles(mol)
                        row["record"] = _molecule_record(row.get("smiles") or smiles_in)
                        row["objects"]["input_smiles"] = smiles_in
                    if seq_in:
                        seq = "".join(seq_in.split()).upper()
                        bad = sorted(set(seq) - _AMINO)
                        if bad:
                            reasons.append(f"{where}: the sequence has characters that are not "
                                           f"amino-acid letters: {''.join(bad)}")
                        row["sequence"] = seq
                        if not smiles_in:
                            row["record"] = f"<ProteinS>{seq}<ProteinE>"
                    if not smiles_in and not seq_in:
                        reasons.append(f"{where}: empty SMILES and sequence")
                        row["record"] = ""
                    if cif_col and (rec.get(cif_col) or "").strip():
                        row["cif"] = rec[cif_col]
                    rows.append(_finish(row, not reasons, reasons))
            return rows
    except UnicodeDecodeError as exc:
        raise ImportFileError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 1
        raise ImportFileError(path, f"line {line}: {exc}") from exc


def import_file(project: Project, path: str | os.PathLike, fmt: str | None = None) -> ImportReport:
    """Add every record of an SDF or CSV file as a result row of a new ``import`` run."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("sd", "mol"):
        fmt = "sdf"
    if fmt not in IMPORT_FORMATS:
        raise ImportFileError(path, f"cannot import {fmt!r} files: choose one of {', '.join(IMPORT_FORMATS)}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(path, f"cannot read the file: {exc.strerror or exc}") from exc
    rows = read_sdf_rows(path) if fmt == "sdf" else read_csv_rows(path)
    input_id = project.add_input(data, fmt, path.name)
    run_id = project.start_run(IMPORT_TASK, "", {"source": path.name, "format": fmt}, None,
                               input_ids=[input_id])
    try:
        ids = project.add_results(run_id, rows)
    except BaseException as exc:
        project.finish_run(run_id, "failed", error=str(exc))
        raise
    project.finish_run(run_id, "finished")
    return ImportReport(run_id=run_id, added=len(ids), invalid=sum(1 for r in rows if not r["valid"]),
                        result_ids=ids)


def export_to_string(project: Project, fmt: str, query: ResultQuery | None = None) -> tuple[str, ExportReport]:
    buf = io.StringIO()
    report = export_results(project, buf, fmt, query)
    return buf.getvalue(), report
