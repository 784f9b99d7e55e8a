"""The labelled corpus the model is trained and measured on, split by writer, with a manifest of hashes.

The corpus is a folder of JSON Lines files (one per independent writer) and ``manifest.json``, which says
which files form the ``train``, ``dev`` and ``test`` splits and the SHA-256 of every file. The test split is
frozen: ``load_corpus`` refuses a corpus whose files do not match the manifest, so nothing can be trained or
gated on an edited test split. Labels are never edited to fit an output.

Freezing a folder of writers' files (once, before any tuning), and adding later writers to training::

    python -m service.classification.corpus FROM_DIR TO_DIR --train A B --dev C --test D
    python -m service.classification.corpus FROM_DIR TO_DIR --add --train E F G H
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.classification.results import OTHER

SPLITS = ("train", "dev", "test")
MANIFEST = "manifest.json"
# In a source checkout: the corpus committed with the tests (tipline classify train reads it by default).
DEFAULT_CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "classify" / "corpus"


class CorpusError(ValueError):
    """A corpus file is missing, malformed, or no longer matches the manifest's hash."""


@dataclass(frozen=True)
class Corpus:
    root: Path
    manifest: dict[str, Any]
    splits: dict[str, list[dict[str, Any]]]

    @property
    def test_sha256(self) -> str:
        return str(self.manifest["test_sha256"])


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_labelled(path: Path | str, categories: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Labelled JSON Lines ({id, text, labels}); every line checked, every problem named with its line."""
    path = Path(path)
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8") from exc
    seen: set[Any] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{path.name}:{number}: not JSON")
            continue
        labels = item.get("labels") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not isinstance(labels, list)
        ):
            problems.append(f"{path.name}:{number}: needs string 'text' and list 'labels'")
            continue
        if not labels or not all(isinstance(label, str) for label in labels):
            problems.append(f"{path.name}:{number}: 'labels' must be a non-empty list of category ids")
            continue
        if categories is not None and not set(labels) <= set(categories):
            problems.append(f"{path.name}:{number}: unknown labels {sorted(set(labels) - set(categories))}")
            continue
        if OTHER in labels and len(labels) > 1:
            problems.append(f"{path.name}:{number}: {OTHER!r} stands alone")
            continue
        if item.get("id") is not None:
            key = item["id"]
            if key in seen:
                problems.append(f"{path.name}:{number}: duplicate id {key!r}")
                continue
            seen.add(key)
        items.append(item)
    if problems:
        raise CorpusError("\n  ".join([f"invalid labelled data in {path}:", *problems[:20]]))
    return items


def load_corpus(root: Path | str | None = None, categories: Sequence[str] | None = None) -> Corpus:
    """Read the manifest and the splits, checking every file against its recorded hash."""
    root = Path(root) if root is not None else DEFAULT_CORPUS_DIR
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CorpusError(f"no {MANIFEST} in {root}") from exc
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{root / MANIFEST} is not valid JSON: line {exc.lineno}") from exc
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        items: list[dict[str, Any]] = []
        for name in manifest["splits"][split]:
            path = root / name
            if not path.exists():
                raise CorpusError(f"corpus file {path} is missing")
            if sha256_of(path) != manifest["files"][name]["sha256"]:
                raise CorpusError(f"{path} does not match the manifest's sha256: the corpus is frozen")
            items.extend(read_labelled(path, categories))
        splits[split] = items
    if split_sha256(root, manifest["splits"]["test"]) != manifest["test_sha256"]:
        raise CorpusError("the test split does not match test_sha256: the test split is frozen")
    return Corpus(root, manifest, splits)


def split_sha256(root: Path, names: Sequence[str]) -> str:
    """The hash of a split: SHA-256 over its files' bytes, in the manifest's order."""
    digest = hashlib.sha256()
    for name in names:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _copy_writer(source: Path, target: Path, writer: str, split: str) -> dict[str, Any]:
    """Copy one writer's file (``writer-<X>.jsonl``) into ``target``; its manifest entry."""
    name = f"writer-{writer}.jsonl"
    items = read_labelled(source / name)  # checked before anything is copied
    if any(item.get("writer") not in (None, writer) for item in items):
        raise CorpusError(f"{name} holds reports of another writer")
    shutil.copyfile(source / name, target / name)
    labels: dict[str, int] = {}
    for item in items:
        for label in item["labels"]:
            labels[label] = labels.get(label, 0) + 1
    return {
        "writer": writer,
        "split": split,
        "reports": len(items),
        "labels": dict(sorted(labels.items())),
        "sha256": sha256_of(target / name),
    }


def _write_manifest(target: Path, manifest: dict[str, Any]) -> None:
    (target / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def freeze(source: Path, target: Path, assignment: dict[str, list[str]], extra: Sequence[Path] = ()) -> dict:
    """Copy each writer's file (``writer-<X>.jsonl``) into ``target`` and write the manifest."""
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    splits: dict[str, list[str]] = {}
    for split in SPLITS:
        splits[split] = []
        for writer in assignment[split]:
            name = f"writer-{writer}.jsonl"
            files[name] = _copy_writer(source, target, writer, split)
            splits[split].append(name)
    for path in extra:
        shutil.copyfile(path, target / path.name)
    manifest = {
        "splits": splits,
        "files": files,
        "test_sha256": split_sha256(target, splits["test"]),
        "note": "Split by writer: the test split's writer is never seen in training or tuning. Labels are "
        "the writers' own and are never edited. Frozen before any tuning; load_corpus checks every hash.",
    }
    _write_manifest(target, manifest)
    return manifest


def add_writers(source: Path, target: Path, split: str, writers: Sequence[str]) -> dict:
    """Add further writers' files to the training or dev split of a frozen corpus. The test split, its
    hash and every file already there stay as they are (a writer already in the corpus is refused)."""
    if split == "test":
        raise CorpusError("the test split is frozen: writers are added to train or dev only")
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    test_before = manifest["test_sha256"]
    for writer in writers:
        name = f"writer-{writer}.jsonl"
        if name in manifest["files"]:
            raise CorpusError(f"{name} is already in the corpus")
        manifest["files"][name] = _copy_writer(source, target, writer, split)
        manifest["splits"][split].append(name)
    if split_sha256(target, manifest["splits"]["test"]) != test_before:
        raise CorpusError("the test split changed while adding writers")
    _write_manifest(target, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="freeze writers' files into a corpus split by writer, or (--add) add writers to the "
        "train or dev split of a frozen one"
    )
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--add", action="store_true", help="add the writers given to an existing corpus")
    for split in SPLITS:
        parser.add_argument(f"--{split}", nargs="+", default=[], metavar="WRITER")
    parser.add_argument(
        "--extra", nargs="*", type=Path, default=[], help="files copied alongside (the brief)"
    )
    args = parser.parse_args(argv)
    try:
        if args.add:
            if args.test:
                raise CorpusError("the test split is frozen: writers are added to train or dev only")
            manifest = json.loads((args.target / MANIFEST).read_text(encoding="utf-8"))
            for split in ("train", "dev"):
                if getattr(args, split):
                    manifest = add_writers(args.source, args.target, split, getattr(args, split))
        else:
            if not all(getattr(args, s) for s in SPLITS):
                parser.error("freezing needs --train, --dev and --test")
            manifest = freeze(args.source, args.target, {s: getattr(args, s) for s in SPLITS}, args.extra)
    except CorpusError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps({"splits": manifest["splits"], "test_sha256": manifest["test_sha256"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
