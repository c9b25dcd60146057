"""The outbox for real, on SQLite and PostgreSQL: emails to a real SMTP server (aiosmtpd) or
the Maildir, in-app messages, calls booked for agents; failures retried with backoff, never
lost and never sent twice, also when the SMTP server is down and when the dispatcher is killed
between sending and recording."""

from __future__ import annotations

import email
import mailbox
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select, update

from serving.api.schemas import TriggerInterventionRequest
from serving.calls import BusinessHours
from serving.db.directory import write_directory
from serving.db.migrate import engine_for, upgrade
from serving.db.models import (
    CsAgent,
    InAppMessage,
    InterventionExecution,
    SupportInteraction,
)
from serving.dispatch import DeliveryPolicy, Dispatcher
from serving.interventions import InterventionRecorder
from serving.mail import EXECUTION_HEADER, MaildirMailer, SmtpMailer, SmtpServer
from wedsync_cs.demo_api import free_port

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
POLICY = DeliveryPolicy(sender="CS <cs@wedsync.example>", max_attempts=3, backoff_seconds=300)


@dataclass
class Inbox:
    """What the SMTP server received; ``on_data`` runs before it answers."""

    messages: list[email.message.Message] = field(default_factory=list)
    on_data: object = None

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's)
        self.messages.append(email.message_from_bytes(envelope.content))
        if callable(self.on_data):
            self.on_data()
        return "250 OK"


def start_smtp(port: int, inbox: Inbox) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'operational.db'}"
    else:
        url = request.getfixturevalue("postgres_uri")
    engine = engine_for(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()


def _supplier(i: int, **extra) -> dict:
    return {
        "supplier_id": f"s{i}",
        "business_name": f"Studio {i}",
        "first_name": f"Name{i}",
        "email": f"s{i}@example.com",
        "vendor_type": "photographer",
        "subscription_tier": "professional",
        "monthly_revenue": 49.0,
        "country": "GB",
        "signup_at": datetime(2025, 1, 1, tzinfo=UTC),
        "cancelled_at": None,
        "status": "active",
        "agent_id": None,
        "synced_at": NOW,
        **extra,
    }


def _trigger(
    engine: Engine, supplier: str, kind: str = "email_sequence", at: datetime = NOW
) -> str:
    recorder = InterventionRecorder(engine, clock=lambda: at - timedelta(minutes=5))
    request = TriggerInterventionRequest(
        user_id=supplier, intervention_type=kind, reason="a check-in", priority="high"
    )
    return recorder.trigger(request)[1]["execution"]["id"]


def _executions(engine: Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return {r.id: r for r in connection.execute(select(InterventionExecution))}


def test_smtp_down_then_up_is_retried_with_backoff_and_sent_once(database) -> None:
    _, engine = database
    write_directory(engine, [_supplier(i) for i in range(3)] + [_supplier(9, email=None)])
    ids = [_trigger(engine, f"s{i}") for i in range(3)]
    no_address = _trigger(engine, "s9")
    port = free_port()
    mailer = SmtpMailer(SmtpServer("127.0.0.1", port), timeout=5)

    down = Dispatcher(engine, mailer, POLICY, clock=lambda: NOW).run()
    assert down.count(2) == {"failed": 4}
    rows = _executions(engine)
    for i in ids:
        assert rows[i].status == "failed" and rows[i].attempts == 1
        assert "cannot reach the SMTP server smtp://127.0.0.1" in rows[i].last_error
        assert rows[i].next_attempt_at == NOW + timedelta(seconds=300)
        assert rows[i].claimed_at is None
    # a supplier without an address: failed for good, not retried
    assert rows[no_address].next_attempt_at is None
    assert "no email address" in rows[no_address].last_error
    # before the backoff has passed nothing is tried
    early = Dispatcher(engine, mailer, POLICY, clock=lambda: NOW + timedelta(seconds=299)).run()
    assert early.total == 0

    inbox = Inbox()
    controller = start_smtp(port, inbox)
    try:
        later = NOW + timedelta(seconds=301)
        up = Dispatcher(engine, mailer, POLICY, clock=lambda: later).run()
        again = Dispatcher(engine, mailer, POLICY, clock=lambda: later + timedelta(days=1)).run()
    finally:
        controller.stop()
    assert up.count(2) == {"sent": 3} and again.total == 0
    assert sorted(m[EXECUTION_HEADER] for m in inbox.messages) == sorted(ids)
    rows = _executions(engine)
    for m in inbox.messages:
        execution = rows[m[EXECUTION_HEADER]]
        assert execution.status == "sent" and execution.attempts == 2
        assert m["Message-ID"] == execution.message_id == f"<{execution.id}@wedsync-cs.local>"
        assert m["To"].endswith(f"<{execution.supplier_id}@example.com>")
        parts = {
            p.get_content_type(): p.get_payload(decode=True).decode()
            for p in m.walk()
            if not p.is_multipart()
        }
        assert f"Hi Name{execution.supplier_id[1:]}," in parts["text/plain"]
        assert "<!DOCTYPE html>" in parts["text/html"]


def test_attempts_are_given_up_after_the_limit(database) -> None:
    _, engine = database
    write_directory(engine, [_supplier(1)])
    execution = _trigger(engine, "s1")
    mailer = SmtpMailer(SmtpServer("127.0.0.1", free_port()), timeout=5)
    for day in range(3):
        at = NOW + timedelta(days=day)
        Dispatcher(engine, mailer, POLICY, clock=lambda at=at: at).run()
    row = _executions(engine)[execution]
    assert row.status == "failed" and row.attempts == 3 and row.next_attempt_at is None
    later = NOW + timedelta(days=9)
    assert Dispatcher(engine, mailer, POLICY, clock=lambda: later).run().total == 0


def _deliver(
    url: str, home: Path, smtp: int, retry: str | None = None, **env: str
) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CS_")}
    full.update(
        CS_HOME=str(home), CS_DATABASE_URL=url, CS_SMTP_URL=f"smtp://127.0.0.1:{smtp}", **env
    )
    command = [str(Path(sys.executable).parent / "wedsync-cs"), "deliver"]
    command += ["--retry", retry] if retry else []
    return subprocess.Popen(
        command, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_killed_between_sending_and_recording_it_is_never_sent_twice(database, tmp_path) -> None:
    """The SMTP server receives the message and, before it answers, the dispatcher is killed:
    the execution stays claimed; a run within the lease leaves it alone; after the lease it is
    failed with the outcome unknown and the Message-ID to look for, and never sent again by
    itself; ``deliver --retry`` sends it when a person decides to."""
    url, engine = database
    write_directory(engine, [_supplier(1)])
    execution = _trigger(engine, "s1", at=datetime.now(UTC))  # the command's clock is real
    port = free_port()
    inbox = Inbox()
    process: list[subprocess.Popen] = []
    killed = threading.Event()

    def kill() -> None:
        if not killed.is_set():
            os.kill(process[0].pid, signal.SIGKILL)
            process[0].wait()
            killed.set()

    inbox.on_data = kill
    controller = start_smtp(port, inbox)
    try:
        process.append(_deliver(url, tmp_path, port))
        out, _ = process[0].communicate(timeout=120)
        assert killed.is_set() and process[0].returncode == -signal.SIGKILL, out
        row = _executions(engine)[execution]
        assert row.status == "scheduled" and row.claimed_at is not None and row.attempts == 1
        within = _deliver(url, tmp_path, port)
        out, _ = within.communicate(timeout=120)
        assert within.returncode == 0, out
        assert "nothing was due" in out and len(inbox.messages) == 1
        after = _deliver(url, tmp_path, port, CS_DELIVERY_LEASE_SECONDS="0.001")
        out, _ = after.communicate(timeout=120)
        assert after.returncode == 0, out
        assert "interrupted deliveries found: unknown 1" in out
        assert len(inbox.messages) == 1
        row = _executions(engine)[execution]
        assert row.status == "failed" and row.next_attempt_at is None and row.claimed_at is None
        assert "outcome unknown" in row.last_error
        assert f"<{execution}@wedsync-cs.local>" in row.last_error
        assert f"wedsync-cs deliver --retry {execution}" in row.last_error
        quiet = _deliver(url, tmp_path, port)
        assert quiet.wait(timeout=120) == 0 and len(inbox.messages) == 1
        resend = _deliver(url, tmp_path, port, retry=execution)
        out, _ = resend.communicate(timeout=120)
        assert resend.returncode == 0, out
    finally:
        controller.stop()
    assert len(inbox.messages) == 2  # the resend a person asked for, and only that
    assert _executions(engine)[execution].status == "sent"


def test_a_maildir_message_written_before_a_crash_is_recorded_not_rewritten(
    database, tmp_path
) -> None:
    """The Maildir can say whether the message was written: a stale claim whose file exists
    becomes sent, one whose file does not is due again; one file per execution."""
    _, engine = database
    write_directory(engine, [_supplier(1), _supplier(2)])
    written, lost = _trigger(engine, "s1"), _trigger(engine, "s2")
    maildir = tmp_path / "outbox"
    Dispatcher(engine, MaildirMailer(maildir), POLICY, clock=lambda: NOW).run()
    # the state a crash between writing and recording leaves: claimed, outcome not recorded
    (maildir / "new" / f"{lost}.wedsync").unlink()
    with engine.begin() as connection:
        connection.execute(
            update(InterventionExecution)
            .where(InterventionExecution.id.in_([written, lost]))
            .values(status="scheduled", claimed_at=NOW, message_id=None, executed_at=None)
        )
    later = NOW + timedelta(hours=1)
    report = Dispatcher(engine, MaildirMailer(maildir), POLICY, clock=lambda: later).run()
    assert report.recovered == {"sent": 1, "released": 1}
    assert report.count(2) == {"sent": 1}  # the lost one, written now
    box = mailbox.Maildir(maildir, create=False)
    assert sorted(m[EXECUTION_HEADER] for m in box) == sorted([written, lost])
    assert {r.status for r in _executions(engine).values()} == {"sent"}


def test_in_app_messages_and_calls_are_delivered_once_by_concurrent_dispatchers(
    database, tmp_path
) -> None:
    """Four dispatchers at once: each in-app message and call is written exactly once; calls
    go to the supplier's agent, or to the agent with most free capacity, inside business
    hours and within capacity; a cancelled supplier's execution is cancelled."""
    _, engine = database
    suppliers = [_supplier(i, agent_id="a1" if i < 3 else None) for i in range(8)]
    write_directory(engine, suppliers)
    with engine.begin() as connection:
        connection.execute(
            update(CsAgent).where(CsAgent.agent_id == "a1").values(capacity_per_day=2)
        )
        connection.execute(
            CsAgent.__table__.insert(),
            [{"agent_id": "a2", "name": "Bea", "capacity_per_day": 4, "active": True}],
        )
    tours = [_trigger(engine, f"s{i}", "feature_tour") for i in range(8)]
    calls = [_trigger(engine, f"s{i}", "phone_call") for i in range(8)]
    write_directory(engine, [{**suppliers[7], "status": "cancelled", "cancelled_at": NOW}])
    hours = BusinessHours(9, 17)
    policy = DeliveryPolicy(sender=POLICY.sender, hours=hours)
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        Dispatcher(engine, MaildirMailer(tmp_path / "box"), policy, clock=lambda: NOW).run()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = _executions(engine)
    with engine.connect() as connection:
        messages = connection.execute(select(InAppMessage)).all()
        booked = connection.execute(select(SupportInteraction)).all()
        per_execution = connection.execute(
            select(SupportInteraction.execution_id, func.count()).group_by(
                SupportInteraction.execution_id
            )
        ).all()
    assert sorted(m.execution_id for m in messages) == sorted(tours[:7])
    assert all(m.kind == "feature_tour" and m.status == "pending" for m in messages)
    assert rows[tours[7]].status == rows[calls[7]].status == "cancelled"
    assert sorted(b.execution_id for b in booked) == sorted(calls[:7])
    assert all(n == 1 for _, n in per_execution)
    by_supplier = {b.supplier_id: b for b in booked}
    for i in range(3):  # the own agent, two a day: Monday from 10:00 (after now), then Tuesday
        assert by_supplier[f"s{i}"].agent_id == "a1"
    for b in booked:
        assert b.occurred_at >= NOW and b.occurred_at.weekday() < 5
        assert 9 <= b.occurred_at.hour < 17 and b.outcome == "scheduled"
        assert rows[b.execution_id].agent_id == b.agent_id
        assert b.notes.startswith("Call requested: Studio")
    per_day: dict[tuple[str, object], int] = {}
    for b in booked:
        key = (b.agent_id, b.occurred_at.date())
        per_day[key] = per_day.get(key, 0) + 1
    capacity = {"a1": 2, "a2": 4}
    assert all(n <= capacity[a] for (a, _), n in per_day.items())


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the test's own CA: the certificate itself)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


def test_starttls_and_a_login_as_the_smtp_url_says(database, tmp_path) -> None:
    """A server that requires STARTTLS and a login: the URL's user and password are sent only
    inside TLS, the certificate is verified against CS_SMTP_CA_FILE, and a wrong password is a
    failure to retry, not a lost message."""
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    from serving.mail import mailer_for

    _, engine = database
    write_directory(engine, [_supplier(1), _supplier(2)])
    first = _trigger(engine, "s1")
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[str, bool]] = []

    def authenticate(server, session, envelope, mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret:/@"
        logins.append((data.login.decode(), session.ssl is not None))
        return AuthResult(success=ok)

    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        # (aiosmtpd answers smtplib's second mechanism after a failed login only at the timeout)
        wrong = SmtpMailer(
            SmtpServer.from_url(f"smtp://cs:nope@127.0.0.1:{port}?starttls=true"),
            timeout=2,
            ca_file=cert,
        )
        refused = Dispatcher(engine, wrong, POLICY, clock=lambda: NOW).run()
        url = f"smtp://cs:s3cret%3A%2F%40@127.0.0.1:{port}?starttls=true"  # escaped :/@
        right = mailer_for(url, tmp_path, cert)
        later = NOW + timedelta(hours=1)
        sent = Dispatcher(engine, right, POLICY, clock=lambda: later).run()
        untrusted = mailer_for(url, tmp_path, None)  # the system's CAs do not know this one
        second = _trigger(engine, "s2", at=later)
        failed = Dispatcher(engine, untrusted, POLICY, clock=lambda: later).run()
    finally:
        controller.stop()
    assert refused.count(2) == {"failed": 1} and sent.count(2) == {"sent": 1}
    assert failed.count(2) == {"failed": 1}
    assert "CERTIFICATE_VERIFY_FAILED" in _executions(engine)[second].last_error
    assert [m[EXECUTION_HEADER] for m in inbox.messages] == [first]
    assert logins == [("cs", True), ("cs", True)]  # only ever inside TLS


def test_calls_are_booked_in_the_uplift_order_when_it_is_given(database, tmp_path) -> None:
    """With uplift targeting on for calls, the dispatcher books the calls of one priority by
    expected saved LTV, highest first, so the earliest slots of an agent's limited capacity go
    to the suppliers a call helps most; suppliers without a score come last."""
    _, engine = database
    write_directory(engine, [_supplier(i, agent_id="a1") for i in range(4)])
    with engine.begin() as connection:
        connection.execute(
            update(CsAgent).where(CsAgent.agent_id == "a1").values(capacity_per_day=1)
        )
    calls = {f"s{i}": _trigger(engine, f"s{i}", "phone_call") for i in range(4)}
    saved = {"s0": 10.0, "s1": 500.0, "s2": 90.0}  # s3 has no uplift score
    policy = DeliveryPolicy(sender=POLICY.sender, hours=BusinessHours(9, 17))
    Dispatcher(
        engine, MaildirMailer(tmp_path / "box"), policy, clock=lambda: NOW, call_order=saved
    ).run()
    with engine.connect() as connection:
        booked = {
            b.execution_id: b.occurred_at for b in connection.execute(select(SupportInteraction))
        }
    order = sorted(calls, key=lambda s: booked[calls[s]])  # one a day: the order is the days
    assert order == ["s1", "s2", "s0", "s3"]
