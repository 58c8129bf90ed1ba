"""Device augmentation (run here on the CPU) against the CPU path: drawn parameters, outputs."""
import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torchvision import transforms as T

from tests.trainables.data.augment_cases import OUT, SIZE, cpu_path, gray_levels, params, smooth_row
from trainables.data.device_augment import DeviceAugment, augment, center_crop, draw_crops, draw_params
from trainables.data.transforms import CROP_RATIO, eval_transform, normalize_gray

N = 4000


def _torchvision_crops(scale_min):
    torch.manual_seed(0)
    image = torch.zeros(1, SIZE, SIZE)
    return np.array([T.RandomResizedCrop.get_params(image, (scale_min, 1.0), CROP_RATIO) for _ in range(N)])


@pytest.mark.parametrize("scale_min", [0.7, 0.3])
def test_crop_boxes_follow_torchvisions_distribution(scale_min):
    torch.manual_seed(1)
    ours = draw_crops(N, SIZE, scale_min, "cpu").numpy()
    theirs = _torchvision_crops(scale_min)  # (top, left, h, w), as ours
    for k, name in enumerate(("top", "left", "height", "width")):
        assert ks_2samp(ours[:, k], theirs[:, k]).pvalue > 0.01, name
    assert ((ours[:, 2:] >= 1) & (ours[:, 2:] <= SIZE)).all()
    assert (ours[:, 0] + ours[:, 2] <= SIZE).all() and (ours[:, 1] + ours[:, 3] <= SIZE).all()
    # the comparison can fail: another scale range is told apart
    other = _torchvision_crops(scale_min + 0.15)
    assert ks_2samp(ours[:, 2], other[:, 2]).pvalue < 1e-6


def test_angles_flips_and_jitter_follow_the_cpu_transforms_ranges():
    torch.manual_seed(2)
    p = draw_params(N, SIZE, "cpu", hflip=True, rotation=5.0, jitter=0.1, scale_min=0.7)
    torch.manual_seed(3)
    angles = [T.RandomRotation.get_params([-5.0, 5.0]) for _ in range(N)]
    jitter = [T.ColorJitter.get_params((0.9, 1.1), (0.9, 1.1), None, None) for _ in range(N)]
    assert ks_2samp(p["angle"].numpy(), angles).pvalue > 0.01
    assert ks_2samp(p["brightness"].numpy(), [j[1] for j in jitter]).pvalue > 0.01
    assert ks_2samp(p["contrast"].numpy(), [j[2] for j in jitter]).pvalue > 0.01
    assert abs(p["flip"].float().mean().item() - 0.5) < 0.03
    off = draw_params(8, SIZE, "cpu", hflip=False, rotation=0.0, jitter=0.0, scale_min=0.7)
    assert not off["flip"].any() and (off["angle"] == 0).all()
    assert (off["brightness"] == 1).all() and (off["contrast"] == 1).all()


@pytest.mark.parametrize("flip", [False, True])
def test_a_crop_at_output_size_is_the_cpu_paths_pixels_exactly(flip):
    row = smooth_row()
    p = params((3, 5, OUT, OUT), flip=flip)
    got = augment(torch.from_numpy(row)[None, None], p, OUT)[0]
    assert got.shape == (3, OUT, OUT) and got.dtype == torch.float32
    torch.testing.assert_close(got, cpu_path(row, p), atol=1e-5, rtol=0)


@pytest.mark.parametrize("crop, flip, angle, brightness, contrast", [
    ((0, 0, SIZE, SIZE), False, 0.0, 1.0, 1.0),      # downscale: PIL antialias vs bilinear
    ((3, 5, OUT, OUT), True, 5.0, 1.0, 1.0),         # rotation: nearest (CPU) vs bilinear
    ((3, 5, OUT, OUT), False, -5.0, 1.0, 1.0),
    ((10, 2, 60, 66), True, 4.0, 0.93, 1.08),        # everything at once, upscaled crop
])
def test_fixed_parameters_give_the_cpu_paths_image(crop, flip, angle, brightness, contrast):
    row = smooth_row()
    p = params(crop, flip, angle, brightness, contrast)
    got = augment(torch.from_numpy(row)[None, None], p, OUT)[0]
    diff = gray_levels(got, cpu_path(row, p))
    assert diff.mean() < 2.5 and diff.quantile(0.99) < 8, (diff.mean(), diff.max())
    if angle:  # and the rotation turns the same way: the opposite angle is far off
        mirrored = cpu_path(row, params(crop, flip, -angle, brightness, contrast))
        assert gray_levels(got, mirrored).mean() > 4 * diff.mean()


def test_rotation_fills_the_corners_with_black_as_the_cpu_path_does():
    row = np.full((SIZE, SIZE), 200, dtype=np.uint8)
    got = augment(torch.from_numpy(row)[None, None], params((8, 8, OUT, OUT), angle=30.0), OUT)[0]
    black = normalize_gray(torch.zeros(1, 1, 1, dtype=torch.uint8))
    torch.testing.assert_close(got[:, :1, :1], black)  # corner: outside the rotated crop
    torch.testing.assert_close(got[:, OUT // 2:OUT // 2 + 1, OUT // 2:OUT // 2 + 1],
                               normalize_gray(torch.full((1, 1, 1), 200, dtype=torch.uint8)))


def test_jitter_is_brightness_then_contrast_around_the_image_mean():
    row = np.tile(np.array([50, 150], dtype=np.uint8), (SIZE, SIZE // 2))
    p = params((0, 0, SIZE, SIZE), brightness=1.1, contrast=0.8)
    got = augment(torch.from_numpy(row)[None, None], p, SIZE)[0]
    # mean 100 -> x' = 0.8 * 1.1 * x + 0.2 * 1.1 * 100: 50 -> 66, 150 -> 154
    want = np.where(row == 50, 66.0, 154.0)[None].astype(np.float32)
    torch.testing.assert_close(got, normalize_gray(torch.from_numpy(want)), atol=1e-4, rtol=0)


def test_eval_is_the_cpu_centre_crop_exactly_and_train_draws_follow_the_seed():
    rows = torch.from_numpy(np.stack([smooth_row(), smooth_row()[::-1].copy()]))[:, None]
    ev = center_crop(rows, OUT)
    for i in range(2):
        torch.testing.assert_close(ev[i], eval_transform(OUT)(rows[i, 0].numpy()), atol=0, rtol=0)
    aug = DeviceAugment({"image_size": OUT, "hflip": True, "rotation": 5.0, "jitter": 0.1, "scale_min": 0.7})
    torch.manual_seed(7); a = aug.train(rows)
    torch.manual_seed(7); b = aug.train(rows)
    assert a.shape == (2, 3, OUT, OUT) and torch.equal(a, b)
    assert not torch.equal(a, aug.train(rows))
