"""Safe loading: weights only from safetensors or GGUF, torch.load only with weights_only=True, no
pickle of anything a user supplies, no remote code, no Hub lookups (tests/reliability/safe_loading.py).

The scanner is tested on snippets first (each rule must fire, the safe form must not), then run
over every .py file of engine/, logos_desktop/ and training/.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.reliability.conftest import record
from tests.reliability.safe_loading import scan_product, scan_source

UNSAFE = {
    "torch-load": ["import torch\ntorch.load(p)", "import torch as T\nT.load(p, weights_only=False)",
                   "from torch import load\nload(p, map_location='cpu')"],
    "pickle": ["import pickle\npickle.loads(b)", "from pickle import load as l\nl(fh)", "import joblib\njoblib.load(p)",
               "import cloudpickle\ncloudpickle.load(fh)", "import dill\ndill.loads(b)",
               "import numpy as np\nnp.load(p, allow_pickle=True)", "import pandas as pd\npd.read_pickle(p)",
               "import yaml\nyaml.load(text)", "import shelve\nshelve.open(p)", "import marshal\nmarshal.loads(b)"],
    "weights-format": ["from transformers import AutoModelForCausalLM\n"
                       "AutoModelForCausalLM.from_pretrained(d, local_files_only=True)"],
    "remote-code": ["from transformers import AutoTokenizer\n"
                    "AutoTokenizer.from_pretrained(d, trust_remote_code=True, local_files_only=True)"],
    "hub-lookup": ["from transformers import AutoTokenizer\nAutoTokenizer.from_pretrained(d)"],
}
SAFE = [
    "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "from safetensors.torch import load_file\nload_file(p)",
    "import numpy as np\nnp.load(p)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import json\njson.loads(s)",
    "from transformers import AutoModelForCausalLM\n"
    "AutoModelForCausalLM.from_pretrained(d, use_safetensors=True, local_files_only=True)",
    "from transformers import AutoTokenizer\nAutoTokenizer.from_pretrained(d, local_files_only=True)",
    "from peft import PeftModel\nPeftModel.from_pretrained(m, d, local_files_only=True)",
    "import gguf\ngguf.GGUFReader(p)",
]


@pytest.mark.parametrize("rule,source", [(r, s) for r, srcs in UNSAFE.items() for s in srcs])
def test_the_scanner_flags_each_unsafe_form(rule, source):
    rules = {f.rule for f in scan_source(textwrap.dedent(source))}
    assert rule in rules, f"{source!r} not flagged as {rule}: {rules}"


@pytest.mark.parametrize("source", SAFE)
def test_the_scanner_accepts_the_safe_forms(source):
    assert scan_source(source) == []


def test_product_code_loads_nothing_unsafely():
    findings, n_files = scan_product()
    record("safe-loading scan", {"files": n_files, "findings": len(findings)})
    assert n_files > 50
    assert not findings, "unsafe loading in product code:\n" + "\n".join(map(str, findings))
