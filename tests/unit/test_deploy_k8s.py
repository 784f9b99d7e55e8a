"""deploy/k8s: schema-valid (kubernetes-validate's bundled schemas, strict) and the security split holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.app.runtime import key_paths
from service.platform.settings import Settings
from tests.helpers.tools import PIP, require_module

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"
DOCS = [
    (path.name, doc)
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
ROLES = ("intake", "mail", "staff", "worker")


def _kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in DOCS if doc["kind"] == kind}


@pytest.mark.parametrize(
    ("name", "doc"), DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS]
)
def test_manifest_is_valid(name: str, doc: dict) -> None:
    kubernetes_validate = require_module("kubernetes_validate", PIP)
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_deployment_per_role_with_limits_probes_and_a_locked_down_pod() -> None:
    deployments = _kind("Deployment")
    assert set(deployments) == {f"tipline-{role}" for role in ROLES}
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"], name
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"], name
        assert security["capabilities"]["drop"] == ["ALL"] and not security["allowPrivilegeEscalation"]
        assert spec["automountServiceAccountToken"] is False
        tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert tmp["emptyDir"]["medium"] == "Memory"
        if name != "tipline-worker":  # every role that takes files in cleans them in a memory-backed /dev/shm
            scratch = next(v for v in spec["volumes"] if v["name"] == "scratch")
            assert scratch["emptyDir"]["medium"] == "Memory" and scratch["emptyDir"]["sizeLimit"] == "256Mi"
            assert {"name": "scratch", "mountPath": "/dev/shm"} in container["volumeMounts"]


def _mounted_keys(role: str) -> set[str]:
    spec = _kind("Deployment")[f"tipline-{role}"]["spec"]["template"]["spec"]
    keys = next(v for v in spec["volumes"] if v["name"] == "keys")
    return {item["key"] for source in keys["projected"]["sources"] for item in source["secret"]["items"]}


def test_keys_per_role_and_no_private_key_in_the_cluster() -> None:
    # Every role seals to the escrow key (a new clue's content key, a new unit key) and the contact key (a
    # real-name reporter's contact fields); production refuses to start without the escrow key
    # (app.runtime.require_sealing_keys). The file names are the ones the runtime reads.
    paths = key_paths(Settings())
    public = {paths[f"{name}_public"].name for name in ("case", "identity", "escrow", "contact")}
    for role in ROLES:
        assert _mounted_keys(role) == public, role  # staff too: compartments, no private key
    (keys,) = (
        doc for _, doc in DOCS if doc["kind"] == "Secret" and doc["metadata"]["name"] == "tipline-public-keys"
    )
    assert set(keys["stringData"]) == public
    for name, doc in DOCS:
        if doc["kind"] == "Secret":
            assert not any("private" in k for k in doc.get("stringData", {})), name


def test_pdbs_hpa_and_the_migration_job() -> None:
    assert set(_kind("PodDisruptionBudget")) == {f"tipline-{role}" for role in ROLES}
    (hpa,) = _kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tipline-intake"
    (job,) = _kind("Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_network_policies_intake_and_mail_reach_only_the_database() -> None:
    policies = _kind("NetworkPolicy")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }
    for role in ("intake", "mail"):
        egress = policies[role]["spec"]["egress"]
        ports = {(p["protocol"], p["port"]) for rule in egress for p in rule["ports"]}
        assert ports == {("TCP", 5432), ("UDP", 53), ("TCP", 53)}, role  # the database, and DNS to find it
        for rule in egress:
            assert rule["to"], role  # never "anywhere"
    custodial = policies["custodial-isolated"]["spec"]
    assert "Ingress" in custodial["policyTypes"] and custodial["ingress"] == []
    staff_from = [peer for rule in policies["staff"]["spec"]["ingress"] for peer in rule["from"]]
    assert all("ingress-public" not in str(peer) for peer in staff_from)
