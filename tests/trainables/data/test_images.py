import numpy as np
import pytest
from PIL import Image

from trainables.data import DataError
from trainables.data.images import load_gray, resize_square


@pytest.fixture
def gray():
    return np.random.default_rng(0).integers(0, 256, (24, 20), dtype=np.uint8)


def test_rgba_and_16bit_read_as_the_same_gray_pixels(tmp_path, gray):
    Image.fromarray(gray).save(tmp_path / "l.png")
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    for name in ("l.png", "rgba.png", "16.png"):
        np.testing.assert_array_equal(load_gray(str(tmp_path / name)), gray, err_msg=name)


def test_corrupt_and_missing_images_name_the_file(tmp_path, gray):
    Image.fromarray(gray).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_gray(str(tmp_path / "cut.png"))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="junk.png"):
        load_gray(str(tmp_path / "junk.png"))
    with pytest.raises(DataError, match="gone.png"):
        load_gray(str(tmp_path / "gone.png"))


def test_resize_square_centre_crops_the_longer_side():
    arr = np.zeros((40, 20), dtype=np.uint8)
    arr[10:30] = 200  # the centre 20 rows survive the crop of a 40x20 image
    out = resize_square(arr, 20)
    assert out.shape == (20, 20) and out.min() == 200
