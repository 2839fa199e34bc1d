"""A fuzzed deploy.toml: hypothesis edits the committed file (wrong types, missing and unknown
keys, bad CIDRs, overlapping subnets, bad names). Whatever it makes, loading either succeeds
or raises ConfigError naming the edited field; never anything else, never an AWS call."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deployer.config import load
from deployer.errors import ConfigError
from tests.deployer.conftest import ROOT, cli_command

GOOD: dict[str, Any] = tomllib.loads((ROOT / "deploy.toml").read_text())

scalars = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=5,
)
cidrs = st.one_of(
    st.text(max_size=20),
    st.builds(
        "{}.{}.{}.{}/{}".format,
        *[st.integers(0, 300) for _ in range(4)],
        st.integers(0, 40),
    ),
)
names = st.text(st.characters(exclude_categories=("Cs",)), min_size=0, max_size=40)


# The same examples on every run, so CI stays deterministic; tmp_path is reused on purpose.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in tree.items():
        path = (*prefix, key)
        found += leaves(value, path) if isinstance(value, dict) and value else [path]
    return found


def tables(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for key, value in tree.items():
        if isinstance(value, dict):
            found += tables(value, (*prefix, key))
    return found


def edited(path: tuple[str, ...], value: Any = None, delete: bool = False) -> dict[str, Any]:
    document = json.loads(json.dumps(GOOD))
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return document


def string(text: str) -> str:
    """A TOML basic string: JSON's escapes, but raw non-ASCII (TOML has no surrogate pairs)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml(value: Any) -> str:
    """Inline TOML for a JSON-like value (a whole document is one table of these)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{string(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return string(value) if isinstance(value, str) else json.dumps(value)


def written(tmp: Path, document: dict[str, Any]) -> Path:
    path = tmp / "deploy.toml"
    text = "\n".join(f"{string(k)} = {toml(v)}" for k, v in document.items())
    path.write_text(text, encoding="utf-8")
    return path


def loads_or_names(tmp: Path, document: dict[str, Any], field: str) -> ConfigError | None:
    try:
        load(written(tmp, document), "staging")
        load(written(tmp, document), "prod")
    except ConfigError as error:
        text = error.message + "\n" + "\n".join(error.problems)
        assert field in text, f"{field!r} not named in: {text}"
        assert "Traceback" not in text
        return error
    return None


edits = st.one_of(
    st.tuples(st.sampled_from(leaves(GOOD)), values, st.just(False)),
    st.tuples(st.sampled_from(leaves(GOOD)), st.none(), st.just(True)),
    st.tuples(
        st.sampled_from(
            [("defaults", "network", "vpc_cidr"), ("env", "prod", "network", "vpc_cidr")]
        ),
        cidrs,
        st.just(False),
    ),
    st.tuples(
        st.sampled_from([("defaults", "network", "public_subnets")]),
        st.lists(cidrs, max_size=3) | st.just(["10.40.0.0/24", "10.40.0.128/25"]),
        st.just(False),
    ),
    st.tuples(
        st.sampled_from([("app",), ("region",), ("defaults", "db", "name")]), names, st.just(False)
    ),
)


@settings(FUZZ, max_examples=300)
@given(edit=edits)
def test_any_edit_loads_or_names_the_field(tmp_path: Path, edit: tuple[Any, ...]) -> None:
    path, value, delete = edit
    loads_or_names(tmp_path, edited(path, value, delete), path[-1])


@settings(FUZZ, max_examples=100)
@given(
    where=st.sampled_from(tables(GOOD)),
    key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    value=values,
)
def test_unknown_keys_are_always_named(
    tmp_path: Path, where: tuple[str, ...], key: str, value: Any
) -> None:
    document = edited((*where, key), value)
    if document == GOOD or leaves_equal(where, key):
        return
    assert loads_or_names(tmp_path, document, key) is not None, f"{where}.{key} was accepted"


def leaves_equal(where: tuple[str, ...], key: str) -> bool:
    """True when the key is a real setting (an override, not unknown)."""
    node: Any = GOOD
    for part in where:
        node = node.get(part, {})
    return key in node or (where[:1] == ("env",) and len(where) <= 2) or where == ("env",)


@settings(FUZZ, max_examples=6)
@given(edit=edits)
def test_cli_rejects_a_fuzzed_config_with_one_clear_error(
    tmp_path: Path, edit: tuple[Any, ...]
) -> None:
    path, value, delete = edit
    config = written(tmp_path, edited(path, value, delete))
    try:
        load(config, "staging")
        assume(False)  # a valid edit: nothing to reject
    except ConfigError:
        pass
    # An endpoint nobody listens on: an AWS call would end in a connection error, not exit 3.
    done = subprocess.run(
        [*cli_command("plan", config=config)],
        env={
            **os.environ,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "error:" in done.stdout + done.stderr and "hint:" in done.stdout + done.stderr


def subnet_in(vpc: str) -> st.SearchStrategy[str]:
    """Any well-formed block inside `vpc` (strict: the host bits are zero)."""
    network = ipaddress.IPv4Network(vpc)
    return st.integers(min_value=network.prefixlen + 1, max_value=28).flatmap(
        lambda size: st.sampled_from(
            [str(block) for block in list(network.subnets(new_prefix=size))[:64]]
        )
    )


@settings(FUZZ, max_examples=200)
@given(first=subnet_in("10.40.0.0/16"), second=subnet_in("10.40.0.0/16"))
def test_overlapping_subnets_are_refused_and_only_they(
    tmp_path: Path, first: str, second: str
) -> None:
    """The oracle is the standard library's: two blocks inside the VPC load unless they share
    an address, and then the problem names them."""
    document = edited(("defaults", "network", "public_subnets"), [first, second])
    error = loads_or_names(tmp_path, document, "public_subnets")
    overlap = ipaddress.IPv4Network(first).overlaps(ipaddress.IPv4Network(second))
    assert (error is not None) == overlap, (first, second, error and error.problems)
    if error is not None:
        assert f"{first} and {second} overlap" in "\n".join(error.problems)
