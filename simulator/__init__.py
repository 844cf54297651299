"""A local carrier playing Twilio's part, for `make run`, demos and end-to-end tests.

`PHONE_PROVIDER=simulator` (the default without Twilio credentials) makes
`simulator.adapters.provider.SimulatorProvider` the app's phone provider. The core
imports nothing of the app; the app lends it its Redis, webhook token and rules
(`config.Wiring`, lent by `adapters.wiring`). The core's pieces: `behaviour` (how each
simulated number behaves), `people` (who is on the line), `store` (all state, in Redis,
shared by every process), `carrier` (the front door: thread or queue mode), `network`
(the life of each SMS, signed webhooks, opt-outs, rate limits), `voice` (the life of an
outbound call), `messaging` (Twilio's opt-out words and TwiML replies), `twiml` (the
strict TwiML interpreter) and `documents` (its checks), `transport` (reaching the app in
process or over HTTP), `calls` (a call's transcript), `clock` (time and latency) and
`config`. The adapters, the only simulator code that imports the app: `adapters.cli`
(`flask --app wsgi simulator run`, the carrier process of `make run`), `adapters.views`
(the dev phone page at /simulator), `adapters.provider` and `adapters.demo`.
"""
