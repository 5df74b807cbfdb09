"""The product is zh-Hans by default: every string marked for translation — in Python (``_``,
``gettext``, ``gettext_lazy``, ``ngettext``, ``pgettext``) and in templates (``translate``,
``blocktranslate``, read the way ``makemessages`` reads them) — has an entry in the zh-Hans
catalogs Django loads. A page or a 4xx reason added without one shows English to a grid worker;
this test names the file and the string."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.utils.translation import trans_real
from django.utils.translation.template import templatize

from tests.support import BASE_DIR

PACKAGES = ("command", "field_api", "maps", "realtime", "fixtures")
CALLS = {"_", "gettext", "gettext_lazy", "_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}
TEMPLATE_CALL = re.compile(r"\b(n?gettext|pgettext|npgettext)\(((?:u?'(?:[^'\\]|\\.)*'\s*,?\s*)+)")


def _python_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _template_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((BASE_DIR / package).rglob("templates/**/*.html"))


def _python_messages(path: Path) -> Iterator[tuple[str, str | tuple[str, int]]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name not in CALLS or not node.args:
            continue
        strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if name.startswith("pgettext") and len(strings) >= 2:
            yield f"{path.name}:{node.lineno}", f"{strings[0]}\x04{strings[1]}"
        elif name.startswith("ngettext") and strings:
            yield f"{path.name}:{node.lineno}", (strings[0], 0)
        elif strings and isinstance(node.args[0], ast.Constant):
            yield f"{path.name}:{node.lineno}", strings[0]


def _template_messages(path: Path) -> Iterator[tuple[str, str | tuple[str, int]]]:
    for match in TEMPLATE_CALL.finditer(templatize(path.read_text(), origin=str(path))):
        strings = [ast.literal_eval(s) for s in re.findall(r"u?'(?:[^'\\]|\\.)*'", match.group(2))]
        kind = match.group(1)
        if kind == "pgettext":
            yield path.name, f"{strings[0]}\x04{strings[1]}"
        elif kind == "npgettext":
            yield path.name, (f"{strings[0]}\x04{strings[1]}", 0)
        elif kind == "ngettext":
            yield path.name, (strings[0], 0)
        else:
            yield path.name, strings[0]


def test_every_marked_string_has_a_zh_hans_translation():
    catalog = trans_real.translation("zh-hans")._catalog
    missing = []
    seen = 0
    for path in _python_files():
        for where, message in _python_messages(path):
            seen += 1
            if message and message not in catalog:
                missing.append(f"{where}: {message!r}")
    for path in _template_files():
        for where, message in _template_messages(path):
            seen += 1
            if message and message not in catalog:
                missing.append(f"{where}: {message!r}")
    assert seen > 500, f"the scan found only {seen} marked strings: it no longer reads the sources"
    assert not missing, "no zh-Hans translation for:\n" + "\n".join(missing)
