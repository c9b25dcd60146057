"""The one typed settings object, read from ``CS_*`` environment variables and ``.env``.

Nothing happens at import: no folder is made until a command asks for a path through
:meth:`Settings.ensure_home`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["app", "cs_agent", "admin"]


class TokenGrant(BaseModel):
    """What a bearer token may do: its role, and the agent it is for (``cs_agent`` tokens)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    role: Role
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)


class Settings(BaseSettings):
    """Where the platform keeps its state and how it runs.

    Every path is under ``home``, so two runs with different ``CS_HOME`` never share a file.
    """

    model_config = SettingsConfigDict(
        env_prefix="CS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    home: Path = Field(
        default=Path(".cs-home"),
        description="Folder holding all state: raw data, feature store, MLflow, database, "
        "reports, models.",
    )
    threads: int = Field(
        default=2, ge=1, description="Worker threads for numpy, DuckDB and XGBoost."
    )
    log_level: str = Field(default="INFO", description="Python logging level of the CLI.")
    online_store: Literal["sqlite", "redis"] = Field(
        default="sqlite", description="Feast online store: sqlite (embedded) or redis."
    )
    redis_connection: str = Field(
        default="127.0.0.1:6379,db=0",
        description="Redis for the online store, as Feast wants it: host:port,key=value.",
    )
    feature_history_every_days: int = Field(
        default=7, ge=1, description="Feature rows over the history: every N days (Sundays)."
    )
    feature_recent_days: int = Field(
        default=35, ge=0, description="Daily feature rows over the last N days (for serving)."
    )
    feature_memory_limit: str = Field(
        default="4GB", description="DuckDB working memory for the feature build (spills beyond)."
    )
    feast_project: str = Field(
        default="wedsync_cs",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Feast project name (keys in a shared Redis are per project).",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry store (e.g. postgresql+psycopg://...); "
        "default: SQLite under CS_HOME/mlflow.",
    )
    database_url: str | None = Field(
        default=None,
        description="The operational database (SQLAlchemy URL, e.g. "
        "postgresql+psycopg://user@host/db); default: SQLite under CS_HOME/db.",
    )

    score_batch_rows: int = Field(
        default=5000, ge=1, description="Rows per transaction when score-daily writes a day."
    )
    rules_path: Path = Field(
        default=Path(__file__).resolve().parents[1] / "experiments" / "interventions.yaml",
        description="The intervention rules file (YAML; see docs/interventions.md).",
    )
    control_share: float = Field(
        default=0.1,
        ge=0,
        le=0.5,
        description="Share of suppliers drawn into the control group (no automated "
        "intervention; who would have been contacted is recorded).",
    )
    control_salt: str = Field(
        default="wedsync-cs-control-1",
        min_length=1,
        max_length=64,
        description="Salt of the control group's draw (a new salt draws new suppliers; those "
        "already drawn keep their draw).",
    )
    smtp_url: str | None = Field(
        default=None,
        pattern=r"^smtps?://",
        description="Send emails over SMTP: smtp://[user[:password]@]host[:port][?starttls=true]"
        " (smtps:// for TLS from the start); default: written to the Maildir under "
        "CS_HOME/outbox.",
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        description="A PEM file of the certificate authorities to trust for the SMTP server's "
        "TLS (a relay with a private CA); default: the system's.",
    )
    mail_from: str = Field(
        default="WedSync Customer Success <success@wedsync.example>",
        min_length=3,
        description="The From of the emails the engine sends.",
    )
    delivery_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Tries of a delivery before it is given up."
    )
    delivery_backoff_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Wait before the second try of a failed delivery; it doubles each try.",
    )
    delivery_lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="After this long a delivery claimed by a dispatcher that never recorded "
        "the outcome is taken as interrupted (see docs/interventions.md).",
    )
    business_hours: tuple[int, int] = Field(
        default=(9, 17),
        description="The agents' working hours, UTC, as [start, end): calls are booked inside "
        "them, Monday to Friday.",
    )
    idempotency_days: int = Field(
        default=7,
        ge=1,
        description="Days an Idempotency-Key's first answer is replayed (the API contract asks "
        "for at least one); score-daily forgets older keys.",
    )
    api_tokens: dict[str, TokenGrant] = Field(
        default_factory=dict,
        description='Bearer tokens of the API, as JSON: {"token": "app"} or '
        '{"token": {"role": "cs_agent", "agentId": "agent_01"}}; roles app, cs_agent, admin.',
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _grants(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"role": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not 0 <= start < end <= 24:
            raise ValueError(f"business hours {value}: need 0 <= start < end <= 24")
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """Simulated or imported contract folders (``<data_dir>/<name>/raw``)."""
        return self.home_dir / "data"

    @property
    def feature_store_dir(self) -> Path:
        """Feast registry, online SQLite store and the generated feature_store.yaml."""
        return self.home_dir / "feature_store"

    @property
    def feature_table_path(self) -> Path:
        """The offline feature table Feast reads: a folder of Parquet parts, one per build
        (:mod:`feature_repo.table_parts`)."""
        return self.home_dir / "features" / "supplier_features"

    @property
    def mlflow_dir(self) -> Path:
        """MLflow's SQLite store (when no tracking URI is set) and every run's artifacts."""
        return self.home_dir / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI: ``CS_MLFLOW_TRACKING_URI``, else a SQLite file in CS_HOME."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        """Artifacts of every experiment, whatever the tracking store (never ./mlruns)."""
        return self.mlflow_dir / "artifacts"

    @property
    def prediction_archive_dir(self) -> Path:
        """The outcome monitor's columnar copy of the finished days' stored predictions: a cache
        of the database (deleting it costs one full read on the next run)."""
        return self.home_dir / "archive" / "predictions"

    @property
    def maildir(self) -> Path:
        """The Maildir emails are written to when no SMTP server is set."""
        return self.home_dir / "outbox"

    @property
    def operational_database_url(self) -> str:
        """``CS_DATABASE_URL``, else a SQLite file in CS_HOME (its folder made on first use)."""
        return self.database_url or f"sqlite:///{self.home_dir / 'db' / 'operational.db'}"

    def ensure_home(self) -> Path:
        """Create the home folder on first use (never at import)."""
        self.home_dir.mkdir(parents=True, exist_ok=True)
        return self.home_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
