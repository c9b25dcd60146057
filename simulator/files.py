"""Where the simulator's files are: the raw contract folder and the truth beside it."""

from __future__ import annotations

from pathlib import Path

# Beside ``truth.parquet`` with the ``interventions`` option only (simulator/interventions.py):
# one row per supplier (held out or not, responder or not, its true effect of each type) ...
INTERVENTION_EFFECTS_FILE = "truth_interventions.parquet"
# ... and one per contact the policy decided, delivered or withheld from the held-out group.
INTERVENTION_CONTACTS_FILE = "truth_intervention_contacts.parquet"


def find_truth(raw: Path) -> Path | None:
    """``truth.parquet`` beside the raw folder (where the simulator writes it) or inside it;
    ``None`` for an export that has no truth (every real one)."""
    raw = Path(raw)
    for candidate in (raw.parent / "truth.parquet", raw / "truth.parquet"):
        if candidate.is_file():
            return candidate
    return None
