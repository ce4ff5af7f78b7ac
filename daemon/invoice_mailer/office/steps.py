"""What a document's story is made of: steps in the office's words, the document, its messages
and the receipts about it (story.py tells it; receiptstory.py adds the proof of delivery).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One thing that happened to the document, in the office's words."""

    kind: str  # taken, routed, not-for-customer, held, ambiguous, waiting, duplicate, message,
    #            receipt, not-delivered, sdi, refused, failed, superseded, replaced, dismissed,
    #            copy-skipped
    at: float | None
    text: str
    delivery_id: int | None = None
    document_id: int | None = None  # another document the step names (superseded by, copy of)
    receipt_id: int | None = None  # the stored receipt, bounce or SdI notice that says so


@dataclass(frozen=True)
class Story:
    document: dict[str, Any]
    steps: list[Step]
    messages: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "steps": [asdict(step) for step in self.steps],
            "messages": self.messages,
            "receipts": self.receipts,
        }
