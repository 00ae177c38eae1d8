"""Settings from ``QUIVER_*`` environment variables, and the URLs derived from the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from quiver.config import Settings


def test_defaults_run_on_one_laptop() -> None:
    settings = Settings.from_env({})

    assert settings.data_dir == Path("quiver-data")
    assert settings.database_url == "sqlite://quiver-data/quiver.db"
    assert settings.storage_url == f"file://{Path('quiver-data/blobs').absolute()}"
    assert settings.redis_url == ""
    assert settings.jwt_secret == ""
    assert settings.signing_key == ""
    assert settings.migrate_on_start is True
    assert settings.debug is False


def test_from_env_reads_values_with_their_types() -> None:
    settings = Settings.from_env(
        {
            "QUIVER_DATA_DIR": "/srv/quiver",
            "QUIVER_MAX_QUERY_DEPTH": "7",
            "QUIVER_MAX_TOKENS": "20_000",
            "QUIVER_DEBUG": "yes",
            "QUIVER_MIGRATE_ON_START": "off",
            "QUIVER_JWT_SECRET": "s3cret",
            "QUIVER_REDIS_URL": "redis://cache:6379/0",
            "QUIVER_SIGNING_KEY": "links-key",
        }
    )

    assert settings.data_dir == Path("/srv/quiver")
    assert isinstance(settings.data_dir, Path)
    assert settings.max_query_depth == 7
    assert settings.max_tokens == 20_000
    assert settings.debug is True
    assert settings.migrate_on_start is False
    assert settings.jwt_secret == "s3cret"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.signing_key == "links-key"
    assert settings.signing_key_file == Path("/srv/quiver/signing.key")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("1", True), ("true", True), ("TRUE", True), ("on", True), (" yes ", True)],
        *[("0", False), ("false", False), ("No", False), ("off", False)],
    ],
)
def test_booleans_accept_the_usual_spellings(raw: str, expected: bool) -> None:
    assert Settings.from_env({"QUIVER_DEBUG": raw}).debug is expected


def test_a_bad_integer_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"^QUIVER_MAX_ALIASES must be an integer, got 'lots'$"):
        Settings.from_env({"QUIVER_MAX_ALIASES": "lots"})


def test_a_bad_boolean_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"^QUIVER_DEBUG must be true or false, got 'maybe'$"):
        Settings.from_env({"QUIVER_DEBUG": "maybe"})


def test_empty_and_unrelated_variables_keep_the_defaults() -> None:
    settings = Settings.from_env(
        {"QUIVER_MAX_ALIASES": "", "QUIVER_NOT_A_SETTING": "x", "MAX_ALIASES": "1"}
    )

    assert settings == Settings()


def test_from_env_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QUIVER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUIVER_MAX_ALIASES", "3")

    settings = Settings.from_env()

    assert settings.data_dir == tmp_path
    assert settings.max_aliases == 3


def test_database_and_storage_urls_derive_from_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"QUIVER_DATA_DIR": str(tmp_path)})

    assert settings.database_url == f"sqlite://{tmp_path}/quiver.db"
    assert settings.storage_url == f"file://{tmp_path}/blobs"


def test_local_folders_derive_from_the_data_dir_and_follow_a_new_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "old").with_overrides(data_dir=tmp_path / "new")

    assert settings.cache_dir == tmp_path / "new" / "cache"
    assert settings.tmp_dir == tmp_path / "new" / "tmp"
    assert settings.uploads_dir == tmp_path / "new" / "uploads"


def test_explicit_urls_win_over_the_derived_ones(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "QUIVER_DATA_DIR": str(tmp_path),
            "QUIVER_DATABASE_URL": "postgres://db/quiver",
            "QUIVER_STORAGE_URL": "s3://bucket/prefix",
        }
    )

    assert settings.database_url == "postgres://db/quiver"
    assert settings.storage_url == "s3://bucket/prefix"


def test_a_new_data_dir_moves_the_derived_urls(tmp_path: Path) -> None:
    before = Settings(data_dir=tmp_path / "old")

    after = before.with_overrides(data_dir=tmp_path / "new")

    assert after.data_dir == tmp_path / "new"
    assert after.database_url == f"sqlite://{tmp_path}/new/quiver.db"
    assert after.storage_url == f"file://{tmp_path}/new/blobs"


def test_a_new_data_dir_keeps_urls_that_were_set_explicitly(tmp_path: Path) -> None:
    before = Settings(
        data_dir=tmp_path / "old", database_url="postgres://db/quiver", storage_url="s3://b/p"
    )

    after = before.with_overrides(data_dir=tmp_path / "new")

    assert after.database_url == "postgres://db/quiver"
    assert after.storage_url == "s3://b/p"


def test_with_overrides_changes_only_what_it_is_given(tmp_path: Path) -> None:
    before = Settings(data_dir=tmp_path, max_aliases=5)

    after = before.with_overrides(database_url="postgres://db/quiver", debug=True)

    assert after.database_url == "postgres://db/quiver"
    assert after.debug is True
    assert after.max_aliases == 5
    assert after.storage_url == before.storage_url
    assert before.database_url == f"sqlite://{tmp_path}/quiver.db"


def test_settings_are_immutable() -> None:
    settings = Settings()

    with pytest.raises(AttributeError):
        settings.debug = True  # type: ignore[misc]
