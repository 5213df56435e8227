"""A static scan (ast) for unsafe loading in the product code (engine/, logos_desktop/, training/).

Rules (each finding names the file, line and rule):

* ``torch-load``       ``torch.load(...)`` without ``weights_only=True`` (a pickle: runs code).
* ``pickle``           pickle / cPickle / _pickle / dill / cloudpickle / joblib / shelve / marshal
                       loads, ``pickle.Unpickler``, ``pandas.read_pickle``, ``numpy.load(...,
                       allow_pickle=True)``, ``yaml.load`` without a safe loader.
* ``weights-format``   ``X.from_pretrained(...)`` of a model (not a tokenizer, config or processor)
                       without ``use_safetensors=True``: transformers falls back to
                       ``pytorch_model.bin`` (a pickle) when a folder has no safetensors.
                       ``PeftModel.from_pretrained`` is accepted: peft reads
                       ``adapter_model.safetensors`` when it exists and otherwise calls
                       ``torch.load(weights_only=True)``.
* ``remote-code``      ``trust_remote_code=True`` anywhere (runs Python shipped with a model folder).
* ``hub-lookup``       ``from_pretrained(...)`` without ``local_files_only=True``: a path that does
                       not exist becomes a Hugging Face Hub lookup (a network call) unless the
                       process set ``HF_HUB_OFFLINE``.

Aliases are followed within a module (``import torch as T``, ``from torch import load``,
``from pickle import loads as l``). Python kept in a string (a script run with ``python -c``) is
parsed and scanned too, its findings reported at the string's line: a script hidden in a string is
no way around the rules (product code runs such programs as real modules instead).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("engine", "logos_desktop", "training")

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
PICKLE_FUNCS = {"load", "loads", "Unpickler", "open"}  # shelve.open, joblib.load, pickle.loads, ...
SAFE_PRETRAINED_RECEIVERS = ("Tokenizer", "Config", "Processor", "FeatureExtractor", "GenerationConfig",
                             "PeftConfig", "LoraConfig")
ALLOWED_PEFT = {"PeftModel", "PeftModelForCausalLM"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.text}"


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):  # e.g. AutoModel.from_pretrained(...).to(...)
        inner = _dotted(node.func)
        if inner is not None:
            parts.append(inner + "()")
            return ".".join(reversed(parts))
    return None


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


class _Scanner(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.aliases: dict[str, str] = {}  # local name -> dotted origin
        self.findings: list[Finding] = []

    # imports ---------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            for a in node.names:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        self.generic_visit(node)

    def _resolve(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        origin = self.aliases.get(head, head)
        return f"{origin}.{rest}" if rest else origin

    def _add(self, node: ast.AST, rule: str, text: str) -> None:
        self.findings.append(Finding(self.rel, getattr(node, "lineno", 0), rule, text))

    # code in strings -------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value
        if isinstance(text, str) and "\n" in text and ("import " in text or "from_pretrained" in text):
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                return
            inner = _Scanner(self.rel)
            inner.visit(tree)
            for f in inner.findings:
                self.findings.append(Finding(self.rel, node.lineno + f.line - 1, f.rule,
                                             f"{f.text} (Python kept in a string)"))

    # calls -----------------------------------------------------------------------------
    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg == "trust_remote_code" and not (isinstance(node.value, ast.Constant) and node.value.value is False):
            self._add(node.value, "remote-code", "trust_remote_code is not False")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        raw = _dotted(node.func)
        if raw is not None:
            name = self._resolve(raw)
            last = name.rsplit(".", 1)[-1]
            module = name.rsplit(".", 1)[0] if "." in name else ""
            root = module.split(".")[0]
            if name in ("torch.load", "torch.serialization.load") and not _is_true(_kw(node, "weights_only")):
                self._add(node, "torch-load", f"{raw}(...) without weights_only=True")
            elif root in PICKLE_MODULES and last in PICKLE_FUNCS:
                self._add(node, "pickle", f"{raw}(...) deserialises a pickle")
            elif name in ("pandas.read_pickle",) or (root == "pandas" and last == "read_pickle"):
                self._add(node, "pickle", f"{raw}(...) deserialises a pickle")
            elif name in ("numpy.load",) and _is_true(_kw(node, "allow_pickle")):
                self._add(node, "pickle", f"{raw}(..., allow_pickle=True)")
            elif name == "yaml.load":
                loader = _kw(node, "Loader")
                ok = loader is not None and (_dotted(loader) or "").endswith(("SafeLoader", "CSafeLoader"))
                if not ok:
                    self._add(node, "pickle", f"{raw}(...) without a SafeLoader")
            elif last == "from_pretrained":
                receiver = raw.rsplit(".", 1)[0]
                origin = self._resolve(receiver).rsplit(".", 1)[-1]
                if not _is_true(_kw(node, "local_files_only")):
                    self._add(node, "hub-lookup", f"{raw}(...) without local_files_only=True")
                is_model = not any(s in origin for s in SAFE_PRETRAINED_RECEIVERS) and origin not in ALLOWED_PEFT
                if is_model and not _is_true(_kw(node, "use_safetensors")):
                    self._add(node, "weights-format", f"{raw}(...) without use_safetensors=True")
        self.generic_visit(node)


def scan_source(source: str, rel: str = "<string>") -> list[Finding]:
    tree = ast.parse(source, filename=rel)
    scanner = _Scanner(rel)
    scanner.visit(tree)
    return scanner.findings


def product_files(root: Path = ROOT) -> list[Path]:
    out = []
    for d in PRODUCT_DIRS:
        out += sorted(p for p in (root / d).rglob("*.py") if "__pycache__" not in p.parts)
    return out


def scan_product(root: Path = ROOT) -> tuple[list[Finding], int]:
    """(findings, number of files scanned)."""
    files = product_files(root)
    findings: list[Finding] = []
    for p in files:
        findings += scan_source(p.read_text(encoding="utf-8"), str(p.relative_to(root)))
    return findings, len(files)
