"""deploy/k8s: every manifest is valid against the Kubernetes API's own schema, and keeps the
rules that schema cannot know: probes, consumer replicas within the partitions, secrets only
from the Secret, a pinned image, a disruption budget per Deployment.

The schemas are the OpenAPI documents of each Kubernetes release as shipped (offline) by
`kubernetes-validate`; strict mode refuses unknown fields, so a misspelt key fails here
rather than being dropped by the API server.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from contracts import topics
from deploy.cli import app as cli_app
from services.common import settings as settings_module
from services.common.kafka import DEFAULT_PARTITIONS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SECRET_NAME = "porchlight-secrets"
CONFIG_NAME = "porchlight-config"
TOPICS_NAME = "porchlight-topics"
# The oldest release still commonly run, and the newest the package ships.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
# Names that carry a credential. DATABASE_URL holds the database password.
SECRET_LIKE = re.compile(r"SECRET|TOKEN|PASSWORD|_KEY$|_SID$|^DATABASE_URL$|_USER$|_USERNAME$")
# The long-running commands; each needs a Deployment.
PROCESSES = ("api", "relay", "notifier", "projector", "autoinvite")
SETTINGS_OF = {
    "api": settings_module.ApiSettings,
    "relay": settings_module.RelaySettings,
    "notifier": settings_module.NotifierSettings,
    "projector": settings_module.ProjectorSettings,
    "autoinvite": settings_module.AutoinviteSettings,
    "migrate": settings_module.CommonSettings,
}


def _kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def _of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in _documents() if doc["kind"] == kind]


def _config_map(name: str) -> dict[str, str]:
    (found,) = [doc for doc in _of_kind("ConfigMap") if doc["metadata"]["name"] == name]
    return found["data"]


def _deployments() -> dict[str, dict]:
    """By process: the first argument of the container's command is the `porchlight` subcommand."""
    return {doc["spec"]["template"]["spec"]["containers"][0]["args"][0]: doc for doc in _of_kind("Deployment")}


def _containers(workload: dict) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return pod["containers"] + pod.get("initContainers", [])


def _workloads() -> list[dict]:
    return _of_kind("Deployment") + _of_kind("Job")


def test_kustomization_lists_every_manifest():
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(version):
    failures = []
    for name, doc in _documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{name} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_a_deployment_per_process_running_a_porchlight_command():
    deployments = _deployments()
    assert set(deployments) == set(PROCESSES)
    commands = {c.name or c.callback.__name__ for c in cli_app.registered_commands}
    assert set(PROCESSES) <= commands
    (job,) = _of_kind("Job")
    assert _containers(job)[0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_readiness_and_liveness_probes():
    for process, deployment in _deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        if process == "api":
            port_names = {p["name"] for p in container["ports"]}
            assert readiness["httpGet"]["path"] == "/readyz" and readiness["httpGet"]["port"] in port_names
            assert liveness["httpGet"]["path"] == "/healthz" and liveness["httpGet"]["port"] in port_names
        else:
            # A background process serves /healthz and /readyz beside its metrics, on
            # METRICS_HOST:METRICS_PORT, bound where kubelet reaches it.
            config = _config_map(CONFIG_NAME)
            assert config["METRICS_HOST"] == "0.0.0.0", process
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["probes"] == int(config["METRICS_PORT"]), process
            assert readiness["httpGet"] == {"path": "/readyz", "port": "probes"}, process
            assert liveness["httpGet"] == {"path": "/healthz", "port": "probes"}, process


def test_resources_requested_and_memory_limited():
    for workload in _workloads():
        for container in _containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), workload["metadata"]["name"]
            assert "memory" in resources["limits"], workload["metadata"]["name"]


def test_consumer_replicas_stay_within_the_partitions():
    partitions = {topic: int(count) for topic, count in _config_map(TOPICS_NAME).items()}
    # What `porchlight migrate` creates; raise both together if topics get more partitions.
    assert partitions == {topic: DEFAULT_PARTITIONS for topic in topics.ALL}
    consumers = {p: d for p, d in _deployments().items() if "porchlight/consumes" in d["metadata"].get("annotations", {})}
    assert set(consumers) == {"notifier", "projector", "autoinvite"}
    for process, deployment in consumers.items():
        annotations = deployment["metadata"]["annotations"]
        per_pod = int(annotations["porchlight/consumers-per-pod"])
        spec = deployment["spec"]
        surge = spec["strategy"].get("rollingUpdate", {}).get("maxSurge", 0)
        assert isinstance(surge, int), "a percentage surge cannot be checked against the partitions"
        for topic in annotations["porchlight/consumes"].split(","):
            most = partitions[topic]
            assert (spec["replicas"] + surge) * per_pod <= most, (
                f"{process}: {spec['replicas']} replicas (+{surge} during a rollout) x {per_pod} consumers "
                f"> {most} partitions of {topic}: the extra consumers would idle"
            )


def test_a_disruption_budget_per_deployment_that_never_blocks_a_drain():
    budgets = _of_kind("PodDisruptionBudget")
    for deployment in _of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (budget,) = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"], deployment["metadata"]["name"]
        else:
            assert budget["spec"]["maxUnavailable"] >= 1


def test_secrets_only_from_the_secret():
    config = _config_map(CONFIG_NAME)
    assert not [key for key in config if SECRET_LIKE.search(key)], "a credential in the ConfigMap"
    assert not _of_kind("Secret"), "ship no Secret: applying it would overwrite the real one"
    for workload in _workloads():
        for container in _containers(workload):
            for source in container.get("envFrom", []):
                assert set(source) <= {"configMapRef", "secretRef"}
                if "secretRef" in source:
                    assert source["secretRef"]["name"] == SECRET_NAME
            for var in container.get("env", []):
                if SECRET_LIKE.search(var["name"]):
                    assert "value" not in var, f"{var['name']} written into {workload['metadata']['name']}"
                    assert var["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, var["name"]


def test_every_required_setting_is_provided():
    """A process whose required variable is missing stops at start; catch it here instead.
    Credentials among them must come from the Secret."""
    config = set(_config_map(CONFIG_NAME))
    workloads = {**_deployments(), "migrate": _of_kind("Job")[0]}
    for process, settings_class in SETTINGS_OF.items():
        (container,) = workloads[process]["spec"]["template"]["spec"]["containers"]
        from_secret = {v["name"] for v in container.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}
        given = config | {v["name"] for v in container.get("env", [])}
        for name, field in settings_class.model_fields.items():
            if not field.is_required():
                continue
            variable = name.upper()
            assert variable in given, f"{process} needs {variable}"
            if field.annotation is SecretStr or SECRET_LIKE.search(variable):
                assert variable in from_secret, f"{process}: {variable} must come from {SECRET_NAME}"


def test_every_credential_setting_can_come_from_the_secret():
    """Each SecretStr setting of a process (a provider token, an SMTP password) is offered from
    the Secret, so a credential added to the settings cannot be left to a ConfigMap or a literal."""
    workloads = {**_deployments(), "migrate": _of_kind("Job")[0]}
    for process, settings_class in SETTINGS_OF.items():
        (container,) = workloads[process]["spec"]["template"]["spec"]["containers"]
        from_secret = {v["name"] for v in container.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}
        for name, field in settings_class.model_fields.items():
            if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation):
                assert name.upper() in from_secret, f"{process}: {name.upper()} is not taken from {SECRET_NAME}"


def test_image_pinned_by_tag():
    for workload in _workloads():
        for container in _containers(workload):
            image = container["image"]
            name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
            assert name and tag and tag != "latest" and "/" not in tag, f"{image} is not pinned"
    for image in _kustomization()["images"]:
        pin = image.get("digest") or image.get("newTag")
        assert pin and pin != "latest", image
