"""The mails faxline writes (pure): a received fax with its pages as PDF, and the news
that an outgoing fax failed, in plain words."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

# failure_reason codes of deliveries, as a person would say them.
REASONS = {
    "busy": "the line was busy",
    "no_answer": "nobody answered",
    "t30_failure": "the fax machines could not complete the transmission",
    "unavailable": "the line could not take the call",
    "interrupted": "the call was interrupted",
    "no_route": "there is no route to this number",
    "invalid_number": "the number does not exist",
    "rejected": "the receiving machine refused the pages",
    "document_error": "the document could not be sent",
    "cancelled": "it was cancelled",
}


def _plural(n: int) -> str:
    return f"{n} page" if n == 1 else f"{n} pages"


def received_mail(facts: dict[str, Any], sender: str, pdf: bytes) -> EmailMessage:
    who = facts.get("callerId") or facts.get("remoteIdent") or "an unknown sender"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(facts["to"])
    msg["Subject"] = f"Fax from {who} ({_plural(facts['pages'])})"
    msg.set_content(
        "\n".join(
            [
                f"A fax arrived for extension {facts['extension']}.",
                "",
                f"When:  {facts['when']}",
                f"From:  {who}"
                + (
                    f" (ident {facts['remoteIdent']})"
                    if facts.get("remoteIdent") and facts.get("callerId")
                    else ""
                ),
                f"To:    {facts['extension']}",
                f"Pages: {facts['pages']}",
                "How:   received completely; the pages are attached as they arrived.",
            ]
        )
        + "\n"
    )
    msg.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"fax-{facts['faxId']}.pdf"
    )
    return msg


def failed_mail(facts: dict[str, Any], sender: str) -> EmailMessage:
    partly = facts["status"] == "partially_sent"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(facts["to"])
    msg["Subject"] = (
        f"Fax {facts['faxId']} was only partly sent"
        if partly
        else f"Fax {facts['faxId']} could not be sent"
    )
    lines = [
        f"Your fax {facts['faxId']} from extension {facts['extension']} "
        f"({_plural(facts['pages'])}, queued {facts['when']}) "
        + ("reached only some of its recipients." if partly else "was not delivered."),
        "",
    ]
    lines.extend(_outcome_lines(facts))
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _outcome_lines(facts: dict[str, Any]) -> list[str]:
    lines = []
    for d in facts["deliveries"]:
        if d["status"] == "delivered":
            lines.append(f"{d['recipient']}: delivered")
        elif d["status"] in ("queued", "sending", "retrying"):
            lines.append(f"{d['recipient']}: queued")
        else:
            reason = REASONS.get(d.get("failureReason") or "", d.get("failureReason") or "")
            tries = d.get("attempts") or 0
            lines.append(
                f"{d['recipient']}: not delivered: {reason or 'it failed'}"
                + (f" (after {tries} attempts)" if tries > 1 else "")
            )
    return lines


def reply_mail(facts: dict[str, Any], sender: str) -> EmailMessage:
    """To whoever sent a fax by mail: it is queued, or it completed (and how)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(facts["to"])
    fax = facts["faxId"]
    if facts["kind"] == "queued":
        msg["Subject"] = f"Fax {fax} queued"
        head = (
            f"Your fax is queued as fax {fax} ({_plural(facts['pages'])}) "
            f"from {facts['extension']}."
        )
    else:
        status = facts["status"]
        words = {
            "sent": "was sent",
            "partially_sent": "was only partly sent",
            "failed": "could not be sent",
            "cancelled": "was cancelled",
        }.get(status, status)
        msg["Subject"] = f"Fax {fax} {words}"
        head = f"Your fax {fax} ({_plural(facts['pages'])}) {words}."
    msg.set_content("\n".join([head, "", *_outcome_lines(facts)]) + "\n")
    return msg


def rejected_mail(facts: dict[str, Any], sender: str) -> EmailMessage:
    """To whoever sent a mail that could not become a fax: why; nothing was sent."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(facts["to"])
    msg["Subject"] = f"Fax not sent: {facts['subject']}"[:200]
    msg.set_content(f"Your mail was not faxed; nothing was sent.\n\n{facts['reason']}\n")
    return msg
