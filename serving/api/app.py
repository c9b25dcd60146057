"""The HTTP face of the serving objects: routes of ``shared/API_CONTRACT.md`` v1.1.

Each route authenticates, checks the role, validates into a pydantic model, calls one plain
object of the :class:`Backend` and answers its pydantic model. Every error answers
``{success: false, error: {code, message}}``: 400/422 for a malformed request, 401, 403, 404,
409, 503 while the backend is not ready or the database is unreachable; an unexpected error is
a 500 with no internals in it (and logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.api import schemas
from serving.api.auth import Principal, TokenBook
from serving.assessments import ScorerBusyError, SupplierAssessments
from serving.bulk import BulkOutreach
from serving.effect_book import EffectBook
from serving.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    ServingError,
    UnavailableError,
)
from serving.executions import ExecutionLog
from serving.in_app import InAppInbox
from serving.interventions import InterventionRecorder
from serving.onboarding import OnboardingTracker
from serving.performance import PerformanceBook
from serving.predictions import MAX_LIMIT, PredictionBook
from serving.worklist import Worklists

log = logging.getLogger(__name__)
PREFIX = "/api/customer-success"
INLINE_IDS = 10  # a /score of at most this many suppliers runs on the event loop
USER_ID = Path(alias="userId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


@dataclass
class Backend:
    """The plain objects behind the routes, built once per worker."""

    tokens: TokenBook
    assessments: SupplierAssessments
    predictions: PredictionBook
    onboarding: OnboardingTracker
    interventions: InterventionRecorder
    engine: Engine
    bulk: BulkOutreach
    worklists: Worklists
    inbox: InAppInbox
    executions: ExecutionLog
    performance: PerformanceBook
    effects: EffectBook

    def database_reachable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("select 1"))
        except Exception:  # any driver error: not reachable
            return False
        return True


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = schemas.ErrorResponse(error=schemas.ErrorBody(code=code, message=message, **extra))
    return JSONResponse(
        status_code=status, content=body.model_dump(mode="json", by_alias=True, exclude_none=True)
    )


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": schemas.ErrorResponse} for s in statuses}


COMMON = (400, 401, 403, 422, 503)


def _validation_message(err: RequestValidationError) -> tuple[int, str]:
    problems = []
    status = 422
    for e in err.errors():
        if e.get("type") == "json_invalid":
            status = 400
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {e.get('msg')}")
    return status, "; ".join(problems)[:2000]


BEARER = HTTPBearer(auto_error=False, description="A token of CS_API_TOKENS")


async def _backend(request: Request) -> Backend:
    # built: answered on the event loop; not yet (a retry may take seconds): in a thread, so
    # that /livez and the other requests never wait for it
    built = request.app.state.built()
    if built is not None:
        return built
    return await run_in_threadpool(request.app.state.backend)


async def _caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    api: Annotated[Backend, Depends(_backend)],
) -> Principal:
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    return api.tokens.authenticate(header)


Api = Annotated[Backend, Depends(_backend)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]
Caller = Annotated[Principal, Depends(_caller)]


def build_app(
    backend: Callable[[], Backend], built: Callable[[], Backend | None] | None = None
) -> FastAPI:
    """The FastAPI app; ``backend`` answers the worker's backend or raises
    :class:`UnavailableError` while it cannot be built (it may block while it tries);
    ``built`` answers the backend at once if it is built, else None.

    Short requests (a health score, a score of at most :data:`INLINE_IDS` suppliers, the
    models) run on the event loop: a millisecond or two of work, for which a hop to the
    thread pool and back would cost more than the work; they go to the pool when the worker's
    scorer is busy with a longer request, so the loop never waits for it. Everything longer
    runs in the pool.
    """
    app = FastAPI(
        title="WedSync customer-success API",
        version="1.1",
        description="Health scores, churn predictions, onboarding and interventions "
        "(shared/API_CONTRACT.md v1.1).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend = backend
    app.state.built = built or (lambda: None)

    @app.exception_handler(ServingError)
    async def _serving_error(_: Request, err: ServingError) -> JSONResponse:
        if isinstance(err, ConflictError) and err.cap:
            return _error(
                err.status, err.code, err.message, cap=err.cap, next_allowed_date=err.next_allowed
            )
        return _error(err.status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(err)
        return _error(status, "invalid_json" if status == 400 else "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return _error(err.status_code, code, str(err.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def _database(_: Request, err: Exception) -> JSONResponse:
        log.warning("operational database error: %s", type(err).__name__)
        return _error(503, "database_unavailable", "the operational database is unreachable")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal_error", "unexpected error; it was logged")

    @app.get(
        f"{PREFIX}/health-score/{{userId}}",
        response_model=schemas.HealthScoreResponse,
        responses=_errors(*COMMON, 404),
        tags=["customer success"],
    )
    async def health_score(
        api: Api, who: Caller, user_id: Annotated[str, USER_ID]
    ) -> schemas.HealthScoreResponse:
        who.require("read")
        try:  # on the event loop while the worker's scorer is free
            score = api.assessments.health_score(user_id, wait=False)
        except ScorerBusyError:
            score = await run_in_threadpool(api.assessments.health_score, user_id)
        return schemas.HealthScoreResponse(health_score=score)

    @app.get(
        f"{PREFIX}/churn-predictions",
        response_model=schemas.ChurnPredictionsResponse,
        responses=_errors(*COMMON),
        tags=["customer success"],
    )
    def churn_predictions(
        api: Api,
        who: Caller,
        risk_level: Annotated[list[schemas.ChurnLevel] | None, Query(alias="riskLevel")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        min_ltv_at_risk: Annotated[
            float | None, Query(alias="minLtvAtRisk", ge=0, allow_inf_nan=False)
        ] = None,
    ) -> schemas.ChurnPredictionsResponse:
        who.require("read")
        return api.predictions.page(risk_level or (), limit, min_ltv_at_risk)

    @app.post(
        f"{PREFIX}/interventions/trigger",
        status_code=201,
        response_model=schemas.TriggerResponse,
        responses=_errors(*COMMON, 404, 409),
        tags=["customer success"],
    )
    def trigger(
        api: Api,
        who: Caller,
        request: Annotated[schemas.TriggerInterventionRequest, Body()],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> JSONResponse:
        who.require("trigger")
        status, body = api.interventions.trigger(request, idempotency_key)
        return JSONResponse(status_code=status, content=body)

    @app.get(
        f"{PREFIX}/interventions",
        response_model=schemas.ExecutionsResponse,
        responses=_errors(*COMMON),
        tags=["interventions"],
    )
    def interventions(
        api: Api,
        who: Caller,
        user_id: Annotated[
            str | None,
            Query(alias="userId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"),
        ] = None,
        intervention_type: Annotated[
            list[schemas.InterventionType] | None, Query(alias="interventionType")
        ] = None,
        status: Annotated[list[schemas.ExecutionStatus] | None, Query()] = None,
        since: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> schemas.ExecutionsResponse:
        who.require("read")
        return schemas.ExecutionsResponse(
            executions=api.executions.list(
                user_id, intervention_type or (), status or (), since, limit
            )
        )

    @app.post(
        f"{PREFIX}/interventions/bulk",
        response_model=schemas.BulkResponse,
        responses={
            201: {"model": schemas.BulkResponse, "description": "executed"},
            **_errors(*COMMON, 409),
        },
        tags=["interventions"],
    )
    def bulk(
        api: Api,
        who: Caller,
        request: Annotated[schemas.BulkInterventionRequest, Body()],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> JSONResponse:
        who.require("bulk_dry_run" if request.dry_run else "bulk")
        status, body = api.bulk.run(request, idempotency_key)
        return JSONResponse(status_code=status, content=body)

    @app.get(
        f"{PREFIX}/worklist",
        response_model=schemas.WorklistResponse,
        responses=_errors(*COMMON, 404),
        tags=["interventions"],
    )
    def worklist(
        api: Api,
        who: Caller,
        agent_id: Annotated[
            str | None,
            Query(alias="agentId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"),
        ] = None,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    ) -> schemas.WorklistResponse:
        who.require("worklist")
        if who.role != "admin":
            if agent_id is not None and agent_id != who.agent_id:
                raise ForbiddenError("an agent's token reads only its own worklist")
            agent_id = agent_id or who.agent_id
        if agent_id is None:
            raise BadRequestError("agentId is required (this token is for no agent)")
        return api.worklists.for_agent(agent_id, limit)

    @app.get(
        f"{PREFIX}/kpis",
        response_model=schemas.KpisResponse,
        responses=_errors(*COMMON),
        tags=["monitoring"],
    )
    def kpis(
        api: Api,
        who: Caller,
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
    ) -> schemas.KpisResponse:
        who.require("kpis")
        return schemas.KpisResponse(kpis=api.performance.kpis(first, last))

    @app.get(
        f"{PREFIX}/interventions/effect",
        response_model=schemas.EffectsResponse,
        responses=_errors(*COMMON),
        tags=["monitoring"],
    )
    def intervention_effect(
        api: Api, who: Caller, since: Annotated[date | None, Query()] = None
    ) -> schemas.EffectsResponse:
        who.require("kpis")
        as_of, effects = api.effects.measure(since)
        return schemas.EffectsResponse(
            as_of=as_of,
            since=since,
            effects=[schemas.InterventionEffectOut(**e.model_dump()) for e in effects],
        )

    @app.get(
        f"{PREFIX}/agents",
        response_model=schemas.AgentsResponse,
        responses=_errors(*COMMON),
        tags=["monitoring"],
    )
    def agents(
        api: Api,
        who: Caller,
        day: Annotated[date | None, Query(alias="date")] = None,
    ) -> schemas.AgentsResponse:
        if who.may("agents"):  # every agent's row
            return schemas.AgentsResponse(agents=api.performance.agents(day, None))
        who.require("worklist")  # an agent's token: its own row only
        if who.agent_id is None:
            raise ForbiddenError("this token is for no agent: only an admin reads every agent")
        return schemas.AgentsResponse(agents=api.performance.agents(day, who.agent_id))

    @app.get(
        f"{PREFIX}/in-app/{{userId}}",
        response_model=schemas.InAppMessagesResponse,
        responses=_errors(*COMMON, 404),
        tags=["interventions"],
    )
    def in_app_messages(
        api: Api, who: Caller, user_id: Annotated[str, USER_ID]
    ) -> schemas.InAppMessagesResponse:
        who.require("read")
        return schemas.InAppMessagesResponse(messages=api.inbox.pending(user_id))

    @app.post(
        f"{PREFIX}/in-app/{{messageId}}/ack",
        response_model=schemas.SuccessResponse,
        responses=_errors(*COMMON, 404, 409),
        tags=["interventions"],
    )
    def in_app_ack(
        api: Api,
        who: Caller,
        message_id: Annotated[
            str, Path(alias="messageId", min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")
        ],
        request: Annotated[schemas.AckRequest, Body()],
    ) -> schemas.SuccessResponse:
        who.require("in_app")
        api.inbox.ack(message_id, request.action)
        return schemas.SuccessResponse()

    @app.post(
        f"{PREFIX}/onboarding/milestone",
        response_model=schemas.OnboardingResponse,
        responses=_errors(*COMMON, 404),
        tags=["customer success"],
    )
    def milestone(
        api: Api, who: Caller, request: Annotated[schemas.MilestoneCompletionRequest, Body()]
    ) -> schemas.OnboardingResponse:
        who.require("milestone")
        return schemas.OnboardingResponse(onboarding=api.onboarding.record(request))

    @app.get(
        f"{PREFIX}/onboarding/{{userId}}",
        response_model=schemas.OnboardingResponse,
        responses=_errors(*COMMON, 404),
        tags=["customer success"],
    )
    def onboarding(
        api: Api, who: Caller, user_id: Annotated[str, USER_ID]
    ) -> schemas.OnboardingResponse:
        who.require("read")
        return schemas.OnboardingResponse(onboarding=api.onboarding.progress(user_id))

    @app.post(
        "/score",
        response_model=schemas.ScoreResponse,
        responses=_errors(*COMMON),
        tags=["models"],
    )
    async def score(
        api: Api, who: Caller, request: Annotated[schemas.ScoreRequest, Body()]
    ) -> schemas.ScoreResponse:
        who.require("model")
        ids = request.user_ids
        if len(ids) <= INLINE_IDS:
            try:  # on the event loop while the worker's scorer is free
                return schemas.ScoreResponse(scores=api.assessments.scores(ids, wait=False))
            except ScorerBusyError:
                pass
        return schemas.ScoreResponse(scores=await run_in_threadpool(api.assessments.scores, ids))

    @app.post(
        "/explain",
        response_model=schemas.ExplainResponse,
        responses=_errors(*COMMON, 404),
        tags=["models"],
    )
    def explain(
        api: Api, who: Caller, request: Annotated[schemas.ExplainRequest, Body()]
    ) -> schemas.ExplainResponse:
        who.require("model")
        return schemas.ExplainResponse(explanation=api.assessments.explain(request.user_id))

    @app.get(
        "/models",
        response_model=schemas.ModelsResponse,
        responses=_errors(401, 403, 503),
        tags=["models"],
    )
    async def models(api: Api, who: Caller) -> schemas.ModelsResponse:
        who.require("model")
        return schemas.ModelsResponse(models=api.assessments.models())

    return app


def unavailable(reason: str) -> UnavailableError:
    return UnavailableError(f"the service is not ready: {reason}")


class PlainErrorsAsEnvelope:
    """ASGI middleware for the server around the app: BentoML's own router answers a path that
    reaches no route (one holding a newline, say) with a plain-text 404; this answers such
    plain-text 404 and 405 in the error envelope like every other error."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced: dict[str, int] = {}

        async def send_enveloped(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                plain = headers.get(b"content-type", b"").startswith(b"text/plain")
                if message["status"] in (404, 405) and plain:
                    replaced["status"] = message["status"]
                    return
            elif message["type"] == "http.response.body" and replaced:
                if message.get("more_body"):
                    return
                status = replaced["status"]
                code = "not_found" if status == 404 else "method_not_allowed"
                body = json.dumps(
                    schemas.ErrorResponse(
                        error=schemas.ErrorBody(code=code, message="no such route")
                    ).model_dump(mode="json")
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_enveloped)
