"""The mail directory (data directory's mail/, where mail goes without PARLEY_SMTP_URL), as `parley mail
list` and `parley mail show ID` print it: so a demo's reset or verification link can be followed."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from ..config import Settings
from .transport import file_name, mail_dir

__all__ = ["listing", "mail_dir", "show"]


def _files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob("*.eml"):
        if path.stem.isdigit():
            found.append((int(path.stem), path))
    return sorted(found, reverse=True)


def _read(path: Path) -> EmailMessage:
    with path.open("rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)  # type: ignore[return-value]


def listing(settings: Settings) -> str:
    """One line per mail, newest first: id, date, recipient, subject."""
    directory = mail_dir(settings)
    files = _files(directory) if directory.is_dir() else []
    lines = []
    if settings.smtp_url:
        lines.append(f"(PARLEY_SMTP_URL is set: mail goes to that server; {directory} keeps only older mail)")
    if not files:
        lines.append(f"no mail in {directory}")
        return "\n".join(lines)
    for mail_id, path in files:
        msg = _read(path)
        lines.append(f"{mail_id:>6}  {msg.get('Date', '')}  {msg.get('To', '')}  {msg.get('Subject', '')}")
    return "\n".join(lines)


def show(settings: Settings, mail_id: int) -> str | None:
    """A mail's headers that matter to a reader and its text part, decoded (links whole, to follow them)."""
    path = mail_dir(settings) / file_name(mail_id)
    if not path.is_file():
        return None
    msg = _read(path)
    head = [f"{name}: {msg[name]}" for name in ("From", "To", "Reply-To", "Subject", "Date") if msg[name]]
    part = msg.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else "(no text part)"
    return "\n".join(head) + "\n\n" + str(text).rstrip("\n")
