"""Resolve `data.root` to Splits: the embedded synthetic set, a ChestX-ray14 root or a CheXpert root."""
from __future__ import annotations

from pathlib import Path

from trainables.data import DataError, Splits


def detect(root: Path) -> str:
    if (root / "train.csv").is_file() and (root / "valid.csv").is_file():
        return "chexpert"
    if any(root.glob("Data_Entry_2017*.csv")):
        return "nih"
    raise DataError(f"{root} is neither a ChestX-ray14 root (Data_Entry_2017*.csv, split lists, "
                    "images_0NN/) nor a CheXpert root (train.csv, valid.csv). Pass the folder "
                    "that holds those files.")


def resolve_root(root) -> Path:
    if root is None:
        from trainables.data import synthetic
        return synthetic.ensure()
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"data root {path} does not exist or is not a directory")
    return path.resolve()


def load_splits(data_cfg: dict) -> Splits:
    root = resolve_root(data_cfg["root"])
    kind = data_cfg["dataset"] if data_cfg["dataset"] != "auto" else detect(root)
    if kind == "nih":
        from trainables.data.nih import read_nih
        return read_nih(root, val_fraction=data_cfg["val_fraction"], seed=data_cfg["split_seed"])
    from trainables.data.chexpert import read_chexpert
    return read_chexpert(root, policy=data_cfg["policy"], frontal_only=data_cfg["frontal_only"],
                         val_fraction=data_cfg["val_fraction"], seed=data_cfg["split_seed"])


def is_synthetic(splits: Splits) -> bool:
    from trainables.data import synthetic
    return (Path(splits.root) / synthetic.MARKER).is_file()


def dataset_label(splits: Splits) -> str:
    """The dataset's name in tags, titles and reports: the embedded set is never called 'nih'."""
    return "synthetic ChestX-ray14" if is_synthetic(splits) else splits.name
