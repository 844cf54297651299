"""SMS to and from the PLP number: the webhook, the pipeline, one handler per command.

Read first: `inbound.py` (`handle_inbound`, the one entry point of a text received).
"""
