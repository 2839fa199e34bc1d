"""Run one real `nnote-deploy` command and save what its terminal showed as an SVG.

    python scripts/captures.py OUT.svg [--expect CODE] [--title TITLE] -- plan --env staging

scripts/captures runs it against the AWS emulator (scripts/lib/emulator.sh) for each image
in docs/captures/. The command runs in this process exactly as the console script runs it
(`deployer.cli.main`), with one change: both of the renderer's consoles, progress and
errors (stderr) and results (stdout), are one recording console that acts as a 100-column
colour terminal. It is not interactive, so the live progress lines, transient on a real
terminal, leave nothing: the image keeps what a terminal shows once the command has ended.
Long lines are wrapped at 100 columns (a terminal would wrap them; an SVG would cut them).
The SVG is rich's own export; the plain text goes to stdout for the person running it.
"""

from __future__ import annotations

import argparse
import io
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

WIDTH = 100


class Terminal(Console):
    """A console that wraps every line at its width. The CLI's own consoles soft-wrap (long
    lines are the terminal's to wrap); an SVG export would crop them at the width instead."""

    def print(self, *objects: Any, **options: Any) -> None:
        super().print(*objects, **{**options, "soft_wrap": False})


def recording_console() -> Console:
    return Terminal(
        file=io.StringIO(),
        record=True,
        width=WIDTH,
        force_terminal=True,
        force_interactive=False,  # rich's Live draws no frames: nothing transient is recorded
        color_system="truecolor",
        highlight=False,
        legacy_windows=False,
    )


def run(args: list[str], console: Console) -> int:
    """`nnote-deploy ARGS` in this process, its renderer printing to `console`."""
    from deployer import cli
    from deployer.render import Renderer

    cli._renderer = lambda: Renderer(console=console, out=console)
    console.print(f"[bold green]$[/] [bold]nnote-deploy {shlex.join(args)}[/]")
    sys.argv = ["nnote-deploy", *args]
    try:
        cli.main()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        usage="%(prog)s OUT.svg [--expect CODE] [--title TITLE] -- NNOTE-DEPLOY ARGS...",
        description=__doc__.split("\n", 1)[0],
    )
    parser.add_argument("svg", type=Path, help="where to write the SVG")
    parser.add_argument("--expect", type=int, default=0, help="the exit code the command must give")
    parser.add_argument("--title", help="the window's title (default: nnote-deploy COMMAND)")
    own, args = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    options = parser.parse_args(own)
    if not args:
        parser.error("give nnote-deploy's arguments after --, e.g. -- plan")
    console = recording_console()
    code = run(args, console)
    print(console.export_text(clear=False), end="")
    if code != options.expect:
        print(f"captures: `nnote-deploy {shlex.join(args)}` exited {code}, not {options.expect}")
        return 1
    options.svg.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(options.svg), title=options.title or f"nnote-deploy {args[0]}")
    print(f"captures: wrote {options.svg} (exit code {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
