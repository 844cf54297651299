"""Voice: call trees as data, TwiML builders, voice webhooks and status callbacks.

`views` holds the routes only; each call tree has its module: `alert_call` (a member's
alert call), `release` (the coordinator's release call), `inbound` and `recording` (calls
to the PLP number, with `caller` saying who calls). `menus` holds the trees' tables,
`spoken` what is said about an alert (the alert call's words, written once), `voice`
resolves each text to its cached audio or leaves it for <Say> before `twiml`, the pure
builders, makes the document; `prerender` renders an alert call's words at release.
"""
