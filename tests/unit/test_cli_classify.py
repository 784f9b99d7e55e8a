import io
import json
import subprocess
import sys
from pathlib import Path

from service.cli import classify as cli

ROOT = Path(__file__).resolve().parents[2]


def _run(argv, stdin_text=""):
    out = io.StringIO()
    status = cli.run(argv, io.StringIO(stdin_text), out)
    return status, out.getvalue()


def test_batch_writes_one_line_per_input_in_order():
    lines = [
        {"id": "a", "text": "派出所报案不受理，压着不办"},
        {"id": 2, "text": "楼上邻居装修噪音太大"},
        {"id": None, "text": "那个所长有问题，大家都知道"},
    ]
    status, output = _run([], "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    assert status == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert [r["id"] for r in rows] == ["a", 2, None]
    for row in rows:
        assert {"id", "labels", "needs_triage", "scores", "evidence", "taxonomy_version"} <= set(row)
    assert rows[0]["labels"] == ["case_suppression"]
    assert rows[1]["labels"] == ["other"]
    # A vague report: sent to a person exactly when no category is probable enough (the shipped model
    # gives it a low-confidence label; tests/unit/test_classification_engine.py covers the triage side).
    assert rows[2]["needs_triage"] is (rows[2]["labels"] == [])
    assert max(rows[2]["scores"].values()) < 0.5


def test_bad_lines_are_reported_without_echoing_text_and_fail_the_run():
    # (The bare "法官收红包" is a near tie between interference and other for the model in force: very short
    # reports are a known weak spot, docs/classification.md.)
    status, output = _run(
        [], '{"id": 1, "text": "张法官收了对方的红包，判决明显偏向对方"}\nnot json 13812345678\n{"id": 3}\n'
    )
    rows = [json.loads(line) for line in output.splitlines()]
    assert status == 1
    assert rows[0]["labels"] == ["interference"]
    assert rows[1] == {"id": None, "line": 2, "error": "JSONDecodeError"}
    assert rows[2]["error"] == "KeyError"
    assert "13812345678" not in output


def test_eval_prints_per_category_scores_and_macro_f1_last(tmp_path):
    data = tmp_path / "labelled.jsonl"
    items = [
        {"id": 1, "text": "派出所报案不受理，压着不办", "labels": ["case_suppression"]},
        {"id": 2, "text": "楼上邻居装修噪音太大", "labels": ["other"]},
        {"id": 3, "text": "请联系我", "labels": ["other"]},
        {"id": 4, "text": "法官收红包，吃了原告吃被告", "labels": ["interference", "case_suppression"]},
    ]
    data.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in items), encoding="utf-8")
    status, output = _run(["--eval", str(data)])
    assert status == 0
    lines = output.strip().splitlines()
    assert lines[-1] == "macro-F1: 0.889"
    per_category = {line.split()[0]: line.split()[1:] for line in lines[1:-2]}
    assert set(per_category) == {"case_suppression", "interference", "other"}
    assert per_category["other"] == ["2", "1.000", "1.000", "1.000"]
    assert per_category["case_suppression"] == ["2", "1.000", "0.500", "0.667"]


def test_eval_rejects_unlabelled_or_missing_files(tmp_path):
    data = tmp_path / "x.jsonl"
    data.write_text('{"id": 1, "text": "x"}\n', encoding="utf-8")
    assert _run(["--eval", str(data)])[0] == 2
    assert _run(["--eval", str(tmp_path / "missing.jsonl")])[0] == 2


def test_module_entry_point_reads_stdin():
    completed = subprocess.run(
        [sys.executable, "-m", "service.cli.classify"],
        input='{"id": "x", "text": "所长是黑社会的保护伞"}\n',
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(completed.stdout)["labels"] == ["gang_protection"]


def test_eval_accepts_several_files_such_as_exported_corrections(tmp_path):
    from service.classification import classifier

    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        json.dumps({"id": 1, "text": "楼上邻居装修噪音太大", "labels": ["other"]}) + "\n", encoding="utf-8"
    )
    corrections = tmp_path / "corrections.jsonl"
    line = classifier.labelled_example(
        example_id="c1", text="所长是黑社会的保护伞", labels=["gang_protection"]
    )
    corrections.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    status, output = _run(["--eval", str(dev), "--eval", str(corrections)])
    assert status == 0
    assert "reports: 2" in output
    assert output.strip().splitlines()[-1] == "macro-F1: 1.000"
