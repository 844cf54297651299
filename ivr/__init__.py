"""Voice: call trees as data, TwiML builders, voice webhooks and status callbacks.

Filled in by the IVR issue; the package exists so the layout matches ARCHITECTURE.md.
"""
