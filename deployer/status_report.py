"""What `status --json` answers: a versioned document with typed fields, built from what
`pipeline.status` observed. docs/status-schema.json describes it; scripts read fields, never
the text a human reads.

Schema 2 (schema 1 had one free-text `state` per resource and no service block).
"""

from __future__ import annotations

from typing import Any

from deployer.inventory import Resource
from deployer.resource_state import health
from deployer.steps.base import Run
from deployer.steps.service import ServiceStep, primary_deployment
from deployer.steps.task_definition import app_container

SCHEMA_VERSION = 2


def document(run: Run, url: str | None, resources: list[Resource]) -> dict[str, Any]:
    service = service_summary(run)
    return {
        "schema": SCHEMA_VERSION,
        "app": run.config.app,
        "env": run.config.env,
        "region": run.aws.region,
        "url": url,
        "health": service["health"],
        "service": service,
        "resources": [r.as_json() for r in resources],
    }


def service_summary(run: Run) -> dict[str, Any]:
    """Counts, revision and image of the ECS service `status` observed; health from its
    counts."""
    observed = run.observed.get(ServiceStep.name) or {}
    service = observed.get("service")
    task = observed.get("task_definition") or {}
    if not service:
        return {
            "health": "absent",
            "desired": 0,
            "running": 0,
            "pending": 0,
            "rollout": None,
            "revision": None,
            "image": None,
            "image_digest": None,
        }
    primary = primary_deployment(service)
    image = app_container(task).get("image")
    desired, running = service.get("desiredCount", 0), service.get("runningCount", 0)
    return {
        "health": health(desired, running),
        "desired": desired,
        "running": running,
        "pending": service.get("pendingCount", 0),
        "rollout": primary.get("rolloutState"),
        "revision": task.get("revision"),
        "image": image,
        "image_digest": image.partition("@")[2] or None if image else None,
    }
