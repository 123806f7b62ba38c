"""Secrets from AWS Secrets Manager through Powertools Parameters (cached per container).

A secret in rotation has two versions in force: ``AWSCURRENT`` and, until the rotation ends,
``AWSPREVIOUS``; both are returned, so clients signing with either keep working.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import GetParameterError, SecretsProvider

from audience.domain.errors import TransientError


class RotatingSecret:
    def __init__(self, name: str, max_age_seconds: int = 300) -> None:
        self.name, self.max_age = name, max_age_seconds
        # one provider per stage: Powertools caches by name, not by version stage
        self._current, self._previous = SecretsProvider(), SecretsProvider()

    def values(self) -> list[str]:
        """The secret's values in force, the current one first."""
        try:
            current = str(self._current.get(self.name, max_age=self.max_age))
        except GetParameterError as exc:
            raise TransientError(f"the secret {self.name} could not be read") from exc
        try:
            previous = str(self._previous.get(self.name, max_age=self.max_age, VersionStage="AWSPREVIOUS"))
        except GetParameterError:  # no rotation under way
            return [current]
        return [current] if previous == current else [current, previous]
