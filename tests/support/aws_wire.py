"""AWS requests and answers as they travel on the wire, read back into boto3's terms.

The realism layer (tests/support/realism.py) sits in front of the moto server, so it sees
every call, from the tests' own process and from the CLI subprocesses alike, as HTTP. This
module turns such a request back into (service, operation, parameters) shaped as boto3 takes
them, using botocore's own service models, and writes errors the way each protocol does.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import botocore.session

# The services the deployer and the tests talk to, by the name they sign requests with.
SERVICES = (
    "ec2",
    "rds",
    "iam",
    "elbv2",
    "sts",
    "ecs",
    "ecr",
    "logs",
    "secretsmanager",
    "ssm",
    "resourcegroupstaggingapi",
    "application-autoscaling",
    "service-quotas",
    "acm",
    "route53",
)
CREDENTIAL = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/")


@dataclass(frozen=True)
class WireCall:
    """One request, read back: which service and operation, with which parameters, by whom."""

    service: str  # botocore's name: "ec2", "elbv2", "resourcegroupstaggingapi", ...
    operation: str  # "CreateVpc"
    params: dict[str, Any] = field(hash=False)
    region: str
    access_key: str
    protocol: str


@cache
def _models() -> Any:
    return botocore.session.get_session()


@cache
def _by_signing_name() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in SERVICES:
        found.setdefault(_models().get_service_model(name).signing_name, []).append(name)
    return found


@cache
def _by_target_prefix() -> dict[str, str]:
    return {
        _models().get_service_model(name).metadata["targetPrefix"]: name
        for name in SERVICES
        if _models().get_service_model(name).metadata.get("targetPrefix")
    }


def service_model(service: str) -> Any:
    return _models().get_service_model(service)


def protocol_of(service: str) -> str:
    model = service_model(service)
    # The client speaks JSON to services that also offer CBOR (see botocore's protocol choice).
    return "json" if "json" in model.metadata.get("protocols", []) else str(model.protocol)


def signed_by(environ: dict[str, Any]) -> str | None:
    """The access key a request is signed with, if it is signed."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else None


def read_call(environ: dict[str, Any], body: bytes) -> WireCall | None:
    """The call a WSGI request carries, or None for what is not an AWS API call we know."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    access_key, region, signing_name = match.groups()
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, operation = target.rpartition(".")
        service = _by_target_prefix().get(prefix)
        if service is None:
            return None
        params = json.loads(body or b"{}")
        return WireCall(service, operation, params, region, access_key, "json")
    form = dict(parse_qsl(body.decode() or environ.get("QUERY_STRING", ""), keep_blank_values=True))
    candidates = _by_signing_name().get(signing_name, [])
    if "Action" not in form or not candidates:
        return None
    service = candidates[0]
    model = service_model(service)
    operation = form["Action"]
    if operation not in model.operation_names:
        return None
    shape = model.operation_model(operation).input_shape
    ec2 = model.protocol == "ec2"
    params = _unflatten(shape, form, "", ec2) if shape is not None else {}
    return WireCall(service, operation, params or {}, region, access_key, model.protocol)


def _unflatten(shape: Any, form: dict[str, str], prefix: str, ec2: bool) -> Any:
    """The inverse of botocore's Query and EC2 serializers, for one shape."""
    kind = shape.type_name
    if kind == "structure":
        found = {}
        for name, member in shape.members.items():
            key = _member_key(member, name, ec2)
            value = _unflatten(member, form, f"{prefix}.{key}" if prefix else key, ec2)
            if value is not None:
                found[name] = value
        return found or None
    if kind == "list":
        return _unflatten_list(shape, form, prefix, ec2)
    if kind == "map":
        return _unflatten_map(shape, form, prefix, ec2)
    if prefix not in form:
        return None
    return _scalar(shape.type_name, form[prefix])


def _member_key(member: Any, name: str, ec2: bool) -> str:
    if not ec2:
        return str(member.serialization.get("name", name))
    if "queryName" in member.serialization:
        return str(member.serialization["queryName"])
    located = member.serialization.get("name")
    return str(located[0].upper() + located[1:]) if located else name


def _unflatten_list(shape: Any, form: dict[str, str], prefix: str, ec2: bool) -> list[Any] | None:
    if ec2:
        item_prefix = prefix
    elif shape.serialization.get("flattened"):
        name = shape.member.serialization.get("name")
        item_prefix = ".".join([*prefix.split(".")[:-1], name]) if name else prefix
    else:
        item_prefix = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
    items = []
    for index in range(1, 10_000):
        item = _unflatten(shape.member, form, f"{item_prefix}.{index}", ec2)
        if item is None:
            break
        items.append(item)
    if not items:
        return [] if form.get(prefix) == "" else None
    return items


def _unflatten_map(
    shape: Any, form: dict[str, str], prefix: str, ec2: bool
) -> dict[str, Any] | None:
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    entries = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
    found = {}
    for index in range(1, 10_000):
        key = form.get(f"{entries}.{index}.{key_name}")
        if key is None:
            break
        found[key] = _unflatten(shape.value, form, f"{entries}.{index}.{value_name}", ec2)
    return found or None


def _scalar(kind: str, text: str) -> Any:
    if kind == "boolean":
        return text.lower() == "true"
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    return text


# -- answers ------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error(call: WireCall, code: str, message: str, status: int = 400) -> Answer:
    """An error as the service itself would send it, so botocore parses it as from AWS."""
    request_id = str(uuid.uuid4())
    text = _xml_escape(message)
    if call.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return Answer(status, [("Content-Type", "application/x-amz-json-1.1")], body)
    if call.protocol == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{text}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{text}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return Answer(status, [("Content-Type", "text/xml")], xml.encode())


def json_answer(document: dict[str, Any]) -> Answer:
    return Answer(
        200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(document).encode()
    )


def query_answer(operation: str, result: str, namespace: str) -> Answer:
    """A Query-protocol success answer wrapping `result` (XML of the Result element's body)."""
    xml = (
        f'<{operation}Response xmlns="{namespace}"><{operation}Result>{result}'
        f"</{operation}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        f"</ResponseMetadata></{operation}Response>"
    )
    return Answer(200, [("Content-Type", "text/xml")], xml.encode())


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
