"""A local carrier playing Twilio's part, for `make run`, demos and end-to-end tests.

Filled in by the simulator issue; until then `PHONE_PROVIDER=simulator` only selects it.
"""
