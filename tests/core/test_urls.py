"""Public URLs: built from PUBLIC_BASE_URL, inside or outside a request."""

from __future__ import annotations

from core.app import create_app
from core.urls import public_url
from tests.support import app_config


def test_public_url_outside_a_request(tmp_path):
    """A job (no request) gets the public scheme, host and path prefix."""
    app = create_app(
        app_config(tmp_path, "sqlite://", None, PUBLIC_BASE_URL="https://plp.example.be/zone5344")
    )
    with app.app_context():
        assert public_url("health.healthz") == "https://plp.example.be/zone5344/healthz"
        assert public_url("health.healthz", probe="1") == (
            "https://plp.example.be/zone5344/healthz?probe=1"
        )


def test_public_url_ignores_the_request_host(tmp_path):
    """Behind a proxy the request's host is internal; the public one is used."""
    app = create_app(
        app_config(tmp_path, "sqlite://", None, PUBLIC_BASE_URL="https://plp.example.be")
    )
    with app.test_request_context("/", base_url="http://10.0.0.5:8000"):
        assert public_url("health.healthz") == "https://plp.example.be/healthz"
