"""The `nnote-deploy` console script: checks that the deploy extra is installed, then runs
`deployer.cli:main`.

The distribution `nnote` installs both products; nnote-deploy's dependencies come only with
`nnote[deploy]`. Installed without them, the command would die on an ImportError traceback;
this says so in two lines instead, and exits 1.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

# The deploy extra's top-level modules (pyproject.toml, [project.optional-dependencies]).
DEPENDENCIES = ("boto3", "botocore", "typer", "rich", "pydantic", "docker")


def missing(modules: tuple[str, ...] = DEPENDENCIES) -> list[str]:
    """Those of `modules` that are not installed, found without importing any of them."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # already imported, without a spec: present
            found = True
        if not found:
            absent.append(name)
    return absent


def main() -> Any:
    absent = missing()
    if absent:
        print(
            f"error: nnote-deploy needs the deploy extra; not installed: {', '.join(absent)}\n"
            "hint: pip install 'nnote[deploy]' (in a clone: uv sync --frozen --extra deploy)",
            file=sys.stderr,
        )
        sys.exit(1)
    from deployer.cli import main as cli_main

    try:
        return cli_main()
    except KeyboardInterrupt:  # Ctrl-C after the command's own handling ended: still 130
        sys.exit(130)
