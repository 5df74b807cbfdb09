"""Masking of residents' personal data for views without the personal-data grant (and for the
door look-up, which never unmasks): ``mask_name("张小明") == "张*明"``,
``mask_phone("13812345678") == "138****5678"``, ``mask_id_number(...)`` keeps the first six
(the region) and the last four characters."""

from __future__ import annotations


def mask_name(s: str) -> str:
    """The first and last character, the rest starred: 张小明 -> 张*明, 李四 -> 李*."""
    s = (s or "").strip()
    if len(s) <= 1:
        return s
    if len(s) == 2:
        return s[0] + "*"
    return s[0] + "*" * (len(s) - 2) + s[-1]


def mask_phone(s: str) -> str:
    """The first three and the last four digits: 13812345678 -> 138****5678."""
    s = (s or "").strip()
    if len(s) <= 4:
        return "*" * len(s)
    if len(s) < 8:
        return "*" * (len(s) - 4) + s[-4:]
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_id_number(s: str) -> str:
    """The region code (first six) and the last four characters: 120104********123X."""
    s = (s or "").strip()
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]
