"""The provenance panel: where the selected row came from, and Re-run with one click."""

from __future__ import annotations

import html
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget


def _row(label: str, value) -> str:
    if value is None or value == "" or value == {} or value == []:
        value = "—"
    elif isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return (f"<tr><td style='color:#555;padding-right:8px;vertical-align:top'>{html.escape(label)}</td>"
            f"<td style='font-family:monospace'>{html.escape(str(value))}</td></tr>")


class QtProvenancePanel(QWidget):
    """Shows a ``Provenance`` (see generation.store_access) and offers Re-run."""

    rerunRequested = Signal(object)  # the Provenance being shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.provenance = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.title = QLabel("Select a result to see where it came from.")
        self.title.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        self.rerun_button = QPushButton("Re-run")
        self.rerun_button.setToolTip("Queue the same task again: same model, prompt, sampling parameters and seed")
        self.rerun_button.setEnabled(False)
        self.rerun_button.clicked.connect(lambda: self.rerunRequested.emit(self.provenance))
        buttons.addStretch(1)
        buttons.addWidget(self.rerun_button)
        layout.addWidget(self.title)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)

    def show_comparison(self, rows) -> None:
        """Several rows selected: side by side (depiction, validity, scores, perplexity)."""
        import base64

        from logos_desktop.generation.thumbnails import depict_png

        self.provenance = None
        self.rerun_button.setEnabled(False)
        self.title.setText(f"<b>Comparing {len(rows)} results</b>")
        keys = []
        for r in rows:
            for k, v in (r.scores or {}).items():
                if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                    keys.append(k)
        head = "".join(f"<th>{html.escape(k)}</th>" for k in ["#", "structure", "valid", "ppl"] + keys)
        body = []
        for r in rows[:50]:
            png = depict_png(r.smiles, 120, 90) if r.smiles and r.valid else None
            img = (f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'>" if png
                   else html.escape((r.text or "")[:40]))
            valid = "✔" if r.valid else "✘ " + html.escape("; ".join(r.reasons))
            cells = [str(r.id), img, valid, "" if r.ppl is None else f"{r.ppl:.2f}"]
            for k in keys:
                v = (r.scores or {}).get(k)
                cells.append(f"{v:.3g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "")
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        more = f"<p>… and {len(rows) - 50} more</p>" if len(rows) > 50 else ""
        self.text.setHtml(f"<table cellspacing=4><tr>{head}</tr>{''.join(body)}</table>{more}")

    def show_provenance(self, prov) -> None:
        self.provenance = prov
        if prov is None:
            self.title.setText("Select a result to see where it came from.")
            self.text.clear()
            self.rerun_button.setEnabled(False)
            return
        self.title.setText(f"<b>Result {prov.result_id}</b> · run {prov.run_id} · {prov.task} · {prov.status}")
        rows = [
            _row("model file", prov.model_path),
            _row("model SHA-256", prov.model_sha256),
            _row("quantisation", prov.model_quant),
            _row("adapter", prov.model_adapter),
            _row("base model", prov.model_base),
            _row("seed", prov.seed),
            _row("sampling", prov.sampling),
            _row("options", prov.options),
            _row("samples", prov.n),
        ]
        from logos_desktop.generation.task_catalog import is_edited_input

        for name, sha in prov.inputs:
            if is_edited_input(name):  # the object as edited in the workspace, not its file
                rows.append(_row("input (edited in the workspace)", f"{name} (SHA-256 {sha})"))
            else:
                rows.append(_row("input", f"{name} (SHA-256 {sha})"))
        rows += [
            _row("versions", prov.versions),
            _row("started", prov.started),
            _row("finished", prov.finished),
            _row("error", prov.error),
            _row("command", prov.command),
        ]
        body = (f"<p><b>Prompt exactly as sent</b></p><pre style='white-space:pre-wrap'>"
                f"{html.escape(prov.prompt or '')}</pre><table>{''.join(rows)}</table>")
        self.text.setHtml(body)
        self.rerun_button.setEnabled(prov.rerunnable)
        self.rerun_button.setToolTip(
            "Queue the same task again: same model, prompt, sampling parameters and seed"
            if prov.rerunnable else (prov.why_not_rerunnable or "cannot re-run this row"))
