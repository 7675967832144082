"""The web app's language choice and its catalogs."""

from __future__ import annotations

import gettext
from io import BytesIO

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.web.i18n import LOCALE_DIR, Translator, from_accept_language, negotiate


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        (None, None, None, "nl"),
        ("en", "nl", "nl-NL", "en"),
        ("xx", "en", "nl", "en"),
        (None, None, "de-DE,en-GB;q=0.8,nl;q=0.5", "en"),
        (None, None, "en;q=0.2, nl-BE;q=0.9", "nl"),
        (None, None, "fr, de;q=0.5", "nl"),
        (None, None, "en;q=0, nl;q=abc", "nl"),
        ("EN-us", None, None, "en"),
    ],
)
def test_language_is_query_then_cookie_then_accept_language(
    query: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert negotiate(query, cookie, accept) == expected


def test_accept_language_without_a_known_language_names_none() -> None:
    assert from_accept_language("fr-FR, de") is None
    assert from_accept_language("") is None


def test_dutch_catalog_translates_every_message_and_the_mo_files_are_current() -> None:
    for locale in ("nl", "en"):
        po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=locale)
        if locale == "nl":
            untranslated = [
                m.id
                for m in catalog
                if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
            ]
            assert untranslated == []
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        fresh = gettext.GNUTranslations(compiled)
        with (po_path.parent / "messages.mo").open("rb") as f:
            committed = gettext.GNUTranslations(f)
        for message in catalog:
            if message.id:
                assert committed.gettext(str(message.id)) == fresh.gettext(str(message.id)), (
                    f"{locale}: run 'make i18n-compile'"
                )


def test_translator_formats_named_values() -> None:
    assert Translator("nl")("Log in") == "Inloggen"
    assert Translator("en")("Log in") == "Log in"
    assert "3" in Translator("nl")(
        "Too many failed attempts. For your safety, logging in is blocked for "
        "%(minutes)s more minute(s).",
        minutes=3,
    )


def test_every_message_of_the_web_app_is_in_the_dutch_catalog() -> None:
    """A new ``_()`` string without a Dutch translation fails here: run ``make i18n``."""
    from babel.messages.extract import extract_from_dir

    root = LOCALE_DIR.parents[2]
    method_map = [("app/**.py", "python"), ("app/web/templates/**.html", "jinja2")]
    keywords = {"_": None, "tr": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found = {
        (m[2] if isinstance(m[2], str) else m[2][0])
        for m in extract_from_dir(str(root), method_map, keywords=keywords)
    }
    with (LOCALE_DIR / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="nl")
    translated = {
        m.id[0] if isinstance(m.id, tuple) else str(m.id)
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    assert sorted(found - translated) == []
