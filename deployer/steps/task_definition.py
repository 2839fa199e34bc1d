"""The task definition an environment wants, and how it compares with a registered one.

Secrets only ever as `valueFrom` references; the container's health check and stop timeout
follow deploy.toml's [service.rollout]. Only what we set is compared (ECS echoes defaults).
"""

from __future__ import annotations

import json
from typing import Any

from deployer.steps.base import Outputs, Run

CONTAINER = "app"


def task_definition(run: Run, image: str, database: Outputs, runtime: Outputs) -> dict[str, Any]:
    """The task definition for this environment. Secrets only ever as `valueFrom` references."""
    service = run.config.settings.service
    port = service.container_port
    environment = {
        "DB_HOST": database["host"],
        "DB_PORT": str(database["port"]),
        "DB_NAME": database["name"],
        "PORT": str(port),
        # Behind CloudFront, the client's address is the second-to-last X-Forwarded-For hop.
        "PROXY_FIX_X_FOR": "2" if service.front == "cloudfront" else "1",
        "NNOTE_ENV": "production",
        # Every front door serves HTTPS: cookies are Secure, and the app sends HSTS.
        "SESSION_COOKIE_SECURE": "1",
        "FORWARDED_ALLOW_IPS": "*",
        # Two sync workers per vCPU the task is given, at least two: Fargate shows gunicorn
        # the host's cores (2 for a quarter vCPU, so 4 workers), and fewer workers start
        # sooner (bench/image_start.py: 0.8 s to the first 200 with 2, 1.5 s with 4).
        "WEB_CONCURRENCY": str(max(2, 2 * service.cpu // 1024)),
        # The schema is migrated once per release by a one-off task before the service
        # changes (deployer.rollout.migrations), never by the serving tasks as they start.
        "NNOTE_MIGRATE": "0",
    }
    secrets = {
        "DB_USERNAME": f"{database['secret_arn']}:username::",
        "DB_PASSWORD": f"{database['secret_arn']}:password::",
        "SECRET_KEY": runtime["app_secret_arn"],
    }
    rollout = service.rollout
    health = (
        'python3 -c "import urllib.request; '
        f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=2)\""
    )
    return {
        "family": run.config.prefix,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(service.cpu),
        "memory": str(service.memory_mb),
        "executionRoleArn": runtime["execution_role_arn"],
        "taskRoleArn": runtime["task_role_arn"],
        "containerDefinitions": [
            {
                "name": CONTAINER,
                "image": image,
                "essential": True,
                "memory": service.memory_mb,
                "portMappings": [{"containerPort": port, "protocol": "tcp"}],
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": runtime["log_group"],
                        "awslogs-region": run.aws.region,
                        "awslogs-stream-prefix": CONTAINER,
                    },
                },
                # The container's own check runs as often as the load balancer's, so ECS
                # calls a task healthy no later than the target group does.
                "healthCheck": {
                    "command": ["CMD-SHELL", health],
                    "interval": rollout.health_check_interval_seconds,
                    "timeout": min(rollout.health_check_timeout_seconds, 60),
                    "retries": rollout.unhealthy_threshold,
                    "startPeriod": min(rollout.grace_period_seconds, 300),
                },
                "stopTimeout": rollout.stop_timeout_seconds,
            }
        ],
    }


def task_network(network: Outputs) -> dict[str, Any]:
    """Where the app's tasks run, the service's and one-off tasks alike: the public subnets
    (a public IP each, no NAT gateway) and the app's security group."""
    return {
        "awsvpcConfiguration": {
            "subnets": network["subnet_ids"],
            "securityGroups": [network["security_groups"]["app"]],
            "assignPublicIp": "ENABLED",
        }
    }


COMPARED = ("cpu", "memory", "executionRoleArn", "taskRoleArn")
COMPARED_CONTAINER = (
    "image",
    "portMappings",
    "environment",
    "secrets",
    "logConfiguration",
    "memory",
    "healthCheck",
    "stopTimeout",
)


def differences(wanted: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
    if current is None:
        return ["task definition"]
    changed = [key for key in COMPARED if str(wanted.get(key)) != str(current.get(key))]
    have = app_container(current)
    want = wanted["containerDefinitions"][0]
    changed += [
        key for key in COMPARED_CONTAINER if _normal(want.get(key)) != _normal(have.get(key))
    ]
    return changed


def _normal(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(
            sorted((_strip_defaults(v) for v in value), key=json.dumps), sort_keys=True
        )
    return json.dumps(_strip_defaults(value), sort_keys=True)


def _strip_defaults(value: Any) -> Any:
    if isinstance(value, dict):  # ECS echoes hostPort and protocol back; compare what we set
        return {k: v for k, v in value.items() if k not in ("hostPort",)}
    return value


def app_container(task: dict[str, Any]) -> dict[str, Any]:
    """The app's container definition in a task definition ({} if it has none)."""
    return next((c for c in task.get("containerDefinitions", []) if c["name"] == CONTAINER), {})
