import numpy as np
import pytest

from tests.conftest import write_nih
from trainables.data import NIH_LABELS, DataError
from trainables.data.nih import parse_labels, read_nih


def test_label_parsing_trailing_comma_no_finding_and_multilabel(tmp_path):
    rows = [("a.png", "No Finding", 1), ("b.png", "Cardiomegaly|Effusion", 1),
            ("c.png", "Pleural_Thickening", 2), ("d.png", "Hernia|Atelectasis|Nodule", 3)]
    write_nih(tmp_path, rows, ["a.png", "b.png", "c.png"], ["d.png"])
    df = parse_labels(tmp_path / "Data_Entry_2017.csv").set_index("Image Index")
    assert list(df.columns[1:]) == list(NIH_LABELS)
    assert df.loc["a.png", list(NIH_LABELS)].sum() == 0
    expected_b = np.zeros(14); expected_b[[1, 2]] = 1
    np.testing.assert_array_equal(df.loc["b.png", list(NIH_LABELS)].to_numpy(float), expected_b)
    assert df.loc["c.png", "Pleural_Thickening"] == 1 and df.loc["c.png", list(NIH_LABELS)].sum() == 1
    assert df.loc["d.png", ["Hernia", "Atelectasis", "Nodule"]].tolist() == [1, 1, 1]
    assert not any(c.startswith("Unnamed") for c in df.columns)


def test_official_split_with_patient_disjoint_validation(tiny_nih):
    s = read_nih(tiny_nih, val_fraction=0.1, seed=3)
    assert len(s.train) + len(s.val) == 90 and len(s.test) == 30
    tr, va, te = (set(x.patients) for x in (s.train, s.val, s.test))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(s.val) == 12  # whole patients of 3 images until >= round(0.1 * 120)
    again = read_nih(tiny_nih, val_fraction=0.1, seed=3)
    assert again.val.paths == s.val.paths
    assert read_nih(tiny_nih, val_fraction=0.1, seed=4).val.paths != s.val.paths
    assert s.train.labels.shape == (len(s.train), 14) and s.train.mask.min() == 1


def test_user_split_lists_replace_official(tiny_nih, tmp_path):
    (tmp_path / "tr.txt").write_text("00000001_000.png\n00000002_000.png\n")
    (tmp_path / "va.txt").write_text("00000003_000.png\n")
    (tmp_path / "te.txt").write_text("00000004_000.png\n")
    s = read_nih(tiny_nih, split_lists={"train": tmp_path / "tr.txt", "val": tmp_path / "va.txt",
                                        "test": tmp_path / "te.txt"})
    assert [len(s.train), len(s.val), len(s.test)] == [2, 1, 1]


def test_images_in_numbered_folders_are_found(tmp_path):
    rows = [("a.png", "Mass", 1), ("b.png", "No Finding", 2)]
    write_nih(tmp_path, rows, ["a.png"], ["b.png"], folder="images_001/images")
    s = read_nih(tmp_path, val_fraction=0.4)
    assert all("images_001/images" in p for p in s.train.paths + s.val.paths + s.test.paths)


def test_missing_image_is_named(tiny_nih):
    (tiny_nih / "images" / "00000007_001.png").unlink()
    with pytest.raises(DataError, match="00000007_001.png"):
        read_nih(tiny_nih)


def test_missing_column_and_unknown_label_are_named(tmp_path):
    write_nih(tmp_path, [("a.png", "Mass", 1)], ["a.png"], [])
    csv = tmp_path / "Data_Entry_2017.csv"
    csv.write_text(csv.read_text().replace("Patient ID", "PatientId"))
    with pytest.raises(DataError, match="Patient ID"):
        read_nih(tmp_path)
    write_nih(tmp_path, [("a.png", "Mass|Pleural Thickening", 1)], ["a.png"], [])
    with pytest.raises(DataError, match="Pleural Thickening"):
        read_nih(tmp_path)


def test_list_naming_an_image_absent_from_csv(tiny_nih):
    (tiny_nih / "test_list.txt").write_text("99999999_000.png\n")
    with pytest.raises(DataError, match="99999999_000.png"):
        read_nih(tiny_nih)
