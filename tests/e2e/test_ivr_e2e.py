"""The call trees end to end through the simulator: record by phone, members hear and confirm.

The simulator is the app's carrier in thread mode (zero latency, lives held until
`start_pending`), reaching the app's real webhooks in process with signed requests and
its strict TwiML interpreter. The coordinator's inbound call runs in the test's thread
(`run_call`); the jobs (the recording's download, the cascade's steps, the release call)
run in process with RQ's SimpleWorker, at the points where a real worker would have run
them, so that no test waits on a clock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from alerts import jobs, recordings
from alerts.delivery.provider import set_provider
from alerts.models import (
    AckChannel,
    Acknowledgement,
    Alert,
    AlertOrigin,
    AlertState,
    Channel,
    Delivery,
    RecordingStatus,
)
from alerts.raising import raise_alert
from core.extensions import db
from ivr.voice import cached_audio_url
from prompts import text
from simulator import carrier, store
from simulator.adapters.provider import SimulatorProvider
from simulator.behaviour import Behaviour
from simulator.calls import (
    SIMULATOR_ACCOUNT_SID,
    CallContext,
    HungUp,
    Played,
    Pressed,
    Recorded,
    Said,
)
from simulator.clock import InstantClock
from simulator.people import ScriptedPerson
from simulator.transport import WsgiTransport
from simulator.twiml import run_call
from tests.cascade_harness import carrier_calls
from tests.support import run_queued_jobs
from tests.twilio_payloads import call_sid
from tests.world import DECIDER_PIN, PEOPLE_OF_A

pytestmark = pytest.mark.app_settings(
    SIMULATOR_MODE="thread",
    SIMULATOR_LATENCY="zero",
    SIMULATOR_AUTOSTART=False,
    CALLS_PER_SECOND=1000,
    SMS_PER_SECOND=1000,
)

WAIT_SECONDS = 30  # a bound for lives that take milliseconds: reached only on a bug


@pytest.fixture
def simulator(app) -> Iterator[SimulatorProvider]:
    """The app's carrier: the simulator, its network in this process."""
    provider = SimulatorProvider(app)
    set_provider(app, provider)
    yield provider
    network = app.extensions.get("simulator_network")
    if network is not None:
        network.close()


# PLP A's people on the simulated network: how each one answers the alert's call.
BEHAVIOURS = {
    "coord_a": Behaviour("answer", keys=("1",)),
    "steering_a": Behaviour("answer", keys=("1",)),
    "member_a": Behaviour("answer", keys=("1",)),
    "landline_a": Behaviour("voicemail"),
    "both_ab": Behaviour("answer", keys=("0", "1")),
}


@pytest.fixture
def phones(world, simulator) -> None:
    """PLP A's people on the simulated network, each answering as BEHAVIOURS says."""
    for key, behaviour in BEHAVIOURS.items():
        store.set_behaviour(world.people[key].phone, behaviour)


def carry(app) -> None:
    """Let the simulated network carry the calls and SMS placed so far, to their end."""
    network = carrier.network(app)
    network.start_pending()
    assert network.wait_idle(WAIT_SECONDS)


class Coordinator(ScriptedPerson):
    """A coordinator on the phone who lets the worker run before the urgency key.

    The recording's download is a job: a real worker runs it while the coordinator
    listens to the playback; here it runs when the urgency question is asked.
    """

    def __init__(self, keys: tuple[str, ...], before_gather: dict[int, callable]):
        super().__init__(Behaviour("answer", keys=keys))
        self.before_gather = before_gather

    def press(self, prompt):
        """Run what is due before this Gather, then press the scripted keys."""
        action = self.before_gather.get(self.gathers + 1)
        if action is not None:
            action()
        return super().press(prompt)


def inbound(app, caller: str, person) -> list:
    """Run a call from `caller` to the PLP number with `person` on the line; return its events."""
    context = CallContext(
        call_sid(), SIMULATOR_ACCOUNT_SID, caller, carrier.plp_number(app), "inbound"
    )
    url = app.extensions["settings"].public_base_url + "/ivr/incoming"
    network = carrier.network(app)
    outcome = run_call(
        context, url, WsgiTransport(app), person, InstantClock(), recorder=network.recorder
    )
    assert outcome.error is None, outcome.error
    return outcome.events


def call_events(number: str) -> list[list[dict]]:
    """Return the transcripts of the calls the simulator carried to `number`."""
    return [call["events"] for call in carrier_calls().get(number, [])]


def test_a_coordinator_records_a_message_by_phone_and_members_hear_and_confirm(app, world, phones):
    """PIN, record, send urgent: members' calls play the recording; a keypress confirms."""
    keys = (f"{DECIDER_PIN}#", "1", "1", "1")  # PIN, record, send, urgent
    coordinator = Coordinator(keys=keys, before_gather={4: run_queued_jobs})
    events = inbound(app, world.coord_a.phone, coordinator)

    [recorded] = [e for e in events if isinstance(e, Recorded)]
    played = [e.url for e in events if isinstance(e, Played)]
    assert recorded.url in played  # the playback before "1 send"
    db.session.expire_all()
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.origin, alert.state) == (AlertOrigin.PHONE, AlertState.DELIVERING)
    assert alert.recording.status == RecordingStatus.READY
    said = [e.text for e in events if isinstance(e, Said)]
    assert any(
        s.startswith(text("voice.record_sent", "fr", members=PEOPLE_OF_A, ref="")[:25])
        for s in said
    )
    assert tuple(e.digits for e in events if isinstance(e, Pressed)) == keys

    run_queued_jobs()  # the cascade's first steps: an SMS and a call to each member
    carry(app)

    audio = recordings.recording_url(alert.recording)
    for key in ("member_a", "both_ab"):
        [transcript] = call_events(getattr(world, key).phone)
        assert audio in [e["url"] for e in transcript if e["kind"] == "played"], key
    acks = {a.person_id: a.channel for a in db.session.scalars(select(Acknowledgement))}
    assert acks[world.member_a.id] == AckChannel.CALL
    assert acks[world.both_ab.id] == AckChannel.CALL

    # The landline's voicemail: the recording and how to confirm; not confirmed.
    [machine] = call_events(world.landline_a.phone)
    kinds = [e["kind"] for e in machine]
    assert "pressed" not in kinds and "gather_timed_out" not in kinds
    assert audio in [e["url"] for e in machine if e["kind"] == "played"]
    how = text("voice.machine_how_to_confirm", "fr", ref=" ".join(alert.reference))
    # Rendered at release by the speech job (espeak-ng here), so played, not said.
    assert cached_audio_url(how, "fr") in [e["url"] for e in machine if e["kind"] == "played"]
    assert world.landline_a.id not in acks


def test_a_coordinator_releases_a_police_alert_by_pressing_1(app, world, phones):
    """The release call placed at notify time: the coordinator presses 1, the alert goes out."""
    alert = raise_alert(
        author=world.officer1,
        targets=[world.a],
        text="Cambriolage en cours rue de la Station",
        origin=AlertOrigin.SMS,
    )
    db.session.commit()
    alert_id = alert.id
    jobs.notify_coordinators(alert_id)  # as its job does
    run_queued_jobs()  # the SMS notice and the release call
    carry(app)

    db.session.expire_all()
    alert = db.session.get(Alert, alert_id)
    assert alert.state == AlertState.DELIVERING
    assert alert.released_by_id == world.coord_a.id
    [transcript] = call_events(world.coord_a.phone)
    said = [e["text"] for e in transcript if e["kind"] == "said"]
    assert "Cambriolage en cours rue de la Station" in said
    assert said[-2] == text("voice.released", "fr", members=PEOPLE_OF_A)
    assert transcript[-1] == HungUp("app").to_json()
    # Released: the members' deliveries are planned (no Delivery for the release call).
    people = set(
        db.session.scalars(select(Delivery.person_id).where(Delivery.alert_id == alert_id))
    )
    assert world.member_a.id in people
    assert (
        db.session.scalars(
            select(Delivery).where(
                Delivery.channel == Channel.CALL, Delivery.sent_at < alert.released_at
            )
        ).all()
        == []
    )


def test_a_member_calls_the_plp_number_and_confirms(app, world, phones):
    """A member calling in hears the running alert and confirms with 1 (inbound call)."""
    alert = raise_alert(
        author=world.coord_a,
        targets=[world.a],
        text="Soyez vigilants ce soir",
        origin=AlertOrigin.SMS,
    )
    db.session.commit()
    events = inbound(app, world.member_a.phone, ScriptedPerson(Behaviour("answer", keys=("1",))))
    said = [e.text for e in events if isinstance(e, Said)]
    assert "Soyez vigilants ce soir" in said
    assert said[-2:] == [text("voice.ack_thanks", "fr"), text("voice.goodbye", "fr")]
    [ack] = db.session.scalars(select(Acknowledgement)).all()
    assert (ack.alert_id, ack.person_id, ack.channel) == (
        alert.id,
        world.member_a.id,
        AckChannel.INBOUND_CALL,
    )
