"""Settings as validated models, read from the environment once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, Json, ValidationError

from audience.domain.money import Currencies


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed: fail loudly at cold start."""


class Settings(BaseModel):
    """Base of each function's settings; fields are aliased to their environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_min_length=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"{cls.__name__}: {problems}") from None


class CurrencySettings(Settings):
    """The base currency profiles are kept in and the rates to it (JSON: base units per unit)."""

    base_currency: str = Field(alias="BASE_CURRENCY", pattern=r"^[A-Z]{3}$")
    currency_rates: Json[dict[str, Decimal]] = Field(alias="CURRENCY_RATES")

    @property
    def currencies(self) -> Currencies:
        return Currencies(self.base_currency, dict(self.currency_rates))
