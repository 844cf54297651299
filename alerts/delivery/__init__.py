"""Running the cascade through the carrier: step jobs, pacing, status callbacks, reconciler.

Read first: `steps.py` (one planned delivery handed to the carrier, at most once).
"""
