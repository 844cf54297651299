"""Contract tests' helpers: the Prism mock of Twilio's published REST API."""
