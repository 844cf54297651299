"""The domain: partnerships, people, rosters, alerts, deliveries and confirmations."""
