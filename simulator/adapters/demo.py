"""What the demo sets on the simulated network: the phones of the person trying it.

`create_app` adds `hand_phones_to_the_user` to what `flask --app wsgi demo` runs once the
demo is loaded (`app.extensions["demo_setup"]`), with the simulator as carrier only.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from alerts.people.demo import COORDINATOR, OFFICER
from simulator import store
from simulator.behaviour import Behaviour


def hand_phones_to_the_user() -> list[str]:
    """Make the demo officer's and coordinator's simulated phones interactive.

    In the demo the person trying it plays the officer and the coordinator: their calls
    wait for the keys pressed on /simulator instead of the demo's random behaviour mix.
    A behaviour already set (by `flask simulator behaviour`) is kept. Needs the
    simulator's Redis; without it the demo still loads and this says why.
    """
    try:
        for _name, phone, _pin in (OFFICER, COORDINATOR):
            if store.get_behaviour(phone) is None:
                store.set_behaviour(phone, Behaviour("interactive", answer_after=2, keys=()))
    except RedisError as err:
        return [f"  simulator phones not set (Redis unavailable: {err})"]
    return ["  officer and coordinator phones: interactive (answer and type on /simulator)"]
