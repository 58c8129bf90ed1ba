"""What data a run saw: a split's digest against a hand-computed one, the same for the same split
(another copy, another load), another when its images, labels or mask change."""
import hashlib
import json
import shutil

import numpy as np

from trainables.config import resolve
from trainables.data import Split, fingerprint
from trainables.data.sources import load_splits


def splits_of(root):
    return load_splits(resolve({"data": {"root": str(root)}})["data"])


def digests(root) -> dict:
    s = splits_of(root)
    return {c: fingerprint.split_digest(getattr(s, c), s.root, s.labels) for c in ("train", "val", "test")}


def test_digest_of_a_hand_built_split():
    split = Split(paths=["/data/images/a.png", "/data/images/b.png"], labels=np.array([[1, 0], [0, 1]], np.float32),
                  mask=np.array([[True, True], [False, True]]), patients=np.array([1, 2]))
    text = "A\tB" + "\nimages/a.png\t1,0" + "\nimages/b.png\t-1,1"  # b's masked first label: -1
    assert fingerprint.split_digest(split, "/data", ("A", "B")) == hashlib.sha256(text.encode()).hexdigest()[:12]


def test_same_split_same_digest_wherever_the_root_lies(tiny_nih, tmp_path):
    first = digests(tiny_nih)
    assert first == digests(tiny_nih)  # loaded again
    copy = shutil.copytree(tiny_nih, tmp_path / "elsewhere" / "nih")
    assert digests(copy) == first
    assert len(set(first.values())) == 3  # train, val and test differ from each other


def test_digest_changes_with_the_image_list_and_with_a_label(tiny_nih):
    before = digests(tiny_nih)
    test_list = tiny_nih / "test_list.txt"
    names = test_list.read_text().split()
    test_list.write_text("\n".join(names[:-3]) + "\n")  # one test patient fewer
    fewer = digests(tiny_nih)
    assert fewer["test"] != before["test"] and fewer["train"] == before["train"] and fewer["val"] == before["val"]

    entry = tiny_nih / "Data_Entry_2017.csv"
    lines = entry.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(names[0] + ","))
    findings = lines[row].split(",")[1]
    lines[row] = lines[row].replace(findings, "Mass" if findings == "Hernia" else "Hernia", 1)
    entry.write_text("\n".join(lines) + "\n")
    assert digests(tiny_nih)["test"] != fewer["test"]


def test_inputs_name_the_data_its_root_and_its_split_rule(tiny_nih):
    splits = splits_of(tiny_nih)
    train, val = fingerprint.inputs(splits)
    assert (train["name"], train["context"], val["name"], val["context"]) == ("nih train", "train", "nih val", "val")
    assert json.loads(train["source"]) == {"uri": str(splits.root)} and train["source_type"] == "local"
    profile = json.loads(val["profile"])
    assert profile["images"] == len(splits.val) and profile["split"] == splits.description
    assert profile["patients"] == len(set(splits.val.patients.tolist()))
    assert profile["positives"]["Effusion"] == int(splits.val.labels[:, 2].sum())
    (test,) = fingerprint.inputs(splits, ("test",))
    assert test["digest"] == fingerprint.split_digest(splits.test, splits.root, splits.labels)
