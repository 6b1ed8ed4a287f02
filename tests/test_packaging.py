"""Packaging: the lock and environment.yml agree; ``import ctxrec`` stays light."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch_geometric", "neo4j", "open_clip", "torchaudio", "faiss", "transformers", "sentence_transformers")


def _pins(lines):
    return sorted(line.strip().lower().replace("_", "-") for line in lines
                  if line.strip() and not line.startswith(("#", "-")))


def test_environment_yml_pip_list_equals_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    lock = (ROOT / "requirements/lock.txt").read_text().splitlines()
    assert _pins(pip) == _pins(lock), "environment.yml and requirements/lock.txt disagree: run `make lock`"


def test_lock_pins_the_torch_trio_exactly():
    lock = set(_pins((ROOT / "requirements/lock.txt").read_text().splitlines()))
    assert {"torch==2.11.0", "torchvision==0.26.0", "torchaudio==2.11.0"} <= lock
    assert all("==" in p for p in lock), "every line of the lock must be pinned"


def _imported_after(statement: str) -> set:
    code = f"import sys; {statement}; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.strip().split(","))


def test_import_ctxrec_is_light():
    mods = _imported_after("import ctxrec, ctxrec.graph, ctxrec.graph.schema")
    heavy = {m for m in mods if m.split(".")[0] in HEAVY}
    assert not heavy, f"import ctxrec pulled in {sorted(heavy)}"


def test_library_modules_do_not_import_optional_backends():
    mods = _imported_after("import ctxrec.cli, ctxrec.graph.stores, ctxrec.modalities, ctxrec.training")
    heavy = {m.split(".")[0] for m in mods} & {"neo4j", "open_clip", "torchaudio", "faiss"}
    assert not heavy, f"importing the package's modules pulled in {sorted(heavy)}"
