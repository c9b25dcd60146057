"""The one typed settings object, read from ``CS_*`` environment variables and ``.env``.

Nothing happens at import: no folder is made until a command asks for a path through
:meth:`Settings.ensure_home`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """Simulated or imported contract folders (``<data_dir>/<name>/raw``)."""
        return self.home_dir / "data"

    @property
    def reports_dir(self) -> Path:
        return self.home_dir / "reports"

    def ensure_home(self) -> Path:
        """Create the home folder on first use (never at import)."""
        self.home_dir.mkdir(parents=True, exist_ok=True)
        return self.home_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
