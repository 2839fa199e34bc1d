"""The one AWS boundary: session, clients, retries, waiters, and AWS errors made ours.

Credentials and region come from boto3's standard chain (environment, profile, web identity
for GitHub OIDC); `AWS_ENDPOINT_URL` and its per-service variants are honoured by boto3
itself, so the same code runs against moto or LocalStack. Every call goes through a client
made here, which counts it: a converged `up` must make no mutating call.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from deployer.errors import AwsError

READ_PREFIXES = ("Describe", "List", "Get", "Lookup", "Check", "Search", "BatchGet")
DEFAULT_MAX_ATTEMPTS = 8

# Extra botocore event handlers, as (event name, handler): the tests inject faults here.
EventHooks = list[tuple[str, Callable[..., Any]]]


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


@dataclass
class CallLog:
    """Counts the API calls a run made, by operation; thread-safe."""

    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, operation: str) -> None:
        with self.lock:
            self.calls[f"{service}:{operation}"] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        return sum(n for name, n in self.calls.items() if is_mutating(name.split(":")[1]))


class Aws:
    """Clients for one account and region, all sharing retry settings and the call log."""

    # Creating clients is not thread-safe, even from different boto3 sessions that share one
    # botocore session: one lock for all.
    _lock = threading.Lock()

    def __init__(
        self,
        region: str | None = None,
        profile: str | None = None,
        max_attempts: int | None = None,
        hooks: EventHooks | None = None,
        botocore_session: Any = None,
    ) -> None:
        # A shared botocore session keeps its loaded service models: many short-lived Aws
        # objects (the tests' runs) then make clients in milliseconds instead of ~25 ms each.
        try:
            self.session = boto3.session.Session(
                profile_name=profile, region_name=region, botocore_session=botocore_session
            )
        except botocore.exceptions.ProfileNotFound:
            raise AwsError(
                f"AWS profile {profile!r} not found",
                "check --profile or AWS_PROFILE",
                code="ProfileNotFound",
            ) from None
        if not self.session.region_name:
            raise AwsError(
                "no AWS region",
                "set region in deploy.toml, --region or AWS_REGION",
                code="NoRegion",
            )
        self.region: str = self.session.region_name
        # AWS_MAX_ATTEMPTS is boto3's own setting; an explicit Config would silently ignore it.
        attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
        self.config = botocore.config.Config(
            retries={"mode": "adaptive", "max_attempts": attempts},
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="nnote-deploy",
        )
        self.hooks = hooks or []
        self.log = CallLog()
        self._clients: dict[str, Any] = {}
        self._regions: dict[str, Aws] = {}
        self._identity: dict[str, str] | None = None

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(service)
            return self._clients[service]

    def _make_client(self, service: str) -> Any:
        client = self.session.client(service, region_name=self.region, config=self.config)
        events = client.meta.events
        events.register("before-call.*.*", self._count)
        for event, handler in self.hooks:
            events.register(event, handler)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.log.record(model.service_model.service_name, model.name)

    def impatient(self) -> Aws:
        """The same account, credentials and call log, with clients that give up within
        seconds: for answers nnote-deploy can do without (prices, which a table stands in for),
        where eight adaptive retries on a host that never answers took nine minutes."""
        other = copy.copy(self)
        other.config = self.config.merge(
            botocore.config.Config(
                retries={"mode": "standard", "total_max_attempts": 2},
                connect_timeout=3,
                read_timeout=10,
            )
        )
        other._clients, other._regions = {}, {}
        return other

    def in_region(self, region: str) -> Aws:
        """The same account, credentials, retries and call log, in another region (the tagging
        API lists CloudFront's global resources in us-east-1 only)."""
        if region == self.region:
            return self
        with self._lock:
            if region not in self._regions:
                # A copy, not a new Session: that would reset the shared botocore session's
                # region for every client made after it.
                other = copy.copy(self)
                other.region, other._clients, other._regions = region, {}, {}
                self._regions[region] = other
            return self._regions[region]

    def missing_credentials(self) -> str | None:
        """Why boto3's credential chain finds no credentials (environment, profile, SSO, web
        identity, container or instance role), or None when it finds some. Calls no AWS API:
        for what can do without AWS (`cost`), which must not fail on the first call instead."""
        try:
            found = self.session.get_credentials()
        except botocore.exceptions.BotoCoreError as error:
            return f"the AWS credentials cannot be loaded: {str(error).splitlines()[0]}"
        return None if found is not None else "no AWS credentials were found"

    def identity(self) -> dict[str, str]:
        """Who the credentials are (asked once: every command starts with it)."""
        if self._identity is None:
            with translated("sts", "GetCallerIdentity"):
                answer = self.client("sts").get_caller_identity()
            self._identity = {"account": answer["Account"], "arn": answer["Arn"]}
        return self._identity


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


HINTS: list[tuple[tuple[str, ...], str]] = [
    (
        ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess"),
        "the credentials lack permission for {action}; see docs/iam-policy.json",
    ),
    (
        ("ExpiredToken", "ExpiredTokenException", "RequestExpired"),
        "the credentials have expired; log in again (aws sso login, or re-run the workflow)",
    ),
    (
        (
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "AuthFailure",
            "SignatureDoesNotMatch",
        ),
        "the credentials are not valid for this account; check AWS_PROFILE or the access keys",
    ),
    (
        ("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"),
        "AWS kept throttling after retries; wait a minute and run again",
    ),
    (
        (
            "LimitExceeded",
            "LimitExceededException",
            "VpcLimitExceeded",
            "AddressLimitExceeded",
            "InstanceQuotaExceeded",
            "DBInstanceQuotaExceeded",
            "ServiceQuotaExceededException",
        ),
        "an account quota is reached; raise it in Service Quotas or remove unused resources",
    ),
]


def hint_for(code: str, action: str) -> str:
    for codes, hint in HINTS:
        if code in codes:
            return hint.format(action=action)
    return "run again with --verbose for the AWS request id"


@contextmanager
def translated(service: str, operation: str) -> Iterator[None]:
    """Turn botocore's exceptions into AwsError with a hint; nothing else escapes."""
    action = f"{service}:{operation}"
    try:
        yield
    except botocore.exceptions.ClientError as error:
        code = error_code(error)
        message = str(error.response.get("Error", {}).get("Message", "")).splitlines()[0:1]
        request_id = error.response.get("ResponseMetadata", {}).get("RequestId")
        text = f"{action} failed: {code}" + (f": {message[0]}" if message and message[0] else "")
        raise AwsError(
            text, hint_for(code, action), code=code, operation=action, request_id=request_id
        ) from error
    except botocore.exceptions.NoCredentialsError:
        raise AwsError(
            "no AWS credentials found",
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub "
            "Actions use aws-actions/configure-aws-credentials",
            code="NoCredentials",
            operation=action,
        ) from None
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectTimeoutError,
    ) as error:
        raise AwsError(
            f"{action} failed: cannot reach AWS ({type(error).__name__})",
            "check the network or AWS_ENDPOINT_URL, then run again",
            code=type(error).__name__,
            operation=action,
        ) from error


def call(aws: Aws, service: str, operation: str, /, **params: Any) -> Any:
    """Make one AWS call by its Python name (`describe_vpcs`), translating errors."""
    with translated(service, operation):
        return getattr(aws.client(service), operation)(**params)


def absent(
    aws: Aws, service: str, operation: str, missing: tuple[str, ...], /, **params: Any
) -> Any:
    """Like `call`, but an error code in `missing` means "not there" and returns None."""
    with translated(service, operation):
        try:
            return getattr(aws.client(service), operation)(**params)
        except botocore.exceptions.ClientError as error:
            if error_code(error) in missing:
                return None
            raise


def paginate(aws: Aws, service: str, operation: str, key: str, /, **params: Any) -> list[Any]:
    with translated(service, operation):
        pages = aws.client(service).get_paginator(operation).paginate(**params)
        return [item for page in pages for item in page.get(key, [])]


def pages(aws: Aws, service: str, operation: str, /, **params: Any) -> list[dict[str, Any]]:
    """Every page of a paginated answer (for answers whose items sit deeper than one key)."""
    with translated(service, operation):
        return list(aws.client(service).get_paginator(operation).paginate(**params))


def retry_while(
    codes: tuple[str, ...],
    budget_seconds: float,
    action: Callable[[], Any],
    on_retry: Callable[[str, float], None] = lambda _code, _left: None,
    delay: float = 2.0,
    when: Callable[[AwsError], bool] = lambda _error: True,
    sleep: Callable[[float], Any] = time.sleep,
) -> Any:
    """Retry `action` while AWS answers one of `codes` (eventual consistency), within a budget.

    `when` narrows it further, for codes AWS also uses for errors that retrying cannot fix.
    `sleep` is the run's own (Run.sleep): it wakes at once on Ctrl-C and stops the retries.
    """
    deadline = time.monotonic() + budget_seconds
    while True:
        try:
            return action()
        except AwsError as error:
            left = deadline - time.monotonic()
            if error.code not in codes or not when(error) or left <= 0:
                raise
            on_retry(error.code, left)
            sleep(min(delay, max(left, 0.01)))
