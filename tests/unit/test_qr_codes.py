"""The quick mask choice gives exactly the QR code segno makes on its own."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
import segno

from include.invoices.epc_qr import epc_payload
from include.invoices.qr_codes import best_mask, make_qr

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 \n/+-:.\xc3\xa9\xc5\x93"


def _payloads() -> list[bytes]:
    rng = random.Random(20261204)
    found = [epc_payload(name, "BE68539007547034", Decimal(amount), bic=bic, reference=reference).encode()
             for name, amount, bic, reference in (
                 ("Bibliotheek Leuven", "12.50", "GKCCBEBB", "090933755493"),
                 ("Académie & Bibliothèque Crèvecœur", "999999999.99", None, "RF18539007547034"),
                 ("K", "0.01", None, None))]
    # every size from tiny to past version 7 (where version information appears)
    found += [bytes(rng.choice(ALPHABET) for _ in range(size)) for size in range(1, 331, 7)]
    return found


@pytest.mark.parametrize("content", _payloads(), ids=lambda c: f"{len(c)}B")
def test_the_same_symbol_as_segno(content: bytes) -> None:
    expected = segno.make(content, error="m", mode="byte", micro=False, boost_error=False)
    made = make_qr(content)
    assert best_mask(content) == expected.mask
    assert (made.version, made.error, made.mask, made.matrix) == (
        expected.version, expected.error, expected.mask, expected.matrix)


def test_every_mask_is_chosen_somewhere() -> None:
    """The comparison above means something only if the payloads lead segno to different masks."""
    masks = {segno.make(c, error="m", mode="byte", micro=False, boost_error=False).mask for c in _payloads()}
    assert len(masks) >= 6
