"""People: the directory of zones, PLPs and officers, rosters, phones, PINs, the demo.

Read first: `directory.py` (zones, partnerships, officers and their PINs).
"""
