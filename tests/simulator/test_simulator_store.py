"""The simulator's store: state in real Redis, shared by processes, versioned for the page."""

from __future__ import annotations

import threading

import pytest

from core.app import create_app
from core.extensions import REDIS_SOCKET_TIMEOUT
from simulator import store
from simulator.behaviour import Behaviour
from tests.support import app_config

NUMBER = "+32470555001"
PLP = "+3225550100"


@pytest.fixture
def sim_app(tmp_path, redis_url, redis_conn):
    """An app context on an emptied test Redis (the store needs no database)."""
    app = create_app(app_config(tmp_path, f"sqlite:///{tmp_path / 'test.db'}", redis_url))
    with app.app_context():
        yield app


def outbound_call(sid: str = "CA" + "1" * 32, to: str = NUMBER, **fields) -> dict:
    """Return a call record as the provider saves it."""
    return {
        "sid": sid,
        "direction": "outbound-api",
        "from": PLP,
        "to": to,
        "status": "queued",
        **fields,
    }


def message(sid: str, *, direction: str = "outbound", body: str = "Alerte") -> dict:
    """Return a message record, to NUMBER (outbound) or from it (inbound)."""
    ends = {"from": PLP, "to": NUMBER} if direction == "outbound" else {"from": NUMBER, "to": PLP}
    return {"sid": sid, **ends, "body": body, "direction": direction, "status": "queued"}


def test_behaviour_is_kept_per_number(sim_app):
    """A behaviour set for a number is read back as set; other numbers have none."""
    behaviour = Behaviour("answer", answer_after=2.5, keys=("0", "1"), sms_reply="OK")
    store.set_behaviour(NUMBER, behaviour)
    assert store.get_behaviour(NUMBER) == behaviour
    assert store.get_behaviour("+32470555002") is None


def test_every_write_moves_the_version_forward(sim_app):
    """Each kind of write bumps the version the page polls."""
    sid = "CA" + "2" * 32
    writes = [
        lambda: store.set_behaviour(NUMBER, Behaviour("busy")),
        lambda: store.save_call(outbound_call(sid)),
        lambda: store.update_call(sid, status="ringing"),
        lambda: store.add_call_event(sid, {"kind": "said", "text": "Alerte"}),
        lambda: store.set_call_events(sid, []),
        lambda: store.add_message(message("SM" + "1" * 32)),
        lambda: store.update_message("SM" + "1" * 32, status="sent"),
        lambda: store.push_keys(sid, "1"),
        lambda: store.set_opted_out(NUMBER, True),
        store.clear,
    ]
    versions = [store.version()]
    for write in writes:
        write()
        versions.append(store.version())
    assert versions == sorted(set(versions))  # strictly increasing


def test_clear_forgets_everything_but_keeps_the_version_growing(sim_app):
    """clear() removes behaviours, calls, messages and opt-outs; the version never resets."""
    store.set_behaviour(NUMBER, Behaviour("busy"))
    store.save_call(outbound_call())
    store.add_message(message("SM" + "1" * 32))
    store.set_opted_out(NUMBER, True)
    store.push_request({"kind": "sms", "sid": "SM" + "1" * 32})
    before = store.version()
    store.clear()
    assert store.get_behaviour(NUMBER) is None
    assert store.get_call("CA" + "1" * 32) is None
    assert not store.is_opted_out(NUMBER)
    assert store.pending_requests() == 0
    assert store.snapshot()["numbers"] == {}
    assert store.version() > before


def test_a_call_is_updated_field_by_field_with_its_events(sim_app):
    """update_call changes only the given fields; events keep their order; live follows status."""
    sid = "CA" + "3" * 32
    store.save_call(outbound_call(sid, started_at="2026-01-01T00:00:00+00:00"))
    store.update_call(sid, status="in-progress", answered_by="human")
    store.add_call_event(sid, {"kind": "said", "text": "Alerte"})
    store.add_call_event(sid, {"kind": "pressed", "digits": "1"})
    call = store.get_call(sid)
    assert call["status"] == "in-progress"
    assert call["answered_by"] == "human"
    assert call["started_at"] == "2026-01-01T00:00:00+00:00"
    assert call["live"] is True
    assert [e["kind"] for e in call["events"]] == ["said", "pressed"]
    store.update_call(sid, status="completed", duration=12)
    store.set_call_events(sid, [{"kind": "hung_up", "by": "app"}])
    call = store.get_call(sid)
    assert (call["live"], call["duration"]) == (False, 12)
    assert call["events"] == [{"kind": "hung_up", "by": "app"}]


def test_snapshot_lists_numbers_with_calls_newest_first_and_messages_oldest_first(sim_app):
    """The page's snapshot: per number, behaviour, calls newest first, messages in order."""
    store.set_behaviour("+32470555009", Behaviour("voicemail"))
    store.save_call(outbound_call("CA" + "a" * 32))
    store.save_call(outbound_call("CA" + "b" * 32))
    store.add_message(message("SM" + "a" * 32, body="Alerte"))
    store.add_message(message("SM" + "b" * 32, direction="inbound", body="OK"))
    store.update_message("SM" + "a" * 32, status="delivered")
    snapshot = store.snapshot()
    assert snapshot["version"] == store.version()
    assert set(snapshot["numbers"]) == {NUMBER, "+32470555009"}
    entry = snapshot["numbers"][NUMBER]
    assert entry["behaviour"] is None
    assert entry["opted_out"] is False
    assert [c["sid"] for c in entry["calls"]] == ["CA" + "b" * 32, "CA" + "a" * 32]
    assert all(c["live"] and c["events"] == [] for c in entry["calls"])
    assert [(m["body"], m["status"]) for m in entry["messages"]] == [
        ("Alerte", "delivered"),
        ("OK", "queued"),
    ]
    assert entry["messages"][0]["at"]  # stamped when stored
    assert snapshot["numbers"]["+32470555009"]["behaviour"]["kind"] == "voicemail"


def test_an_inbound_call_is_filed_under_the_caller(sim_app):
    """Inbound calls and messages belong to the person's number, not the PLP's."""
    store.save_call(
        {
            "sid": "CA" + "c" * 32,
            "direction": "inbound",
            "from": NUMBER,
            "to": PLP,
            "status": "ringing",
        }
    )
    assert list(store.snapshot()["numbers"]) == [NUMBER]


def test_keys_pushed_are_popped_in_order(sim_app):
    """Digits pushed by the page are popped once each, in order."""
    sid = "CA" + "d" * 32
    store.push_keys(sid, "1")
    store.push_keys(sid, "0#")
    assert store.pop_keys(sid, 1) == "1"
    assert store.pop_keys(sid, 1) == "0#"


def test_pop_keys_returns_none_when_nothing_is_pressed(sim_app):
    """Waiting for keys that never come ends with None at the timeout."""
    assert store.pop_keys("CA" + "e" * 32, 0.1) is None
    assert store.pop_keys("CA" + "e" * 32, 0) is None


def test_pop_keys_wakes_up_when_keys_are_pushed(sim_app):
    """A Gather waiting for keys gets the ones pushed while it waits."""
    sid = "CA" + "f" * 32
    threading.Timer(0.2, lambda: _push_in(sim_app, sid, "1")).start()
    assert store.pop_keys(sid, 10) == "1"


def test_waits_longer_than_the_socket_timeout_are_not_an_outage(sim_app):
    """Waiting for keys or requests past the app's Redis socket timeout just ends empty."""
    wait = REDIS_SOCKET_TIMEOUT + 0.5
    assert store.pop_keys("CA" + "d" * 32, wait) is None
    assert store.pop_request(wait) is None


def _push_in(app, sid: str, digits: str) -> None:
    with app.app_context():
        store.push_keys(sid, digits)


def test_opt_out_is_set_and_cleared(sim_app):
    """STOP opts a number out at the carrier; START opts it back in."""
    store.set_opted_out(NUMBER, True)
    assert store.is_opted_out(NUMBER)
    assert store.snapshot()["numbers"] == {}  # an opt-out alone is not a phone to show
    store.set_opted_out(NUMBER, False)
    assert not store.is_opted_out(NUMBER)


def test_requests_are_taken_in_order_and_requeued_first(sim_app):
    """The carrier's queue is FIFO; a request put back is taken next."""
    store.push_request({"sid": "one"})
    store.push_request({"sid": "two"})
    first = store.pop_request(1)
    store.requeue_request(first)
    assert [store.pop_request(1)["sid"] for _ in range(2)] == ["one", "two"]
    assert store.pop_request(0.05) is None
