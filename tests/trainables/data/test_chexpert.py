import shutil

import numpy as np
import pytest
from PIL import Image

from trainables.data import DataError
from trainables.data.chexpert import (CHEXPERT_EVAL_LABELS, CHEXPERT_LABELS, MLRFNET_MIXED,
                                      read_chexpert)

HEADER = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)
# One character per observation, in CHEXPERT_LABELS order: 1, 0, u (-1.0), . (blank).
CODES = {"1": "1.0", "0": "0.0", "u": "-1.0", ".": ""}
ALL_U = "u" * 14
CYCLE = "10.u10.u10.u10"  # u at Lung Opacity (3), Pneumonia (7), Pleural Other (11)
BLANK = "." * 14


def write_chexpert(root, train_rows, valid_rows, prefix=None, size=16, ext="jpg"):
    """rows: (patient number, study number, "Frontal" | "Lateral", 14 codes or raw values).

    Writes train.csv / valid.csv as published (Path relative to the root's parent, so it starts
    with `prefix`, the root's own name by default) and a tiny real image for every row.
    """
    prefix = root.name if prefix is None else prefix
    rng = np.random.default_rng(0)
    for split, rows in (("train", train_rows), ("valid", valid_rows)):
        lines, views_in_study = [HEADER], {}
        for patient, study, view, codes in rows:
            k = views_in_study[(patient, study)] = views_in_study.get((patient, study), 0) + 1
            rel = f"{split}/patient{patient:05d}/study{study}/view{k}_{view.lower()}.{ext}"
            values = [CODES[c] for c in codes] if isinstance(codes, str) else list(codes)
            ap_pa = "AP" if view == "Frontal" else ""
            lines.append(",".join([f"{prefix}/{rel}" if prefix else rel, "Female", "63", view, ap_pa, *values]))
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / rel)
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def train_rows(n_patients=20):
    """Per patient: study1 frontal + lateral, study2 frontal; labels cycle so each split has 1s."""
    rows = []
    for p in range(1, n_patients + 1):
        for study, view in ((1, "Frontal"), (1, "Lateral"), (2, "Frontal")):
            codes = "".join("1" if (j + p + study) % 5 == 0 else "0u."[(j + p) % 3] for j in range(14))
            rows.append((p, study, view, codes))
    return rows


VALID_ROWS = [(64541, 1, "Frontal", ALL_U), (64542, 1, "Frontal", CYCLE),
              (64543, 1, "Frontal", BLANK), (64543, 1, "Lateral", "1" * 14)]


@pytest.fixture
def tiny_chexpert(tmp_path):
    return write_chexpert(tmp_path / "CheXpert-v1.0-small", train_rows(), VALID_ROWS)


def lab(name):
    return CHEXPERT_LABELS.index(name)


CYCLE_KNOWN = [1, 0, 0, None, 1, 0, 0, None, 1, 0, 0, None, 1, 0]


def expected(policy_for_u):
    """Rows of VALID_ROWS as (labels, mask) when every u maps to policy_for_u(label index)."""
    u = {"ones": (1, 1), "zeros": (0, 1), "ignore": (0, 0)}
    all_u = [u[policy_for_u(j)] for j in range(14)]
    cycle = [(v, 1) if v is not None else u[policy_for_u(j)] for j, v in enumerate(CYCLE_KNOWN)]
    rows = [all_u, cycle, [(0, 1)] * 14, [(1, 1)] * 14]
    return (np.array([[lv for lv, _ in r] for r in rows], np.float32),
            np.array([[m for _, m in r] for r in rows], np.float32))


MIXED_U = {lab("Atelectasis"), lab("Edema")}  # U-Ones there, U-Zeros everywhere else

POLICY_CASES = {
    "ones": (
        [[1] * 14, [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0], [0] * 14, [1] * 14],
        [[1] * 14] * 4),
    "zeros": (
        [[0] * 14, [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0], [0] * 14, [1] * 14],
        [[1] * 14] * 4),
    "ignore": (
        [[0] * 14, [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0], [0] * 14, [1] * 14],
        [[0] * 14, [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1], [1] * 14, [1] * 14]),
    "mixed": (
        # Edema (5) and Atelectasis (8) are U-Ones; the rest U-Zeros.
        [[0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0],
         [0] * 14, [1] * 14],
        [[1] * 14] * 4),
}


@pytest.mark.parametrize("policy", sorted(POLICY_CASES))
def test_policy_gives_known_labels_and_mask(tiny_chexpert, policy):
    s = read_chexpert(tiny_chexpert, policy=policy)
    labels, mask = POLICY_CASES[policy]
    np.testing.assert_array_equal(s.test.labels, np.array(labels, np.float32))
    np.testing.assert_array_equal(s.test.mask, np.array(mask, np.float32))
    assert s.test.labels.dtype == np.float32 and s.test.mask.dtype == np.float32
    # The literal tables agree with the rule they encode.
    rule = {"ones": lambda j: "ones", "zeros": lambda j: "zeros", "ignore": lambda j: "ignore",
            "mixed": lambda j: "ones" if j in MIXED_U else "zeros"}[policy]
    for got, want in zip((s.test.labels, s.test.mask), expected(rule)):
        np.testing.assert_array_equal(got, want)


def test_mixed_policy_per_label(tiny_chexpert):
    s = read_chexpert(tiny_chexpert)  # "mixed" is the default
    all_uncertain = dict(zip(CHEXPERT_LABELS, s.test.labels[0]))
    for name, rule in MLRFNET_MIXED.items():
        assert all_uncertain[name] == (1.0 if rule == "ones" else 0.0), name
    assert {n for n, v in all_uncertain.items() if v == 1.0} == {"Atelectasis", "Edema"}
    assert s.test.mask.min() == 1
    assert "mixed" in s.description and "ones for Edema, Atelectasis; zeros for the rest" in s.description


def test_dict_policy_and_default_zeros(tiny_chexpert):
    s = read_chexpert(tiny_chexpert, policy={"Edema": "ignore", "Fracture": "ones",
                                             "Cardiomegaly": "zeros"})
    rule = {lab("Edema"): "ignore", lab("Fracture"): "ones"}
    want_labels, want_mask = expected(lambda j: rule.get(j, "zeros"))
    np.testing.assert_array_equal(s.test.labels, want_labels)
    np.testing.assert_array_equal(s.test.mask, want_mask)
    assert s.test.mask[0, lab("Edema")] == 0 and s.test.labels[0, lab("Fracture")] == 1
    # A masked entry never counts as a positive.
    assert s.test.positive_counts()[lab("Edema")] == 1  # only the all-1 row


def test_integer_and_spaced_values_are_read(tmp_path):
    values = [" 1", "-1", "0", ""] + ["1.0"] * 10
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", train_rows(3), [(64541, 1, "Frontal", values)])
    s = read_chexpert(root, policy="ignore")
    np.testing.assert_array_equal(s.test.labels[0, :4], [1, 0, 0, 0])
    np.testing.assert_array_equal(s.test.mask[0, :4], [1, 0, 1, 1])


def test_frontal_only_keeps_frontal_rows(tiny_chexpert):
    everything = read_chexpert(tiny_chexpert)
    assert len(everything.train) + len(everything.val) == 60 and len(everything.test) == 4
    s = read_chexpert(tiny_chexpert, frontal_only=True)
    assert len(s.train) + len(s.val) == 40 and len(s.test) == 3
    assert all(p.endswith("_frontal.jpg") for p in s.train.paths + s.val.paths + s.test.paths)
    # The lateral all-1 row of valid.csv is the one left out; the others keep their order.
    np.testing.assert_array_equal(s.test.labels, everything.test.labels[:3])
    assert "frontal views only" in s.description and "21 lateral" in s.description


def test_val_carved_from_train_csv_by_patient_test_is_valid_csv(tiny_chexpert):
    s = read_chexpert(tiny_chexpert, val_fraction=0.1, seed=3)
    root = tiny_chexpert
    train_csv = {str(root / "train" / f"patient{p:05d}" / f"study{st}" / f"view{k}_{v}.jpg")
                 for p in range(1, 21) for st, k, v in ((1, 1, "frontal"), (1, 2, "lateral"), (2, 1, "frontal"))}
    assert set(s.train.paths) | set(s.val.paths) == train_csv
    assert not set(s.train.paths) & set(s.val.paths)
    assert len(s.val) == 6  # whole patients of 3 images until >= round(0.1 * 60)
    assert s.test.paths == [str(root / "valid" / f"patient{p:05d}" / "study1" / f"view{k}_{v}.jpg")
                            for p, k, v in ((64541, 1, "frontal"), (64542, 1, "frontal"),
                                            (64543, 1, "frontal"), (64543, 2, "lateral"))]
    tr, va, te = (set(x.patients) for x in (s.train, s.val, s.test))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(va) == 2 and all(p.startswith("patient") for p in tr | va | te)
    assert read_chexpert(tiny_chexpert, val_fraction=0.1, seed=3).val.paths == s.val.paths
    assert read_chexpert(tiny_chexpert, val_fraction=0.1, seed=4).val.paths != s.val.paths
    assert "val carved by patient from train.csv" in s.description and "valid.csv" in s.description
    # Each image keeps its own row: labels of a path do not depend on which split it landed in.
    other = read_chexpert(tiny_chexpert, val_fraction=0.1, seed=4)
    by_path = dict(zip(other.train.paths + other.val.paths,
                       np.concatenate([other.train.labels, other.val.labels])))
    for path, row in zip(s.train.paths + s.val.paths, np.concatenate([s.train.labels, s.val.labels])):
        np.testing.assert_array_equal(by_path[path], row)


def test_names_and_eval_labels(tiny_chexpert):
    s = read_chexpert(tiny_chexpert)
    assert s.name == "chexpert" and s.labels == CHEXPERT_LABELS and len(CHEXPERT_LABELS) == 14
    assert s.eval_labels == CHEXPERT_EVAL_LABELS
    assert set(CHEXPERT_EVAL_LABELS) == set(MLRFNET_MIXED) <= set(CHEXPERT_LABELS)
    assert s.train.labels.shape == (len(s.train), 14)


def test_path_resolution_for_renamed_root_and_root_relative_paths(tiny_chexpert, tmp_path):
    # As published: root is .../CheXpert-v1.0-small, Path starts with that name.
    s = read_chexpert(tiny_chexpert)
    assert all(p.startswith(str(tiny_chexpert / "train")) for p in s.train.paths)
    # Root renamed: the first component of Path no longer names it.
    renamed = shutil.copytree(tiny_chexpert, tmp_path / "elsewhere" / "chexpert")
    s = read_chexpert(renamed)
    assert all(p.startswith(str(renamed / "valid")) for p in s.test.paths)
    # A copy whose Path is relative to the root itself.
    flat = write_chexpert(tmp_path / "flat", train_rows(3), VALID_ROWS, prefix="")
    s = read_chexpert(flat)
    assert all(p.startswith(str(flat / "train")) for p in s.train.paths + s.val.paths)
    assert (flat / "train" / "patient00001" / "study1" / "view1_frontal.jpg").is_file()
    # A symlinked root elsewhere.
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "data").symlink_to(tiny_chexpert, target_is_directory=True)
    assert len(read_chexpert(tmp_path / "links" / "data").test) == 4


def test_path_without_patient_folder_and_odd_view_are_named(tiny_chexpert):
    csv = tiny_chexpert / "valid.csv"
    text = csv.read_text()
    csv.write_text(text.replace("valid/patient64542/study1/view1_frontal.jpg,Female,63,Frontal",
                                "valid/patient64542/study1/view1_frontal.jpg,Female,63,Frontl"))
    with pytest.raises(DataError, match=r"1 Frontal/Lateral value\(s\) other than Frontal or Lateral: line 3 'Frontl'"):
        read_chexpert(tiny_chexpert, frontal_only=True)
    moved = tiny_chexpert / "valid" / "p64541.jpg"
    (tiny_chexpert / "valid" / "patient64541" / "study1" / "view1_frontal.jpg").rename(moved)
    csv.write_text(text.replace("valid/patient64541/study1/view1_frontal.jpg", "valid/p64541.jpg"))
    with pytest.raises(DataError, match=r"1 Path value\(s\) name no patientNNNNN folder: CheXpert-v1\.0-small/valid/p64541\.jpg"):
        read_chexpert(tiny_chexpert)


def test_png_images_work(tmp_path):
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", train_rows(3), VALID_ROWS, ext="png")
    s = read_chexpert(root)
    assert all(p.endswith(".png") for p in s.test.paths)


def test_missing_column_is_named(tiny_chexpert):
    csv = tiny_chexpert / "train.csv"
    csv.write_text(csv.read_text().replace("Pleural Effusion", "Effusion"))
    with pytest.raises(DataError, match=r"train\.csv lacks column\(s\) \['Pleural Effusion'\]"):
        read_chexpert(tiny_chexpert)


def test_frontal_column_needed_only_for_frontal_only(tiny_chexpert):
    csv = tiny_chexpert / "valid.csv"
    csv.write_text(csv.read_text().replace("Frontal/Lateral", "View"))
    assert len(read_chexpert(tiny_chexpert).test) == 4
    with pytest.raises(DataError, match="Frontal/Lateral"):
        read_chexpert(tiny_chexpert, frontal_only=True)


def test_bad_value_is_counted_and_located(tmp_path):
    values = ["2.0", "1.0", "yes"] + [""] * 11
    root = write_chexpert(tmp_path / "CheXpert-v1.0-small", train_rows(3),
                          [(64541, 1, "Frontal", BLANK), (64542, 1, "Frontal", values)])
    with pytest.raises(DataError, match=r"valid\.csv has 2 observation value\(s\).*"
                                        r"line 3 'No Finding'='2\.0', line 3 'Cardiomegaly'='yes'"):
        read_chexpert(root)


def test_missing_image_is_named(tiny_chexpert):
    (tiny_chexpert / "train" / "patient00007" / "study2" / "view1_frontal.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) listed in .*train\.csv are missing: "
                                        r"CheXpert-v1\.0-small/train/patient00007/study2/view1_frontal\.jpg"):
        read_chexpert(tiny_chexpert)


def test_missing_csv_is_named(tiny_chexpert):
    (tiny_chexpert / "valid.csv").unlink()
    with pytest.raises(DataError, match=r"valid\.csv.*not found"):
        read_chexpert(tiny_chexpert)


@pytest.mark.parametrize("policy, message", [
    ("u-ones", r"Unknown CheXpert uncertainty policy 'u-ones'; use one of \['ones', 'zeros', 'ignore', 'mixed'\]"),
    ({"Effusion": "ones"}, r"unknown label\(s\) \['Effusion'\]"),
    ({"Edema": "mixed"}, r"unknown value\(s\) \{'Edema': 'mixed'\}.*\['ones', 'zeros', 'ignore'\]"),
    (None, "must be one of"),
])
def test_unknown_policy_is_named(tiny_chexpert, policy, message):
    with pytest.raises(DataError, match=message):
        read_chexpert(tiny_chexpert, policy=policy)


def test_bad_val_fraction(tiny_chexpert):
    with pytest.raises(DataError, match="val_fraction"):
        read_chexpert(tiny_chexpert, val_fraction=0.0)
