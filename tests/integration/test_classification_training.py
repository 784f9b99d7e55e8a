"""``tipline classify train``: a model trained on the training split (and staff corrections) is put in force
beside its taxonomy only when it is not worse on the frozen test split; every run's comparison is appended
to the history file and audited; an edited test split is refused."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from service.audit.models import AuditEntry
from service.classification import model as artifact
from service.classification.corpus import DEFAULT_CORPUS_DIR, freeze
from service.classification.taxonomy import DEFAULT_TAXONOMY_PATH
from tests.helpers.app import Harness, cli_env, run_cli

PER_WRITER = 45


def _small_corpus(tmp_path: Path) -> Path:
    source = tmp_path / "writers"
    source.mkdir()
    for writer in "ABCD":
        lines = (DEFAULT_CORPUS_DIR / f"writer-{writer}.jsonl").read_text(encoding="utf-8").splitlines()
        (source / f"writer-{writer}.jsonl").write_text("\n".join(lines[:PER_WRITER]) + "\n", encoding="utf-8")
    corpus = tmp_path / "corpus"
    freeze(source, corpus, {"train": ["A", "B"], "dev": ["C"], "test": ["D"]})
    return corpus


def _rules_that_know_nothing(tmp_path: Path) -> Path:
    """The default categories with one meaningless term each: any trained model beats these rules."""
    data = json.loads(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    data["version"] = "test-blank-1"
    for category in data["categories"]:
        category.update(terms={f"zz{category['id']}": 1.0}, patterns=[], counter_terms={})
    path = tmp_path / "blank.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


async def _audited(harness: Harness) -> list[dict]:
    async with harness.runtime.session_factory() as session:
        rows = await session.scalars(
            select(AuditEntry.details)
            .where(AuditEntry.action == "classification.model_trained")
            .order_by(AuditEntry.at, AuditEntry.id)
        )
        return [json.loads(d) for d in rows.all()]


async def test_train_puts_a_better_model_in_force_and_keeps_it_against_a_worse_one(
    harness: Harness, tmp_path: Path
) -> None:
    corpus = _small_corpus(tmp_path)
    taxonomy = _rules_that_know_nothing(tmp_path)
    meta_path, arrays_path = artifact.artifact_paths(taxonomy)
    history = artifact.history_path(taxonomy)
    env = cli_env(harness.data_dir, harness.database_url)
    before = len(await _audited(harness))
    train = ["classify", "train", "--corpus", str(corpus), "--taxonomy", str(taxonomy)]

    result = run_cli(train, env)
    assert result.returncode == 0, result.stderr
    assert "put in force" in result.stdout
    model = artifact.load_model(taxonomy)
    assert model is not None and model.meta["taxonomy_version"] == "test-blank-1"
    first = json.loads(history.read_text(encoding="utf-8").splitlines()[0])
    assert first["accepted"] is True and first["in_force"] == "rules" and first["candidate"] == model.version
    assert first["test_macro_f1"]["candidate"] > first["test_macro_f1"]["in_force"]
    assert first["test_sha256"] == json.loads((corpus / "manifest.json").read_text())["test_sha256"]
    shipped = arrays_path.read_bytes(), meta_path.read_bytes()
    validated = run_cli(["taxonomy", "validate", str(taxonomy)], env)
    assert validated.returncode == 0 and f"model {model.version}" in validated.stdout

    # Staff corrections that call every report `other`: the candidate is worse and is not put in force.
    corrections = tmp_path / "corrections.jsonl"
    texts = [json.loads(line)["text"] for line in (corpus / "writer-A.jsonl").read_text().splitlines()]
    texts += [json.loads(line)["text"] for line in (corpus / "writer-B.jsonl").read_text().splitlines()]
    corrections.write_text(
        "".join(
            json.dumps({"id": f"c{i}-{k}", "text": t, "labels": ["other"]}, ensure_ascii=False) + "\n"
            for k in range(3)
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    result = run_cli([*train, "--corrections", str(corrections)], env)
    assert result.returncode == 3, result.stderr
    assert "not put in force" in result.stdout
    assert (arrays_path.read_bytes(), meta_path.read_bytes()) == shipped
    second = json.loads(history.read_text(encoding="utf-8").splitlines()[1])
    assert second["accepted"] is False and second["in_force"] == model.version
    assert second["training"]["corrections"][0]["rows"] == 3 * len(texts)

    audited = (await _audited(harness))[before:]
    assert [entry["accepted"] for entry in audited] == [True, False]
    assert audited[0]["candidate"] == model.version
    assert all(t not in json.dumps(audited, ensure_ascii=False) for t in texts[:5])  # figures, not reports

    # An edited test split is refused: nothing trained, compared, written or audited.
    test_file = corpus / "writer-D.jsonl"
    test_file.write_text(
        test_file.read_text(encoding="utf-8").replace('"other"', '"vice"', 1), encoding="utf-8"
    )
    result = run_cli(train, env)
    assert result.returncode == 2 and "frozen" in result.stderr
    assert len(history.read_text(encoding="utf-8").splitlines()) == 2
    assert len(await _audited(harness)) == before + 2


async def test_train_refuses_bad_corrections_with_the_line(harness: Harness, tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path)
    taxonomy = _rules_that_know_nothing(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": 1, "text": "所长打牌", "labels": ["vice"]}\n{"id": 2, "text": "x", "labels": ["nope"]}\n'
    )
    env = cli_env(harness.data_dir, harness.database_url)
    result = run_cli(
        [
            "classify",
            "train",
            "--corpus",
            str(corpus),
            "--taxonomy",
            str(taxonomy),
            "--corrections",
            str(bad),
        ],
        env,
    )
    assert result.returncode == 2
    assert "bad.jsonl:2" in result.stderr and "unknown labels" in result.stderr
    assert not artifact.history_path(taxonomy).exists()
    assert artifact.load_model(taxonomy) is None


async def test_train_refuses_settings_out_of_range(harness: Harness, tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path)
    taxonomy = _rules_that_know_nothing(tmp_path)
    env = cli_env(harness.data_dir, harness.database_url)
    train = ["classify", "train", "--corpus", str(corpus), "--taxonomy", str(taxonomy)]
    for bad in (["--nb-weight", "1.5"], ["--nb-weight", "-0.1"], ["--nb-c", "0"], ["--c", "-1"]):
        result = run_cli([*train, *bad], env)
        assert result.returncode == 2, bad
        assert "--nb-weight" in result.stderr and "Traceback" not in result.stderr
    assert not artifact.history_path(taxonomy).exists()
    assert artifact.load_model(taxonomy) is None
