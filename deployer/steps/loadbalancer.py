"""loadbalancer: an internet-facing Application Load Balancer in the public subnets, an IP
target group health-checking the app (default /readyz: a revision that cannot reach its
database never becomes healthy, so the circuit breaker rolls it back), and its listeners.

Behind CloudFront the load balancer has public IPv6 addresses only (CloudFront reaches it
over IPv6): AWS bills each public IPv4 address by the hour, one per zone. Serving a domain
itself, it has public IPv4 addresses, as every viewer needs. Moving between the two, it has
both until the new front door serves, then loses the old family (a retirement).

Behind CloudFront (no domain), listener 80 answers 403 to everything except requests that
carry the secret origin header CloudFront adds (a listener rule forwards those): the load
balancer's own address serves nothing, even from inside CloudFront's address ranges (which
every CloudFront customer shares). With a certificate (a domain's, or the user's), 443 serves
HTTPS with a TLS 1.2+ policy and 80 only redirects to it.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any

from deployer.aws import absent, call, retry_while
from deployer.errors import AwsError, NotOwnedError
from deployer.inventory import Resource, key_of
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring
from deployer.steps.certificate import usable_certificate

COMPONENT = "loadbalancer"
LB_MISSING = ("LoadBalancerNotFound",)
TG_MISSING = ("TargetGroupNotFound",)
LISTENER_MISSING = ("ListenerNotFound",)
RULE_MISSING = ("RuleNotFound",)
# What AWS recommends for HTTPS listeners (the console's default since 2025): TLS 1.3 and
# 1.2 only, forward secrecy, and post-quantum key exchange for the clients that offer it.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
ORIGIN_HEADER = "X-Origin-Verify"
DENY = {
    "Type": "fixed-response",
    "FixedResponseConfig": {
        "StatusCode": "403",
        "ContentType": "text/plain",
        "MessageBody": "Forbidden: this address serves only through the environment's URL.",
    },
}
REDIRECT = {
    "Type": "redirect",
    "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
}
DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"
PUBLIC_IPV6_ONLY = "dualstack-without-public-ipv4"
BOTH_FAMILIES = "dualstack"
ADDRESSES = {
    "ipv4": "public IPv4",
    BOTH_FAMILIES: "public IPv4 and IPv6",
    PUBLIC_IPV6_ONLY: "public IPv6 only",
}


def _elb(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "elbv2", operation, **params)


class LoadBalancerStep(Step):
    name = COMPONENT
    depends_on = ("network", "certificate")

    def observe(self, run: Run) -> Observed:
        name = run.config.prefix
        lbs = absent(run.aws, "elbv2", "describe_load_balancers", LB_MISSING, Names=[name])
        lb = (lbs or {}).get("LoadBalancers", [None])[0]
        tgs = absent(run.aws, "elbv2", "describe_target_groups", TG_MISSING, Names=[name])
        tg = (tgs or {}).get("TargetGroups", [None])[0]
        arns = [r["LoadBalancerArn"] for r in [lb] if r] + [r["TargetGroupArn"] for r in [tg] if r]
        if arns:
            for description in _elb(run, "describe_tags", ResourceArns=arns)["TagDescriptions"]:
                if not run.owner.owns(description.get("Tags")):
                    raise NotOwnedError(
                        f"{description['ResourceArn']} is not managed by nnote-deploy",
                        "rename the app or env in deploy.toml",
                    )
        listeners = (
            _elb(run, "describe_listeners", LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
            if lb
            else []
        )
        by_port = {listener["Port"]: listener for listener in listeners}
        return {
            "lb": lb,
            "tg": tg,
            "listeners": by_port,
            "origin_rule": _origin_rule(run, by_port[80]) if 80 in by_port else None,
            "delay": _delay(run, tg["TargetGroupArn"]) if tg else None,
        }

    def resources(self, observed: Observed) -> list[Resource]:
        found = []
        if observed["lb"]:
            found.append(
                Resource(
                    COMPONENT,
                    "elbv2:loadbalancer",
                    observed["lb"]["DNSName"],
                    observed["lb"]["State"]["Code"],
                )
            )
        if observed["tg"]:
            found.append(
                Resource(
                    COMPONENT,
                    "elbv2:targetgroup",
                    observed["tg"]["TargetGroupName"],
                    observed["tg"].get("HealthCheckPath", ""),
                )
            )
        found += [
            Resource(
                COMPONENT,
                "elbv2:listener",
                f"{port}/{listener['Protocol']}",
                _summary(listener["DefaultActions"]),
            )
            for port, listener in sorted(observed["listeners"].items())
        ]
        if observed["origin_rule"]:
            found.append(
                Resource(COMPONENT, "elbv2:listener-rule", f"80 if {ORIGIN_HEADER}", "forward")
            )
        return found

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        name, path = run.config.prefix, run.config.settings.service.health_check_path
        changes = []
        addresses = ADDRESSES[address_type(run)]
        if observed["lb"] is None:
            detail = f"internet-facing, {addresses}"
            changes.append(Change(COMPONENT, "create", "elbv2:loadbalancer", name, detail))
        elif (current := ADDRESSES[observed["lb"].get("IpAddressType", "ipv4")]) != addresses:
            detail = f"addresses: {current} -> {addresses}"
            changes.append(Change(COMPONENT, "update", "elbv2:loadbalancer", name, detail))
        if observed["tg"] is None:
            changes.append(
                Change(COMPONENT, "create", "elbv2:targetgroup", name, f"health check {path}")
            )
        else:
            changes += [
                Change(COMPONENT, "update", "elbv2:targetgroup", name, f"{key} {old} -> {new}")
                for key, old, new in _health_check_changes(run, observed)
            ]
        certificate = usable_certificate(run.observed.get("certificate"))
        wanted = wanted_listeners(run, tg_arn=None, certificate_arn=certificate)
        for port in sorted(wanted.keys() | observed["listeners"].keys()):
            found = observed["listeners"].get(port)
            if port not in wanted:
                changes.append(Change(COMPONENT, "delete", "elbv2:listener", str(port)))
            elif found is None:
                changes.append(
                    Change(
                        COMPONENT, "create", "elbv2:listener", str(port), _describe(wanted[port])
                    )
                )
            elif not _matches(found, wanted[port]):
                detail = f"{_summary(found['DefaultActions'])} -> {_describe(wanted[port])}"
                changes.append(Change(COMPONENT, "update", "elbv2:listener", str(port), detail))
        behind_cloudfront = run.config.settings.service.behind_cloudfront
        if behind_cloudfront and observed["origin_rule"] is None:
            detail = f"forward only requests with CloudFront's {ORIGIN_HEADER}"
            changes.append(Change(COMPONENT, "create", "elbv2:listener-rule", "80", detail))
        elif not behind_cloudfront and observed["origin_rule"]:
            changes.append(Change(COMPONENT, "delete", "elbv2:listener-rule", "80", "CloudFront's"))
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        network = inputs["network"]
        observed = self.observe(run)
        lb = observed["lb"] or self._create_lb(run, network)
        self._converge_addresses(run, lb)
        tg = observed["tg"] or self._create_tg(run, network["vpc_id"])
        self._converge_health_check(run, tg, observed.get("delay"))
        certificate = inputs.get("certificate", {}).get("certificate_arn")
        wanted = wanted_listeners(run, tg["TargetGroupArn"], certificate)
        listeners = dict(observed["listeners"])
        for port, spec in sorted(wanted.items()):
            if port not in listeners:
                listeners[port] = self._create_listener(run, lb["LoadBalancerArn"], port, spec)
            elif _matches(listeners[port], spec):
                continue
            elif spec["DefaultActions"] == [DENY]:  # the old way in closes once CloudFront serves
                change = partial(self._modify_listener, run, listeners[port], spec)
                run.retire(COMPONENT, f"direct access through listener {port}", change)
            else:
                self._modify_listener(run, listeners[port], spec)
        secret = None
        if run.config.settings.service.behind_cloudfront:
            rule = observed["origin_rule"]
            secret = secret_of(rule) if rule else None
            if secret is None:
                secret = self._create_origin_rule(run, listeners[80], tg["TargetGroupArn"])
        elif observed["origin_rule"]:
            # CloudFront's way in stays open until the new front door serves.
            delete = partial(self._delete_rule, run, observed["origin_rule"]["RuleArn"])
            run.retire(COMPONENT, "the listener rule for CloudFront", delete)
        for port in sorted(listeners.keys() - wanted.keys()):
            delete = partial(self._delete_listener, run, listeners[port])
            run.retire(COMPONENT, f"listener {port}", delete)
        return {
            "lb_arn": lb["LoadBalancerArn"],
            "target_group_arn": tg["TargetGroupArn"],
            "dns_name": lb["DNSName"],
            "zone_id": lb["CanonicalHostedZoneId"],
            "origin_secret": secret,
            "url": f"{'http' if run.config.settings.service.behind_cloudfront else 'https'}://{lb['DNSName']}",
        }

    def _create_lb(self, run: Run, network: Outputs) -> dict[str, Any]:
        name = run.config.prefix
        lb = _elb(
            run,
            "create_load_balancer",
            Name=name,
            Subnets=network["subnet_ids"],
            SecurityGroups=[network["security_groups"]["lb"]],
            Scheme="internet-facing",
            Type="application",
            IpAddressType=address_type(run),
            Tags=run.owner.tags(COMPONENT),
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        _journal_created(run, f"load balancer {name}", LB_MISSING, "delete_load_balancer", arn)
        return dict(lb)

    def _converge_addresses(self, run: Run, lb: dict[str, Any]) -> None:
        """Both address families while the front door moves; the old one goes once the new
        front door serves (CloudFront over IPv6, or viewers over IPv4)."""
        current, wanted = lb.get("IpAddressType", "ipv4"), address_type(run)
        if current == wanted:
            return
        arn, name = lb["LoadBalancerArn"], run.config.prefix
        if current != BOTH_FAMILIES:
            _set_addresses(run, arn, BOTH_FAMILIES)
            run.journal.record(
                COMPONENT,
                f"gave load balancer {name} {ADDRESSES[BOTH_FAMILIES]} addresses",
                partial(_set_addresses, run, arn, current),
            )
        old = "public IPv6" if wanted == "ipv4" else "public IPv4"
        retire = partial(_set_addresses, run, arn, wanted)
        run.retire(COMPONENT, f"the {old} addresses of load balancer {name}", retire)

    def _create_tg(self, run: Run, vpc_id: str) -> dict[str, Any]:
        name, service = run.config.prefix, run.config.settings.service
        tg = _elb(
            run,
            "create_target_group",
            Name=name,
            Protocol="HTTP",
            Port=service.container_port,
            VpcId=vpc_id,
            TargetType="ip",
            **health_check(run),
            Matcher={"HttpCode": "200"},
            Tags=run.owner.tags(COMPONENT),
        )["TargetGroups"][0]
        arn = tg["TargetGroupArn"]
        run.journal.record(
            COMPONENT,
            f"created target group {name}",
            undo_ignoring(TG_MISSING, lambda: self._delete_tg(run, arn)),
            made=key_of(arn),
        )
        _elb(
            run,
            "modify_target_group_attributes",
            TargetGroupArn=arn,
            Attributes=[{"Key": DELAY_ATTRIBUTE, "Value": _wanted_delay(run)}],
        )
        return {**tg, "created": True}

    def _converge_health_check(self, run: Run, tg: dict[str, Any], delay: str | None) -> None:
        """The health check and deregistration delay deploy.toml asks for (a target group made
        by this run has them already)."""
        if tg.get("created"):
            return
        arn, wanted = tg["TargetGroupArn"], health_check(run)
        before = {key: tg.get(key) for key in wanted}
        if before != wanted:
            _elb(run, "modify_target_group", TargetGroupArn=arn, **wanted)
            run.journal.record(
                COMPONENT,
                "changed the target group's health check",
                lambda: _elb(run, "modify_target_group", TargetGroupArn=arn, **before),
            )
        if delay is not None and delay != _wanted_delay(run):
            self._set_delay(run, arn, _wanted_delay(run))
            run.journal.record(
                COMPONENT,
                f"changed the deregistration delay to {_wanted_delay(run)}s",
                lambda: self._set_delay(run, arn, delay),
            )

    @staticmethod
    def _set_delay(run: Run, arn: str, seconds: str) -> None:
        _elb(
            run,
            "modify_target_group_attributes",
            TargetGroupArn=arn,
            Attributes=[{"Key": DELAY_ATTRIBUTE, "Value": seconds}],
        )

    def _create_listener(
        self, run: Run, lb_arn: str, port: int, spec: dict[str, Any]
    ) -> dict[str, Any]:
        listener = _elb(
            run,
            "create_listener",
            LoadBalancerArn=lb_arn,
            Port=port,
            Tags=run.owner.tags(COMPONENT),
            **spec,
        )["Listeners"][0]
        arn = listener["ListenerArn"]
        _journal_created(run, f"listener {port}", LISTENER_MISSING, "delete_listener", arn)
        return dict(listener)

    def _modify_listener(self, run: Run, listener: dict[str, Any], spec: dict[str, Any]) -> None:
        arn = listener["ListenerArn"]
        before = {key: listener[key] for key in spec if key in listener}
        _elb(run, "modify_listener", ListenerArn=arn, **spec)
        run.journal.record(
            COMPONENT,
            f"changed listener {listener['Port']} to {_describe(spec)}",
            lambda: _elb(run, "modify_listener", ListenerArn=arn, **before),
        )

    def _delete_listener(self, run: Run, listener: dict[str, Any]) -> None:
        _elb(run, "delete_listener", ListenerArn=listener["ListenerArn"])
        # The undo makes it again as it was: a new listener, with a new ARN.
        spec = {key: listener[key] for key in LISTENER_FIELDS if listener.get(key)}
        lb_arn, port = listener["LoadBalancerArn"], listener["Port"]

        def undo() -> None:
            self._create_listener(run, lb_arn, port, spec)

        run.journal.record(COMPONENT, f"deleted listener {port}", undo)

    def _create_origin_rule(self, run: Run, listener: dict[str, Any], tg_arn: str) -> str:
        """Forward what carries the secret origin header; the listener denies the rest."""
        secret = secrets.token_urlsafe(32)
        try:
            rule = _elb(
                run,
                "create_rule",
                ListenerArn=listener["ListenerArn"],
                Priority=1,
                Conditions=[
                    {
                        "Field": "http-header",
                        "HttpHeaderConfig": {"HttpHeaderName": ORIGIN_HEADER, "Values": [secret]},
                    }
                ],
                Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
                Tags=run.owner.tags(COMPONENT),
            )["Rules"][0]
        except AwsError as error:
            # Our create went through and its answer was lost: the rule holds our secret.
            rule = _origin_rule(run, listener) if error.code == "PriorityInUse" else None
            if rule is None or secret_of(rule) != secret:
                raise
        arn = rule["RuleArn"]
        what = f"listener rule for {ORIGIN_HEADER}"
        _journal_created(run, what, RULE_MISSING, "delete_rule", arn)
        return secret

    def _delete_rule(self, run: Run, arn: str) -> None:
        """Only `down` and a retirement delete it: neither is ever rolled back."""
        undo_ignoring(RULE_MISSING, lambda: _elb(run, "delete_rule", RuleArn=arn))()

    def _delete_tg(self, run: Run, arn: str) -> None:
        # A target group stays "in use" for a moment after its listener or load balancer goes.
        retry_while(
            ("ResourceInUse",),
            run.dependency_budget_seconds,
            lambda: _elb(run, "delete_target_group", TargetGroupArn=arn),
            delay=min(5.0, run.poll_seconds),
            sleep=run.sleep,
        )

    def destroy(self, run: Run, observed: Observed) -> None:
        if observed["origin_rule"]:
            self._delete_rule(run, observed["origin_rule"]["RuleArn"])
        for listener in observed["listeners"].values():
            undo_ignoring(
                LISTENER_MISSING,
                partial(_elb, run, "delete_listener", ListenerArn=listener["ListenerArn"]),
            )()
        if observed["lb"]:
            undo_ignoring(
                LB_MISSING,
                lambda: _elb(
                    run, "delete_load_balancer", LoadBalancerArn=observed["lb"]["LoadBalancerArn"]
                ),
            )()
        if observed["tg"]:
            undo_ignoring(
                TG_MISSING, lambda: self._delete_tg(run, observed["tg"]["TargetGroupArn"])
            )()


# The ARN parameter of each delete call a created resource's undo makes.
DELETED_BY_ARN = {
    "delete_load_balancer": "LoadBalancerArn",
    "delete_listener": "ListenerArn",
    "delete_rule": "RuleArn",
}


def address_type(run: Run) -> str:
    """The load balancer's addresses: public IPv6 only behind CloudFront, else public IPv4."""
    return PUBLIC_IPV6_ONLY if run.config.settings.service.behind_cloudfront else "ipv4"


def _set_addresses(run: Run, arn: str, kind: str) -> None:
    _elb(run, "set_ip_address_type", LoadBalancerArn=arn, IpAddressType=kind)


def _journal_created(run: Run, what: str, missing: tuple[str, ...], delete: str, arn: str) -> None:
    """Record a creation, undone by its delete call (gone already counts as undone)."""
    undo = partial(_elb, run, delete, **{DELETED_BY_ARN[delete]: arn})
    run.journal.record(COMPONENT, f"created {what}", undo_ignoring(missing, undo), made=key_of(arn))


LISTENER_FIELDS = ("Protocol", "Certificates", "SslPolicy", "DefaultActions")


def wanted_listeners(
    run: Run, tg_arn: str | None, certificate_arn: str | None
) -> dict[int, dict[str, Any]]:
    """Each port's listener as create_listener takes it (ARNs not known yet are left out)."""
    if run.config.settings.service.behind_cloudfront:
        return {80: {"Protocol": "HTTP", "DefaultActions": [DENY]}}
    certificate = certificate_arn or run.config.settings.service.certificate_arn
    https: dict[str, Any] = {
        "Protocol": "HTTPS",
        "SslPolicy": SSL_POLICY,
        "DefaultActions": [{"Type": "forward", **({"TargetGroupArn": tg_arn} if tg_arn else {})}],
    }
    if certificate:
        https["Certificates"] = [{"CertificateArn": certificate}]
    return {443: https, 80: {"Protocol": "HTTP", "DefaultActions": [REDIRECT]}}


def _matches(listener: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a listener already is what `spec` asks for (fields `spec` leaves out match)."""
    if listener.get("Protocol") != spec["Protocol"]:
        return False
    if "SslPolicy" in spec and listener.get("SslPolicy") != spec["SslPolicy"]:
        return False
    if "Certificates" in spec and [c["CertificateArn"] for c in spec["Certificates"]] != [
        c["CertificateArn"] for c in listener.get("Certificates", [])
    ]:
        return False
    actual, wanted = listener.get("DefaultActions", [{}])[0], spec["DefaultActions"][0]
    return all(_same(actual.get(key), value) for key, value in wanted.items())


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(_same(actual.get(k), v) for k, v in wanted.items())
    return bool(actual == wanted)


def _summary(actions: list[dict[str, Any]]) -> str:
    action = actions[0] if actions else {}
    if action.get("Type") == "fixed-response":
        return f"answers {action['FixedResponseConfig'].get('StatusCode')}"
    if action.get("Type") == "redirect":
        return f"redirects to {action['RedirectConfig'].get('Protocol', '').lower()}"
    return str(action.get("Type", "?"))


def _describe(spec: dict[str, Any]) -> str:
    return f"{spec['Protocol']}, {_summary(spec['DefaultActions'])}"


def _origin_rule(run: Run, listener: dict[str, Any]) -> dict[str, Any] | None:
    """Listener 80's rule that forwards requests carrying the secret origin header."""
    rules = _elb(run, "describe_rules", ListenerArn=listener["ListenerArn"])["Rules"]
    for rule in rules:
        if not rule.get("IsDefault") and secret_of(rule):
            return dict(rule)
    return None


def secret_of(rule: dict[str, Any]) -> str | None:
    for condition in rule.get("Conditions", []):
        header = condition.get("HttpHeaderConfig") or {}
        if header.get("HttpHeaderName", "").lower() == ORIGIN_HEADER.lower():
            values = header.get("Values") or []
            return str(values[0]) if values else None
    return None


def health_check(run: Run) -> dict[str, Any]:
    """The target group's health check: the path, and deploy.toml's [service.rollout] timing."""
    service = run.config.settings.service
    rollout = service.rollout
    return {
        "HealthCheckPath": service.health_check_path,
        "HealthCheckIntervalSeconds": rollout.health_check_interval_seconds,
        "HealthCheckTimeoutSeconds": rollout.health_check_timeout_seconds,
        "HealthyThresholdCount": rollout.healthy_threshold,
        "UnhealthyThresholdCount": rollout.unhealthy_threshold,
    }


def _wanted_delay(run: Run) -> str:
    return str(run.config.settings.service.rollout.deregistration_delay_seconds)


def _delay(run: Run, arn: str) -> str | None:
    attributes = _elb(run, "describe_target_group_attributes", TargetGroupArn=arn)["Attributes"]
    return next((a["Value"] for a in attributes if a["Key"] == DELAY_ATTRIBUTE), None)


def _health_check_changes(run: Run, observed: Observed) -> list[tuple[str, Any, Any]]:
    """(what, was, will be) for each health-check setting and the delay that would change."""
    tg = observed["tg"]
    changes = [
        (key, tg.get(key), value)
        for key, value in health_check(run).items()
        if tg.get(key) != value
    ]
    if observed.get("delay") is not None and observed["delay"] != _wanted_delay(run):
        changes.append(("deregistration delay", observed["delay"], _wanted_delay(run)))
    return changes
