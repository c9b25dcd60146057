"""The service's backend of these settings (wiring only): the operational database, the
champion models, the online store, the tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from serving.api.app import Backend
from wedsync_cs.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from serving.api.auth import TokenBook
    from serving.assessments import SupplierAssessments
    from serving.rules import RuleSet


def build_backend(settings: Settings) -> Backend:
    """Raises whatever keeps the service from being ready, the models first (so a home
    never trained says to train): no champion (``LookupError``), an unreachable or outdated
    database (:class:`serving.db.migrate.DatabaseNotReadyError`), no feature store
    (``FileNotFoundError``)."""
    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from serving.api.auth import TokenBook
    from serving.assessments import SupplierAssessments
    from serving.db.migrate import require_current
    from serving.rules import load_rules
    from serving.scorer import Scorer
    from training.registry import load_champions
    from wedsync_cs.database import operational_engine
    from wedsync_cs.feature_jobs import store_config

    # one XGBoost thread per worker: requests are small and the workers are the parallelism
    # (two threads in each of two workers on two cores oversubscribe them under load)
    champions = load_champions(settings.tracking_uri, threads=1)
    engine = operational_engine(settings)
    require_current(engine)
    config = store_config(settings)
    if not (config.root / "feature_store.yaml").exists():
        raise FileNotFoundError(
            f"no feature store at {config.root}: run `wedsync-cs score-daily` (or "
            "`features build` and `features materialize`) first"
        )
    scorer = Scorer(champions, OnlineFeatureReader(open_store(config)))
    return backend_of(
        TokenBook(settings.api_tokens),
        SupplierAssessments(scorer, engine),
        engine,
        load_rules(settings.rules_path),
        settings,
    )


def backend_of(
    tokens: TokenBook,
    assessments: SupplierAssessments,
    engine: Engine,
    rules: RuleSet,
    settings: Settings,
) -> Backend:
    """The backend's plain objects over one operational database."""
    from serving.bulk import BulkOutreach
    from serving.effect_book import EffectBook
    from serving.executions import ExecutionLog
    from serving.in_app import InAppInbox
    from serving.interventions import InterventionRecorder
    from serving.onboarding import OnboardingTracker
    from serving.performance import PerformanceBook
    from serving.predictions import PredictionBook
    from serving.worklist import Worklists

    return Backend(
        tokens=tokens,
        assessments=assessments,
        predictions=PredictionBook(engine),
        onboarding=OnboardingTracker(engine),
        interventions=InterventionRecorder(engine, rules=rules),
        engine=engine,
        bulk=BulkOutreach(engine, rules, settings.control_salt, settings.control_share),
        worklists=Worklists(engine, uplift_folder=settings.home_dir / "models" / "uplift"),
        inbox=InAppInbox(engine),
        executions=ExecutionLog(engine),
        performance=PerformanceBook(engine),
        effects=EffectBook(engine),
    )
