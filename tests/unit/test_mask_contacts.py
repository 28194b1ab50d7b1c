"""Masking contact details in free text (what the audit log records of customer reports)."""

from __future__ import annotations

import pytest

from warroom.models.paging import mask_contacts_in


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+1 415 555 0123", "***0123"),
        ("call +44 (20) 7946-0000 today", "call ***0000 today"),
        ('{"contact":"pat.smith@mail.example.co.uk"}', '{"contact":"p***@mail.example.co.uk"}'),
        ("pat@example.com or +14155550123", "p***@example.com or ***0123"),
        ("error 502 on port 8443", "error 502 on port 8443"),  # short numbers are not contacts
        ("no contact given", "no contact given"),
    ],
)
def test_numbers_and_addresses_are_masked(text: str, masked: str) -> None:
    assert mask_contacts_in(text) == masked
