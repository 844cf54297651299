"""Phone PINs of officers, coordinators and steering members: chosen, hashed, checked.

A PIN is typed on a keypad or in an SMS, so it is digits only. It is stored as an
argon2 hash; the lockout (5 failures in 15 minutes) lives with the SMS and IVR paths.
"""

from __future__ import annotations

import secrets
from itertools import pairwise

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH, MAX_LENGTH = 4, 8
GENERATED_LENGTH = 6

_hasher = PasswordHasher()


class WeakPinError(ValueError):
    """A PIN that is not allowed; the message says why."""


def check_pin(pin: str) -> str:
    """Return the PIN if it is acceptable, else raise `WeakPinError` saying why."""
    if not pin.isascii() or not pin.isdigit():
        raise WeakPinError("a PIN is digits only (it is typed on a phone keypad)")
    if not MIN_LENGTH <= len(pin) <= MAX_LENGTH:
        raise WeakPinError(f"a PIN has {MIN_LENGTH} to {MAX_LENGTH} digits")
    if len(set(pin)) == 1:
        raise WeakPinError("a PIN of one repeated digit is too easy to guess")
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    if steps in ({1}, {9}):
        raise WeakPinError("a run of consecutive digits (1234, 9876) is too easy to guess")
    return pin


def generate_pin(length: int = GENERATED_LENGTH) -> str:
    """Return a random acceptable PIN."""
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(length))
        try:
            return check_pin(pin)
        except WeakPinError:
            continue


def hash_pin(pin: str) -> str:
    """Return the argon2 hash of an acceptable PIN."""
    return _hasher.hash(check_pin(pin))


def verify_pin(pin_hash: str | None, pin: str) -> bool:
    """Tell whether `pin` matches the stored hash (False when no PIN is set)."""
    if not pin_hash or not pin:
        return False
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False
