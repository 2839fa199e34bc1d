"""nnote-deploy: converge an AWS environment for nnote with boto3 alone.

Commands parse options, call the pipeline and render; nothing here talks to AWS directly.
Heavy modules (boto3, rich, pydantic) are imported inside commands so `--help` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from deployer.cost.report import CostChange
    from deployer.render import Renderer
    from deployer.steps.base import Run

app = typer.Typer(
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help text: rich help formatting imports markdown-it and doubles start-up time.
    rich_markup_mode=None,
    help="Ship nnote to AWS ECS Fargate with boto3 alone: up, plan, status, down.",
)

ConfigOpt = Annotated[Path, typer.Option("--config", help="Path to deploy.toml.")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment in deploy.toml.")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="Override the region.")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile to use.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Tracebacks and AWS request ids.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (CI).")]
LockWaitOpt = Annotated[float, typer.Option("--lock-wait", help="Seconds to wait for the lock.")]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the outcome, timeline and failures as JSON on stdout."),
]
EstimateJsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the estimate as one JSON document on stdout.")
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        "--image", help="Deploy this prebuilt image URI (repo@sha256:...); skip the build."
    ),
]


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("nnote")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"nnote-deploy {number}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Ship nnote to AWS ECS Fargate with boto3 alone: up, plan, status, down."""


@contextmanager
def reported(renderer: Renderer, verbose: bool, detailed: bool = False) -> Iterator[None]:
    """Render any error once, as message + hint, and exit with its code."""
    from deployer.errors import DeployError, ExitCode

    try:
        yield
    except typer.Exit:
        raise
    except DeployError as error:
        if verbose:
            renderer.console.print(traceback.format_exc(), markup=False)
        details = getattr(error, "problems", None) or _rollback_details(error)
        renderer.error(error.message, error.hint, details, error.request_id if verbose else None)
        raise typer.Exit(ExitCode.ERROR if detailed else error.exit_code) from None
    except KeyboardInterrupt:
        renderer.error("interrupted", "run the command again to converge")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception as error:
        if verbose:
            raise
        renderer.error(
            f"unexpected {type(error).__name__}: {error}",
            "run again with --verbose and report the traceback",
        )
        raise typer.Exit(ExitCode.ERROR) from None


def _rollback_details(error: Exception) -> list[str]:
    report = getattr(error, "rollback", None)
    if report is None:
        return [f"kept: {d}" for d in getattr(error, "done", [])]
    return [f"rolled back: {d}" for d in report.undone] + [
        f"could NOT undo: {d} ({why})" for d, why in report.failed
    ]


def _start(
    config: Path,
    env: str,
    region: str | None,
    profile: str | None,
    renderer: Renderer,
    image: str | None = None,
    ttl: str | None = None,
    identify: bool = True,
) -> Run:
    """Validate settings and options (no AWS call, boto3 not even imported), then show who
    and where we are. Commands import the pipeline only after this. A preview's owner
    carries its expiry: now + `ttl` (`up --ttl`), else the default. `identify=False` (for
    `cost`, which needs no account) skips sts:GetCallerIdentity: the header names no
    account."""
    from deployer import config as config_module
    from deployer import validation

    if image is not None:
        validation.check_image_reference(image)
    settings = config_module.load(config, env, region)
    expires = _preview_expiry(settings.preview, ttl)

    from deployer.aws import Aws
    from deployer.inventory import Owner, new_run_id
    from deployer.steps.base import Run

    aws = Aws(region=settings.region, profile=profile)
    account = aws.identity()["account"] if identify else None
    renderer.header(account, aws.region, settings.app, settings.env)
    run = Run(
        aws=aws,
        config=settings,
        owner=Owner(settings.app, settings.env, new_run_id(), expires),
        progress=renderer,
    )
    _tune_for_tests(run)
    return run


def _preview_expiry(preview: bool, ttl: str | None) -> str | None:
    """A preview's `nnote:expires`; `--ttl` on any other environment is a usage error."""
    from datetime import UTC, datetime

    from deployer import previews
    from deployer.errors import ConfigError

    if not preview:
        if ttl is not None:
            raise ConfigError(
                "--ttl is for previews only (pr-<N>); other environments never expire",
                hint="drop --ttl, or deploy a preview: --env pr-<N>",
            )
        return None
    lifetime = previews.parse_ttl(ttl) if ttl is not None else previews.DEFAULT_TTL
    return previews.expiry(datetime.now(UTC), lifetime)


def _tune_for_tests(run: Run) -> None:
    """Shorter polls against an emulator: moto answers at once, real AWS takes minutes."""
    import os

    if os.environ.get("NNOTE_DEPLOY_POLL_SECONDS"):
        run.poll_seconds = float(os.environ["NNOTE_DEPLOY_POLL_SECONDS"])
        run.dependency_budget_seconds = min(run.dependency_budget_seconds, 30 * run.poll_seconds)


def _renderer() -> Renderer:
    from deployer.render import Renderer

    return Renderer()


@app.command()
def up(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    lock_wait: LockWaitOpt = 0,
    image: ImageOpt = None,
    yes: YesOpt = False,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Keep partial work on failure.")
    ] = False,
    as_json: JsonOpt = False,
    ttl: Annotated[
        str | None,
        typer.Option("--ttl", help="A preview's (pr-N) time to live: 12h, 3d (default 3d)."),
    ] = None,
) -> None:
    """Create or converge the environment. A second run changes nothing. A preview (pr-N)
    expires TTL from now; each `up` renews it."""

    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer, image, ttl)
        from deployer import pipeline, preflight
        from deployer.errors import DeployError

        steps = pipeline.deploy_steps(config.resolve().parent, image)
        changes = pipeline.plan(run, steps)
        renderer.changes(changes)
        preflight.for_changes(run, changes, preflight.image_step(steps))
        cost = _cost_change(renderer, run)
        if cost:
            renderer.cost_change(cost)
        if (
            changes
            and not yes
            and not _confirmed(lambda: typer.confirm("Apply these changes?", err=True))
        ):
            renderer.error("not confirmed; nothing was changed", "answer y, or pass --yes (CI)")
            raise typer.Exit(1)
        from deployer import github

        try:
            with renderer.progress():
                result = pipeline.up(
                    run,
                    renderer,
                    rollback=not no_rollback,
                    lock_wait=lock_wait,
                    changes=changes,
                    steps=steps,
                )
            if run.config.preview:
                _renew(renderer, run)
        except DeployError as error:
            _rollout_report(renderer, run, as_json, "up", None, error)
            github.write_summary(
                f"nnote-deploy up: {run.config.env}",
                f"failed: {error.message}",
                _calls(run),
                changes=changes,
                rollout=_rollout_json(run),
                cost=cost.sentence() if cost else None,
            )
            raise
        finally:
            renderer.calls(*_calls(run))
        if result.changes:
            _timing_report(renderer, result)
        _rollout_report(renderer, run, as_json, "up", result.url)
        outputs = github.flat_outputs(result.outputs)
        if result.url:
            outputs["service_url"] = result.url
        github.write_outputs(outputs)
        github.write_summary(
            f"nnote-deploy up: {run.config.env}",
            ("converged" if result.changes else "no changes")
            + (f": {result.url}" if result.url else ""),
            _calls(run),
            changes=result.changes,
            timings=result.timings,
            rollout=_rollout_json(run),
            cost=cost.sentence() if cost and result.changes else None,
        )
        _done(renderer, "up", None if as_json else result.url)


def _renew(renderer: Renderer, run: Run) -> None:
    """Move the preview's expiry on everything it owns (a push to the PR extends its life)."""
    from deployer import previews

    renewal = previews.renew(run.aws, run.owner)
    renderer.line(
        f"preview: expires {renewal.expires} (renewed on {renewal.renewed} resource(s), "
        f"{renewal.unchanged} already so); `nnote-deploy gc` deletes it after then"
    )


def _calls(run: Run) -> tuple[int, int]:
    """AWS calls so far, and how many of them changed something."""
    return run.aws.log.total, run.aws.log.mutating


def _done(renderer: Renderer, command: str, url: str | None) -> None:
    """The last words of `up` and `redeploy`: done (stderr), then the URL, their result."""
    renderer.line(f"{command}: done", "bold green")
    if url:
        renderer.result(url)


def _rollout_json(run: Run) -> dict[str, Any] | None:
    verdict = run.rollout
    if verdict is None:
        phases = run.timeline.as_json()
        return {"timeline": phases, "failures": []} if phases else None
    return dict(verdict.as_json())


def _rollout_report(
    renderer: Renderer,
    run: Run,
    as_json: bool,
    command: str,
    url: str | None,
    error: Exception | None = None,
) -> None:
    """Why the rollout's tasks failed and its timeline (stderr); with --json, the whole
    outcome as one JSON document on stdout, failed or not."""
    verdict = run.rollout
    if verdict is not None:
        renderer.failures(verdict.failures)
    renderer.timeline(run.timeline.phases())
    if not as_json:
        return
    import json

    document: dict[str, Any] = {
        "schema": 1,
        "command": command,
        "env": run.config.env,
        "url": url,
        "outcome": "failed" if error else "completed" if verdict else "unchanged",
        "error": getattr(error, "message", None) if error else None,
        "revision": None,
        "serving_revision": None,
        "why": None,
        "timeline": run.timeline.as_json(),
        "failures": [],
    }
    if verdict is not None:
        document.update({k: v for k, v in verdict.as_json().items() if k != "outcome"})
    renderer.result(json.dumps(document))


def _confirmed(ask: Callable[[], bool]) -> bool:
    """Ask on a terminal; with no terminal to ask on (CI), the answer is no."""
    if not sys.stdin.isatty():
        return False
    try:
        return ask()
    except (typer.Abort, EOFError):
        return False


def _timing_report(renderer: Renderer, result: Any) -> None:
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timings.items())
    renderer.line(
        f"steps: {steps}; sum {sum(result.timings.values()):.1f}s, "
        f"critical path {result.critical_seconds:.1f}s, wall {result.wall_seconds:.1f}s"
    )


def _cost_change(renderer: Renderer, run: Run) -> CostChange | None:
    """What the planned changes do to the monthly cost. A cost that cannot be estimated is
    said in one line, never a failed plan."""
    from deployer import pipeline
    from deployer.errors import DeployError

    try:
        return pipeline.cost_change(run)
    except DeployError as error:
        renderer.line(f"cost: not estimated: {error.message}", "yellow")
    except Exception as error:  # a bug in the estimate must not fail the plan it ends
        renderer.line(f"cost: not estimated: {type(error).__name__}: {error}", "yellow")
    return None


@app.command()
def plan(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    image: ImageOpt = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 for no changes, 1 for an error, 2 for changes."
        ),
    ] = False,
) -> None:
    """Show what `up` would create or change. Read-only."""
    from deployer.errors import ExitCode

    renderer = _renderer()
    with reported(renderer, verbose, detailed_exitcode):
        run = _start(config, env, region, profile, renderer, image)
        from deployer import pipeline

        changes = pipeline.plan(run, pipeline.deploy_steps(config.resolve().parent, image))
        renderer.changes(changes, result=True)
        cost = _cost_change(renderer, run)
        renderer.calls(*_calls(run))
        if cost:  # plan ends with it
            renderer.cost_change(cost)
        from deployer import github

        github.write_summary(
            f"nnote-deploy plan: {run.config.env}",
            f"{len(changes)} change(s) pending" if changes else "no changes",
            _calls(run),
            changes=changes,
            cost=cost.sentence() if cost else None,
        )
    if detailed_exitcode and changes:
        raise typer.Exit(ExitCode.CHANGES)


@app.command()
def cost(
    env: EnvOpt = "staging",
    as_json: EstimateJsonOpt = False,
    config: ConfigOpt = Path("deploy.toml"),
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The monthly cost of the environment deploy.toml describes, line by line, at the AWS
    Price List API's prices (or the table shipped with nnote-deploy). Read-only; works with
    no AWS credentials and no network (then the table prices it, and says so)."""
    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer, identify=False)
        from deployer.cost import report

        estimate = report.of_settings(run)
        if as_json:
            import json

            renderer.result(json.dumps(estimate.as_json()))
        else:
            renderer.cost(estimate)
        renderer.calls(*_calls(run))


@app.command()
def verify(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    image: ImageOpt = None,
) -> None:
    """Check the account before a first `up`: quotas, database, zones, Docker. Read-only."""

    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer, image)
        from deployer import pipeline, preflight

        image_step = preflight.image_step(pipeline.deploy_steps(config.resolve().parent, image))
        checks = preflight.run_all(run, image_step)
        renderer.checks(checks)
        renderer.calls(*_calls(run))
        failed = [c for c in checks if not c.ok]
        if failed:
            renderer.error(
                f"{len(failed)} of {len(checks)} check(s) failed", "fix each as its line says"
            )
            raise typer.Exit(1)
        renderer.line(f"verify: all {len(checks)} checks passed", "bold green")


@app.command()
def status(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Machine-readable: docs/status-schema.json (schema 2)."),
    ] = False,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Every environment of the app: age, expiry (previews), monthly cost."
        ),
    ] = False,
) -> None:
    """The environment's URL and health, then every resource it owns, with its state."""

    renderer = _renderer()
    with reported(renderer, verbose):
        if every:
            _status_all(config, region, profile, renderer, as_json)
            return
        run = _start(config, env, region, profile, renderer)
        from deployer import pipeline, status_report

        resources = pipeline.status(run)
        url = pipeline.url(run)
        if as_json:
            renderer.status_json(status_report.document(run, url, resources))
        else:
            service = status_report.service_summary(run)
            renderer.result(f"url: {url or '(none yet: run `nnote-deploy up`)'}")
            renderer.result(
                f"health: {service['health']} ({service['running']}/{service['desired']} "
                f"tasks running, revision {service['revision'] or '-'})"
            )
            renderer.resources(resources)
        renderer.calls(*_calls(run))


def _status_all(
    config: Path, region: str | None, profile: str | None, renderer: Renderer, as_json: bool
) -> None:
    from datetime import UTC, datetime

    from deployer import config as config_module

    app_config = config_module.load_app(config, region)  # before boto3 is even loaded
    from deployer import overview
    from deployer.aws import Aws

    aws = Aws(region=app_config.region, profile=profile)
    renderer.header(aws.identity()["account"], aws.region, app_config.app, "all")
    now = datetime.now(UTC)
    rows = overview.environments(aws, config, now)
    if as_json:
        import json

        document = {"schema": 1, "app": app_config.app, "region": aws.region}
        document["environments"] = [row.as_json(now) for row in rows]
        renderer.result(json.dumps(document))
    else:
        renderer.environments(rows, now)
    renderer.calls(aws.log.total, aws.log.mutating)


@app.command()
def down(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    lock_wait: LockWaitOpt = 0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for the env name.")] = False,
    delete_snapshots: Annotated[
        bool,
        typer.Option(
            "--delete-snapshots", help="Also delete the snapshots taken before migrations."
        ),
    ] = False,
) -> None:
    """Delete everything this environment owns, then audit for leftovers. The snapshots
    taken before migrations are kept unless --delete-snapshots is given."""
    from deployer.errors import ExitCode

    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer)
        run.delete_snapshots = delete_snapshots
        if not yes and not _confirmed(lambda: _confirm_down(run, renderer)):
            renderer.error(
                "not confirmed; nothing was deleted", "type the name exactly, or pass --yes"
            )
            raise typer.Exit(1)
        if not _down_and_audit(run, renderer, lock_wait):
            raise typer.Exit(ExitCode.LEAKS)


def _down_and_audit(
    run: Run,
    renderer: Renderer,
    lock_wait: float = 0,
    still_wanted: Callable[[], None] | None = None,
) -> bool:
    """`down`'s work once confirmed, for `down` and `gc` alike: the ordered delete, what
    went (stdout), the leak audit and the step summary. False: the audit found leftovers."""
    from deployer import github, pipeline

    with renderer.progress():
        result = pipeline.down(run, renderer, lock_wait=lock_wait, still_wanted=still_wanted)
    renderer.resources(result.deleted, "deleted")
    if result.kept:
        renderer.resources(result.kept, "kept (db.final_snapshot, db.snapshot_before_migrate)")
    renderer.calls(*_calls(run))
    title = f"nnote-deploy down: {run.config.env}"
    if result.leftovers:
        github.write_summary(
            title,
            f"{len(result.leftovers)} resource(s) left behind",
            _calls(run),
            resources=("still tagged and existing", result.leftovers),
        )
        renderer.resources(result.leftovers, "LEAK AUDIT: still tagged and existing")
        renderer.error(
            f"{len(result.leftovers)} resource(s) left behind",
            "delete them by hand or run down again",
        )
        return False
    github.write_summary(
        title,
        f"deleted {len(result.deleted)} resource(s); leak audit: nothing left",
        _calls(run),
        resources=("deleted", result.deleted),
        timings=result.timings,
    )
    renderer.line("leak audit: nothing left", "bold green")
    return True


def _confirm_down(run: Run, renderer: Renderer) -> bool:
    """Show what goes, warn in words when data goes for good, then ask for the env's name."""
    from deployer import pipeline

    existing = pipeline.status(run)
    if existing:
        renderer.resources(existing, "to be deleted", to_stderr=True)
    else:  # down still sweeps what dead runs left (lock leases) and audits for leftovers
        renderer.line(f"{run.config.app}/{run.config.env} owns nothing that status lists")
    database = next((r for r in existing if r.type == "rds:db"), None)
    if database and not run.config.settings.db.final_snapshot:
        renderer.line(
            f"warning: the database {database.id} will be deleted WITHOUT a final snapshot: "
            "every note in it is lost for good",
            "bold red",
        )
        renderer.line(
            f"to keep a snapshot, answer no and set db.final_snapshot = true under "
            f"[env.{run.config.env}] in deploy.toml",
            "yellow",
        )
    question = f"Type the environment name ({run.config.env}) to delete it"
    return bool(typer.prompt(question, default="", err=True) == run.config.env)


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the previews and which have expired.")
    ] = False,
    yes: YesOpt = False,
    config: ConfigOpt = Path("deploy.toml"),
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Delete every preview (pr-N) whose nnote:expires has passed, each as `down` does, with
    its leak audit. Environments named in deploy.toml are never touched."""
    from deployer.errors import ExitCode

    renderer = _renderer()
    with reported(renderer, verbose):
        expired = _expired_previews(config, region, profile, renderer)
        if dry_run or not expired:
            renderer.line(f"gc: {len(expired)} expired preview(s)" + (" (dry run)" * dry_run))
            return
        if not yes and not _confirmed(
            lambda: typer.confirm(f"Delete {len(expired)} expired preview(s)?", err=True)
        ):
            renderer.error("not confirmed; nothing was deleted", "answer y, or pass --yes (CI)")
            raise typer.Exit(1)
        codes = {name: _collect(config, name, region, profile, renderer) for name in expired}
        renewed = [name for name, code in codes.items() if code is None]
        failed = {
            name: code for name, code in codes.items() if code is not None and code != ExitCode.OK
        }
        if failed:
            renderer.error(
                f"gc: {len(failed)} of {len(expired)} preview(s) not fully deleted: "
                + ", ".join(failed),
                "see each one's lines above; run `nnote-deploy gc --yes` again",
            )
            # An error (1) outranks leftovers (5), as in `down`, where an error stops it.
            raise typer.Exit(min(failed.values()))
        kept = f"; kept {len(renewed)} renewed since it was listed" if renewed else ""
        deleted = len(expired) - len(renewed)
        renderer.line(f"gc: deleted {deleted} expired preview(s){kept}", "bold green")


def _expired_previews(
    config: Path, region: str | None, profile: str | None, renderer: Renderer
) -> list[str]:
    """Every preview of the app with its expiry (stdout); the names of the expired ones."""
    from datetime import UTC, datetime

    from deployer import config as config_module
    from deployer import inventory, previews
    from deployer.aws import Aws

    app_config = config_module.load_app(config, region)
    aws = Aws(region=app_config.region, profile=profile)
    renderer.header(aws.identity()["account"], aws.region, app_config.app, "gc")
    listing = inventory.tagged_by_env(aws, app_config.app)
    now = datetime.now(UTC)
    found = [e for e in previews.environments(listing, app_config.declared) if e.preview]
    expired = []
    for env in found:
        when = env.expires.strftime(previews.FORMAT) if env.expires else "(no expiry: kept)"
        state = "live"
        if env.expired(now):
            # The tagging API lists deleted resources for a while: confirm something is left.
            there = previews.still_there(aws, app_config.app, env.name)
            state = "expired" if there else "expired, already deleted"
            expired += [env.name] if there else []
        renderer.result(f"{env.name}\t{state}\t{when}")
    renderer.calls(aws.log.total, aws.log.mutating)
    return expired


def _collect(
    config: Path, env: str, region: str | None, profile: str | None, renderer: Renderer
) -> int | None:
    """One expired preview down, as `down --yes` takes it: its exit code (5 leftovers, or
    the error's), reported here; a failure does not stop the others. None: renewed since
    gc listed it, so kept."""
    from datetime import UTC, datetime

    from deployer import previews
    from deployer.errors import DeployError, ExitCode

    try:
        run = _start(config, env, region, profile, renderer)
        if not run.config.preview:  # a preview by its name, but declared: never collected
            renderer.line(f"gc: {env} is named in deploy.toml; kept", "yellow")
            return ExitCode.OK

        def still_expired() -> None:
            previews.ensure_expired(run.aws, run.owner, datetime.now(UTC))

        return ExitCode.OK if _down_and_audit(run, renderer, 0, still_expired) else ExitCode.LEAKS
    except previews.PreviewRenewed as renewed:
        renderer.line(f"gc: {renewed.message}", "yellow")
        return None
    except DeployError as error:
        renderer.error(f"gc: {env}: {error.message}", error.hint)
        return error.exit_code


@app.command()
def redeploy(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    lock_wait: LockWaitOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Force a new deployment of the running revision and watch it (rolls back on failure)."""

    from deployer import pipeline

    _watched(
        "redeploy",
        (config, env, region, profile, verbose, as_json),
        lambda run, events: pipeline.redeploy(run, events, lock_wait=lock_wait),
    )


@app.command()
def rollback(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    lock_wait: LockWaitOpt = 0,
    to: Annotated[
        int | None,
        typer.Option("--to", help="The release (revision) to go back to; default: the one before."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Even across a schema migration that is not backward compatible "
            "(the database is not changed; the snapshot to restore is named).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Redeploy a recorded release (see `releases`), watched like any rollout. Refused when
    its code expects an older schema than the database's, unless every migration since
    is backward compatible or --force is given."""

    from deployer import pipeline

    def roll_back(run: Run, events: Renderer) -> str:
        run.force_schema = force
        return pipeline.rollback(run, events, to, lock_wait=lock_wait)

    _watched("rollback", (config, env, region, profile, verbose, as_json), roll_back)


def _watched(
    command: str,
    options: tuple[Path, str, str | None, str | None, bool, bool],
    action: Callable[[Run, Renderer], str],
) -> None:
    """A command whose work is one watched rollout, reported as `up` reports its rollout:
    failures and timeline on stderr, the outcome (`--json`) or the URL on stdout."""
    config, env, region, profile, verbose, as_json = options
    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer)
        from deployer import github, pipeline
        from deployer.errors import DeployError

        title = f"nnote-deploy {command}: {run.config.env}"
        try:
            with renderer.progress():
                revision = action(run, renderer)
        except DeployError as error:
            _rollout_report(renderer, run, as_json, command, None, error)
            github.write_summary(
                title, f"failed: {error.message}", _calls(run), rollout=_rollout_json(run)
            )
            raise
        finally:
            renderer.calls(*_calls(run))
        url = pipeline.observed_url(run)
        _rollout_report(renderer, run, as_json, command, url)
        outcome = f"revision {revision} is serving"
        github.write_summary(
            title, outcome + (f": {url}" if url else ""), _calls(run), rollout=_rollout_json(run)
        )
        if url:
            github.write_outputs({"service_url": url})
        renderer.line(f"{command}: {outcome}")
        _done(renderer, command, None if as_json else url)


@app.command("run", context_settings={"allow_extra_args": False, "ignore_unknown_options": True})
def run_task(
    command: Annotated[
        list[str],
        typer.Argument(help="The command, after --: e.g. -- flask --app nnote db current"),
    ],
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the task to end.")
    ] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Run a one-off command as a task of the serving revision, with the service's
    environment and secrets; print its log lines and exit with its exit code."""
    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer)
        from deployer import pipeline
        from deployer.errors import DeployError, ExitCode

        echo = renderer.line if as_json else renderer.result
        try:
            outcome = pipeline.run_command(run, command, echo, timeout)
        except KeyboardInterrupt:  # stops the watching; the command runs on to its end
            renderer.error(
                "interrupted: the task keeps running to its end (its id is above)",
                "follow its lines with `nnote-deploy logs --follow`; do not start it twice",
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        renderer.calls(*_calls(run))
        if as_json:
            import json

            renderer.result(json.dumps({"schema": 1, "command": command, **outcome.as_json()}))
        if outcome.exit_code is None:
            failure = outcome.failure
            raise DeployError(
                f"task {outcome.task_id} stopped before its command ended: "
                + (f"{failure.sentence} ({failure.stopped_reason})" if failure else "no exit code"),
                failure.hint if failure else "see the task in the ECS console",
            )
        renderer.line(
            f"run: task {outcome.task_id} exited with code {outcome.exit_code} "
            f"after {outcome.seconds:.0f}s"
        )
        if outcome.exit_code:
            raise typer.Exit(outcome.exit_code)


@app.command()
def releases(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List the recorded releases, newest first; * marks the one serving. Read-only."""

    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer)
        from deployer import pipeline

        found = pipeline.releases(run)
        if as_json:
            import json

            renderer.result(json.dumps({"schema": 1, "releases": [r.as_json() for r in found]}))
        elif found:
            renderer.releases(found)
        else:
            renderer.line("no releases recorded yet: `nnote-deploy up` records one per rollout")
        renderer.calls(*_calls(run))


@app.command()
def logs(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    since: Annotated[str, typer.Option("--since", help="How far back: 30s, 10m, 2h, 1d.")] = "10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print the service's log lines from CloudWatch (Ctrl-C stops --follow)."""
    from deployer import validation

    renderer = _renderer()
    with reported(renderer, verbose):
        window = validation.parse_since(since)  # a bad value is answered before any AWS call
        run = _start(config, env, region, profile, renderer)
        from deployer import service_logs

        try:
            for line in service_logs.tail(run, window, follow):
                renderer.result(line)
        except KeyboardInterrupt:  # how one stops following: not an error
            return


@app.command()
def unlock(
    config: ConfigOpt = Path("deploy.toml"),
    env: EnvOpt = "staging",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Break the environment's lock (after a run died while holding it)."""
    renderer = _renderer()
    with reported(renderer, verbose):
        run = _start(config, env, region, profile, renderer)
        from deployer.lock import Lock

        lock = Lock(run.aws, run.owner)
        holder = lock.holder()
        if holder is None:
            renderer.result("not locked")
            return
        lock.force_release(holder)
        renderer.result(f"broke the lock of run {holder.get('run')} ({holder.get('owner')})")


@app.command()
def bootstrap(
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            help="The GitHub repository allowed to deploy: OWNER/REPO. Without it only the "
            "permissions boundary of task roles is made (deploys from your own credentials).",
        ),
    ] = "",
    config: ConfigOpt = Path("deploy.toml"),
    envs: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="A GitHub environment allowed (repeat); default: all but acceptance*.",
        ),
    ] = None,
    branches: Annotated[
        list[str] | None,
        typer.Option("--branch", help="A branch allowed without an environment (repeat)."),
    ] = None,
    role_name: Annotated[
        str, typer.Option("--role-name", help="The deploy role's name; default APP-deploy.")
    ] = "",
    preview_env: Annotated[
        str,
        typer.Option(
            "--preview-env",
            help="The GitHub environment of preview.yml's jobs (e.g. preview): also make the "
            "preview role APP-preview-deploy, trusted by it alone, allowed only pr-* envs.",
        ),
    ] = "",
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove the deploy and preview roles, their policies.")
    ] = False,
) -> None:
    """Once per account, as an administrator: task roles' boundary, GitHub's deploy role."""
    from deployer import bootstrap as bootstrapping
    from deployer.aws import Aws

    renderer = _renderer()
    with reported(renderer, verbose):
        target, region_name = bootstrapping.target_from_config(
            config, repo, envs or None, branches or (), role_name, region, preview_env
        )
        aws = Aws(region=region_name, profile=profile)
        identity = aws.identity()
        renderer.header(identity["account"], aws.region, target.app, f"bootstrap {target.role}")
        work = bootstrapping.remove if delete else bootstrapping.bootstrap
        with renderer.progress():
            result = work(aws, target, renderer)
        for title in ("created", "updated", "unchanged", "deleted", "kept"):
            for item in getattr(result, title):
                renderer.result(f"{title}: {item}")
        renderer.calls(aws.log.total, aws.log.mutating)
        if result.role_arn and not delete:
            variables = " and ".join(f"{k}={v}" for k, v in result.variables.items())
            renderer.line(f"set the repository variables {variables}, e.g.:", "bold green")
            for command in result.gh_commands():
                renderer.result(command)


def main() -> Any:
    """Run the CLI. A usage error (unknown option, bad value) exits 3, as deploy.toml errors
    do: click's 2 would read as "changes pending" to a `plan --detailed-exitcode` caller."""
    # typer >= 0.29 vendors click and exports none of its usage errors; older typers use
    # click itself. Tests pin the exit code.
    try:
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
    except ImportError:
        from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment]

    from deployer.errors import ExitCode

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as asked:  # `nnote-deploy` alone: help, as asked, not an error
        typer.echo(asked.format_message())
        code = ExitCode.OK
    except UsageError as error:
        command = error.ctx.command_path if error.ctx else "nnote-deploy"
        _renderer().error(error.format_message(), f"see `{command} --help`")
        code = ExitCode.CONFIG
    except typer.Abort:  # Ctrl-C or end of input outside a command's own handling
        _renderer().error("interrupted", "run the command again to converge")
        code = ExitCode.INTERRUPTED
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
