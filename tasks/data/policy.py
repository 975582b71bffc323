"""The data-contract policy: how much bad data a day may hold before a run stops, and which dataset expectations
stop it outright. Validated once at the flow's edge (it is part of the flow's parameters) and passed down.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gnnrec.tasks.data.expectations import SUITES


DEFAULT_THRESHOLD = 9.0


class DataContractError(Exception):
    """A day's data broke the contract policy: the run stops before training, and published results stay as they
    were. A data error, never retried."""


class SourcePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rejection_budget: float = Field(
        0.05, ge=0, le=1, description="largest share of a day's rows read that may be quarantined"
    )
    critical: tuple[str, ...] = Field((), description="expectations whose failure stops the run")
    fail_on_unreadable_file: bool = Field(False, description="stop the run when a file of the day cannot be read")


class DefencePolicy(BaseModel):
    """What the defence against fake accounts does with what it flags (tasks/security/detector.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["off", "warn", "quarantine", "stop"] = Field(
        "quarantine",
        description="off: no screening; warn: score and report; quarantine: also move the flagged rows to quarantine; "
        "stop: also refuse the day when anything is flagged",
    )
    # Measured on clean data (bench/README.md, "Poisoning"): the highest genuine score is 2.4 on the demo world's
    # days, 6.8 on the MovieLens 100K replay and 1.9 on the Ciao replay; 9 is a chance of one in a billion.
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, description="an account is flagged at this score or above: -log10 of "
                             "the chance that as many new accounts took one item of theirs")
    min_group: int = Field(5, ge=2, description="only items taken by at least this many new accounts on the day count")
    min_kg_triples: int = Field(5, ge=1, description="an entity is flagged when at least this many of the day's triples "
                                "about it copy a popular item's links")


class ContractPolicy(BaseModel):
    """One :class:`SourcePolicy` per landing source, and the defence against fake accounts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Two ratings for one event leave no way to tell which is true; every other expectation only warns by default.
    interactions: SourcePolicy = SourcePolicy(critical=("ratings_agree_per_event",))
    social: SourcePolicy = SourcePolicy()
    kg: SourcePolicy = SourcePolicy()
    item_entities: SourcePolicy = SourcePolicy()
    defence: DefencePolicy = DefencePolicy()

    @model_validator(mode="after")
    def critical_expectations_exist(self) -> ContractPolicy:
        for source, suite in SUITES.items():
            known = {e.name for e in suite.expectations}
            unknown = [name for name in self.of(source).critical if name not in known]
            if unknown:
                raise ValueError(
                    f"{source}: unknown expectation(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
                )
        return self

    def of(self, source: str) -> SourcePolicy:
        return getattr(self, source)
