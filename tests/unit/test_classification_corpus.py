"""The independent corpus is frozen: every file matches the manifest, the test split matches the hash recorded
in docs/classification.md, and the split is by writer (no writer in two splits)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from service.classification import classifier
from service.classification.corpus import CorpusError, add_writers, load_corpus, read_labelled

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "classify" / "corpus"
# Recorded when the corpus was committed, before any tuning (also in docs/classification.md).
TEST_SPLIT_SHA256 = "2db49c05caa7670043e1b66ef0b10f5e90487f5537d98fa45e5ded8e798d1886"


def test_corpus_matches_its_manifest_and_the_recorded_test_hash():
    corpus = load_corpus(CORPUS, classifier.current_taxonomy().category_ids)
    assert corpus.test_sha256 == TEST_SPLIT_SHA256
    docs = (ROOT / "docs" / "classification.md").read_text(encoding="utf-8")
    assert TEST_SPLIT_SHA256 in docs
    assert sum(len(items) for items in corpus.splits.values()) >= 1500
    writers = {split: {item["writer"] for item in items} for split, items in corpus.splits.items()}
    assert writers == {"train": set("ABEFGHIJKLMNOPQRSTUVWX"), "dev": {"C"}, "test": {"D"}}
    assert (CORPUS / "BRIEF.md").exists()


def test_an_edited_test_split_is_refused(tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    path = copy / "writer-D.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[0])
    item["labels"] = ["other"] if item["labels"] != ["other"] else ["vice"]
    lines[0] = json.dumps(item, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="frozen"):
        load_corpus(copy)


def test_writers_are_added_to_training_and_never_to_the_test_split(tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "writer-Z.jsonl").write_text(
        '{"id": "Z-1", "writer": "Z", "text": "派出所所长开了一家KTV", "labels": ["illegal_business"]}\n'
        '{"id": "Z-2", "writer": "Z", "text": "楼上装修太吵", "labels": ["other"]}\n',
        encoding="utf-8",
    )
    before = (copy / "manifest.json").read_text(encoding="utf-8")
    with pytest.raises(CorpusError, match="frozen"):
        add_writers(staging, copy, "test", ["Z"])
    with pytest.raises(CorpusError, match="already in the corpus"):
        add_writers(CORPUS, copy, "train", ["A"])
    assert (copy / "manifest.json").read_text(encoding="utf-8") == before  # refused: nothing changed
    manifest = add_writers(staging, copy, "train", ["Z"])
    entry = manifest["files"]["writer-Z.jsonl"]
    assert entry["reports"] == 2 and entry["labels"] == {"illegal_business": 1, "other": 1}
    corpus = load_corpus(copy)
    assert corpus.test_sha256 == TEST_SPLIT_SHA256
    assert {item["writer"] for item in corpus.splits["train"]} >= {"Z"}
    (staging / "writer-Y.jsonl").write_text(
        '{"id": "Y-1", "writer": "Z", "text": "x", "labels": ["other"]}\n', encoding="utf-8"
    )
    with pytest.raises(CorpusError, match="another writer"):
        add_writers(staging, copy, "train", ["Y"])
    assert not (copy / "writer-Y.jsonl").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"id": 1, "text": "x"}', "needs string 'text' and list 'labels'"),
        ('{"id": 1, "text": "x", "labels": []}', "non-empty list"),
        ('{"id": 1, "text": "x", "labels": ["nope"]}', "unknown labels"),
        ('{"id": 1, "text": "x", "labels": ["other", "vice"]}', "stands alone"),
    ],
)
def test_bad_labelled_lines_are_named_with_their_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 0, "text": "ok", "labels": ["vice"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(message)) as caught:
        read_labelled(path, classifier.current_taxonomy().category_ids)
    assert "bad.jsonl:2" in str(caught.value)
