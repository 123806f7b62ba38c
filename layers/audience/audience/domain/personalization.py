"""What to show a customer: a configurable mapping from segment to content or offer.

``config/personalization.json`` in the data bucket (``defaults/personalization.json`` until
one is uploaded): rules in priority order, each naming a segment id (``tier:high-value``,
``rfm:champions``, ``learned:<slug>``) and the content to show; the first rule whose segment
the customer is in wins, otherwise the default. A customer without personalization consent
always gets the default.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from audience.domain.documents import Document
from audience.domain.profile import Profile

SEGMENT_ID = r"^(learned|rfm|tier):[a-z0-9-]+$"


class Content(BaseModel):
    """What the channel shows; fields beyond these are passed through as they are."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(min_length=1, max_length=128)
    kind: str = Field(default="content", max_length=64, description="content, offer, ...")
    title: str = Field(default="", max_length=512)


class ContentRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str = Field(pattern=SEGMENT_ID)
    content: Content


class Arm(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    variant: str


class Choice(BaseModel):
    """The answer of ``GET /v1/customers/{customerId}/personalization``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    personalized: bool
    content: Content
    segment_id: str | None = Field(alias="segmentId", description="the segment that chose the content")
    experiment: Arm | None = Field(default=None, description="the experiment and variant that chose the content")
    reason: str = Field(description="why the customer is in that segment, or why nothing personal is shown")


class ContentMapping(Document):
    document: ClassVar[str] = "personalization"

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[ContentRule] = Field(default_factory=list, max_length=500)
    default: Content

    def choose(self, profile: Profile) -> Choice:
        if not profile.personalization_allowed:
            return self._default(profile, "no personalization consent")
        held = profile.segment_ids()
        for rule in self.rules:
            if rule.segment in held:
                reason = profile.entered_because(rule.segment)
                return Choice(customer_id=profile.customer_id, personalized=True, content=rule.content,
                              segment_id=rule.segment, reason=reason)  # fmt: skip
        return self._default(profile, "no rule matches the customer's segments" if held else "in no segment yet")

    def _default(self, profile: Profile, reason: str) -> Choice:
        return Choice(customer_id=profile.customer_id, personalized=False, content=self.default, segment_id=None,
                      reason=reason)  # fmt: skip
