"""Write environment.yml so its pip list mirrors requirements/lock.txt (`make lock`)."""
from pathlib import Path

root = Path(__file__).resolve().parent.parent
pins = [line.strip() for line in (root / "requirements/lock.txt").read_text().splitlines() if line.strip()]
body = [
    "# conda env create -f environment.yml   (the pip list mirrors requirements/lock.txt; a test checks)",
    "name: ctxrec",
    "channels:",
    "  - conda-forge",
    "dependencies:",
    "  - python=3.11",
    "  - pip",
    "  - pip:",
    *[f"      - {p}" for p in pins],
    "      - -e .",
]
(root / "environment.yml").write_text("\n".join(body) + "\n")
