"""Fax to email: received faxes and failures mailed through a real SMTP server (aiosmtpd)
on 127.0.0.1, queued in the outbox and retried while the server refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select

from faxline.notify.smtp import SmtpServer
from faxline.store import outbox
from faxline.store.models import OutboxMessage
from faxline.testing.waiting import eventually
from tests.notify.conftest import Running, World
from tests.notify.mailserver import MailServer

Make = Callable[..., Any]


@pytest.fixture
def mailservers() -> Iterator[Callable[..., MailServer]]:
    made: list[MailServer] = []

    def make(**kwargs: Any) -> MailServer:
        m = MailServer(**kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def mail_statuses(world: World) -> list[str]:
    with world.sessions() as s:
        return list(s.scalars(select(OutboxMessage.status).where(OutboxMessage.channel == "mail")))


def test_a_received_fax_is_mailed_as_pdf_after_the_server_refused_twice(
    make_world: Make, mailservers: Make, running: Callable[[World], Running]
) -> None:
    server = mailservers(answer=lambda n: "451 4.3.0 try later" if n < 2 else "250 OK")
    world = make_world(
        {},
        {"0003*211": ["bob@example.test", "desk@example.test"]},
        smtp_url=f"smtp://127.0.0.1:{server.port}",
        smtp_from="fax@acme.test",
    )
    running(world)
    world.queue(["0003*211"])
    (mail,) = server.wait_for(1, 60)
    assert server.tries == 3
    assert mail["Subject"] == "Fax from 0003*210 (1 page)"
    assert mail["From"] == "fax@acme.test"
    assert mail["To"] == "bob@example.test, desk@example.test"
    body = mail.get_body(("plain",))
    assert body is not None and "Pages: 1" in body.get_content()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename().startswith("fax-")
    pdf = pdfium.PdfDocument(attachment.get_content())
    assert len(pdf) == 1
    pdf.close()
    eventually(lambda: mail_statuses(world) == [outbox.DELIVERED], 30, "the mail settled")
    with world.sessions() as s:
        (message,) = s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "mail"))
        assert message.attempts == 3


def test_a_failed_fax_is_mailed_to_the_sender_with_the_reason(
    make_world: Make, mailservers: Make, running: Callable[[World], Running]
) -> None:
    server = mailservers(login=("faxline", "p@ss word"))
    world = make_world(
        {},
        {"0003*210": ["alice@example.test"], "0003*211": ["bob@example.test"]},
        smtp_url=f"smtp://faxline:p%40ss%20word@127.0.0.1:{server.port}",
    )
    running(world)
    fax_id = world.queue(["5559999", "0003*211"])  # no route to the first
    mails = server.wait_for(2, 60)
    (failure,) = [m for m in mails if m["To"] == "alice@example.test"]
    assert failure["Subject"] == f"Fax {fax_id} was only partly sent"
    text = failure.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "5559999: not delivered: there is no route to this number" in text
    assert "0003*211: delivered" in text
    (received,) = [m for m in mails if m["To"] == "bob@example.test"]
    assert received["Subject"] == "Fax from 0003*210 (1 page)"


def test_mails_wait_while_no_smtp_server_is_set(
    make_world: Make, running: Callable[[World], Running]
) -> None:
    world = make_world({}, {"0003*211": ["bob@example.test"]})
    running(world)
    world.queue(["0003*211"])
    eventually(lambda: world.statuses() == ["delivered"], 60, "the fax delivered")
    eventually(lambda: mail_statuses(world) == [outbox.PENDING], 30, "the mail queued")


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://mx.example:2525", SmtpServer("mx.example", 2525, "plain")),
        (
            "smtp+starttls://u:p%2Fw@mx.example",
            SmtpServer("mx.example", 587, "starttls", "u", "p/w"),
        ),
        ("smtps://mx.example", SmtpServer("mx.example", 465, "tls")),
    ],
)
def test_smtp_urls(url: str, server: SmtpServer) -> None:
    assert SmtpServer.parse(url) == server


def test_a_bad_smtp_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not an SMTP URL"):
        SmtpServer.parse("http://mx.example")
