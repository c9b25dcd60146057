"""The BentoML service: the API of :mod:`serving.api.app` in BentoML workers.

A thin adapter. Each worker builds its backend (:func:`wedsync_cs.service_wiring.build_backend`)
when it starts and, while that fails (no champion, no feature store, database unreachable or
behind), keeps answering 503 with the reason and retries every few seconds; ``/readyz``
answers 503 until the backend is built and the database answers. Nothing is shared between
requests in a worker's memory: idempotency keys and executions live in the database.

Run it with ``wedsync-cs serve --port N [--workers K]`` (or ``bentoml serve
serving.service:CustomerSuccess``).
"""

from __future__ import annotations

import gc
import os
import threading
import time
import warnings

import bentoml

from serving.api.app import Backend, PlainErrorsAsEnvelope, build_app, unavailable

RETRY_SECONDS = 5.0
FULL_COLLECTION_THRESHOLD = 1000  # middle collections between full ones (Python's default: 10)


def quiet_full_collections() -> None:
    """Keep Python's full garbage collections off the request path.

    Two kinds of long-lived objects made full collections stall requests for 50-300 ms (the
    p99 under load, with every collected generation empty): the libraries and models loaded at
    start (millions of objects), and BentoML's per-request timers. Its ``TimeoutMiddleware``
    (1.4.40) schedules a ``call_later`` of the traffic timeout for every request and never
    cancels it, so each request's context (its OpenTelemetry span, always recorded) lives for
    the whole timeout: tens of thousands of objects at a few hundred requests a second, all
    freed by reference counting when their timers fire, none garbage. So the loaded objects
    are frozen out of collection, and full collections run a hundred times less often than
    by default; young collections stay as they are and still free request cycles.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_THRESHOLD)


def _current_backend() -> Backend:
    return bentoml.get_current_service().backend()


def _built_backend() -> Backend | None:
    return bentoml.get_current_service().built()


app = build_app(_current_backend, _built_backend)


@bentoml.service(
    name="wedsync_customer_success",
    workers=1,
    traffic={"timeout": 60},
    metrics={"enabled": False},
)
@bentoml.asgi_app(app, path="/")
class CustomerSuccess:
    def __init__(self) -> None:
        # MLflow's own SQLAlchemy use warns on every model download
        warnings.filterwarnings("ignore", message=".*noload.*")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self._lock = threading.Lock()
        self._backend: Backend | None = None
        self._reason = "starting"
        self._tried = float("-inf")
        self._load()

    def _load(self) -> None:
        from wedsync_cs.service_wiring import build_backend
        from wedsync_cs.settings import get_settings

        self._tried = time.monotonic()
        try:
            self._backend = build_backend(get_settings())
        except Exception as err:  # whatever keeps it from being ready, said in the 503s
            self._reason = str(err)
            return
        quiet_full_collections()

    def backend(self) -> Backend:
        """The backend, or :class:`serving.errors.UnavailableError` saying why not."""
        if self._backend is None:
            with self._lock:
                if self._backend is None and time.monotonic() - self._tried > RETRY_SECONDS:
                    self._load()
        if self._backend is None:
            raise unavailable(self._reason)
        return self._backend

    def built(self) -> Backend | None:
        """The backend if it is built, else None (never blocks)."""
        return self._backend

    def __is_ready__(self) -> bool:
        try:
            return self.backend().database_reachable()
        except Exception:
            return False


CustomerSuccess.add_asgi_middleware(PlainErrorsAsEnvelope)
