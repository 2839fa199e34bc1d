"""GitHub Actions integration: step outputs and the job summary, when running in a workflow.

Only names, ids and URLs are written; the deployer never holds a secret value to write.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployer.inventory import Resource
from deployer.steps.base import Change


def write_outputs(values: Mapping[str, str]) -> None:
    """Append `name=value` pairs to $GITHUB_OUTPUT (multi-line safe), if it is set."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        for name, value in values.items():
            if "\n" in value:
                marker = f"EOF_{uuid.uuid4().hex}"
                out.write(f"{name}<<{marker}\n{value}\n{marker}\n")
            else:
                out.write(f"{name}={value}\n")


def write_summary(
    title: str,
    outcome: str,
    calls: tuple[int, int],
    *,
    changes: list[Change] | None = None,
    timings: Mapping[str, float] | None = None,
    resources: tuple[str, list[Resource]] | None = None,
    rollout: Mapping[str, Any] | None = None,
    cost: str | None = None,
) -> None:
    """Append a Markdown report of what happened to $GITHUB_STEP_SUMMARY, if it is set:
    the outcome, what the changes do to the monthly cost, then the changes (None: the command
    does not plan), the step timings and a titled resource table (what `down` deleted), each
    only when given."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    lines = [f"## {title}", "", f"**Result:** {outcome}", ""]
    if cost:
        lines += [f"**Cost:** {cost}", ""]
    if changes:
        lines += [
            "| component | action | type | name | detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.component} | {c.action} | {c.type} | {c.name} | {c.detail} |" for c in changes
        ]
    elif changes is not None:
        lines.append("No changes: the environment matches deploy.toml.")
    if resources:
        heading, listed = resources
        lines += ["", f"**{heading}** ({len(listed)})", ""]
        lines += ["| component | type | id |", "| --- | --- | --- |"]
        lines += [f"| {r.component} | {r.type} | {r.id} |" for r in listed]
    if rollout:
        lines += _rollout_lines(rollout)
    if timings:
        lines += ["", "| step | seconds |", "| --- | ---: |"]
        lines += [f"| {step} | {seconds:.1f} |" for step, seconds in timings.items()]
    lines += ["", f"AWS API calls: {calls[0]} ({calls[1]} mutating)", ""]
    with Path(path).open("a", encoding="utf-8") as out:
        out.write("\n".join(lines))


def _rollout_lines(rollout: Mapping[str, Any]) -> list[str]:
    """The rollout's timeline and, when its tasks failed, why (a verdict's `as_json`)."""
    lines = [
        "",
        "**Rollout timeline**",
        "",
        "| phase | seconds | ended (UTC) |",
        "| --- | ---: | --- |",
    ]
    lines += [
        f"| {p['phase']} | {p['seconds']:.1f} | {p['ended'][11:19]} |" for p in rollout["timeline"]
    ]
    for failure in rollout.get("failures", []):
        lines += ["", f"**Task {failure['task']} failed:** {failure['explanation']}", ""]
        lines += [f"ECS: {failure['stopped_reason']}", "", f"Hint: {failure['hint']}"]
        if failure["log_tail"]:
            lines += ["", "```", *failure["log_tail"], "```"]
    return lines


def flat_outputs(outputs: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """The step outputs worth publishing, as flat strings (no secret ARNs' values: names only)."""
    published = {
        ("network", "vpc_id"): "vpc_id",
        ("registry", "repository_uri"): "repository_uri",
        ("database", "host"): "db_host",
        ("endpoint", "url"): "service_url",
        ("image", "digest"): "image_digest",
        ("service", "task_definition_arn"): "task_definition_arn",
    }
    return {
        name: str(outputs[step][key])
        for (step, key), name in published.items()
        if outputs.get(step, {}).get(key) is not None  # a tag-only image has no digest
    }
