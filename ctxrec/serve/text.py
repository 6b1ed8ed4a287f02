"""Recommendation text: one sentence per recommendation, built from its explanation path.

:func:`reason_sentence` turns the evidence of :func:`ctxrec.graph.queries.explain` (an item
the user interacted with that shares sessions with the recommended one; time slots and
places where the user has sessions and where the item was chosen) into a sentence such as
*"Because you bought Quiet Rain, and it is often chosen on Saturday evenings in London, as in
your own sessions."* It says only what the graph shows.

:class:`LMWriter` optionally rewrites that sentence with a local causal language model
(Hugging Face ``transformers``, weights from a folder, never downloaded). The template
sentence is its only input, so the model can rephrase but has no other facts; when it
produces nothing usable the template stands.

Example:
    >>> rows = pd.DataFrame([{"kind": "item", "node": "i7", "description": "Quiet Rain", "strength": 3.0,
    ...                       "detail": "in 3 sessions together"}])
    >>> reason_sentence(rows, actions={"i7": "purchase"})
    'Because you bought Quiet Rain, which people often choose in the same session.'
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Tuple

import pandas as pd

#: action -> past-tense phrase for "because you ..."
ACTION_VERBS = {"view": "viewed", "click": "clicked on", "cart": "put in your cart", "purchase": "bought",
                "rating": "rated", "rate": "rated", "like": "liked", "play": "played", "listen": "listened to",
                "watch": "watched"}
#: the sentence when the graph holds no path from the user to the item
NO_PATH = "Picked for your overall taste: no shared sessions, time slots or places link it to your history yet."


def _verb(action: Optional[str]) -> str:
    """``"purchase"`` -> ``"bought"``; unknown actions read "interacted with", none "chose"."""
    return ACTION_VERBS.get(str(action).lower(), "interacted with") if action else "chose"


def _when(description: str) -> str:
    """``"Saturday evening"`` -> ``"on Saturday evenings"`` (a time slot's habitual form)."""
    return f"on {description}s" if description else ""


def reason_sentence(rows: pd.DataFrame, actions: Optional[Mapping[str, str]] = None) -> str:
    """One sentence from the explanation rows of an item (strongest evidence of each kind).

    Args:
        rows (pd.DataFrame): ``kind, node, description, strength, detail`` rows from
            :func:`ctxrec.graph.queries.explain`, strongest first within a kind.
        actions (Mapping[str, str], optional): the user's action per item id of the
            ``item`` rows, e.g. ``{"i7": "purchase"}`` (default: none, "chose").

    Returns:
        str: the sentence; :data:`NO_PATH` when ``rows`` is empty.
    """
    actions = dict(actions or {})
    best = {kind: rows[rows["kind"] == kind].iloc[0] for kind in ("item", "time", "place")
            if (rows["kind"] == kind).any()}
    where = " ".join(p for p in (_when(best["time"]["description"]) if "time" in best else "",
                                 f"in {best['place']['description']}" if "place" in best else "") if p)
    if "item" in best:
        row = best["item"]
        because = f"Because you {_verb(actions.get(row['node']))} {row['description'] or row['node']}"
        if where:
            return f"{because}, and it is often chosen {where}, as in your own sessions."
        return f"{because}, which people often choose in the same session."
    if where:
        return f"Often chosen {where}, as in your own sessions."
    return NO_PATH


class LMWriter:
    """Rewrites a reason sentence with a local causal language model.

    Args:
        path (str | Path): a folder with a ``transformers`` causal LM and its tokenizer
            (``config.json``, weights, tokenizer files), as written by ``save_pretrained``.
        max_new_tokens (int): longest continuation (default: 40).
        device (str): torch device (default: ``"cpu"``).

    Example:
        >>> writer = LMWriter("/models/tiny-gpt2")                               # doctest: +SKIP
        >>> writer.write("Because you bought Quiet Rain, which people often choose in the same session.")  # doctest: +SKIP
        ('You may like it: you bought Quiet Rain.', 'lm')
    """

    PROMPT = ("Rewrite the reason for a recommendation as one friendly sentence.\n"
              "Reason: {facts}\nSentence:")

    def __init__(self, path: str | Path, max_new_tokens: int = 40, device: str = "cpu") -> None:
        from ctxrec.optional import require

        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"language model path {str(path)!r} is not a folder with config.json; give a "
                                    "folder written by save_pretrained (a causal LM and its tokenizer)")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        transformers = require("transformers", "LMWriter")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"cannot load a causal language model and tokenizer from {str(path)!r}: {e}") from e
        self.model.to(device).eval()
        self.path, self.max_new_tokens, self.device = path, max_new_tokens, device

    def prompt(self, facts: str) -> str:
        """The text the model continues."""
        return self.PROMPT.format(facts=facts)

    def write(self, facts: str) -> Tuple[str, str]:
        """``(sentence, source)``: the model's first line after the prompt (``"lm"``), or
        ``facts`` itself when that line is empty (``"template"``). Greedy, so repeatable."""
        import torch

        enc = self.tokenizer(self.prompt(facts), return_tensors="pt")
        ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                      do_sample=False, pad_token_id=pad)
        text = self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        line = next((s.strip() for s in text.splitlines() if s.strip()), "")
        return (line, "lm") if line else (facts, "template")
