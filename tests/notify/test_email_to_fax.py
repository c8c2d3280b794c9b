"""Email to fax: Python's smtplib as the client of faxline's SMTP server (AUTH on loopback
and over STARTTLS with a certificate made here, trusted relays, strangers), with replies
read from a real SMTP server (aiosmtpd) that faxline mails to."""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from faxline.directory.provision import apply, parse
from faxline.documents import InputFile, convert_documents
from faxline.documents.cover import CoverFields, render_cover
from faxline.documents.faxtiff import read_fax_tiff
from faxline.mailin.rules import fax_number, is_loopback, is_trusted
from faxline.store.models import Fax
from faxline.testing.network import outside_address
from faxline.testing.waiting import eventually
from tests.notify.conftest import Running, World
from tests.notify.mailserver import MailServer, free_port

Make = Callable[..., Any]


@pytest.fixture
def outgoing() -> Iterator[MailServer]:
    server = MailServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def mail(to: list[str], sender: str = "alice@acme.test", **attachments: bytes) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(to)
    m["Subject"] = "Contract"
    m.set_content("Please sign and return.\nThanks.")
    for name, data in attachments.items():
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m


def start(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer, **settings: Any
) -> tuple[World, int]:
    port = free_port()
    world = make_world(
        {},
        smtp_url=f"smtp://127.0.0.1:{outgoing.port}",
        email_domain="fax.acme.test",
        **settings,
    )
    running(world, ("127.0.0.1", port))
    return world, port


def faxes(world: World) -> int:
    with world.sessions() as s:
        return s.scalar(select(func.count()).select_from(Fax)) or 0


def test_a_logged_in_user_faxes_the_text_body_and_hears_back(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing)
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")  # on loopback, without TLS
        refused = client.send_message(
            mail(["0003*211@fax.acme.test", "5559999@fax.acme.test"]),
            to_addrs=["0003*211@fax.acme.test", "5559999@fax.acme.test"],
        )
        assert refused == {}
    eventually(lambda: "delivered" in world.statuses(), 60, "the fax to bob delivered")
    queued, completed = outgoing.wait_for(2, 60)
    assert queued["To"] == "alice@acme.test" and queued["Subject"].endswith("queued")
    fax_id = int(queued["Subject"].split()[1])
    assert completed["Subject"] == f"Fax {fax_id} was only partly sent"
    text = completed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "0003*211: delivered" in text
    assert "5559999: not delivered: there is no route to this number" in text
    with world.sessions() as s:
        fax = s.get(Fax, fax_id)
        assert fax is not None and fax.extension.number == "0003*210" and fax.pages == 1


def test_starttls_and_auth_with_attachments_in_order(
    make_world: Make,
    running: Callable[..., Running],
    outgoing: MailServer,
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    _, port = start(make_world, running, outgoing, smtp_tls_cert=cert, smtp_tls_key=key)
    context = ssl.create_default_context(cafile=str(cert))
    pages = b"page one\fpage two\f"
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=context)
        client.login("bob", "pw-bob-secret")
        client.send_message(
            mail(["210@fax.acme.test"], "bob@acme.test", **{"a.txt": pages, "b.txt": b"three"})
        )
    queued = outgoing.wait_for(1, 60)[0]
    # The cover (the mail's subject and body) and the attachments' three pages.
    assert "(4 pages)" in queued.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_auth_off_loopback_needs_starttls(
    make_world: Make,
    running: Callable[..., Running],
    outgoing: MailServer,
    certificate: tuple[Path, Path],
) -> None:
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    cert, key = certificate
    port = free_port()
    world = make_world(
        {},
        smtp_url=f"smtp://127.0.0.1:{outgoing.port}",
        email_domain="fax.acme.test",
        smtp_tls_cert=cert,
        smtp_tls_key=key,
    )
    running(world, ("0.0.0.0", port))
    # The right password in the clear from an address that is not loopback: refused
    # before it is even checked, and the client is told to use STARTTLS.
    with smtplib.SMTP(outside, port, source_address=(outside, 0)) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("alice", "pw-alice-secret")
        assert refused.value.smtp_code == 538
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.send_message(mail(["211@fax.acme.test"]))
    # The same peer after STARTTLS may log in and fax (the certificate names 127.0.0.1, so
    # the name is not checked here; the chain is).
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with smtplib.SMTP(outside, port, source_address=(outside, 0)) as client:
        client.starttls(context=context)
        client.login("alice", "pw-alice-secret")
        client.send_message(mail(["211@fax.acme.test"]))
    eventually(lambda: world.statuses() == ["delivered"], 60, "the fax over TLS delivered")


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("::ffff:192.0.2.2", False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_loopback_peers(peer: str, loopback: bool) -> None:
    assert is_loopback(peer) is loopback


def test_strangers_wrong_passwords_and_other_domains_are_refused(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing)
    with smtplib.SMTP("127.0.0.1", port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(mail(["211@fax.acme.test"]))
        assert refused.value.smtp_code == 550
    with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("alice", "wrong-password")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as bad:
            client.send_message(mail(["211@example.com"]), to_addrs=["211@example.com"])
        assert bad.value.recipients["211@example.com"][0] == 550
    assert faxes(world) == 0 and outgoing.mails == []


def test_a_trusted_relay_speaks_for_users_but_not_for_others(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing, smtp_trusted_relays=("127.0.0.0/8",))
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(mail(["211@fax.acme.test"], "Alice@Acme.test"))
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(mail(["211@fax.acme.test"], "mallory@evil.test"))
        assert refused.value.smtp_code == 550
    eventually(lambda: world.statuses() == ["delivered"], 60, "the relayed fax delivered")
    assert faxes(world) == 2  # alice's fax and bob's received copy


def test_a_bad_attachment_gets_the_api_message_and_nothing_is_sent(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing)
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")
        client.send_message(mail(["211@fax.acme.test"], **{"scan.pdf": b"%PDF-1.7 broken"}))
    (reply,) = outgoing.wait_for(1, 60)
    assert reply["Subject"] == "Fax not sent: Contract"
    text = reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "fx_file_invalid: scan.pdf:" in text
    assert faxes(world) == 0


@pytest.mark.parametrize(
    ("address", "number"),
    [
        ("0003*211@fax.acme.test", "0003*211"),
        ("<+15550100@FAX.acme.test>", "+15550100"),
        ("211@fax.acme.test.evil", None),
        ("alice@fax.acme.test", None),
        ("@fax.acme.test", None),
    ],
)
def test_fax_addresses(address: str, number: str | None) -> None:
    assert fax_number(address, "fax.acme.test") == number


def test_trusted_relays() -> None:
    assert is_trusted("10.1.2.3", ["10.0.0.0/8"]) and not is_trusted("11.0.0.1", ["10.0.0.0/8"])
    assert not is_trusted("not-an-ip", ["0.0.0.0/0"])


def _cover(fax: Fax, **fields: Any) -> list[Any]:
    """The cover page the fax should start with, drawn for the minute it was queued and the
    one before (its date is taken a moment before the fax's created_at)."""
    drawn = []
    for minutes in (0, 1):
        when = fax.created_at.replace(tzinfo=dt.UTC) - dt.timedelta(minutes=minutes)
        text = render_cover(
            CoverFields(**{**fields, "date": when.strftime("%Y-%m-%d %H:%M UTC")}), None
        )
        document = convert_documents([InputFile("cover.txt", text.encode())])
        drawn.append(read_fax_tiff(document.tiff or b"")[0])
    return drawn


def _fax_pages(world: World, fax: Fax) -> list[Any]:
    with world.files.open(fax.document) as blob:
        return read_fax_tiff(b"".join(blob.chunks()))


def test_a_mail_with_attachments_gets_a_cover_from_its_subject_and_body(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing)
    m = mail(["0003*211@fax.acme.test"], **{"a.txt": b"page one\fpage two"})
    m.replace_header("From", "Alice Smith <alice@acme.test>")
    m.replace_header("To", "Bob Jones <0003*211@fax.acme.test>")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")
        client.send_message(m)
    queued, completed = outgoing.wait_for(2, 60)
    fax_id = int(queued["Subject"].split()[1])
    # The sender hears that it went: the "sent" reply.
    assert completed["Subject"] == f"Fax {fax_id} was sent"
    text = completed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "0003*211: delivered" in text
    with world.sessions() as s:
        fax = s.get(Fax, fax_id)
        assert fax is not None and fax.pages == 3
        assert [d.filename for d in fax.documents] == ["a.txt"]  # the cover is no document
        pages = _fax_pages(world, fax)
        expected = _cover(
            fax,
            organization="Acme",
            sender_name="Alice Smith",
            sender_number="+15550100210",
            recipient_name="Bob Jones",
            recipient_number="0003*211",
            pages=3,
            subject="Contract",
            notes="Please sign and return.\nThanks.",
        )
    assert len(pages) == 3
    assert any(np.array_equal(pages[0], e) for e in expected)


def test_no_cover_without_attachments_or_without_words(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    world, port = start(make_world, running, outgoing)
    bare = EmailMessage()  # a scanner's mail: an attachment, no subject, no text
    bare["From"], bare["To"] = "alice@acme.test", "211@fax.acme.test"
    bare.add_attachment(b"page one\fpage two", maintype="text", subtype="plain", filename="s.txt")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")
        client.send_message(mail(["211@fax.acme.test"]))  # the body is the document
        client.send_message(bare)
    outgoing.wait_for(2, 60)  # both queued
    with world.sessions() as s:
        pages = [
            f.pages for f in s.scalars(select(Fax).where(Fax.direction == "out").order_by(Fax.id))
        ]
    assert pages == [1, 2]


def test_a_fax_that_fails_completely_gets_the_failed_reply_with_the_reason(
    make_world: Make, running: Callable[..., Running], outgoing: MailServer
) -> None:
    port = free_port()
    world = make_world(
        {},
        smtp_url=f"smtp://127.0.0.1:{outgoing.port}",
        email_domain="fax.acme.test",
        retry_busy_attempts=1,  # no retries: the first busy line fails the delivery
    )
    with world.sessions() as s:
        apply(s, parse({"routes": [BUSY_ROUTE]}))
        s.commit()
    running(world, ("127.0.0.1", port))
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.login("alice", "pw-alice-secret")
        client.send_message(mail(["15550000002@fax.acme.test"]))
    queued, completed = outgoing.wait_for(2, 60)
    fax_id = int(queued["Subject"].split()[1])
    assert completed["To"] == "alice@acme.test"
    assert completed["Subject"] == f"Fax {fax_id} could not be sent"
    text = completed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "15550000002: not delivered: the line was busy" in text
    assert world.statuses() == ["failed"]


BUSY_ROUTE = {
    "name": "simulator",
    "type": "simulator",
    "numbers": {"15550000002": {"behaviour": "busy"}},
}
