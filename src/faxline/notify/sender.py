"""The outbox's sender, beside the dispatcher in the same process: claims due messages in
batches and posts them, signed (Standard Webhooks 1.0), and hands mails to the SMTP server.

Order matters only within a fax: the messages of different faxes go out at once, and a
fax's next message becomes due only once its previous one is settled (delivered, or given
up after the schedule). One transaction claims a batch; the outcomes that arrive while the
previous ones are being written are written together in the next transaction, so the
database sees two commits per batch rather than two per message.

Each endpoint has its own budget of posts in flight (`webhook_concurrency`) and every post
its timeout, so an endpoint that is slow or never answers holds only its own messages: the
dispatcher and other endpoints go on. Mails are sent in threads of their own, so a mail
server that hangs cannot take the threads the dispatcher's database work runs in. A
message's lease outlasts its post's timeout; a sender that dies (even between a post and
its record) leaves leases that expire, and the messages go out again with the same id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import smtplib
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy.orm import Session, sessionmaker

from faxline.clock import utc_now
from faxline.config import Settings
from faxline.documents.pdfexport import PdfExportError
from faxline.notify.mails import failed_mail, received_mail, rejected_mail, reply_mail
from faxline.notify.signing import SecretError, headers, secret_key
from faxline.notify.smtp import SmtpServer, send
from faxline.store import outbox
from faxline.store.blobs import BlobStore, document_pdf

log = logging.getLogger("faxline.notify")


# Messages claimed in one transaction at most; every endpoint still gets at most its
# concurrency of them.
CLAIM_BATCH = 500


class OutboxSender:
    """Posts the outbox's webhooks and sends its mails until stopped."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        files: BlobStore,
        *,
        worker_id: str | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.files = files
        self.smtp = SmtpServer.parse(settings.smtp_url) if settings.smtp_url else None
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        # A post or a mail cannot outlast its timeout; the margin covers recording it.
        self.lease_s = settings.webhook_timeout_s + 5.0
        self.mail_lease_s = settings.smtp_timeout_s + 5.0
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._in_flight: Counter[int | None] = Counter()  # None: mails; until recorded
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[outbox.Outcome] = []
        self._outcome = asyncio.Event()
        self._wake = asyncio.Event()
        self._mail_threads: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Look for due messages now (on the sender's loop)."""
        self._wake.set()

    def _poke_from_any_thread(self) -> None:
        """`poke` for the commits of this process's threads (store.outbox.on_commit)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; posts in flight then get the drain timeout (at most
        their own) to finish, and are otherwise sent again by whoever runs next."""
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self.settings.webhook_timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )
        self._mail_threads = ThreadPoolExecutor(
            self.settings.webhook_concurrency, thread_name_prefix="faxline-mail"
        )
        recorder = asyncio.create_task(self._record_loop())
        # Events written in this process (the dispatcher's changes, the API's new faxes)
        # wake the sender when their transaction commits: their lag is a claim and a post,
        # not a poll interval. Other processes' are found by polling.
        self._loop = asyncio.get_running_loop()
        unhook = outbox.on_commit(self.sessions, self._poke_from_any_thread)
        try:
            while not stop.is_set():
                await self.run_once()
                self._wake.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                await asyncio.wait(
                    waiters,
                    timeout=self.settings.notify_poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for w in waiters:
                    w.cancel()
        finally:
            unhook()
            if self._tasks:
                _, pending = await asyncio.wait(
                    list(self._tasks),
                    timeout=min(self.settings.webhook_timeout_s, self.settings.drain_timeout_s),
                )
                for task in pending:
                    task.cancel()  # its lease expires and the message goes out again
                await asyncio.gather(*pending, return_exceptions=True)
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            await self._record_now()  # what finished during the drain
            await self._client.aclose()
            # A mail still being sent finishes in its thread; its lease covers it.
            self._mail_threads.shutdown(wait=False, cancel_futures=True)

    async def run_once(self) -> int:
        """Claim a batch of what is due (within every endpoint's room); start each post and
        mail. Returns how many started."""
        messages = await asyncio.to_thread(self._claim)
        for message in messages:
            self._in_flight[message.endpoint_id] += 1
            work = self._mail(message) if message.endpoint_id is None else self._send(message)
            task = asyncio.create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(messages)

    def _claim(self) -> list[outbox.Message]:
        with self.sessions() as s:
            return outbox.claim(
                s,
                self.worker_id,
                self.clock(),
                per_endpoint=self.settings.webhook_concurrency,
                busy=dict(self._in_flight),
                mails=self.smtp is not None,
                limit=CLAIM_BATCH,
                lease_s=self.lease_s,
                mail_lease_s=self.mail_lease_s,
            )

    # -- outcomes, written in batches ---------------------------------------------------

    def _settled(
        self,
        message: outbox.Message,
        started: dt.datetime,
        ok: bool,
        status_code: int | None,
        error: str | None,
    ) -> None:
        self._outcomes.append(
            outbox.Outcome(message, started, self.clock(), ok, status_code, error)
        )
        self._outcome.set()

    def _unsettled(self, message: outbox.Message) -> None:
        """A send that was stopped (shutdown): nothing to record; its lease runs out."""
        self._in_flight[message.endpoint_id] -= 1

    async def _record_loop(self) -> None:
        """Write outcomes as they come: all those that arrived meanwhile in one commit."""
        while True:
            await self._outcome.wait()
            self._outcome.clear()
            await self._record_now()

    async def _record_now(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        try:
            lost = await asyncio.to_thread(self._record, outcomes)
            for o in lost:
                log.warning(
                    "outbox message %s: lease lost before its outcome", o.message.message_id
                )
        except Exception:
            # Nothing was written: the leases run out and the messages go out again.
            log.exception("could not record %d outbox outcomes", len(outcomes))
        finally:
            for o in outcomes:
                self._in_flight[o.message.endpoint_id] -= 1
        self._wake.set()  # the next message of these faxes may be due now

    def _record(self, outcomes: list[outbox.Outcome]) -> list[outbox.Outcome]:
        with self.sessions() as s:
            return outbox.record(
                s, self.worker_id, outcomes, self.settings.webhook_retry_schedule_s
            )

    # -- one message ----------------------------------------------------------------------

    async def _mail(self, message: outbox.Message) -> None:
        started = self.clock()
        try:
            loop = asyncio.get_running_loop()
            error = await loop.run_in_executor(self._mail_threads, self._send_mail, message)
        except BaseException:
            self._unsettled(message)
            raise
        self._settled(message, started, error is None, None, error)

    def _send_mail(self, message: outbox.Message) -> str | None:
        """None when the server took the mail, else what went wrong."""
        assert self.smtp is not None
        facts = json.loads(message.payload)
        if facts["kind"] == "received":
            try:
                # The same export as the API's download; a mail holds it whole anyway.
                pdf = b"".join(document_pdf(self.files, facts["document"]))
            except FileNotFoundError:
                return "the fax was deleted before it could be mailed"
            except PdfExportError as e:
                return f"the fax could not be made into a PDF: {e}"
            mail = received_mail(facts, self.settings.smtp_from, pdf)
        elif facts["kind"] == "failed":
            mail = failed_mail(facts, self.settings.smtp_from)
        elif facts["kind"] == "rejected":
            mail = rejected_mail(facts, self.settings.smtp_from)
        else:
            mail = reply_mail(facts, self.settings.smtp_from)
        mail["Message-ID"] = f"<{message.message_id}@faxline>"
        try:
            send(self.smtp, mail, self.settings.smtp_timeout_s)
        except (smtplib.SMTPException, OSError) as e:
            return f"{type(e).__name__}: {e}"[:200]
        return None

    async def _send(self, message: outbox.Message) -> None:
        started = self.clock()
        try:
            status_code, error = await self._post(message, started)
        except BaseException:
            self._unsettled(message)
            raise
        ok = status_code is not None and 200 <= status_code < 300
        self._settled(message, started, ok, status_code, error)

    async def _post(
        self, message: outbox.Message, now: dt.datetime
    ) -> tuple[int | None, str | None]:
        """(status code, error) of one post; errors of the endpoint are data, not raised."""
        assert self._client is not None
        body = message.payload.encode()
        try:
            key = secret_key(message.secret)
        except SecretError as e:
            return None, str(e)
        try:
            answer = await self._client.post(
                message.url,
                content=body,
                headers=headers(key, message.message_id, int(now.timestamp()), body),
            )
        except httpx.TimeoutException:
            return None, f"no answer within {self.settings.webhook_timeout_s:g} s"
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        return answer.status_code, None if answer.is_success else f"HTTP {answer.status_code}"
