"""Voice: call trees as data, TwiML builders, voice webhooks and status callbacks.

`views` holds the routes; `menus` the call trees' tables; `twiml` the pure builders;
`spoken` what is said about an alert; `release` the coordinator's release call (and its
job); `incoming` calls to the PLP number.
"""
