"""The contract's commands: zone, plp, police, person pin, demo, redis."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from alerts.models import (
    AuditEvent,
    Membership,
    Officer,
    Partnership,
    Person,
    PhoneType,
    Role,
    Zone,
)
from alerts.people.demo import COORDINATOR, OFFICER, PLP_CODE
from alerts.people.pins import verify_pin
from core.app import create_app
from core.extensions import db
from simulator import store
from simulator.behaviour import Behaviour
from tests.support import app_config


def count(model) -> int:
    """Return the number of rows of a model."""
    return db.session.scalar(select(func.count()).select_from(model))


def test_zone_and_plp_add(runner):
    """zone add and plp add create rows with canonical upper-case codes and audit events."""
    result = runner.invoke(args=["zone", "add", "zp5344", "Zone Bruxelles-Capitale/Ixelles"])
    assert result.exit_code == 0, result.output
    assert "zone ZP5344 added" in result.output
    result = runner.invoke(
        args=["plp", "add", "plp-parc", "PLP Parc", "--zone", "ZP5344", "--language", "NL"]
    )
    assert result.exit_code == 0, result.output
    plp = db.session.scalar(select(Partnership))
    assert (plp.code, plp.name, plp.zone.code, plp.language) == (
        "PLP-PARC",
        "PLP Parc",
        "ZP5344",
        "nl",
    )
    assert plp.charter.alert_expiry_minutes == 120  # the default charter applies
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["zone.add", "plp.add"]


def test_codes_are_one_namespace(runner, make_zone):
    """A PLP may not take a zone's code (an SMS target may be either), nor a zone twice."""
    make_zone("ZP5344")
    result = runner.invoke(args=["plp", "add", "zp5344", "Clash", "--zone", "ZP5344"])
    assert result.exit_code == 1
    assert "Error: code ZP5344 is already a zone" in result.output
    result = runner.invoke(args=["zone", "add", "ZP5344", "Again"])
    assert result.exit_code == 1
    assert count(Zone) == 1 and count(Partnership) == 0


def test_plp_add_refuses_bad_input(runner, make_zone):
    """Unknown zone, bad code and unknown language are refused with the reason."""
    make_zone("ZP5344")
    cases = [
        (["plp", "add", "PARC", "P", "--zone", "NOPE"], "no zone NOPE"),
        (["plp", "add", "PARC X", "P", "--zone", "ZP5344"], "code 'PARC X'"),
        (["plp", "add", "PARC", "P", "--zone", "ZP5344", "--language", "it"], "language 'it'"),
    ]
    for args, message in cases:
        result = runner.invoke(args=args)
        assert result.exit_code == 1
        assert message in result.output
    assert count(Partnership) == 0


def test_police_add_generates_a_pin(runner, make_zone):
    """police add registers an officer with a generated 6-digit PIN, printed once and hashed."""
    make_zone("ZP5344")
    result = runner.invoke(args=["police", "add", "ZP5344", "Agent Peeters", "0470 11 22 33"])
    assert result.exit_code == 0, result.output
    pin = re.search(r"PIN (\d{6})", result.output).group(1)
    officer = db.session.scalar(select(Officer))
    assert officer.zone.code == "ZP5344"
    assert officer.person.phone == "+32470112233"
    assert officer.person.phone_type == PhoneType.MOBILE
    assert officer.person.pin_hash != pin and verify_pin(officer.person.pin_hash, pin)


def test_police_add_refusals(runner, make_zone):
    """A weak PIN, a bad number and a second registration are refused; nothing is written."""
    make_zone("ZP5344")
    weak = runner.invoke(args=["police", "add", "ZP5344", "A", "0470112233", "--pin", "1234"])
    assert weak.exit_code == 1 and "too easy to guess" in weak.output
    bad = runner.invoke(args=["police", "add", "ZP5344", "A", "0800 12 345", "--pin", "4829"])
    assert bad.exit_code == 1 and "toll-free" in bad.output
    assert count(Person) == 0 and count(Officer) == 0
    ok = runner.invoke(args=["police", "add", "ZP5344", "A", "0470112233", "--pin", "4829"])
    assert ok.exit_code == 0 and "PIN" not in ok.output  # a chosen PIN is not echoed
    again = runner.invoke(args=["police", "add", "ZP5344", "A", "+32470112233", "--pin", "4829"])
    assert again.exit_code == 1 and "already an officer of zone ZP5344" in again.output
    assert count(Officer) == 1


def test_person_pin(runner, make_plp, make_person):
    """person pin sets a coordinator's PIN (any notation) and refuses plain members."""
    plp = make_plp()
    coordinator = make_person("Coordinator", phone="+32471000001")
    member = make_person("Member", phone="+32471000002")
    db.session.add_all(
        [
            Membership(person=coordinator, partnership=plp, role=Role.COORDINATOR),
            Membership(person=member, partnership=plp, role=Role.MEMBER),
        ]
    )
    db.session.commit()
    result = runner.invoke(args=["person", "pin", "0471 00 00 01", "--pin", "5831"])
    assert result.exit_code == 0, result.output
    db.session.refresh(coordinator)
    assert verify_pin(coordinator.pin_hash, "5831")
    refused = runner.invoke(args=["person", "pin", "0471000002", "--pin", "5831"])
    assert refused.exit_code == 1
    assert "PINs are for officers, coordinators and steering members" in refused.output
    unknown = runner.invoke(args=["person", "pin", "0471000009"])
    assert unknown.exit_code == 1 and "nobody has the number" in unknown.output


def test_demo_loads_a_working_partnership(runner):
    """demo creates the zone, PLP DEMO, an officer, a coordinator and 25 varied members."""
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert f"PIN {OFFICER[2]}" in result.output and f"PIN {COORDINATOR[2]}" in result.output
    plp = db.session.scalar(select(Partnership).where(Partnership.code == PLP_CODE))
    members = [m.person for m in plp.memberships]
    assert len(members) == 25
    assert {p.language for p in members} == {"fr", "nl", "de", "en"}
    assert {p.phone_type for p in members} == {PhoneType.MOBILE, PhoneType.FIXED}
    assert any(p.phone2 for p in members) and any(p.email is None for p in members)
    assert any(not p.phone.startswith("+32") for p in members)
    roles = {m.person.phone: m.role for m in plp.memberships}
    assert roles[COORDINATOR[1]] == Role.COORDINATOR
    officer = db.session.scalar(select(Officer))
    assert officer.person.phone == OFFICER[1] and officer.zone_id == plp.zone_id
    assert verify_pin(officer.person.pin_hash, OFFICER[2])

    again = runner.invoke(args=["demo"])  # loading twice adds nothing
    assert again.exit_code == 0 and "demo loaded" not in again.output
    assert count(Person) == 26


def test_demo_hands_the_officer_and_coordinator_phones_to_the_user(runner, redis_conn):
    """Their simulated phones wait for the user's keys; a behaviour set before is kept."""

    store.set_behaviour(OFFICER[1], Behaviour("busy"))
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert store.get_behaviour(COORDINATOR[1]).kind == "interactive"
    assert store.get_behaviour(OFFICER[1]).kind == "busy"
    assert "interactive" in result.output


def test_demo_if_empty_leaves_a_real_database_alone(runner, make_plp):
    """demo --if-empty does nothing when the database already has partnerships."""
    make_plp("PLP-REAL")
    result = runner.invoke(args=["demo", "--if-empty"])
    assert result.exit_code == 0
    assert "demo not loaded" in result.output
    assert count(Partnership) == 1


def test_demo_refuses_twilio(tmp_path, database_url, redis_url):
    """The demo's fictitious numbers are never loaded when calls would go out through Twilio."""
    app = create_app(
        app_config(
            tmp_path,
            database_url,
            redis_url,
            PHONE_PROVIDER="twilio",
            TWILIO_ACCOUNT_SID="AC" + "1" * 32,
            TWILIO_AUTH_TOKEN="token",
            TWILIO_FROM_NUMBER="+3225112233",
            PUBLIC_BASE_URL="https://plp.example.be",
        )
    )
    with app.app_context():
        db.create_all()
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 1
        assert "PHONE_PROVIDER=simulator" in result.output
        assert count(Person) == 0
        db.session.remove()  # release the session's locks before dropping the tables
        db.drop_all()
        db.engine.dispose()


def test_redis_commands_with_a_server(runner):
    """With REDIS_URL set, redis start/stop say there is nothing embedded to manage."""
    assert "no embedded Redis to start" in runner.invoke(args=["redis", "start"]).output
    assert "no embedded Redis to stop" in runner.invoke(args=["redis", "stop"]).output


def test_redis_commands_embedded(tmp_path):
    """Without REDIS_URL, redis start runs the embedded server and redis stop ends it."""
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", None))
    runner = app.test_cli_runner()
    embedded = app.extensions["redis"]["embedded"]
    started = runner.invoke(args=["redis", "start"])
    assert started.exit_code == 0
    assert started.output.strip() == embedded.url and embedded.is_running()
    stopped = runner.invoke(args=["redis", "stop"])
    assert "embedded redis stopped" in stopped.output
    assert not embedded.is_running()
    assert "was not running" in runner.invoke(args=["redis", "stop"]).output
