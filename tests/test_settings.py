from portal.settings import Settings


def test_the_secret_key_is_generated_once_and_kept(tmp_path):
    env = {"PORTAL_DATA_DIR": str(tmp_path)}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert len(first.secret_key) >= 48
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_an_explicit_secret_key_wins(tmp_path):
    settings = Settings.from_env({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SECRET_KEY": "k" * 40})
    assert settings.secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_https_base_url_means_host_prefixed_secure_cookie(tmp_path):
    plain = Settings.from_env({"PORTAL_DATA_DIR": str(tmp_path)})
    secure = Settings.from_env({"PORTAL_DATA_DIR": str(tmp_path),
                                "PORTAL_BASE_URL": "https://id.example.com/"})
    assert plain.session_cookie == "portal_session"
    assert secure.session_cookie == "__Host-portal_session"
    assert secure.base_url == "https://id.example.com"


def test_settings_round_trip_through_the_environment(tmp_path):
    settings = Settings.from_env({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_DEV": "1",
                                  "PORTAL_DATABASE_URL": "postgresql://x@h/db"})
    again = Settings.from_env(settings.exported())
    assert again == settings
