"""closing.same_document: when a later file stands for an earlier held or failed one (pure)."""

from __future__ import annotations

import json

import pytest

from invoice_mailer.archive.closing import same_document


def row(name="Fattura_8_2026_C042.pdf", number="8", year="2026", doc="Fattura", kind="pdf",
        customer="C042", sha="aa"):  # fmt: skip
    info = json.dumps({"year": year, "doc": doc}) if number else None
    return {"name": name, "number": number, "kind": kind, "customer_code": customer,
            "sha256": sha, "info": info}  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        (row(), row(sha="bb"), True),  # corrected content, same invoice and customer
        (row(name="x.pdf", number=None), row(name="x.pdf", number=None), True),  # same name
        (row(customer="C999", name="F_C999.pdf"), row(), True),  # wrong code, the same bytes
        (row(customer="C999", name="F_C999.pdf"), row(sha="bb"), False),  # another customer's
        (row(), row(name="Fattura_9_2026_C042.pdf", number="9"), False),  # another invoice
        (row(), row(name="Fattura_8_2025_C042.pdf", year="2025"), False),  # another year
        (row(), row(name="Ordine_8_2026_C042.pdf", doc="Ordine"), False),  # an order, not it
        (row(), row(name="IT0_8.xml", kind="xml"), False),  # the other half of the pair
        (row(name="bad.pdf", number=None), row(name="good.pdf"), False),  # refused at intake
    ],
)
def test_a_later_file_stands_for_the_earlier_one_only_when_it_is_that_document(old, new, same):
    assert same_document(old, new) is same
