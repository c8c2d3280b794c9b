"""Cover pages: a text template with ``{field}`` placeholders, drawn by the text renderer.

A template is plain text (80 columns, monospace, as ``text`` draws it) in which ``{name}``
stands for one of ``FIELDS``; ``{{`` and ``}}`` are literal braces. Nothing else is
evaluated (no attributes, indexes or format specs), so an organization's template can do
no more than place the fields. Long values wrap; the cover is always one page (lines past
the page are dropped).
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass

FIELDS = (
    "organization", "sender_name", "sender_number", "recipient_name", "recipient_number",
    "date", "pages", "subject", "notes",
)  # fmt: skip
"""The placeholders a template may use."""

MAX_TEMPLATE_CHARS = 20_000

DEFAULT_TEMPLATE = """\


                                   F A X
================================================================================

  From:     {sender_name}
            {organization}
  Number:   {sender_number}

  To:       {recipient_name}
  Number:   {recipient_number}

  Date:     {date}
  Pages:    {pages} (including this cover page)

  Subject:  {subject}

--------------------------------------------------------------------------------
{notes}
"""


class TemplateError(ValueError):
    """A cover template that cannot be used; the message says why."""


@dataclass(frozen=True)
class CoverFields:
    """What a cover page shows; ``pages`` counts the cover too."""

    organization: str
    sender_name: str
    sender_number: str
    recipient_name: str
    recipient_number: str
    date: str
    pages: int
    subject: str
    notes: str


def check_template(template: str) -> None:
    """Raise TemplateError unless ``template`` uses only ``{field}`` placeholders of FIELDS."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"the template has unbalanced braces ({exc})") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS or spec or conversion:
            raise TemplateError(
                f"unknown placeholder {{{field}}}; the fields are " + ", ".join(FIELDS)
            )


def render_cover(fields: CoverFields, template: str | None = None) -> str:
    """The cover page's text: the template (or the default) with the fields filled in."""
    chosen = DEFAULT_TEMPLATE if template is None else template
    check_template(chosen)
    values = {name: str(value) for name, value in asdict(fields).items()}
    return chosen.format_map(values)
