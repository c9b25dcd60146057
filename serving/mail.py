"""Sending email: an SMTP server (``CS_SMTP_URL``), or by default a Maildir under CS_HOME
that any mail client reads. Both carry the execution id in a header and in the Message-ID, so
a message can always be traced back to the intervention that sent it.

The Maildir is written the Maildir way (a file in ``tmp/`` renamed into ``new/``) under a
name made of the execution id, so whether an execution's message was written can be looked up
afterwards; an SMTP server cannot be asked that, which the dispatcher has to allow for.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from serving.messages import Rendered

EXECUTION_HEADER = "X-WedSync-Execution-Id"
MESSAGE_DOMAIN = "wedsync-cs.local"
TIMEOUT_SECONDS = 30.0


class DeliveryError(Exception):
    """A message was not delivered; ``permanent`` when trying again cannot help (the server
    refused the address), else a later try may succeed (the server is down or busy)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def message_id(execution_id: str) -> str:
    return f"<{execution_id}@{MESSAGE_DOMAIN}>"


def build_email(
    rendered: Rendered, to: str, to_name: str | None, sender: str, execution_id: str
) -> EmailMessage:
    """The email of an execution: plain text with an HTML alternative, the execution id in
    ``X-WedSync-Execution-Id`` and in the Message-ID."""
    email = EmailMessage()
    email["Subject"] = rendered.subject
    email["From"] = sender
    email["To"] = formataddr((to_name, to)) if to_name else to
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(execution_id)
    email[EXECUTION_HEADER] = execution_id
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(rendered.text)
    if rendered.html:
        email.add_alternative(rendered.html, subtype="html")
    return email


class Mailer(Protocol):
    def send(self, email: EmailMessage, key: str) -> None:
        """Deliver ``email``; ``key`` names it (the execution id).

        Raises:
            DeliveryError: not delivered.
        """

    def delivered(self, key: str) -> bool | None:
        """Whether the message named ``key`` was delivered: True, False, or None when this
        transport cannot tell (SMTP)."""

    def close(self) -> None: ...

    def describe(self) -> str: ...


class MaildirMailer:
    """Messages written to a Maildir (``cur``, ``new``, ``tmp``), named by their key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _name(key: str) -> str:
        if not key or "/" in key or ":" in key or key.startswith("."):
            raise ValueError(f"{key!r} cannot name a Maildir message")
        return f"{key}.wedsync"

    def send(self, email: EmailMessage, key: str) -> None:
        name = self._name(key)
        temporary = self.folder / "tmp" / f"{name}.{os.getpid()}.{time.time_ns()}"
        try:
            with temporary.open("wb") as out:
                out.write(bytes(email))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.folder / "new" / name)  # atomic: whole or absent
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write to the Maildir {self.folder}: {error}") from None

    def delivered(self, key: str) -> bool:
        name = self._name(key)
        if (self.folder / "new" / name).exists():
            return True
        # a mail client moves read messages to cur/ and appends flags after a colon
        cur = self.folder / "cur"
        return (cur / name).exists() or any(cur.glob(f"{name}:*"))

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"Maildir {self.folder}"


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach an SMTP server (from ``CS_SMTP_URL``)."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False  # smtps: TLS from the first byte

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """``smtp://[user[:password]@]host[:port][?starttls=true]`` or ``smtps://...``.

        Raises:
            ValueError: not such a URL (the message never repeats the password).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("CS_SMTP_URL must look like smtp://[user[:password]@]host[:port]")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("CS_SMTP_URL has a port that is not a number") from None
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls"}
        if unknown:
            raise ValueError(f"CS_SMTP_URL has unknown options {sorted(unknown)}")
        if query.get("starttls", "false") not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("CS_SMTP_URL's starttls must be true or false")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 25),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls") in ("true", "1", "yes"),
            tls=tls,
        )


class SmtpMailer:
    """Messages sent to an SMTP server over one connection, opened on the first message and
    reopened after an error."""

    def __init__(
        self,
        server: SmtpServer,
        timeout: float = TIMEOUT_SECONDS,
        ca_file: Path | None = None,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.ca_file = ca_file
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        # certificates and host names are always verified (against ca_file when given)
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if s.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
            if s.starttls:
                smtp.starttls(context=context)
        if s.user:
            smtp.login(s.user, s.password or "")
        return smtp

    def send(self, email: EmailMessage, key: str) -> None:
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = {code for code, _ in error.recipients.values()}
            raise DeliveryError(
                f"the SMTP server refused the recipient ({sorted(codes)})",
                permanent=all(c >= 500 for c in codes),
            ) from None
        except smtplib.SMTPResponseException as error:
            # only a refusal of this message is permanent; a refused sender or login is the
            # configuration's, and is tried again once it is fixed
            self.close()
            text = error.smtp_error.decode(errors="replace") if error.smtp_error else ""
            raise DeliveryError(
                f"the SMTP server answered {error.smtp_code} {text}".strip(),
                permanent=isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500,
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise DeliveryError(
                f"cannot reach the SMTP server {self.describe()}: {type(error).__name__}: {error}"
            ) from None

    def delivered(self, key: str) -> None:
        return None  # an SMTP server cannot be asked what it received

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def describe(self) -> str:
        return f"smtp://{self.server.host}:{self.server.port}"


def mailer_for(smtp_url: str | None, maildir: Path, ca_file: Path | None = None) -> Mailer:
    """SMTP when a URL is given, else the Maildir."""
    if smtp_url:
        return SmtpMailer(SmtpServer.from_url(smtp_url), ca_file=ca_file)
    return MaildirMailer(maildir)
