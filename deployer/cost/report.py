"""The two answers about cost: what the environment deploy.toml describes costs a month
(`nnote-deploy cost`), and what `plan`'s changes do to what the deployed one costs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from deployer.cost import footprint, model, prices
from deployer.cost.footprint import Footprint
from deployer.cost.model import Assumptions, Estimate
from deployer.cost.prices import PriceBook
from deployer.steps.base import Run

SCHEMA = 1


@dataclass(frozen=True)
class CostReport:
    app: str
    env: str
    estimate: Estimate
    prices: PriceBook
    assumptions: Assumptions

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "app": self.app,
            "env": self.env,
            "region": self.prices.region,
            "currency": "USD",
            "monthly": round(self.estimate.total, 2),
            "lines": [line.as_json() for line in self.estimate.lines],
            "prices": self.prices.as_json(),
            "assumptions": self.assumptions.notes(),
        }


@dataclass(frozen=True)
class CostChange:
    """What `up` would make the environment cost a month, beside what it costs now."""

    planned: float
    deployed: float
    prices: PriceBook

    def sentence(self) -> str:
        return f"about ${self.planned:,.2f}/month (was ${self.deployed:,.2f})"


def of_settings(run: Run, assumptions: Assumptions | None = None) -> CostReport:
    """The monthly cost of the environment deploy.toml describes, line by line."""
    assumptions = assumptions or Assumptions()
    wanted = footprint.wanted(run.config)
    book = _prices(run, [wanted], assumptions)
    return CostReport(
        run.config.app,
        run.config.env,
        _marked(model.estimate(wanted, book.usd, assumptions), book.estimates),
        book,
        assumptions,
    )


def _marked(estimate: Estimate, estimates: Mapping[str, str]) -> Estimate:
    """The lines, each priced by an estimate of the table saying so in its note."""
    return Estimate(
        tuple(
            replace(line, note="; ".join(filter(None, (line.note, f"estimate: {why}"))))
            if (why := estimates.get(line.price_key or ""))
            else line
            for line in estimate.lines
        )
    )


def of_plan(run: Run, assumptions: Assumptions | None = None) -> CostChange | None:
    """From what `plan` observed (run.observed): the cost `up` would leave beside today's;
    None when the changes leave the bill as it is (then no price is asked for)."""
    assumptions = assumptions or Assumptions()
    deployed = footprint.deployed(run.config, run.observed)
    planned = footprint.wanted(run.config).keeping(deployed)
    if planned == deployed:
        return None
    book = _prices(run, [planned, deployed], assumptions)
    after = model.estimate(planned, book.usd, assumptions).total
    before = model.estimate(deployed, book.usd, assumptions).total
    if round(after, 2) == round(before, 2):
        return None
    return CostChange(after, before, book)


def _prices(run: Run, footprints: list[Footprint], assumptions: Assumptions) -> PriceBook:
    keys = model.price_keys(footprints, assumptions)
    return prices.resolve(run.aws, run.config.region, keys)
