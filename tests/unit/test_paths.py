"""nanoagent_core.paths: locations, the allowed directory, how a location is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoagent_core.errors import PathNotAllowedError, ValidationError
from nanoagent_core.paths import (
    MEMORY,
    default_db_path,
    display_location,
    is_postgres_url,
    resolve_db_location,
    worker_log_path,
)


def test_postgres_urls_are_told_apart() -> None:
    assert is_postgres_url("postgresql://h/db")
    assert is_postgres_url("postgres://h/db")
    assert not is_postgres_url("/tmp/postgresql://x")


def test_the_default_path_follows_xdg_data_home() -> None:
    assert default_db_path({"XDG_DATA_HOME": "/data"}) == Path("/data/nanoagent/nanoagent.db")


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db?password=secret&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgres://h/db?sslpassword=s", "postgres://h/db?sslpassword=***"),
        ("/tmp/runs.db", "/tmp/runs.db"),
        ("postgresql://u:p@", "postgresql://u:***@"),
    ],
)
def test_a_shown_location_never_holds_a_password(location: str, shown: str) -> None:
    assert display_location(location) == shown


def test_db_location_order_is_flag_then_environment_then_default(tmp_path: Path) -> None:
    env = {"NANOAGENT_DB": str(tmp_path / "env.db"), "XDG_DATA_HOME": str(tmp_path)}
    assert resolve_db_location(str(tmp_path / "flag.db"), env).endswith("flag.db")
    assert resolve_db_location(None, env).endswith("env.db")
    assert resolve_db_location(None, {"XDG_DATA_HOME": str(tmp_path)}).endswith("nanoagent.db")


def test_the_allowed_directory_guards_the_database(tmp_path: Path) -> None:
    env = {"NANOAGENT_ALLOWED_DIR": str(tmp_path / "inside")}
    with pytest.raises(PathNotAllowedError):
        resolve_db_location(str(tmp_path / "outside.db"), env)


def test_a_malformed_postgres_url_is_refused() -> None:
    with pytest.raises(ValidationError):
        resolve_db_location("postgresql://u@h:notaport/db", {})


def test_worker_logs_sit_next_to_the_database(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    assert worker_log_path(str(db), "r1") == tmp_path / "runs.db.logs" / "r1.log"
    env = {"XDG_DATA_HOME": str(tmp_path / "x")}
    assert worker_log_path(MEMORY, "r1", env) == tmp_path / "x" / "nanoagent" / "logs" / "r1.log"
