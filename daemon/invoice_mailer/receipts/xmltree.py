"""The XML of daticert.xml and SdI notices, parsed with defusedxml only and navigated by local
name (namespace prefixes vary from one writer to the next, and the children are unqualified)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from invoice_mailer.receipts.mail import Unreadable


def parse(data: bytes, label: str, allow_doctype: bool = False) -> Element:
    """The root element; raises Unreadable for XML that is broken or declares entities."""
    try:
        return fromstring(
            data, forbid_dtd=not allow_doctype, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        what = "entities" if allow_doctype else "a DTD or entities"
        raise Unreadable(f"{label} declares {what}, refused for safety") from None
    except ParseError as exc:
        raise Unreadable(f"{label} is not well-formed XML ({exc})") from None


def local_name(element: Element) -> str:
    return str(element.tag).rpartition("}")[2]


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child) == name]


def child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    found = children(element, name)
    return found[0] if found else None


def text(element: Element | None) -> str | None:
    """The element's text with runs of white space made one space; None when empty."""
    if element is None:
        return None
    joined = " ".join("".join(element.itertext()).split())
    return joined or None
