"""bootstrap: the one-time IAM set-up that lets GitHub Actions run nnote-deploy without keys.

An administrator runs it once per account (again whenever docs/iam-policy.json or the allowed
environments change); it converges these, all tagged `nnote:managed-by = nnote-bootstrap` and
`nnote:app`:

1. the permissions boundary of task roles (`{app}-deploy-boundary`) and, with a preview
   environment, the previews' own (`{app}-preview-deploy-boundary`), narrower: see
   deployer/boundary.py (the only thing made without a repository);
2. the GitHub OIDC identity provider, reused when the account has one (then never changed);
3. the deploy role (`{app}-deploy`), assumable only with a GitHub token for one repository and
   the given environments and/or branches;
4. docs/iam-policy.json as customer managed policies `{role}-1`, `{role}-2`, ... attached to the
   role: the document is larger than one managed policy may be (6,144 characters, whitespace not
   counted), so its whole statements are split into as few policies as fit;
5. with a preview environment, the preview role (`{app}-preview-deploy`): assumable only by
   jobs in that one GitHub environment, with the deploy policy narrowed to previews
   (deployer/preview_policy.py), split the same way. A pull request's branch chooses the
   workflow that runs, so previews must not deploy with the role that reaches staging and prod;
   the deploy role never trusts the preview environment.

The tag is not `nnote-deploy` on purpose: the deploy policy lets the deploy role change what is
tagged nnote-deploy and named nnote-*, and the role must never be able to change itself.

Every change is journaled; a failure undoes them newest first (what was created is deleted, a
changed trust policy or default policy version is put back). `remove` deletes the roles and our
policies, and the provider only when this app's bootstrap made it and no other role trusts it;
without a repository, the boundaries instead, each only while no role carries it.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer import boundary, inventory, preview_policy
from deployer.aws import Aws, absent, call, paginate
from deployer.config import load
from deployer.errors import ConfigError, DeployError, ExitCode, NotOwnedError
from deployer.journal import RollbackReport, RunJournal
from deployer.steps.base import Progress, SilentProgress, undo_ignoring

PROVIDER_HOST = "token.actions.githubusercontent.com"
SANDBOX_PREFIX = "acceptance"
# A first prod `up` (Multi-AZ RDS, then a rollout) can outlast IAM's default one-hour session;
# the workflows ask for as long (role-duration-seconds).
SESSION_SECONDS = 3 * 3600
DEFAULT_SESSION_SECONDS = 3600  # .github/workflows/aws-acceptance.yml: a sandbox account
AUDIENCE = "sts.amazonaws.com"
MANAGER = "nnote-bootstrap"
STEP = "bootstrap"
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
MANAGED_POLICY_CHARACTERS = 6144
MANAGED_POLICIES_PER_ROLE = 10  # the default quota; it can be raised to 20
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicyVersion.html
POLICY_VERSIONS = 5
NO_SUCH = ("NoSuchEntity", "NoSuchEntityException")
POLICY_FILE = "iam-policy.json"  # the wheel carries docs/iam-policy.json here (pyproject.toml)
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
# Environments and branches are matched exactly (StringEquals): no wildcards, no whitespace.
REF_NAME = re.compile(r"[^\s*?\[\]]+")


@dataclass(frozen=True)
class BootstrapTarget:
    """Who may assume the deploy role: one repository's environments and/or branches."""

    app: str
    repository: str  # OWNER/REPO
    environments: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    role_name: str = ""  # default `{app}-deploy`
    preview_environment: str = ""  # the GitHub environment of the preview role's jobs, if any

    @property
    def role(self) -> str:
        return self.role_name or f"{self.app}-deploy"

    @property
    def preview_role(self) -> str:
        """`-deploy` at the end, as docs/bootstrap-policy.json lets the administrator make."""
        return f"{self.app}-preview-deploy"

    def preview_subjects(self) -> list[str]:
        """The one `sub` claim the preview role trusts: jobs in the preview environment."""
        return [f"repo:{self.repository}:environment:{self.preview_environment}"]

    def subjects(self) -> list[str]:
        """The `sub` claims GitHub puts in the tokens of those jobs, sorted (a stable policy)."""
        repo = f"repo:{self.repository}"
        return [f"{repo}:environment:{env}" for env in sorted(set(self.environments))] + [
            f"{repo}:ref:refs/heads/{branch}" for branch in sorted(set(self.branches))
        ]

    @property
    def github(self) -> bool:
        """Without a repository, bootstrap makes only the permissions boundary (deploys are
        then run by people with their own credentials, not by GitHub Actions)."""
        return bool(self.repository)

    def problems(self) -> list[str]:
        if not self.github:
            return []
        found = []
        if not REPOSITORY.fullmatch(self.repository):
            found.append(f"repository: {self.repository!r} is not OWNER/REPO")
        if not ROLE_NAME.fullmatch(self.role):
            found.append(f"role name: {self.role!r} must be 1-64 of A-Z a-z 0-9 + = , . @ _ -")
        if not (self.environments or self.branches):
            found.append("no environment and no branch: nobody could assume the role")
        names = [*self.environments, *self.branches]
        found += [f"{name!r}: not an exact name" for name in names if not REF_NAME.fullmatch(name)]
        return found + self.preview_problems()

    def preview_problems(self) -> list[str]:
        preview = self.preview_environment
        if not preview:
            return []
        found = [] if REF_NAME.fullmatch(preview) else [f"{preview!r}: not an exact name"]
        if preview in self.environments:
            found.append(
                f"environment {preview!r} is the preview role's: the deploy role must not trust "
                f"it (a pull request's branch chooses the workflow its jobs run)"
            )
        if not ROLE_NAME.fullmatch(self.preview_role):
            found.append(f"preview role name: {self.preview_role!r} is longer than 64")
        if self.role == self.preview_role:
            found.append(f"role name: {self.role!r} is the preview role's; choose another")
        return found


def target_from_config(
    path: Path,
    repository: str,
    environments: Sequence[str] | None = None,
    branches: Sequence[str] = (),
    role_name: str = "",
    region: str | None = None,
    preview_environment: str = "",
) -> tuple[BootstrapTarget, str]:
    """The target for deploy.toml's app, and the region to work in. `environments=None` means
    every environment in deploy.toml but the `acceptance*` ones (a sandbox account's runs,
    with a role of their own there); named ones must be in it. The preview environment is a
    GitHub environment only (previews are not declared in deploy.toml). Raises ConfigError
    before any AWS call."""
    names = _environment_names(path)
    # `load` validates the whole file (every environment) and reports it the usual way.
    config = load(path, names[0] if names else None, region)
    everyday = [name for name in names if not name.startswith(SANDBOX_PREFIX)]
    chosen = tuple(everyday if environments is None else environments)
    unknown = [env for env in chosen if env not in names]
    target = BootstrapTarget(
        config.app, repository, chosen, tuple(branches), role_name, preview_environment
    )
    problems = [f"environment {env!r} is not in {path}" for env in unknown] + target.problems()
    if problems:
        raise ConfigError(
            f"bootstrap cannot scope the role: {len(problems)} problem(s)",
            problems,
            hint=f"environments in {path}: {', '.join(names)}",
        )
    return target, config.region


def _environment_names(path: Path) -> list[str]:
    try:
        return sorted(tomllib.loads(path.read_text(encoding="utf-8")).get("env", {}))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []  # `load` then says what is wrong with the file


# -- the documents --------------------------------------------------------------------------


def deploy_policy() -> dict[str, Any]:
    """docs/iam-policy.json: packaged beside this module in a wheel, else the checkout's."""
    return boundary.packaged_document(POLICY_FILE)


@dataclass(frozen=True)
class GithubRole:
    """A role GitHub Actions assumes: its name, whose tokens it trusts, its permissions."""

    name: str
    subjects: tuple[str, ...]
    permissions: Callable[[], dict[str, Any]]  # read only when the role is converged
    source: str  # where the permissions come from, for descriptions and errors
    purpose: str  # what GitHub Actions does with it, for the role's description


def github_roles(target: BootstrapTarget) -> list[GithubRole]:
    """The deploy role and, with a preview environment, the preview role."""
    deploy = GithubRole(
        target.role, tuple(target.subjects()), deploy_policy, f"docs/{POLICY_FILE}", "nnote-deploy"
    )
    if not target.preview_environment:
        return [deploy]
    return [deploy, preview_role(target, tuple(target.preview_subjects()))]


def preview_role(target: BootstrapTarget, subjects: tuple[str, ...] = ()) -> GithubRole:
    return GithubRole(
        target.preview_role,
        subjects,
        lambda: preview_policy.preview_policy(deploy_policy()),
        f"docs/{POLICY_FILE} narrowed to previews (docs/{preview_policy.FILE})",
        "nnote-deploy for previews (pr-*) only",
    )


@dataclass(frozen=True)
class TaskBoundary:
    """A permissions boundary of the roles nnote-deploy makes for tasks (deployer/boundary.py)."""

    name: str
    document: Callable[[], dict[str, Any]]  # read only when the boundary is converged
    purpose: str  # for the policy's description
    preview: bool = False  # the previews' own


def task_boundaries(target: BootstrapTarget) -> list[TaskBoundary]:
    """The boundary of every environment's roles and, with a preview environment, the
    previews' own."""
    every = TaskBoundary(
        boundary.name(target.app),
        boundary.document,
        f"the most a task role of nnote-deploy may do (docs/{boundary.FILE})",
    )
    if not target.preview_environment:
        return [every]
    previews = TaskBoundary(
        boundary.preview_name(target.app),
        boundary.preview_document,
        f"the most a preview's task role may do (docs/{preview_policy.BOUNDARY_FILE})",
        preview=True,
    )
    return [every, previews]


def minified(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def policy_size(document: Mapping[str, Any]) -> int:
    """The characters IAM counts against a managed policy's quota: all but whitespace."""
    return len("".join(minified(document).split()))


def policy_chunks(
    policy: Mapping[str, Any], limit: int = MANAGED_POLICY_CHARACTERS
) -> list[dict[str, Any]]:
    """The policy's whole statements as documents of at most `limit` characters: each statement,
    in the document's order, goes into the first that has room (a stable split: the same
    document always gives the same policies)."""
    version = policy.get("Version", "2012-10-17")
    statements = policy["Statement"]
    chunks: list[list[Any]] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        fits = (c for c in chunks if policy_size(_document(version, [*c, statement])) <= limit)
        home = next(fits, None)
        if home is not None:
            home.append(statement)
        elif policy_size(_document(version, [statement])) <= limit:
            chunks.append([statement])
        else:
            raise DeployError(
                f"statement {statement.get('Sid', '?')} of {POLICY_FILE} alone is larger than "
                f"a managed policy may be ({limit} characters)",
                f"split it into smaller statements in docs/{POLICY_FILE}",
            )
    return [_document(version, chunk) for chunk in chunks]


def _document(version: str, statements: list[Any]) -> dict[str, Any]:
    return {"Version": version, "Statement": statements}


def trust_policy(provider_arn: str, subjects: list[str]) -> dict[str, Any]:
    """GitHub's tokens for our audience and the given subjects only.
    https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{PROVIDER_HOST}:aud": AUDIENCE,
                        f"{PROVIDER_HOST}:sub": subjects,
                    }
                },
            }
        ],
    }


def bootstrap_tags(app: str) -> list[dict[str, str]]:
    return [{"Key": inventory.MANAGED_BY, "Value": MANAGER}, {"Key": inventory.APP, "Value": app}]


# -- the result -----------------------------------------------------------------------------


@dataclass
class BootstrapResult:
    """What bootstrap (or remove) found and did, each item a short description."""

    repository: str
    region: str
    role_arn: str = ""
    provider_arn: str = ""
    policy_arns: list[str] = field(default_factory=list)
    preview_role_arn: str = ""
    preview_policy_arns: list[str] = field(default_factory=list)
    boundary_arn: str = ""
    preview_boundary_arn: str = ""
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # remove: what was left, and why

    @property
    def variables(self) -> dict[str, str]:
        """The repository variables deploy.yml (and preview.yml) read."""
        preview = {"AWS_PREVIEW_ROLE_ARN": self.preview_role_arn} if self.preview_role_arn else {}
        return {"AWS_DEPLOY_ROLE_ARN": self.role_arn, **preview, "AWS_REGION": self.region}

    def gh_commands(self) -> list[str]:
        """`gh variable set` command lines that set `variables` on the repository."""
        return [
            f"gh variable set {name} --body {shlex.quote(value)} "
            f"--repo {shlex.quote(self.repository)}"
            for name, value in self.variables.items()
        ]


class BootstrapFailed(DeployError):
    """bootstrap failed; what it had changed has been undone (see `rollback`)."""

    exit_code = ExitCode.ROLLED_BACK

    def __init__(self, cause: DeployError, rollback: RollbackReport) -> None:
        undone, failed = len(rollback.undone), len(rollback.failed)
        message = f"bootstrap failed: {cause.message}; rolled back {undone} change(s)"
        super().__init__(
            message + (f", could NOT undo {failed}" if failed else ""),
            "see the list below; fix it by hand or run `bootstrap --delete`"
            if failed
            else cause.hint or "fix the cause and run bootstrap again",
            request_id=cause.request_id,
        )
        self.cause, self.rollback = cause, rollback


# -- the commands ---------------------------------------------------------------------------


def bootstrap(
    aws: Aws,
    target: BootstrapTarget,
    progress: Progress | None = None,
    journal: RunJournal | None = None,
) -> BootstrapResult:
    """Create or converge the provider, the role and its policies (idempotent: a converged
    account takes read calls only). On a failure this run's changes are undone and
    BootstrapFailed is raised; an error before any change is raised as it is."""
    work = _Bootstrap(aws, target, progress or SilentProgress(), journal or RunJournal())
    try:
        return work.converge()
    except (Exception, KeyboardInterrupt) as error:
        if not work.journal.entries:
            raise
        report = work.journal.rollback(lambda entry: work.note(f"undoing: {entry.description}"))
        raise BootstrapFailed(_as_deploy_error(error), report) from error


def remove(aws: Aws, target: BootstrapTarget, progress: Progress | None = None) -> BootstrapResult:
    """`bootstrap --delete`: delete the role and our policies, and the provider when this app's
    bootstrap made it and no other role trusts it; without a repository, the task roles'
    boundaries, each only while no role carries it. Nothing not ours is touched. Not rolled
    back: it is idempotent, so running it again finishes an interrupted one."""
    return _Bootstrap(aws, target, progress or SilentProgress(), RunJournal()).remove()


def _as_deploy_error(error: BaseException) -> DeployError:
    if isinstance(error, DeployError):
        return error
    if isinstance(error, KeyboardInterrupt):
        return DeployError("interrupted", "run bootstrap again")
    return DeployError(
        f"unexpected {type(error).__name__}: {error}",
        "run again with --verbose and report the traceback",
    )


class _Bootstrap:
    """One bootstrap or remove: the account's ARNs, the journal, the result."""

    def __init__(
        self,
        aws: Aws,
        target: BootstrapTarget,
        progress: Progress,
        journal: RunJournal,
        role: GithubRole | None = None,
    ) -> None:
        self.aws, self.target, self.progress, self.journal = aws, target, progress, journal
        self.github_role = role or github_roles(target)[0]
        self.role = self.github_role.name
        self.tags = bootstrap_tags(target.app)
        self.result = BootstrapResult(target.repository, aws.region)
        self.iam_arn = ""  # arn:PARTITION:iam::ACCOUNT: (`locate`)
        self.role_arn = ""  # this role's
        self.policy_arns: list[str] = []

    def for_role(self, role: GithubRole) -> _Bootstrap:
        """The same run (journal, result, account) working on another role."""
        work = _Bootstrap(self.aws, self.target, self.progress, self.journal, role)
        work.result, work.iam_arn = self.result, self.iam_arn
        return work

    def role_works(self, roles: list[GithubRole]) -> list[_Bootstrap]:
        return [self.for_role(role) for role in roles]

    def keep_arns(self, works: list[_Bootstrap]) -> None:
        """Into the result: the deploy role's ARNs, and the preview role's."""
        for work in works:
            if work.role == self.target.preview_role:
                self.result.preview_role_arn = work.role_arn
                self.result.preview_policy_arns = work.policy_arns
            else:
                self.result.role_arn, self.result.policy_arns = work.role_arn, work.policy_arns

    def note(self, message: str) -> None:
        self.progress.step_note(STEP, message)

    def report(self, kind: str, what: str) -> None:
        """Into the result, which the CLI lists at the end (not a note: it would say it twice)."""
        getattr(self.result, kind).append(what)

    def iam(self, operation: str, **params: Any) -> Any:
        return call(self.aws, "iam", operation, **params)

    def undo(self, operation: str, **params: Any) -> Callable[[], None]:
        """Undo a creation: the deletion, done when the resource is already gone too."""
        return undo_ignoring(NO_SUCH, lambda: self.iam(operation, **params))

    def reverting(self, operation: str, **params: Any) -> Callable[[], None]:
        """Undo a change: the call that puts back what was there."""
        return lambda: self.iam(operation, **params)

    def changed(
        self, description: str, undo: Callable[[], None], made: tuple[str, str] | None = None
    ) -> None:
        self.journal.record(STEP, description, undo, made)

    def locate(self) -> None:
        """The account's ARNs, from who we are (the partition too: aws, aws-cn, aws-us-gov)."""
        identity = self.aws.identity()
        partition = identity["arn"].split(":")[1]
        self.iam_arn = f"arn:{partition}:iam::{identity['account']}:"
        self.result.provider_arn = f"{self.iam_arn}oidc-provider/{PROVIDER_HOST}"

    def policy_arn(self, number: int) -> str:
        return self.arn_of(self.policy_name(number))

    def arn_of(self, policy_name: str) -> str:
        return f"{self.iam_arn}policy/{policy_name}"

    def policy_name(self, number: int) -> str:
        return f"{self.role}-{number}"

    def owned(self, tags: Iterable[Mapping[str, str]] | None) -> bool:
        found = inventory.tags_as_dict(tags)
        return (found.get(inventory.MANAGED_BY), found.get(inventory.APP)) == (
            MANAGER,
            self.target.app,
        )

    def check_owned(self, kind: str, name: str, tags: Iterable[Mapping[str, str]] | None) -> None:
        if not self.owned(tags):
            raise NotOwnedError(
                f"{kind} {name} exists but was not made by nnote-deploy bootstrap for "
                f"{self.target.app}",
                "nothing was changed; delete it by hand, or choose another name (--role-name)",
            )

    # -- bootstrap ------------------------------------------------------------------------

    def converge(self) -> BootstrapResult:
        self.locate()
        boundaries = task_boundaries(self.target)
        found = [self.find_policy(task_boundary.name) for task_boundary in boundaries]
        if self.target.github:
            works = self.role_works(github_roles(self.target))
            # What exists is read, and found ours, before anything is changed.
            plans = [work.read_github_role() for work in works]
            self.ensure_provider()
            for work, plan in zip(works, plans, strict=True):
                work.converge_github_role(plan)
            self.keep_arns(works)
        for task_boundary, policy in zip(boundaries, found, strict=True):
            self.ensure_boundary(task_boundary, policy)
        return self.result

    def read_github_role(self) -> _RolePlan:
        chunks = policy_chunks(self.github_role.permissions())
        if len(chunks) > MANAGED_POLICIES_PER_ROLE:
            raise DeployError(
                f"{self.github_role.source} needs {len(chunks)} managed policies; a role takes "
                f"{MANAGED_POLICIES_PER_ROLE}",
                "raise the 'Managed policies per role' quota (up to 20) in Service Quotas",
            )
        role = self.find_role()
        policies = self.existing_policies(len(chunks))
        for number, policy in policies.items():
            self.check_owned("IAM policy", self.policy_name(number), policy.get("Tags"))
        return _RolePlan(chunks, role, policies)

    def converge_github_role(self, plan: _RolePlan) -> None:
        chunks, policies = plan.chunks, plan.policies
        attached = self.ensure_role(plan.role)
        self.policy_arns = [
            self.ensure_policy(number, document, policies.get(number), attached)
            for number, document in enumerate(chunks, 1)
        ]
        for number in sorted(set(policies) - set(range(1, len(chunks) + 1)), reverse=True):
            self.retire_policy(number, policies[number], attached)

    def find_policy(self, name: str) -> dict[str, Any] | None:
        found = absent(self.aws, "iam", "get_policy", NO_SUCH, PolicyArn=self.arn_of(name))
        if found is None:
            return None
        self.check_owned("IAM policy", name, found["Policy"].get("Tags"))
        return dict(found["Policy"])

    def ensure_boundary(self, wanted: TaskBoundary, found: dict[str, Any] | None) -> None:
        """A permissions boundary the roles the deploy role makes must carry."""
        if found is None:
            self.create_policy(wanted.name, wanted.document(), wanted.purpose)
        else:
            self.converge_document(wanted.name, found["DefaultVersionId"], wanted.document())
        if wanted.preview:
            self.result.preview_boundary_arn = self.arn_of(wanted.name)
        else:
            self.result.boundary_arn = self.arn_of(wanted.name)

    def ensure_provider(self) -> None:
        arn = self.result.provider_arn
        found = absent(
            self.aws, "iam", "get_open_id_connect_provider", NO_SUCH, OpenIDConnectProviderArn=arn
        )
        if found is None:
            self.iam(
                "create_open_id_connect_provider",
                Url=f"https://{PROVIDER_HOST}",
                ClientIDList=[AUDIENCE],
                Tags=self.tags,
            )
            self.changed(
                f"created OIDC provider {PROVIDER_HOST}",
                self.undo("delete_open_id_connect_provider", OpenIDConnectProviderArn=arn),
                made=("iam:oidc-provider", PROVIDER_HOST),
            )
            self.report("created", f"OIDC provider {PROVIDER_HOST}")
            return
        if AUDIENCE not in found.get("ClientIDList", []):
            raise DeployError(
                f"the account's OIDC provider {PROVIDER_HOST} does not accept the audience "
                f"{AUDIENCE} that aws-actions/configure-aws-credentials asks for",
                "add it, then run bootstrap again: aws iam add-client-id-to-open-id-connect-"
                f"provider --open-id-connect-provider-arn {arn} --client-id {AUDIENCE}",
            )
        mine = "" if self.owned(found.get("Tags")) else " (not ours: used as it is)"
        self.report("unchanged", f"OIDC provider {PROVIDER_HOST}{mine}")

    def find_role(self) -> dict[str, Any] | None:
        found = absent(self.aws, "iam", "get_role", NO_SUCH, RoleName=self.role)
        if found is None:
            return None
        self.check_owned("IAM role", self.role, found["Role"].get("Tags"))
        return dict(found["Role"])

    def ensure_role(self, role: dict[str, Any] | None) -> set[str]:
        """The role with the wanted trust policy; the ARNs of the policies attached to it."""
        trust = trust_policy(self.result.provider_arn, list(self.github_role.subjects))
        if role is None:
            self.create_role(trust)
            return set()
        self.role_arn = role["Arn"]
        same_trust = role.get("AssumeRolePolicyDocument") == trust
        if not same_trust:
            self.update_trust(role.get("AssumeRolePolicyDocument"), trust)
        session = role.get("MaxSessionDuration", DEFAULT_SESSION_SECONDS)
        if session != SESSION_SECONDS:
            self.update_session(session)
        if same_trust and session == SESSION_SECONDS:
            self.report("unchanged", f"IAM role {self.role}")
        attached = paginate(
            self.aws, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=self.role
        )
        return {policy["PolicyArn"] for policy in attached}

    def create_role(self, trust: dict[str, Any]) -> None:
        role = self.iam(
            "create_role",
            RoleName=self.role,
            AssumeRolePolicyDocument=minified(trust),
            Description=f"GitHub Actions runs {self.github_role.purpose} for "
            f"{self.target.repository}",
            MaxSessionDuration=SESSION_SECONDS,
            Tags=self.tags,
        )["Role"]
        self.changed(
            f"created IAM role {self.role}",
            self.undo("delete_role", RoleName=self.role),
            made=("iam:role", self.role),
        )
        self.role_arn = role["Arn"]
        self.report("created", f"IAM role {self.role}")

    def update_session(self, previous: int) -> None:
        self.iam("update_role", RoleName=self.role, MaxSessionDuration=SESSION_SECONDS)
        self.changed(
            f"changed the session length of IAM role {self.role}",
            self.reverting("update_role", RoleName=self.role, MaxSessionDuration=previous),
        )
        self.report("updated", f"session length of IAM role {self.role}: {SESSION_SECONDS}s")

    def update_trust(self, previous: Any, trust: dict[str, Any]) -> None:
        self.iam("update_assume_role_policy", RoleName=self.role, PolicyDocument=minified(trust))
        before = previous if isinstance(previous, str) else minified(previous)
        self.changed(
            f"changed the trust policy of IAM role {self.role}",
            self.reverting("update_assume_role_policy", RoleName=self.role, PolicyDocument=before),
        )
        self.report("updated", f"trust policy of IAM role {self.role}")

    def ensure_policy(
        self,
        number: int,
        document: dict[str, Any],
        policy: dict[str, Any] | None,
        attached: set[str],
    ) -> str:
        name, arn = self.policy_name(number), self.policy_arn(number)
        if policy is None:
            part = f"nnote-deploy's permissions ({self.github_role.source}), part {number}"
            self.create_policy(name, document, part)
        else:
            self.converge_document(name, policy["DefaultVersionId"], document)
        if arn not in attached:
            self.attach(name, arn, existed=policy is not None)
        return arn

    def attach(self, name: str, arn: str, existed: bool) -> None:
        self.iam("attach_role_policy", RoleName=self.role, PolicyArn=arn)
        self.changed(
            f"attached IAM policy {name} to role {self.role}",
            self.undo("detach_role_policy", RoleName=self.role, PolicyArn=arn),
        )
        if existed:  # a policy made now is attached as part of making it
            self.report("updated", f"IAM role {self.role}: attached {name}")

    def create_policy(self, name: str, document: dict[str, Any], description: str) -> None:
        self.iam(
            "create_policy",
            PolicyName=name,
            PolicyDocument=minified(document),
            Description=description,
            Tags=self.tags,
        )
        self.changed(
            f"created IAM policy {name}",
            self.undo("delete_policy", PolicyArn=self.arn_of(name)),
            made=("iam:policy", name),
        )
        self.report("created", f"IAM policy {name}")

    def converge_document(self, name: str, default: str, document: dict[str, Any]) -> None:
        arn = self.arn_of(name)
        if self.version_document(arn, default) == document:
            self.report("unchanged", f"IAM policy {name}")
            return
        self.make_room(name)
        new = self.iam(
            "create_policy_version",
            PolicyArn=arn,
            PolicyDocument=minified(document),
            SetAsDefault=True,
        )["PolicyVersion"]["VersionId"]
        self.changed(
            f"made version {new} the default of IAM policy {name} (was {default})",
            lambda: self.restore_default(arn, default, new),
        )
        self.report("updated", f"IAM policy {name} (version {new})")

    def version_document(self, arn: str, version: str) -> Any:
        answer = self.iam("get_policy_version", PolicyArn=arn, VersionId=version)
        return answer["PolicyVersion"]["Document"]

    def restore_default(self, arn: str, previous: str, new: str) -> None:
        self.iam("set_default_policy_version", PolicyArn=arn, VersionId=previous)
        self.iam("delete_policy_version", PolicyArn=arn, VersionId=new)

    def make_room(self, name: str) -> None:
        """IAM keeps five versions of a policy: the oldest one not in effect makes way. Undone
        by adding its document back as a version not in effect (under a new version id)."""
        arn = self.arn_of(name)
        versions = paginate(self.aws, "iam", "list_policy_versions", "Versions", PolicyArn=arn)
        if len(versions) < POLICY_VERSIONS:
            return
        oldest = min(
            (v for v in versions if not v["IsDefaultVersion"]),
            key=lambda v: (v["CreateDate"], int(v["VersionId"].lstrip("v") or 0)),
        )["VersionId"]
        document = minified(self.version_document(arn, oldest))
        self.iam("delete_policy_version", PolicyArn=arn, VersionId=oldest)
        self.changed(
            f"deleted old version {oldest} of IAM policy {name}",
            self.reverting("create_policy_version", PolicyArn=arn, PolicyDocument=document),
        )

    def existing_policies(self, wanted: int) -> dict[int, dict[str, Any]]:
        """The policies named like ours that exist, by number: of the first `wanted`, and any
        after them up to the first one missing (they are made in ascending and deleted in
        descending order)."""
        found: dict[int, dict[str, Any]] = {}
        number = 1
        while True:
            arn = self.policy_arn(number)
            policy = absent(self.aws, "iam", "get_policy", NO_SUCH, PolicyArn=arn)
            if policy is None and number > wanted:
                return found
            if policy is not None:
                found[number] = dict(policy["Policy"])
            number += 1

    def retire_policy(self, number: int, policy: dict[str, Any], attached: set[str]) -> None:
        """A policy no longer needed (the document now fits in fewer): detached and deleted.
        Undone by making it again with the document it had in effect, and attaching it."""
        name, arn = self.policy_name(number), self.policy_arn(number)
        document = minified(self.version_document(arn, policy["DefaultVersionId"]))
        if arn in attached:
            self.iam("detach_role_policy", RoleName=self.role, PolicyArn=arn)
            self.changed(
                f"detached IAM policy {name} from role {self.role}",
                self.reverting("attach_role_policy", RoleName=self.role, PolicyArn=arn),
            )
        self.delete_policy(arn)
        again = {"Description": policy.get("Description", ""), "Tags": self.tags}
        self.changed(
            f"deleted IAM policy {name}",
            self.reverting("create_policy", PolicyName=name, PolicyDocument=document, **again),
        )
        self.report("deleted", f"IAM policy {name} (no longer needed)")

    def delete_policy(self, arn: str) -> None:
        """IAM deletes a managed policy only once its other versions are gone."""
        for version in paginate(self.aws, "iam", "list_policy_versions", "Versions", PolicyArn=arn):
            if not version["IsDefaultVersion"]:
                self.iam("delete_policy_version", PolicyArn=arn, VersionId=version["VersionId"])
        self.iam("delete_policy", PolicyArn=arn)

    # -- remove ---------------------------------------------------------------------------

    def remove(self) -> BootstrapResult:
        self.locate()
        if self.target.github:
            # The preview role too, whether this run names its environment or not.
            works = self.role_works([github_roles(self.target)[0], preview_role(self.target)])
            for work in works:
                work.remove_github_role()
            self.keep_arns(works)
            self.remove_provider()
        else:
            # The previews' too, whether this run names a preview environment or not.
            for name in (boundary.preview_name(self.target.app), boundary.name(self.target.app)):
                self.remove_boundary(name)
        return self.result

    def remove_boundary(self, name: str) -> None:
        """Only without --repo: a boundary outlives the GitHub roles, which others may share.
        IAM refuses while a role still carries it (an environment not yet taken `down`)."""
        found = absent(self.aws, "iam", "get_policy", NO_SUCH, PolicyArn=self.arn_of(name))
        if found is None:
            return
        if not self.owned(found["Policy"].get("Tags")):
            self.report("kept", f"IAM policy {name} (not made by bootstrap for this app)")
            return
        users = found["Policy"].get("PermissionsBoundaryUsageCount", 0)
        if users:
            self.report("kept", f"IAM policy {name} (the boundary of {users} role(s): down first)")
            return
        self.delete_policy(self.arn_of(name))
        self.report("deleted", f"IAM policy {name}")

    def remove_github_role(self) -> None:
        self.remove_role()
        found = self.existing_policies(MANAGED_POLICIES_PER_ROLE)
        for number in sorted(found, reverse=True):
            self.remove_policy(number, found[number])

    def remove_role(self) -> None:
        found = absent(self.aws, "iam", "get_role", NO_SUCH, RoleName=self.role)
        if found is None:
            return
        self.check_owned("IAM role", self.role, found["Role"].get("Tags"))
        self.role_arn = found["Role"]["Arn"]
        for policy in paginate(
            self.aws, "iam", "list_attached_role_policies", "AttachedPolicies", RoleName=self.role
        ):
            self.iam("detach_role_policy", RoleName=self.role, PolicyArn=policy["PolicyArn"])
        for name in paginate(
            self.aws, "iam", "list_role_policies", "PolicyNames", RoleName=self.role
        ):
            self.iam("delete_role_policy", RoleName=self.role, PolicyName=name)
        self.undo("delete_role", RoleName=self.role)()
        self.report("deleted", f"IAM role {self.role}")

    def remove_policy(self, number: int, policy: dict[str, Any]) -> None:
        name, arn = self.policy_name(number), self.policy_arn(number)
        if not self.owned(policy.get("Tags")):
            self.report("kept", f"IAM policy {name} (not made by bootstrap for this app)")
            return
        self.delete_policy(arn)
        self.policy_arns.append(arn)
        self.report("deleted", f"IAM policy {name}")

    def remove_provider(self) -> None:
        arn = self.result.provider_arn
        found = absent(
            self.aws, "iam", "get_open_id_connect_provider", NO_SUCH, OpenIDConnectProviderArn=arn
        )
        if found is None:
            return
        if not self.owned(found.get("Tags")):
            self.report(
                "kept", f"OIDC provider {PROVIDER_HOST} (not made by bootstrap for this app)"
            )
            return
        users = self.roles_trusting(arn)
        if users:
            self.report("kept", f"OIDC provider {PROVIDER_HOST} (trusted by {', '.join(users)})")
            return
        self.undo("delete_open_id_connect_provider", OpenIDConnectProviderArn=arn)()
        self.report("deleted", f"OIDC provider {PROVIDER_HOST}")

    def roles_trusting(self, provider_arn: str) -> list[str]:
        """Other roles whose trust policy names the provider (another app's deploy role)."""
        roles = paginate(self.aws, "iam", "list_roles", "Roles")
        return sorted(
            role["RoleName"]
            for role in roles
            if provider_arn in json.dumps(role.get("AssumeRolePolicyDocument", ""))
        )


@dataclass(frozen=True)
class _RolePlan:
    """What bootstrap found of one role before changing anything, and the policies it wants."""

    chunks: list[dict[str, Any]]
    role: dict[str, Any] | None
    policies: dict[int, dict[str, Any]]
