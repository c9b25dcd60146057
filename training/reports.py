"""The evaluation's reports: tables (CSV and markdown) and figures (PNG) of a training run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training import plots
from training.evaluation import CEILING, Evaluation


def markdown_table(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-style markdown table (no extra dependency)."""
    header = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_artifacts(evaluation: Evaluation, folder: Path) -> Path:
    """Tables (CSV and markdown) and figures (PNG) of the evaluation under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    evaluation.table.to_csv(folder / "evaluation.csv", index_label="model")
    (folder / "evaluation.md").write_text(markdown_table(evaluation.table))
    evaluation.bands.to_csv(folder / "health_bands.csv", index=False)
    (folder / "health_bands.md").write_text(markdown_table(evaluation.bands.set_index("band")))
    families = evaluation.family_importance.rename("mean_abs_shap")
    families.to_csv(folder / "shap_families.csv", index_label="family")
    (folder / "shap_families.md").write_text(markdown_table(families.to_frame()))
    evaluation.feature_importance.rename("mean_abs_shap").to_csv(
        folder / "shap_features.csv", index_label="feature"
    )
    figures = folder / "plots"
    plots.importance_bar(
        evaluation.feature_importance, figures / "shap_features.png", "Churn model: top features"
    )
    plots.importance_bar(families, figures / "shap_families.png", "Churn model: factor families")
    plots.shap_summary(
        evaluation.explanation.values,
        evaluation.explanation.features,
        figures / "shap_summary.png",
    )
    probabilities = {
        k: v
        for k, v in evaluation.scores.items()
        if k in ("churn_model", "health_calibrated", "fixed_weight_rule", CEILING)
    }
    plots.reliability(evaluation.y, probabilities, figures / "reliability.png")
    plots.precision_recall(evaluation.y, evaluation.scores, figures / "precision_recall.png")
    return folder
