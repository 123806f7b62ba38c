"""The identify traits that are checked at ingest; any other trait is kept as sent."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Traits(BaseModel):
    """The identify traits we check; any other trait is kept as sent."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    email: EmailStr | None = None
    phone: Annotated[str, Field(min_length=3, max_length=40)] | None = None
    age: Annotated[int, Field(ge=0, le=150)] | None = None
    birthday: date | None = None
    gender: Annotated[str, Field(max_length=40)] | None = None
    first_name: Annotated[str, Field(max_length=200)] | None = Field(default=None, alias="firstName")
    last_name: Annotated[str, Field(max_length=200)] | None = Field(default=None, alias="lastName")
    consent: dict[str, bool] | None = None
