"""PINs: what is accepted, how they are generated, hashed and checked."""

from __future__ import annotations

import pytest

from alerts.people.pins import WeakPinError, check_pin, generate_pin, hash_pin, verify_pin


@pytest.mark.parametrize("pin", ["4829", "73515", "20088912", "1357"])
def test_acceptable_pins(pin):
    """Digit strings of 4 to 8 digits that are not trivial are accepted unchanged."""
    assert check_pin(pin) == pin


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("123", "4 to 8 digits"),
        ("123456789", "4 to 8 digits"),
        ("12a4", "digits only"),
        ("١٢٣٤", "digits only"),  # Arabic-Indic digits: isdigit() but not on a keypad
        ("0000", "repeated digit"),
        ("1234", "consecutive"),
        ("8901", "consecutive"),
        ("9876", "consecutive"),
    ],
)
def test_weak_pins_are_refused_with_the_reason(pin, reason):
    """Short, long, non-digit, repeated and sequential PINs are refused, saying why."""
    with pytest.raises(WeakPinError, match=reason):
        check_pin(pin)


def test_generated_pins_are_acceptable_and_vary():
    """Generated PINs have 6 digits, pass the checks and are not all the same."""
    pins = {generate_pin() for _ in range(20)}
    assert len(pins) > 15
    assert all(len(p) == 6 and check_pin(p) == p for p in pins)


def test_hash_and_verify():
    """A hash verifies its PIN only; a missing or corrupt hash verifies nothing."""
    stored = hash_pin("4829")
    assert stored.startswith("$argon2")
    assert verify_pin(stored, "4829")
    assert not verify_pin(stored, "4828")
    assert not verify_pin(None, "4829")
    assert not verify_pin("not-a-hash", "4829")
    assert not verify_pin(stored, "")
