"""Settings, read once from `FAXLINE_*` environment variables (and command-line flags)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything an operator can set. Each field is `FAXLINE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="FAXLINE_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        Path("data"), description="Where the SQLite file and fax documents live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite in the data directory."
    )
    simulator_dir: Path | None = Field(
        None,
        description="Where simulated far ends keep what they received; default `simulator/`"
        " in the data directory. Nodes of one cluster share one folder: one far end.",
    )

    # Create Faxes limits (DESIGN.md section 1).
    max_recipients: int = Field(5, ge=1, le=999)
    max_files: int = Field(5, ge=1, le=10)
    max_upload_bytes: int = Field(25 * MIB, ge=1024)
    max_pages: int = Field(200, ge=1, le=10_000)
    max_pixels: int = Field(64_000_000, ge=1_000_000)
    resolution: Literal["superfine", "fine", "standard"] = "fine"

    # Conversion pool.
    convert_workers: int = Field(2, ge=1, le=64)
    convert_timeout_s: float = Field(120.0, gt=0)
    convert_memory_bytes: int = Field(1536 * MIB, ge=64 * MIB)
    # LibreOffice (Office files, HTML): started on the first such upload, then kept warm.
    office_instances: int = Field(1, ge=1, le=8)
    office_memory_bytes: int = Field(3072 * MIB, ge=512 * MIB)
    office_python: str = "/usr/bin/python3"
    office_isolate_network: bool = True

    # OAuth.
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400)
    # Each secret check is an argon2 hash (19 MiB, see auth.secrets): only this many run at
    # once; a request that waits longer than `token_check_wait_s` for one gets 429.
    token_checks_at_once: int = Field(2, ge=1, le=64)
    token_check_wait_s: float = Field(2.0, gt=0, le=60)
    # Wrong secrets per client id, and per source address, within a minute; more are 429.
    token_failures_per_minute: int = Field(50, ge=1, le=10_000)
    # A secret that verified is remembered this long (in memory, keyed by a keyed hash).
    token_cache_s: float = Field(300.0, ge=0, le=3600)
    token_cache_size: int = Field(1024, ge=1, le=1_000_000)

    # Dispatcher: how many calls at once, leases, and retries per cause.
    dispatcher: bool = Field(True, description="Run the dispatcher inside `faxline serve`.")
    max_calls: int = Field(4, ge=1, le=1000)
    lease_s: float = Field(60.0, ge=2.0)
    poll_interval_s: float = Field(0.5, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    paced_calls: bool = Field(False, description="Run in-process calls in real time.")
    local_transport: Literal["t38", "audio"] = "t38"
    # Nodes sharing one database: how often each writes its heartbeat (one missed three
    # times: `faxline status` calls it silent), and how long a trunk's registration stays
    # with a node that stopped renewing it (the takeover time after a node dies).
    heartbeat_s: float = Field(5.0, gt=0, le=300)
    registration_lease_s: float = Field(30.0, ge=3.0, le=3600)
    retry_busy_attempts: int = Field(5, ge=1)
    retry_busy_delay_s: float = Field(120.0, ge=0)
    retry_no_answer_attempts: int = Field(3, ge=1)
    retry_no_answer_delay_s: float = Field(300.0, ge=0)
    retry_t30_attempts: int = Field(3, ge=1)
    retry_t30_delay_s: float = Field(120.0, ge=0)
    retry_unavailable_attempts: int = Field(5, ge=1)
    retry_unavailable_delay_s: float = Field(60.0, ge=0)

    # SIP: where the user agent listens ("off" for none), media, inbound capacity.
    sip_listen: str = Field("127.0.0.1:5060", pattern=r"^(off|\[?[0-9A-Za-z.:-]+\]?:[0-9]{1,5})$")
    sip_media_host: str | None = Field(None, description="RTP/UDPTL address; default: SIP's")
    sip_max_inbound_calls: int = Field(20, ge=1, le=10_000)
    sip_answer_timeout_s: float = Field(60.0, gt=0)
    # Below ~8 s a healthy T.38 call is cut: the caller hears nothing while the answerer
    # sends CED and DIS.
    sip_media_timeout_s: float = Field(20.0, ge=10.0)
    sip_max_call_s: float = Field(1800.0, gt=0)

    # Webhooks: the delay before each retry (the schedule: 5 s ... 10 h), how long
    # an endpoint may take to answer, and how many posts one endpoint gets at once.
    webhook_retry_schedule_s: tuple[float, ...] = Field(
        (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        description="JSON list of seconds; its length is the number of retries.",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=300)
    webhook_concurrency: int = Field(16, ge=1, le=100)
    notify_poll_interval_s: float = Field(0.2, gt=0)

    # Mail out: received faxes and failures (`smtp://`, `smtp+starttls://`, `smtps://`,
    # with `user:password@` when the server wants a login). Unset: mails wait in the outbox.
    smtp_url: str | None = Field(
        None, pattern=r"^(smtp|smtp\+starttls|smtps)://([^@/]+@)?[^@/:]+(:[0-9]{1,5})?/?$"
    )
    smtp_from: str = "faxline@localhost"
    smtp_timeout_s: float = Field(30.0, gt=0, le=600)

    # Mail in: faxes by email to <number>@<email_domain> ("off" for no SMTP server).
    smtp_listen: str = Field("off", pattern=r"^(off|\[?[0-9A-Za-z.:-]+\]?:[0-9]{1,5})$")
    email_domain: str = "fax.localhost"
    smtp_trusted_relays: tuple[str, ...] = Field(
        (), description="JSON list of CIDR blocks whose mail needs no SMTP AUTH."
    )
    # STARTTLS certificate of the SMTP server; default: the HTTP one.
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Slow or oversized clients: the request line and headers must arrive within
    # `http_header_timeout_s` (else 408), the body within `http_body_timeout_s` (else 408);
    # a longer request line is 414, more or larger headers 431.
    http_header_timeout_s: float = Field(10.0, gt=0, le=60)
    http_body_timeout_s: float = Field(60.0, gt=0, le=600)
    http_keep_alive_s: float = Field(5.0, gt=0, le=60)
    http_max_request_line: int = Field(8192, ge=256, le=1024 * 1024)
    http_max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    http_max_headers: int = Field(100, ge=10, le=10_000)
    # After an early answer (401, 413...), up to this much of the unread body is read and
    # dropped, so that clients that send the whole body first (urllib, requests) see it.
    http_drain_bytes: int = Field(32 * MIB, ge=0)

    # Operating: log line format; who may read GET /metrics without a token besides
    # loopback (a JSON list of CIDR blocks, e.g. a Prometheus server's network).
    log_format: Literal["text", "json"] = "text"
    metrics_allow: tuple[str, ...] = Field(
        (), description="JSON list of CIDR blocks that may scrape /metrics without a token."
    )

    @field_validator("metrics_allow")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for block in value:
            try:
                ipaddress.ip_network(block, strict=False)
            except ValueError as e:
                raise ValueError(f"not a CIDR block: {block!r}") from e
        return value

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'faxline.sqlite3').resolve()}"

    @property
    def sip_address(self) -> tuple[str, int] | None:
        """(host, port) of `sip_listen`, or None when SIP is off."""
        if self.sip_listen == "off":
            return None
        host, _, port = self.sip_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def smtp_address(self) -> tuple[str, int] | None:
        """(host, port) of `smtp_listen`, or None when the SMTP server is off."""
        if self.smtp_listen == "off":
            return None
        host, _, port = self.smtp_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def simulator_folder(self) -> Path:
        return self.simulator_dir or self.data_dir / "simulator"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "faxes"
