"""E-mail: composing an alert's message, sending it, the delivery job, the confirmation link.

Read first: `delivery.py` (`deliver_email`, one planned e-mail delivery).
"""
