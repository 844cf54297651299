"""The prompt catalogue: every key in every language, with the same placeholders."""

from __future__ import annotations

import string

import pytest

from prompts import CATALOG, LANGUAGES, PromptError, placeholders, text


def test_every_language_has_every_key():
    """A key present in one language is present in all four."""
    keys = {lang: set(CATALOG[lang]) for lang in LANGUAGES}
    everything = set().union(*keys.values())
    missing = {lang: sorted(everything - have) for lang, have in keys.items() if everything - have}
    assert missing == {}


@pytest.mark.parametrize("key", sorted(CATALOG["fr"]))
def test_placeholders_agree_across_languages(key):
    """Every language's text for a key takes exactly the French text's placeholders."""
    expected = placeholders(CATALOG["fr"][key])
    differing = {
        lang: sorted(placeholders(CATALOG[lang][key]))
        for lang in LANGUAGES
        if placeholders(CATALOG[lang][key]) != expected
    }
    assert differing == {}


def test_text_fills_placeholders_and_falls_back_to_french():
    """text() fills values; an unknown language gets French."""
    assert text("name.plp", "nl", plp="Parc") == "BIN Parc"
    assert text("name.plp", "xx", plp="Parc") == "PLP Parc"
    assert text("name.plp", None, plp="Parc") == "PLP Parc"


def test_text_refuses_unknown_keys_and_missing_values():
    """An unknown key or a missing placeholder value is a clear PromptError."""
    with pytest.raises(PromptError, match="no prompt 'nope'"):
        text("nope", "fr")
    with pytest.raises(PromptError, match="needs a value for 'plp'"):
        text("name.plp", "fr")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_is_a_named_format_string(language):
    """No stray brace, positional `{}`, format spec or conversion: text() can always fill it."""
    broken = {}
    for key, template in CATALOG[language].items():
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError as err:  # a lone "{" or "}"
            broken[key] = str(err)
            continue
        for _literal, name, spec, conversion in fields:
            if name is not None and (not name.isidentifier() or spec or conversion):
                broken[key] = f"{{{name}}} spec={spec!r} conversion={conversion!r}"
        values = dict.fromkeys(placeholders(template), "x")
        if key not in broken and "{" in template.format_map(values):
            broken[key] = "a placeholder survived filling"
    assert broken == {}
