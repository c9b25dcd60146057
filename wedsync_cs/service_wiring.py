"""The service's backend of these settings (wiring only): the operational database, the
champion models, the online store, the tokens."""

from __future__ import annotations

from serving.api.app import Backend
from wedsync_cs.settings import Settings


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
    from serving.interventions import InterventionRecorder
    from serving.onboarding import OnboardingTracker
    from serving.predictions import PredictionBook
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
    return Backend(
        tokens=TokenBook(settings.api_tokens),
        assessments=SupplierAssessments(scorer, engine),
        predictions=PredictionBook(engine),
        onboarding=OnboardingTracker(engine),
        interventions=InterventionRecorder(engine),
        engine=engine,
    )
