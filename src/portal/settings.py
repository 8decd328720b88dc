"""Settings built once from the PORTAL_* environment variables.

This is the only module that reads ``os.environ``. Everything else receives a ``Settings``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

#: Piccolo finds its engine through this module (migrations, ``piccolo`` CLI).
os.environ.setdefault("PICCOLO_CONF", "portal.piccolo_conf")

ROOT = Path(__file__).resolve().parents[2]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".portal")
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    mail_from: str = "Konto ID <no-reply@portal.localhost>"
    dev: bool = False
    brand: str = "Konto ID"
    session_idle_seconds: int = 3600
    session_absolute_seconds: int = 24 * 3600
    api_rate_per_minute: int = 600
    #: Peers whose X-Forwarded-For (and -Proto) is believed: addresses or networks. None by
    #: default: the peer's own address is the client's (audit events, per-address limits).
    trusted_proxies: tuple[str, ...] = ()
    static_dir: Path = field(default_factory=lambda: ROOT / "static")
    #: The footer of every page (issue 13): the vendor's help centre, privacy policy, terms
    #: and contact line.
    help_url: str = "/support"
    privacy_url: str = "https://www.example.com/polityka-prywatnosci"
    terms_url: str = "https://www.example.com/regulamin"
    vendor_contact: str = (
        "Dostawca oprogramowania sp. z o.o. · pomoc@example.com · +48 22 000 00 00")
    #: Development and tests only (refused without PORTAL_DEV): how many hashes may wait for
    #: a hashing thread; 0 refuses every hash, so a browser test sees the "too many sign-ins
    #: right now" answers without flooding the machine. None: the built-in limits.
    dev_hash_queue_size: int | None = None

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def origin(self) -> str:
        """The portal's origin (scheme, host and port of PORTAL_BASE_URL)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def webauthn_rp_id(self) -> str:
        """WebAuthn's relying party id: the host of PORTAL_BASE_URL (browsers refuse an IP
        address, so tests use http://localhost:PORT)."""
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix pins the cookie to this origin (Secure, Path=/, no Domain).
        return "__Host-portal_session" if self.https else "portal_session"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("PORTAL_DATA_DIR") or ".portal").absolute()
        settings = cls(
            database_url=env.get("PORTAL_DATABASE_URL") or None,
            data_dir=data_dir,
            secret_key=env.get("PORTAL_SECRET_KEY") or "",
            base_url=(env.get("PORTAL_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
            smtp_url=env.get("PORTAL_SMTP_URL") or None,
            mail_from=env.get("PORTAL_MAIL_FROM") or cls.mail_from,
            dev=_flag(env.get("PORTAL_DEV")),
            session_idle_seconds=int(env.get("PORTAL_SESSION_IDLE_SECONDS") or 3600),
            session_absolute_seconds=int(env.get("PORTAL_SESSION_ABSOLUTE_SECONDS") or 86400),
            api_rate_per_minute=int(env.get("PORTAL_API_RATE_PER_MINUTE") or 600),
            trusted_proxies=trusted_proxies(env.get("PORTAL_TRUSTED_PROXIES")),
            brand=env.get("PORTAL_BRAND") or cls.brand,
            help_url=env.get("PORTAL_HELP_URL") or cls.help_url,
            privacy_url=env.get("PORTAL_PRIVACY_URL") or cls.privacy_url,
            terms_url=env.get("PORTAL_TERMS_URL") or cls.terms_url,
            vendor_contact=env.get("PORTAL_VENDOR_CONTACT") or cls.vendor_contact,
            dev_hash_queue_size=_dev_hash_queue_size(env),
        )
        if not settings.secret_key:
            settings = replace(settings, secret_key=_stored_secret(data_dir))
        return settings

    def exported(self) -> dict[str, str]:
        """The environment that rebuilds these settings in a worker process."""
        env = {
            "PORTAL_DATA_DIR": str(self.data_dir),
            "PORTAL_SECRET_KEY": self.secret_key,
            "PORTAL_BASE_URL": self.base_url,
            "PORTAL_MAIL_FROM": self.mail_from,
            "PORTAL_DEV": "1" if self.dev else "",
            "PORTAL_SESSION_IDLE_SECONDS": str(self.session_idle_seconds),
            "PORTAL_SESSION_ABSOLUTE_SECONDS": str(self.session_absolute_seconds),
            "PORTAL_API_RATE_PER_MINUTE": str(self.api_rate_per_minute),
            "PORTAL_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "PORTAL_BRAND": self.brand,
            "PORTAL_HELP_URL": self.help_url,
            "PORTAL_PRIVACY_URL": self.privacy_url,
            "PORTAL_TERMS_URL": self.terms_url,
            "PORTAL_VENDOR_CONTACT": self.vendor_contact,
        }
        if self.dev_hash_queue_size is not None:
            env["PORTAL_DEV_HASH_QUEUE_SIZE"] = str(self.dev_hash_queue_size)
        if self.database_url:
            env["PORTAL_DATABASE_URL"] = self.database_url
        if self.smtp_url:
            env["PORTAL_SMTP_URL"] = self.smtp_url
        return env

    def export_to_process(self) -> None:
        """Put these settings in this process's environment so worker processes inherit them."""
        os.environ.update(self.exported())


def _dev_hash_queue_size(env: dict[str, str]) -> int | None:
    """``PORTAL_DEV_HASH_QUEUE_SIZE``: honoured only beside PORTAL_DEV (which also opens the
    development mailbox, so no production server has it); set without it, the server does
    not start rather than refuse sign-ins it could take."""
    value = (env.get("PORTAL_DEV_HASH_QUEUE_SIZE") or "").strip()
    if not value:
        return None
    if not _flag(env.get("PORTAL_DEV")):
        raise ValueError("PORTAL_DEV_HASH_QUEUE_SIZE is for development and tests only: "
                         "it needs PORTAL_DEV=1")
    return max(0, int(value))


def trusted_proxies(value: str | None) -> tuple[str, ...]:
    """``PORTAL_TRUSTED_PROXIES``: comma-separated addresses or networks (CIDR), each checked
    here so that a typo stops the start instead of silently trusting nobody or everybody."""
    entries = []
    for raw in (value or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"PORTAL_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        entries.append(str(network.network_address) if "/" not in entry else str(network))
    return tuple(entries)


def _stored_secret(data_dir: Path) -> str:
    """Generate the secret key once and keep it in the data dir (mode 0600)."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
