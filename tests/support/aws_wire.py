"""AWS requests and answers as they travel on the wire, read back into boto3's terms.

The realism layer (tests/support/realism.py) sits in front of the moto server, so it sees
every call, from the tests' own process and from the CLI subprocesses alike, as HTTP. This
module turns such a request back into (service, operation, parameters) shaped as boto3 takes
them, using botocore's own service models, and writes errors the way each protocol does:
JSON (X-Amz-Target), Query and EC2 (form-encoded `Action=`) and REST-XML (CloudFront, Route 53:
the HTTP method and path matched against each operation's `requestUri` template, with members
in the path, the query string, headers and the XML body).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.etree import ElementTree

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
    "cloudwatch",
    "service-quotas",
    "acm",
    "route53",
    "cloudfront",
)
REST_PROTOCOLS = ("rest-xml",)
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
    path: str = ""  # REST calls: "POST /2013-04-01/hostedzone/Z1/rrset/" (method, raw path)


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
    candidates = _by_signing_name().get(signing_name, [])
    if candidates and protocol_of(candidates[0]) in REST_PROTOCOLS:
        return _read_rest(environ, body, candidates[0], region, access_key)
    form = dict(parse_qsl(body.decode() or environ.get("QUERY_STRING", ""), keep_blank_values=True))
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


# -- REST-XML: method and path, query string, headers, an XML body -------------------------


def _read_rest(
    environ: dict[str, Any], body: bytes, service: str, region: str, access_key: str
) -> WireCall | None:
    """A REST-XML request read back, the inverse of botocore's RestXMLSerializer: the
    operation whose method and `requestUri` template (labels, literal query keys) the request
    matches, its `uri`, `querystring` and `header` members, and the XML body (the payload
    member's, else the input shape's other members)."""
    method = environ.get("REQUEST_METHOD", "GET")
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?", 1)[0]
    path = raw or str(environ.get("PATH_INFO", ""))
    query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    found = _rest_operation(service, method, path, query)
    if found is None:
        return None
    operation, labels = found
    model = service_model(service).operation_model(operation)
    shape = model.input_shape
    params: dict[str, Any] = {}
    if shape is not None:
        params = _rest_members(shape, labels, query, environ)
        try:
            params.update(_rest_body(shape, body))
        except ElementTree.ParseError:
            return None  # not a request botocore would send: refused as unreadable
    return WireCall(service, operation, params, region, access_key, "rest-xml", f"{method} {path}")


@cache
def _rest_templates(service: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], str]]:
    """(method, path pattern, literal query keys "k" or "k=v", operation) of each operation,
    the most specific first: more literal query keys, then fewer labels in the path."""
    model = service_model(service)
    found = []
    for operation in model.operation_names:
        http = model.operation_model(operation).http
        uri, _, literal = http["requestUri"].partition("?")
        pattern = "".join(
            f"(?P<{_label_group(part)}>.+)"
            if part.endswith("+}")
            else f"(?P<{_label_group(part)}>[^/]+)"
            if part.startswith("{")
            else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", uri)
        )
        keys = tuple(k for k in literal.split("&") if k)
        found.append((http["method"], re.compile(pattern), keys, operation))
    return sorted(found, key=lambda t: (-len(t[2]), t[1].pattern.count("(?P<")))


def _label_group(part: str) -> str:
    return "L_" + re.sub(r"\W", "_", part.strip("{}+"))


def _rest_operation(
    service: str, method: str, path: str, query: list[tuple[str, str]]
) -> tuple[str, dict[str, str]] | None:
    given = dict(query)
    for wanted_method, pattern, keys, operation in _rest_templates(service):
        if wanted_method != method:
            continue
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if not all(_has_literal(given, key) for key in keys):
            continue
        return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def _has_literal(given: dict[str, str], key: str) -> bool:
    name, equals, value = key.partition("=")
    return name in given and (not equals or given[name] == value)


def _rest_members(
    shape: Any, labels: dict[str, str], query: list[tuple[str, str]], environ: dict[str, Any]
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            value = labels.get(_label_group(wire_name))
            if value is not None:
                params[name] = _scalar(member.type_name, value)
        elif location == "querystring":
            values = [v for k, v in query if k == wire_name]
            if values and member.type_name == "list":
                params[name] = [_scalar(member.member.type_name, v) for v in values]
            elif values and member.type_name != "map":
                params[name] = _scalar(member.type_name, values[-1])
        elif location == "header":
            header = environ.get("HTTP_" + wire_name.upper().replace("-", "_"))
            if header is not None:
                params[name] = _scalar(member.type_name, header)
    return params


def _rest_body(shape: Any, body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    root = ElementTree.fromstring(body)
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            return {payload: body.decode()}
        return {payload: _from_xml(member, root)}
    return dict(_from_xml(shape, root) or {})


def _tag(node: ElementTree.Element) -> str:
    return node.tag.rsplit("}", 1)[-1]


def _from_xml(shape: Any, node: ElementTree.Element) -> Any:
    """One XML element read as `shape`, the inverse of botocore's RestXMLSerializer."""
    kind = shape.type_name
    if kind == "structure":
        found: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue  # in the path, query string or headers, never the body
            wire_name = member.serialization.get("name", name)
            if member.serialization.get("xmlAttribute"):
                if wire_name in node.attrib:
                    found[name] = node.attrib[wire_name]
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                items = [c for c in node if _tag(c) == wire_name]
                if items:
                    found[name] = [_from_xml(member.member, c) for c in items]
                continue
            child = next((c for c in node if _tag(c) == wire_name), None)
            if child is not None:
                found[name] = _from_xml(member, child)
        return found
    if kind == "list":
        item_name = shape.member.serialization.get("name", "member")
        return [_from_xml(shape.member, c) for c in node if _tag(c) == item_name]
    if kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        entries: dict[str, Any] = {}
        for entry in node:
            key = next((c for c in entry if _tag(c) == key_name), None)
            value = next((c for c in entry if _tag(c) == value_name), None)
            if key is not None and value is not None:
                entries[key.text or ""] = _from_xml(shape.value, value)
        return entries
    return _scalar(kind, node.text or "")


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
    elif call.protocol == "rest-xml":
        # CloudFront and Route 53: the ErrorResponse in the service's namespace, the request
        # id in a header too (botocore reads either).
        namespace = _rest_namespace(call.service)
        xml = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{text}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return Answer(status, headers, xml.encode())
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


@cache
def _rest_namespace(service: str) -> str:
    """The XML namespace a REST-XML service's documents carry (its requests declare it)."""
    model = service_model(service)
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        for candidate in [shape, *(shape.members.values() if shape is not None else [])]:
            namespace = (candidate.serialization if candidate is not None else {}).get(
                "xmlNamespace"
            )
            if namespace:
                return str(namespace["uri"] if isinstance(namespace, dict) else namespace)
    return ""


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
