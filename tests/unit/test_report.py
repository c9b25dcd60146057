"""The monitoring report on small inline sections: every section's key numbers, one file that
opens offline, escaped text, "not available" boxes and not-significant effects shown as such."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from monitoring.report import MAX_DRIFT_COLUMNS, ReportData, render_report

MALICIOUS = "<script>alert(1)</script>"


def metrics(n: int, positives: int, auc: float | None, brier: float) -> dict[str, Any]:
    """``monitoring.outcomes.outcome_metrics``' shape, with three calibration bins."""
    return {
        "n": n,
        "positives": positives,
        "missing_scores": 0,
        "auc": auc,
        "pr_auc": None if auc is None else auc - 0.5,
        "brier": brier,
        "log_loss": 0.1234,
        "ece": 0.0123,
        "calibration": [
            {"decile": 1, "mean_predicted": 0.01, "observed_rate": 0.008, "n": n // 3},
            {"decile": 2, "mean_predicted": 0.05, "observed_rate": 0.061, "n": n // 3},
            {"decile": 3, "mean_predicted": 0.2, "observed_rate": 0.17, "n": n // 3},
        ],
    }


def model_outcomes(auc: float, overconfidence: float = 0.0) -> dict[str, Any]:
    overall = metrics(4200, 180, auc, 0.0391)
    for decile in overall["calibration"]:
        decile["mean_predicted"] *= 1 + overconfidence
    return {
        "overall": overall,
        "by_tier": {
            "starter": metrics(3000, 150, auc - 0.02, 0.045),
            "professional": metrics(1200, 30, None, 0.02),
        },
        "by_vendor_type": {"photographer": metrics(4200, 180, auc, 0.0391)},
        "by_hemisphere": {"northern": metrics(4200, 180, auc, 0.0391)},
        "by_month": {
            "2024-04-01": metrics(2000, 90, auc + 0.01, 0.04),
            "2024-05-01": metrics(2200, 90, auc - 0.01, 0.038),
        },
    }


def effect(
    kind: str, rule: str | None, difference: float, low: float, high: float, significant: bool
) -> dict[str, Any]:
    return {
        "intervention_type": kind,
        "rule": rule,
        "churn_prevented_30d_ci_low": 21.4 * low / difference,
        "churn_prevented_30d_ci_high": 21.4 * high / difference,
        "n_treated": 1250,
        "n_control": 140,
        "delivery_rate": 0.964,
        "cost": 3125.0,
        "churn_prevented_30d": 21.4,
        "ltv_protected": 48213.5,
        "roi": 15.4,
        "verdict": "works" if significant else "no evidence",
        "outcomes": {
            "login_7d": {
                "treated": 0.64,
                "control": 0.52,
                "difference": 0.12,
                "ci_low": 0.03,
                "ci_high": 0.21,
                "p_value": 0.0004,
                "significant": True,
                "n_treated": 1250,
                "n_control": 140,
            },
            "retained_30d": {
                "treated": 0.91,
                "control": 0.91 - difference,
                "difference": difference,
                "ci_low": low,
                "ci_high": high,
                "p_value": 0.004 if significant else 0.41,
                "significant": significant,
                "n_treated": 1250,
                "n_control": 140,
            },
            "retained_60d": {
                "treated": 0.85,
                "control": 0.85 - difference,
                "difference": difference,
                "ci_low": low - 0.01,
                "ci_high": high + 0.01,
                "p_value": 0.01 if significant else 0.5,
                "significant": significant,
                "n_treated": 1250,
                "n_control": 140,
            },
            "health_change_14d": {
                "treated": 2.4,
                "control": 0.9,
                "difference": 1.5,
                "ci_low": 0.2,
                "ci_high": 2.8,
                "p_value": 0.02,
                "significant": True,
                "n_treated": 1250,
                "n_control": 140,
            },
        },
    }


# As monitoring.effects gives it: too few units, no figures, the producer's own verdict.
NOT_ESTIMABLE = {
    "intervention_type": "in_app_message",
    "rule": None,
    "n_treated": 12,
    "n_control": 2,
    "delivery_rate": 1.0,
    "cost": 1.2,
    "churn_prevented_30d": None,
    "ltv_protected": None,
    "roi": None,
    "verdict": "not estimable: 12 contacted and 2 held-out unit(s) measured, fewer than 30",
    "outcomes": {
        "retained_30d": {
            "kind": "proportion",
            "estimable": False,
            "treated": None,
            "control": None,
            "difference": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "significant": False,
            "n_treated": 12,
            "n_control": 2,
        }
    },
}


def full_data(columns: int = 6) -> ReportData:
    """Every section filled; the email type's rule named maliciously, its retention effect
    not significant."""
    drift_columns = {
        f"feature_{i:02d}": {
            "score": 0.02 * (i + 1),
            "method": "Wasserstein distance (normed)",
            "threshold": 0.1,
            "drifted": 0.02 * (i + 1) >= 0.1,
        }
        for i in range(columns)
    }
    drift_columns["vendor_type"] = {  # a test: drifted below its threshold
        "score": 0.0004,
        "method": "chi-square p_value",
        "threshold": 0.05,
        "drifted": True,
    }
    kpi_days = [date(2024, 6, d) for d in (28, 29, 30)]
    return ReportData(
        generated_at=datetime(2024, 7, 1, 6, 30, tzinfo=UTC),
        as_of=date(2024, 6, 30),
        models={"churn_model": "7", "health_model": "3"},
        drift={
            "reference": "2022-07-01..2024-03-31",
            "current": "2024-06-01..2024-06-30",
            "reference_rows": 98765,
            "current_rows": 12345,
            "max_drifted_share": 0.3,
            "drifted_share": 0.4286,
            "drifted_count": 3,
            "feature_drifted_share": 0.3333,
            "columns": drift_columns,
            "prediction": {
                "score": 0.1234,
                "method": "Wasserstein distance (normed)",
                "threshold": 0.1,
                "drifted": True,
            },
            "report": "/home/cs/.cs-home/reports/drift-2024-06-30-20240701T063000Z.html",
        },
        outcomes={
            "as_of": "2024-06-30",
            "horizon_days": 30,
            "days": ["2024-04-01", "2024-05-31"],
            "holdout": {"auc": 0.861, "pr_auc": 0.412, "brier": 0.0355},
            "retrain_flags": ["AUC 0.812 is 0.049 below the champion's holdout 0.861"],
            "churn": model_outcomes(0.812),
            "health": model_outcomes(0.774, overconfidence=0.3),
        },
        effects=[
            effect("call_booking", None, 0.062, 0.021, 0.103, True),
            effect("call_booking", "critical_risk_call", 0.071, 0.018, 0.124, True),
            effect("email_sequence", None, 0.012, -0.03, 0.054, False),
            effect("email_sequence", MALICIOUS, 0.015, -0.04, 0.07, False),
            NOT_ESTIMABLE,
        ],
        uplift=[
            {
                "intervention_type": "call_booking",
                "n_train": 8000,
                "n_test": 2000,
                "qini_coefficient": 0.0437,
                "ci_low": 0.012,
                "ci_high": 0.075,
                "beats_random": True,
                "reason": "Qini interval above zero",
                "curve": {
                    "fraction": [0, 0.25, 0.5, 0.75, 1],
                    "model": [0, 18, 29, 35, 38],
                    "random": [0, 9.5, 19, 28.5, 38],
                },
            },
            {
                "intervention_type": "email_sequence",
                "n_train": 9000,
                "n_test": 2250,
                "qini_coefficient": 0.0051,
                "ci_low": -0.011,
                "ci_high": 0.021,
                "beats_random": False,
                "reason": "Qini interval includes zero",
                "curve": {
                    "fraction": [0, 0.5, 1],
                    "model": [0, 6, 10],
                    "random": [0, 5, 10],
                },
            },
        ],
        kpis=[
            *(
                {
                    "name": "logo_churn_30d",
                    "definition": "The share of active suppliers who cancelled.",
                    "value": value,
                    "unit": "share",
                    "date": day,
                }
                for day, value in zip(kpi_days, (0.031, 0.029, 0.0274), strict=True)
            ),
            {
                "name": "ltv_at_risk",
                "definition": "The LTV at risk of the at-risk suppliers.",
                "value": 1234567.0,
                "unit": "currency",
                "date": kpi_days[-1],
            },
            {
                "name": "csat_30d",
                "definition": "The mean satisfaction rating of resolved tickets.",
                "value": None,
                "unit": "rating",
                "date": kpi_days[-1],
            },
        ],
        agents=[
            {
                "agentId": "agent-2",
                "name": "Sam Okafor",
                "date": "2024-06-30",
                "accountsManaged": 140,
                "interactionsCompleted": 310,
                "satisfaction": 4.61,
                "churnPrevented": 6.2,
                "churnPreventedCiLow": 1.1,
                "churnPreventedCiHigh": 11.3,
                "upgrades": 4,
                "healthImprovements": 22,
                "ltvImpact": 15400.0,
                "creditBasis": "control group",
            },
            {
                "agentId": "agent-1",
                "name": "Priya Shah",
                "date": "2024-06-30",
                "accountsManaged": 1520,
                "interactionsCompleted": 2045,
                "satisfaction": 4.42,
                "churnPrevented": 9.8,
                "churnPreventedCiLow": 3.0,
                "churnPreventedCiHigh": 16.6,
                "upgrades": 7,
                "healthImprovements": 31,
                "ltvImpact": 23456.0,
                "creditBasis": "control group",
            },
            {
                "agentId": "agent-3",
                "name": "New Agent",
                "date": "2024-06-30",
                "accountsManaged": 12,
                "interactionsCompleted": 9,
                "satisfaction": None,
                "churnPrevented": None,
                "churnPreventedCiLow": None,
                "churnPreventedCiHigh": None,
                "upgrades": 0,
                "healthImprovements": 1,
                "ltvImpact": None,
                "creditBasis": "insufficient control data",
            },
        ],
    )


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(full_data())


def section(page: str, name: str) -> str:
    """The HTML of one ``<section id=name>``."""
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, flags=re.S)
    assert found, f"no section {name}"
    return found.group(1)


def text_of(page: str) -> str:
    """The visible text outside the charts: tags dropped, entities read, spaces collapsed."""
    page = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    return re.sub(r" ([,.:;)])", r"\1", text)


def test_one_document_with_every_section(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    for name in ("drift", "outcomes", "effects", "uplift", "kpis", "agents"):
        assert f'href="#{name}"' in page
        assert "not available" not in section(page, name)


def test_header_shows_the_run_and_the_alarms(page: str) -> None:
    header = text_of(page.split("</header>")[0])
    assert "2024-07-01 06:30 UTC" in header and "as of 2024-06-30" in header
    assert "churn_model 7" in header and "health_model 3" in header
    assert "Input drift ALARM 42.9% of columns drifted (alarm above 30.0%)" in header
    assert "Retrain RETRAIN 1 flag(s)" in header
    assert "Uplift targeting on uplift x LTV for 1 of 2: call_booking" in header


def test_drift_numbers(page: str) -> None:
    text = text_of(section(page, "drift"))
    assert "Reference 2022-07-01..2024-03-31 (98,765 rows)" in text
    assert "current 2024-06-01..2024-06-30 (12,345 rows)" in text
    assert "42.9% of the monitored columns drifted (3 of 8: 7 features and the prediction)" in text
    assert "the alarm is above 30.0%: ALARM" in text
    assert "Features alone: 33.3%" in text
    assert "drifted, Wasserstein distance (normed) score 0.123 against threshold 0.100" in text
    link = 'href="drift-2024-06-30-20240701T063000Z.html"'  # relative: the file name only
    assert link in section(page, "drift")


def test_drift_chart_shows_at_most_the_most_drifted_columns() -> None:
    many = render_report(full_data(columns=MAX_DRIFT_COLUMNS + 5))
    drift = section(many, "drift")
    chart = re.search(r"<svg.*?</svg>", drift, flags=re.S).group(0)
    assert "feature_44" in chart and "feature_00" not in chart  # the least drifted left out
    assert "6 more column(s) not shown" in text_of(drift)


def test_outcomes_numbers(page: str) -> None:
    text = text_of(section(page, "outcomes"))
    assert "As of 2024-06-30: the predictions of 2024-04-01 to 2024-05-31" in text
    assert "followed it" in text and "30 days" in text
    assert "AUC 0.812 is 0.049 below the champion's holdout 0.861" in text
    assert "AUC 0.812 0.774 0.861" in text
    assert "Brier score 0.0391 0.0391 0.0355" in text
    assert "Predictions judged 4,200 4,200 –" in text
    assert "starter 3,000 150 5.0% 0.792" in text
    assert "professional 1,200 30 2.5% – –" in text  # one class: no AUC, shown as a dash
    assert "2024-04 2,000 90" in text and "2024-05 2,200 90" in text


def test_effects_numbers_and_not_significant_shown_as_such(page: str) -> None:
    html = section(page, "effects")
    text = text_of(html)
    assert "call_booking" in text and "all rules (pooled)" in text
    assert "critical_risk_call 1,250 140 96.4% 3,125 21.4 [5.4, 37.4] 48,214 15.4×" in text
    assert "+7.1 pp [+1.8, +12.4] 91.0% vs 83.9% p = 0.004" in text
    assert "+1.50 [+0.20, +2.80] 2.40 vs 0.90 p = 0.020" in text  # a change, not a share
    assert "+12.0 pp [+3.0, +21.0] 64.0% vs 52.0% p < 0.001" in text
    rows = re.findall(r"<tr.*?</tr>", html, flags=re.S)
    costs, outcomes = [r for r in rows if "&lt;script&gt;" in r]  # the rule's two rows
    assert "no evidence" in costs and "retained_30d not significant" in text_of(costs)
    assert '<td class="ns">no evidence' in costs  # grey, not green
    cells = re.findall(r'<td class="([^"]*)">(.*?)</td>', outcomes, flags=re.S)
    retained = [(cls, cell) for cls, cell in cells if "+1.5 pp" in cell]
    assert [cls for cls, _ in retained] == ["num effect ns"] * 2  # 30 and 60 days, grey
    assert all("not significant" in cell for _, cell in retained)
    logins = [cls for cls, cell in cells if "+12.0 pp" in cell]
    assert logins == ["num effect good"]  # a significant gain of the same rule stays green
    call = next(r for r in rows if "critical_risk_call" in r)
    assert '<td class="good">works' in call and "not significant" not in text_of(call)


def test_an_effect_not_measured_is_not_estimable_rather_than_a_number(page: str) -> None:
    html = section(page, "effects")
    in_app = html.split("<caption>in_app_message</caption>")[1]
    costs, outcomes = re.findall(r"<tbody>(.*?)</tbody>", in_app, flags=re.S)[:2]
    assert "all rules (pooled) 12 2 100.0% 1 – – –" in text_of(costs)
    assert text_of(costs).count("not estimable") == 1  # the producer's verdict says it once
    assert '<td class="ns">not estimable' in costs
    assert text_of(outcomes).strip() == "all rules (pooled) – not estimable"
    forest = re.search(r"<svg.*?</svg>", html, flags=re.S).group(0)
    assert "in_app_message" not in forest  # nothing to draw


def test_money_intervals_when_the_producer_gives_them(page: str) -> None:
    text = text_of(section(page, "effects"))
    assert "21.4 [7.2, 35.6] 48,214" in text  # the pooled call booking's churn prevented


def test_uplift_numbers(page: str) -> None:
    text = text_of(section(page, "uplift"))
    assert "Ranking by uplift × LTV for call_booking" in text
    assert "call_booking 8,000 2,000 0.044 [0.012, 0.075] yes uplift × LTV" in text
    assert "email_sequence 9,000 2,250 0.005 [-0.011, 0.021] no risk (churn probability" in text


def test_kpis_latest_value_with_history(page: str) -> None:
    html = section(page, "kpis")
    text = text_of(html)
    assert "logo_churn_30d The share of active suppliers who cancelled. 2.7% 2024-06-30" in text
    assert "ltv_at_risk The LTV at risk of the at-risk suppliers. 1,234,567 2024-06-30" in text
    assert "csat_30d The mean satisfaction rating of resolved tickets. – 2024-06-30" in text
    assert html.count('<svg class="spark"') == 1  # only logo churn has a history
    assert "2024-06-28 to 2024-06-30: from 3.1% to 2.7%" in html


def test_agents_sorted_by_ltv_impact(page: str) -> None:
    text = text_of(section(page, "agents"))
    assert text.index("Priya Shah") < text.index("Sam Okafor") < text.index("New Agent")
    assert "1,520 2,045 4.42 9.8 [3.0, 16.6] 7 31 23,456 control group" in text
    assert "12 9 – – 0 1 – insufficient control data" in text


def test_one_svg_per_chart(page: str) -> None:
    charts = {name: section(page, name).count('<svg class="chart"') for name, *_ in SECTIONS}
    # drift per column; calibration and AUC per month; the forest; a Qini curve per type
    assert charts == {
        "drift": 1,
        "outcomes": 2,
        "effects": 1,
        "uplift": 2,
        "kpis": 0,
        "agents": 0,
    }
    assert page.count("<svg") == sum(charts.values()) + 1  # and the one sparkline


def test_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert "<script" not in page.lower()
    assert "@import" not in page
    assert set(re.findall(r"url\(\s*['\"]?(.)", page)) == {"#"}  # clip paths of the charts
    assert "<?xml" not in page and "<metadata" not in page and "<!DOCTYPE svg" not in page


def test_text_is_escaped_in_tables_and_charts(page: str) -> None:
    assert MALICIOUS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "effects")
    forest = re.search(r"<svg.*?</svg>", section(page, "effects"), flags=re.S).group(0)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in forest


def test_every_section_missing_says_why() -> None:
    page = render_report(
        ReportData(
            generated_at=datetime(2024, 7, 1, 6, 30),
            drift_unavailable="no drift run yet",
            outcomes_unavailable=MALICIOUS,
        )
    )
    text = text_of(page)
    assert "not available: no drift run yet" in text
    assert "not available: &lt;script&gt;" in page and MALICIOUS not in page
    assert f"not available: {MALICIOUS}" in text
    for name in ("effects", "uplift", "kpis", "agents"):
        assert "not available: no data given" in text_of(section(page, name))
    assert "<svg" not in page
    assert "Input drift n/a no drift run yet" in text and "as of –" in text


def test_a_section_that_cannot_be_read_does_not_take_the_report_down() -> None:
    page = render_report(
        ReportData(
            generated_at=datetime(2024, 7, 1, tzinfo=UTC),
            drift={"columns": ["not", "a", "mapping"]},
            effects=[{"intervention_type": "email_sequence"}],  # every other key missing
        )
    )
    assert "not available: the drift data could not be read (AttributeError" in text_of(page)
    effects = text_of(section(page, "effects"))
    assert "email_sequence" in effects and "all rules (pooled) – – – – – – –" in effects


def test_import_draws_nothing() -> None:
    """matplotlib is loaded by ``render_report``, not by importing the module."""
    code = "import sys, monitoring.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        ReportData(generated_at=datetime(2024, 7, 1), drfit={})


SECTIONS = (("drift",), ("outcomes",), ("effects",), ("uplift",), ("kpis",), ("agents",))
