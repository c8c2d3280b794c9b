"""Settings, read once from `FAXLINE_*` environment variables (and command-line flags)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
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

    # Create Faxes limits (DESIGN.md section 1).
    max_recipients: int = Field(5, ge=1, le=999)
    max_files: int = Field(5, ge=1, le=10)
    max_upload_bytes: int = Field(25 * MIB, ge=1024)
    max_pages: int = Field(200, ge=1, le=10_000)
    max_pixels: int = Field(64_000_000, ge=1_000_000)
    resolution: Literal["fine", "standard"] = "fine"

    # Conversion pool.
    convert_workers: int = Field(2, ge=1, le=64)
    convert_timeout_s: float = Field(120.0, gt=0)
    convert_memory_bytes: int = Field(1536 * MIB, ge=64 * MIB)

    # OAuth.
    token_ttl_s: int = Field(3600, ge=60, le=30 * 86400)

    # Dispatcher: how many calls at once, leases, and retries per cause.
    dispatcher: bool = Field(True, description="Run the dispatcher inside `faxline serve`.")
    max_calls: int = Field(4, ge=1, le=1000)
    lease_s: float = Field(60.0, ge=2.0)
    poll_interval_s: float = Field(0.5, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    paced_calls: bool = Field(False, description="Run in-process calls in real time.")
    local_transport: Literal["t38", "audio"] = "t38"
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

    # HTTP.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None

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
    def documents_dir(self) -> Path:
        return self.data_dir / "faxes"
