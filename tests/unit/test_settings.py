"""One settings object, read from CS_* variables; nothing happens at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from wedsync_cs.settings import Settings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CS_HOME", raising=False)
    assert Settings().home_dir == tmp_path / ".cs-home"
    monkeypatch.setenv("CS_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CS_THREADS", "1")
    settings = Settings()
    assert settings.home_dir == tmp_path / "elsewhere"
    assert settings.data_dir == tmp_path / "elsewhere" / "data"
    assert settings.threads == 1
    assert not (tmp_path / "elsewhere").exists()  # made on first use only
    settings.ensure_home()
    assert (tmp_path / "elsewhere").is_dir()


def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CS_THREADS", "zero")
    with pytest.raises(ValidationError, match="threads"):
        Settings()


def test_importing_the_platform_does_nothing(tmp_path: Path) -> None:
    code = (
        "import wedsync_cs.cli, wedsync_cs.jobs, features.raw_reader, simulator, "
        "features.validation"
    )
    env = {k: v for k, v in os.environ.items() if k != "CS_HOME"}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert list(tmp_path.iterdir()) == []
