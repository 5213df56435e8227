"""A form built from a task's options schema (Avogadro's printed options): a new task needs no widget.

Accepted schema shapes: ``{name: spec}`` or ``[{"name": name, ...spec}]`` where spec has
``type`` (int/integer, float/number, bool/boolean, str/string, choice/enum), ``default``,
optional ``min``/``minimum``, ``max``/``maximum``, ``choices``/``enum``, ``help``/``description``,
``label``/``title``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)


def normalise_schema(schema: Any) -> list[dict]:
    if schema is None:
        return []
    if hasattr(schema, "items") and not isinstance(schema, list):
        out = []
        for name, spec in schema.items():
            spec = dict(spec) if isinstance(spec, dict) else _spec_from_object(spec)
            spec.setdefault("name", name)
            out.append(spec)
        return out
    return [dict(s) if isinstance(s, dict) else _spec_from_object(s) for s in schema]


def _spec_from_object(obj) -> dict:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_") and not callable(getattr(obj, k))}


def _kind(spec: dict) -> str:
    t = str(spec.get("type") or "").lower()
    if spec.get("choices") or spec.get("enum") or t in ("choice", "enum"):
        return "choice"
    if t in ("int", "integer"):
        return "int"
    if t in ("float", "number"):
        return "float"
    if t in ("bool", "boolean"):
        return "bool"
    d = spec.get("default")
    if isinstance(d, bool):
        return "bool"
    if isinstance(d, int):
        return "int"
    if isinstance(d, float):
        return "float"
    return "str"


class OptionsForm(QWidget):
    """One editor per option; ``values()`` returns the current values by name; ``changed`` is emitted
    when the user changes one."""

    changed = Signal()

    def __init__(self, schema: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        # a narrow dock puts long labels above their fields instead of widening the dock
        self.layout_.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, tuple[str, QWidget]] = {}
        self.set_schema(schema)

    def set_schema(self, schema: Any, values: dict | None = None) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors.clear()
        for spec in normalise_schema(schema):
            name = spec["name"]
            kind = _kind(spec)
            default = (values or {}).get(name, spec.get("default"))
            lo = spec.get("min", spec.get("minimum"))
            hi = spec.get("max", spec.get("maximum"))
            if kind == "int":
                w = QSpinBox()
                w.setRange(int(lo) if lo is not None else -2_000_000_000, int(hi) if hi is not None else 2_000_000_000)
                if default is not None:
                    w.setValue(int(default))
            elif kind == "float":
                w = QDoubleSpinBox()
                w.setDecimals(int(spec.get("decimals", 3)))
                w.setSingleStep(float(spec.get("step", 0.05)))
                w.setRange(float(lo) if lo is not None else -1e9, float(hi) if hi is not None else 1e9)
                if default is not None:
                    w.setValue(float(default))
            elif kind == "bool":
                w = QCheckBox()
                w.setChecked(bool(default))
            elif kind == "choice":
                w = QComboBox()
                for c in spec.get("choices") or spec.get("enum") or []:
                    w.addItem(str(c), c)
                if default is not None:
                    w.setCurrentIndex(max(0, w.findData(default)))
            else:
                w = QLineEdit("" if default is None else str(default))
            w.setObjectName(f"option-{name}")
            tip = spec.get("help") or spec.get("description") or ""
            if tip:
                w.setToolTip(str(tip))
            label = spec.get("label") or spec.get("title") or name.replace("_", " ")
            self.layout_.addRow(str(label), w)
            self.editors[name] = (kind, w)
            signal = {"int": "valueChanged", "float": "valueChanged", "bool": "toggled",
                      "choice": "currentIndexChanged"}.get(kind, "textChanged")
            getattr(w, signal).connect(lambda *_a: self.changed.emit())

    def values(self) -> dict:
        out = {}
        for name, (kind, w) in self.editors.items():
            if kind == "int":
                out[name] = w.value()
            elif kind == "float":
                out[name] = round(w.value(), 6)
            elif kind == "bool":
                out[name] = w.isChecked()
            elif kind == "choice":
                out[name] = w.currentData()
            else:
                out[name] = w.text()
        return out

    def set_values(self, values: dict) -> None:
        for name, v in values.items():
            if name not in self.editors:
                continue
            kind, w = self.editors[name]
            if kind in ("int", "float"):
                w.setValue(v)
            elif kind == "bool":
                w.setChecked(bool(v))
            elif kind == "choice":
                w.setCurrentIndex(max(0, w.findData(v)))
            else:
                w.setText(str(v))
