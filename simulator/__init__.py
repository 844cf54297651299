"""A local carrier playing Twilio's part, for `make run`, demos and end-to-end tests.

`PHONE_PROVIDER=simulator` (the default without Twilio credentials) makes
`simulator.provider.SimulatorProvider` the app's phone provider. The pieces:
`people` (how each simulated number behaves), `store` (all state, in Redis, shared by
every process), `carrier` (the network: the life of each call and SMS, signed
webhooks, opt-outs, latency and rate limits), `twiml` (the strict TwiML interpreter),
`transport` (reaching the app in process or over HTTP), `calls` (a call's transcript),
`cli` (`flask --app wsgi simulator run`, the carrier process of `make run`) and `views`
(the dev phone page at /simulator).
"""
