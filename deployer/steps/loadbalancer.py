"""loadbalancer: an internet-facing Application Load Balancer in the public subnets, an IP
target group health-checking the app (default /readyz: a revision that cannot reach its
database never becomes healthy, so the circuit breaker rolls it back), listener 80, and 443
with 80 redirecting when a certificate is configured.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from deployer.aws import absent, call, retry_while
from deployer.errors import NotOwnedError
from deployer.inventory import Resource, key_of
from deployer.steps.base import Change, Observed, Outputs, Run, Step, undo_ignoring

COMPONENT = "loadbalancer"
LB_MISSING = ("LoadBalancerNotFound",)
TG_MISSING = ("TargetGroupNotFound",)
LISTENER_MISSING = ("ListenerNotFound",)
# Short: a deploy waits this long for old tasks to drain.
DEREGISTRATION_DELAY = "30"


def _elb(run: Run, operation: str, **params: Any) -> Any:
    return call(run.aws, "elbv2", operation, **params)


class LoadBalancerStep(Step):
    name = COMPONENT
    depends_on = ("network",)

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
        return {
            "lb": lb,
            "tg": tg,
            "listeners": {listener["Port"]: listener for listener in listeners},
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
            Resource(COMPONENT, "elbv2:listener", f"{port}/{listener['Protocol']}", "exists")
            for port, listener in sorted(observed["listeners"].items())
        ]
        return found

    def wanted_ports(self, run: Run) -> set[int]:
        return {80, 443} if run.config.settings.service.certificate_arn else {80}

    def plan(self, run: Run, observed: Observed) -> list[Change]:
        name, path = run.config.prefix, run.config.settings.service.health_check_path
        changes = []
        if observed["lb"] is None:
            changes.append(
                Change(COMPONENT, "create", "elbv2:loadbalancer", name, "internet-facing")
            )
        if observed["tg"] is None:
            changes.append(
                Change(COMPONENT, "create", "elbv2:targetgroup", name, f"health check {path}")
            )
        elif observed["tg"].get("HealthCheckPath") != path:
            changes.append(
                Change(
                    COMPONENT,
                    "update",
                    "elbv2:targetgroup",
                    name,
                    f"health check {observed['tg'].get('HealthCheckPath')} -> {path}",
                )
            )
        changes += [
            Change(COMPONENT, "create", "elbv2:listener", str(port))
            for port in sorted(self.wanted_ports(run) - set(observed["listeners"]))
        ]
        return changes

    def apply(self, run: Run, inputs: dict[str, Outputs]) -> Outputs:
        network = inputs["network"]
        observed = self.observe(run)
        lb = observed["lb"] or self._create_lb(run, network)
        tg = observed["tg"] or self._create_tg(run, network["vpc_id"])
        self._converge_health_check(run, tg)
        for port in sorted(self.wanted_ports(run) - set(observed["listeners"])):
            self._create_listener(run, lb["LoadBalancerArn"], tg["TargetGroupArn"], port)
        scheme = "https" if run.config.settings.service.certificate_arn else "http"
        return {
            "lb_arn": lb["LoadBalancerArn"],
            "target_group_arn": tg["TargetGroupArn"],
            "dns_name": lb["DNSName"],
            "url": f"{scheme}://{lb['DNSName']}",
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
            IpAddressType="ipv4",
            Tags=run.owner.tags(COMPONENT),
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        run.journal.record(
            COMPONENT,
            f"created load balancer {name}",
            undo_ignoring(
                LB_MISSING, lambda: _elb(run, "delete_load_balancer", LoadBalancerArn=arn)
            ),
            made=key_of(arn),
        )
        return dict(lb)

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
            HealthCheckPath=service.health_check_path,
            HealthCheckIntervalSeconds=15,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=3,
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
            Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": DEREGISTRATION_DELAY}
            ],
        )
        return dict(tg)

    def _converge_health_check(self, run: Run, tg: dict[str, Any]) -> None:
        path, old = run.config.settings.service.health_check_path, tg.get("HealthCheckPath")
        if old == path:
            return
        arn = tg["TargetGroupArn"]
        _elb(run, "modify_target_group", TargetGroupArn=arn, HealthCheckPath=path)
        run.journal.record(
            COMPONENT,
            f"changed health check path to {path}",
            lambda: _elb(run, "modify_target_group", TargetGroupArn=arn, HealthCheckPath=old),
        )

    def _create_listener(self, run: Run, lb_arn: str, tg_arn: str, port: int) -> None:
        certificate = run.config.settings.service.certificate_arn
        params: dict[str, Any] = {
            "LoadBalancerArn": lb_arn,
            "Port": port,
            "Protocol": "HTTP",
            "Tags": run.owner.tags(COMPONENT),
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}],
        }
        if port == 443:
            params.update(
                Protocol="HTTPS",
                Certificates=[{"CertificateArn": certificate}],
                SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
            )
        elif certificate:
            params["DefaultActions"] = [
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Protocol": "HTTPS",
                        "Port": "443",
                        "StatusCode": "HTTP_301",
                    },
                }
            ]
        listener = _elb(run, "create_listener", **params)["Listeners"][0]
        arn = listener["ListenerArn"]
        run.journal.record(
            COMPONENT,
            f"created listener {port}",
            undo_ignoring(LISTENER_MISSING, lambda: _elb(run, "delete_listener", ListenerArn=arn)),
            made=key_of(arn),
        )

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
