"""registry: an ECR repository with scan on push and a lifecycle policy keeping the last N."""

from __future__ import annotations

import json
from typing import Any

from deployer.aws import absent, call
from deployer.errors import NotOwnedError
from deployer.inventory import Resource
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring

COMPONENT = "registry"
REPO_MISSING = ("RepositoryNotFoundException",)
POLICY_MISSING = ("LifecyclePolicyNotFoundException",)


def _ecr(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "ecr", operation, **params)


def lifecycle_policy(keep: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the newest {keep} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        ]
    }


class RegistryStep(Step):
    name = COMPONENT

    def observe(self, run: Run) -> Observed:
        name = run.config.prefix
        found = absent(
            run.aws, "ecr", "describe_repositories", REPO_MISSING, repositoryNames=[name]
        )
        repo = (found or {}).get("repositories", [None])[0]
        if repo is None:
            return {"repo": None}
        tags = _ecr(run, "list_tags_for_resource", resourceArn=repo["repositoryArn"])["tags"]
        if not run.owner.owns(tags):
            raise NotOwnedError(
                f"ECR repository {name} exists but is not managed by nnote-deploy",
                "rename the app or env in deploy.toml; nnote-deploy never touches it",
            )
        policy = absent(run.aws, "ecr", "get_lifecycle_policy", POLICY_MISSING, repositoryName=name)
        text = (policy or {}).get("lifecyclePolicyText")
        return {"repo": repo, "policy": json.loads(text) if text else None}

    def resources(self, observed: Observed) -> list[Resource]:
        repo = observed["repo"]
        return (
            [Resource(COMPONENT, "ecr:repository", repo["repositoryName"], "exists")]
            if repo
            else []
        )

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        name, settings = run.config.prefix, run.config.settings.registry
        if observed["repo"] is None:
            return [
                Change(
                    COMPONENT,
                    "create",
                    "ecr:repository",
                    name,
                    f"scan on push, keep {settings.keep_images} images",
                )
            ]
        changes = []
        scanning = observed["repo"].get("imageScanningConfiguration", {}).get("scanOnPush", False)
        if scanning != settings.scan_on_push:
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "ecr:repository",
                    name,
                    f"scan on push -> {settings.scan_on_push}",
                )
            )
        if observed["policy"] != lifecycle_policy(settings.keep_images):
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "ecr:repository",
                    name,
                    f"lifecycle policy -> keep {settings.keep_images} images",
                )
            )
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        name, settings = run.config.prefix, run.config.settings.registry
        observed = self.observe(run)
        repo = observed["repo"]
        if repo is None:
            repo = _ecr(
                run,
                "create_repository",
                repositoryName=name,
                imageTagMutability="MUTABLE",
                imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
                encryptionConfiguration={"encryptionType": "AES256"},
                tags=run.owner.tags(COMPONENT),
            )["repository"]
            run.journal.record(
                COMPONENT,
                f"created ECR repository {name}",
                undo_ignoring(
                    REPO_MISSING,
                    lambda: _ecr(run, "delete_repository", repositoryName=name, force=True),
                ),
                made=("ecr:repository", name),
            )
            observed = {"repo": repo, "policy": None, "created": True}
        for change in self.plan(run, observed):
            self._fix(run, observed, change)
        return {"repository_uri": repo["repositoryUri"], "repository_name": name}

    def _fix(self, run: Run, observed: Observed, change: Change) -> None:
        name, settings = run.config.prefix, run.config.settings.registry
        if change.detail.startswith("scan"):
            old = not settings.scan_on_push
            _ecr(
                run,
                "put_image_scanning_configuration",
                repositoryName=name,
                imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
            )
            run.journal.record(
                COMPONENT,
                f"set scan on push of {name}",
                lambda: _ecr(
                    run,
                    "put_image_scanning_configuration",
                    repositoryName=name,
                    imageScanningConfiguration={"scanOnPush": old},
                ),
            )
            return
        previous = observed["policy"]
        _ecr(
            run,
            "put_lifecycle_policy",
            repositoryName=name,
            lifecyclePolicyText=json.dumps(lifecycle_policy(settings.keep_images)),
        )
        if previous is not None:
            run.journal.record(
                COMPONENT,
                f"changed lifecycle policy of {name}",
                lambda: _ecr(
                    run,
                    "put_lifecycle_policy",
                    repositoryName=name,
                    lifecyclePolicyText=json.dumps(previous),
                ),
            )
        elif not observed.get("created"):  # a new repository goes with its policy
            run.journal.record(
                COMPONENT,
                f"set lifecycle policy of {name}",
                undo_ignoring(
                    POLICY_MISSING,
                    lambda: _ecr(run, "delete_lifecycle_policy", repositoryName=name),
                ),
            )

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed["repo"]:
            undo_ignoring(
                REPO_MISSING,
                lambda: _ecr(
                    run, "delete_repository", repositoryName=run.config.prefix, force=True
                ),
            )()
