"""Helpers of the IVR tests: parsed TwiML, the words of a document, posting to action URLs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from tests.twilio_payloads import signed_post


def parse(response) -> ElementTree.Element:
    """Return the root element of a view's TwiML answer (checked: 200, text/xml)."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    return ElementTree.fromstring(response.get_data())


def verbs(element: ElementTree.Element) -> list[str]:
    """Return the tags of the element's children."""
    return [child.tag for child in element]


def words(element: ElementTree.Element) -> list[str]:
    """Return every text said (<Say>) or played (<Play> URL) in document order."""
    return [e.text for e in element.iter() if e.tag in ("Say", "Play")]


def said(element: ElementTree.Element) -> list[str]:
    """Return every text said (<Say>) anywhere under `element`, in order."""
    return [e.text for e in element.iter("Say")]


def query(url: str) -> dict[str, str]:
    """Return the query of `url` as a plain dict."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    """Return the path and query of an absolute URL (what the test client posts to)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def post(client, url_or_path: str, form: dict[str, str]):
    """POST a signed voice webhook to an absolute action URL or a path."""
    return signed_post(client, path_of(url_or_path), form)


def gather_of(root: ElementTree.Element) -> ElementTree.Element:
    """Return the document's one <Gather>, checking it is followed by its fallback redirect."""
    assert verbs(root) == ["Gather", "Redirect"], verbs(root)
    gather, redirect = root
    assert redirect.text == gather.get("action")
    return gather
