"""``wedsync-cs report`` on the served home: one self-contained HTML file with every section,
the ones that cannot be produced yet saying why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitoring.kpis import KPIS
from tests.integration.conftest import ServedHome, run_cli
from training.registry import load_champions
from wedsync_cs.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("served")]


def test_the_report_is_one_self_contained_file_with_every_section(
    served: ServedHome, tmp_path: Path
) -> None:
    result = run_cli(served.env(), "report")
    assert result.exit_code == 0, result.output
    found = re.search(r"Report of (\d{4}-\d{2}-\d{2}): (\S+\.html)", result.output)
    assert found, result.output
    path = Path(found.group(2))
    assert path.parent == served.home / "reports" and path.is_file()
    html = path.read_text()
    # self-contained: no script, stylesheet or image fetched from anywhere
    assert "<script" not in html and not re.search(r"(src|href)=\"https?://", html)
    for heading in ("Input drift", "realised churn", "Intervention effect", "Uplift", "KPIs",
                    "Agents"):  # fmt: skip
        assert heading in html
    assert html.count("<svg") >= 1  # the drift chart (one scored day: no KPI history yet)
    for kpi in KPIS:
        assert kpi.name in html
    # one scored day: no prediction is a horizon old yet, and the output says so
    assert "outcomes: not available" in result.output
    assert "no stored prediction is 30 days old" in html
    assert "not enough randomised executions yet" in html
    assert found.group(1) in path.name

    # what it logged beside the champion (drift, uplift), like everything the runs hold: no
    # file is a pickle (protocol 2 and later start with 0x80) or named like one
    from mlflow.tracking import MlflowClient

    settings = Settings(home=served.home)
    client = MlflowClient(settings.tracking_uri)
    champion = load_champions(settings.tracking_uri, 1).churn_run_id
    logged = {a.path for a in client.list_artifacts(champion, "monitoring")}
    assert any(p.endswith(".html") for p in logged) and any("uplift" in p for p in logged)
    files = []
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            folder = tmp_path / run.info.run_id
            client.download_artifacts(run.info.run_id, "", str(folder))
            files += [f for f in folder.rglob("*") if f.is_file()]
    assert len(files) > 10
    for f in files:
        assert not f.name.endswith((".pkl", ".pickle")), f
        assert f.read_bytes()[:1] != b"\x80", f
