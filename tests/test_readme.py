"""The README's Python quickstart runs as written (on the tiny world, few epochs)."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_quickstart_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    block = re.search(r"## Python quickstart\s+```python\n(.*?)```", text, re.S).group(1)
    assert 'generate_world("small")' in block and "epochs=100" in block
    code = block.replace('generate_world("small")', 'generate_world("tiny")').replace("epochs=100", "epochs=3")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "ndcg@20" in out and "rows_loaded" in out
    assert (tmp_path / "graph.db").exists() and (tmp_path / "cache").is_dir()


def test_add_a_modality_example_meets_the_contract():
    text = README.read_text()
    code = re.search(r"# my_plugin/__init__.py\n(.*?)```", text, re.S).group(1)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    enc = ns["PriceEncoder"]()
    x, mask = enc.encode_all([3.5, None, "2"])
    assert x.shape == (3, enc.output_dim) and mask.tolist() == [True, False, True]
    assert x[1].abs().sum() == 0
