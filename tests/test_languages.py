"""Which language each reader gets, and that every language has all its words."""

import ast
import gettext
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation import to_locale

from botcore.telegram import texts

LOCALE = Path(settings.BASE_DIR) / "locale"
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


@pytest.mark.parametrize("code", ["zh-hans", "zh-CN", "zh_cn", "zh-SG", "zh-MY", "zh", "zh-Hans-TW", "ZH-HANS"])
def test_telegram_users_of_simplified_chinese_read_simplified(code):
    assert texts.quota_summary(code, 3, 5) == "今天还剩 3 / 5 张"


@pytest.mark.parametrize("code", ["zh-hant", "zh-TW", "zh_tw", "zh-HK", "zh-MO", "zh-hant-tw", "zh-Hant-CN"])
def test_telegram_users_of_traditional_chinese_read_traditional(code):
    assert texts.quota_summary(code, 3, 5) == "今天還剩 3 / 5 張"


@pytest.mark.parametrize("code", ["en", "de", "", None, "zhx"])
def test_telegram_users_of_any_other_language_read_english(code):
    assert texts.quota_summary(code, 3, 5) == "3 of 5 images left today"


def messages(po):
    """{(context, msgid): [msgstr, ...]} of a .po file; None for a fuzzy one, which msgfmt leaves out, so that
    readers get it in English."""
    found = {}
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        fields, field = {}, None
        for line in block.splitlines():
            if line.startswith('"'):
                fields[field] += ast.literal_eval(line)
            elif not line.startswith("#"):  # comments, and obsolete entries ("#~")
                field, _, value = line.partition(" ")
                fields[field] = ast.literal_eval(value)
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in block.splitlines())
        if fields.get("msgid"):
            strings = [value for name, value in fields.items() if name.startswith("msgstr")]
            found[fields.get("msgctxt"), fields["msgid"]] = None if fuzzy else strings
    return found


def test_every_language_but_the_source_one_has_a_catalogue():
    translated = {to_locale(code) for code, _ in settings.LANGUAGES if code != settings.LANGUAGE_CODE}
    assert {po.parts[-3] for po in CATALOGUES} == translated == {"zh_Hans", "zh_Hant"}


def test_each_catalogue_translates_every_message_the_others_do():
    catalogues = {po.parts[-3]: messages(po) for po in CATALOGUES}
    every_msgid = set().union(*catalogues.values())
    for language, found in catalogues.items():
        assert (language, every_msgid - set(found)) == (language, set())
        untranslated = [msgid for msgid, strings in found.items() if strings is None or not all(strings)]
        assert (language, untranslated) == (language, [])


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda po: po.parts[-3])
def test_the_compiled_catalogue_says_what_its_po_says(po):
    with open(po.with_suffix(".mo"), "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for (context, msgid), strings in messages(po).items():
        if strings is None or not all(strings):  # not compiled; the test above tells
            continue
        key = f"{context}\x04{msgid}" if context else msgid  # how a .mo keys a message with a context
        if len(strings) == 1:
            assert compiled.gettext(key) == strings[0], msgid
        else:  # a plural: each count gets the form the catalogue's Plural-Forms picks for it
            for n in range(3):
                assert compiled.ngettext(key, "plural", n) == strings[compiled.plural(n)], msgid
