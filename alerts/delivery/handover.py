"""The handover record: where a batch's claimed steps stand until their SIDs are saved.

In Redis, delivery id -> "claimed" (not handed to the carrier yet), "sending" (being
handed over) or the carrier's SID. After a killed worker the reconciler sends the
"claimed" ones again, saves the SIDs, and treats only the "sending" ones as in doubt.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, update

from alerts.models import Delivery
from core.extensions import db, redis_connection

HANDOVER_KEY = "plp:cascade:handover"
CLAIMED, SENDING = "claimed", "sending"


def mark_claimed(delivery_ids: Iterable[int]) -> None:
    """Record that these steps are claimed and not handed to the carrier yet."""
    redis_connection().hset(HANDOVER_KEY, mapping=dict.fromkeys(delivery_ids, CLAIMED))


def mark_sending(delivery_id: int) -> None:
    """Record that a step is being handed to the carrier (in doubt if the worker dies now)."""
    redis_connection().hset(HANDOVER_KEY, delivery_id, SENDING)


def mark_sent(delivery_id: int, sid: str) -> None:
    """Record the carrier's SID of a step whose SID is not in the database yet."""
    redis_connection().hset(HANDOVER_KEY, delivery_id, sid)


def forget(delivery_ids: Iterable[int]) -> None:
    """Drop the record of steps that are settled in the database."""
    ids = list(delivery_ids)
    if ids:
        redis_connection().hdel(HANDOVER_KEY, *ids)


def states(delivery_ids: list[int]) -> list[str | None]:
    """Return what the record says of each step, in order (None: nothing recorded)."""
    raw = redis_connection().hmget(HANDOVER_KEY, delivery_ids)
    return [value.decode() if value is not None else None for value in raw]


def write_sids(sids: list[dict]) -> None:
    """Give each delivery ("b_id") its SID ("b_sid", "b_at") unless it has one already."""
    table = Delivery.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.provider_sid.is_(None))
        .values(provider_sid=bindparam("b_sid"), sent_at=bindparam("b_at")),
        sids,
    )
