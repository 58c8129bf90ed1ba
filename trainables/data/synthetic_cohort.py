"""The embedded set's cohort: labels, metadata and split of every image, no pixels.

Labels follow ChestX-ray14's per-image prevalences and ~54% No Finding, with co-occurrence from a
Gaussian copula (a shared "sick" factor plus cardiac/fluid, infection, neoplasm and chronic-lung
factors); a patient's follow-ups share part of the latent disease state, so the patient-disjoint
split matters. The test split takes whole patients up to the official split's share of images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from trainables.data import NIH_LABELS
from trainables.errors import UsageError

DEFAULT_PATIENTS = 1400
DEFAULT_IMAGE_SIZE = 128
DEFAULT_SEED = 0
MIN_PATIENTS = 10   # fewer cannot give a test split and a validation split carved by patient
MIN_IMAGE_SIZE = 32
TEST_FRACTION = 25596 / 112120     # the official split's share of images

# ChestX-ray14 per-image prevalences, NIH_LABELS order.
PREVALENCE = np.array([0.103, 0.025, 0.119, 0.177, 0.052, 0.056, 0.013, 0.047, 0.042, 0.021,
                       0.022, 0.015, 0.030, 0.002])
SICK_LOADING = 0.32   # calibrated by Monte Carlo (3e5 patients): 54.0% No Finding, NIH 53.8%
FACTORS = {
    "cardiac/fluid": {"Cardiomegaly": .45, "Effusion": .5, "Edema": .55, "Atelectasis": .3},
    "infection": {"Pneumonia": .5, "Consolidation": .5, "Infiltration": .4, "Atelectasis": .25,
                  "Effusion": .3},
    "neoplasm": {"Mass": .5, "Nodule": .5, "Pleural_Thickening": .2},
    "chronic": {"Emphysema": .55, "Pneumothorax": .5, "Fibrosis": .45, "Pleural_Thickening": .4},
}
PATIENT_SHARE = 0.5   # of the latent variance that a patient's follow-ups share


def _loadings() -> np.ndarray:
    b = np.zeros((len(NIH_LABELS), 1 + len(FACTORS)))
    b[:, 0] = SICK_LOADING
    for j, group in enumerate(FACTORS.values(), start=1):
        for label, w in group.items():
            b[NIH_LABELS.index(label), j] = w
    return b


@dataclass
class Cohort:
    """One row per image, in image-name order; `severity` is in (0, 1] for positives, else 0."""
    names: list[str]
    patient: np.ndarray
    followup: np.ndarray
    age: np.ndarray
    male: np.ndarray
    ap: np.ndarray
    labels: np.ndarray
    severity: np.ndarray
    test: np.ndarray

    def findings(self, i: int) -> str:
        return "|".join(lab for lab, y in zip(NIH_LABELS, self.labels[i]) if y) or "No Finding"


def check_size(n_patients: int, image_size: int) -> None:
    if int(n_patients) < MIN_PATIENTS:
        raise UsageError(f"n_patients={n_patients} is too few: at least {MIN_PATIENTS} are needed "
                         "for patient-disjoint train/validation/test splits")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise UsageError(f"image_size={image_size} is too small to draw the signs; use at least "
                         f"{MIN_IMAGE_SIZE} (the default is {DEFAULT_IMAGE_SIZE})")


def sample_labels(n_patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED) -> Cohort:
    """Labels, metadata and split only (no pixels): what `generate` writes to the CSV and lists."""
    check_size(n_patients, MIN_IMAGE_SIZE)
    rng = np.random.default_rng([seed, 0])
    counts = np.minimum(rng.geometric(1 / 3, n_patients), 8)   # 1-8 images, skewed to few
    patient = np.repeat(np.arange(1, n_patients + 1), counts)
    followup = np.concatenate([np.arange(c) for c in counts])
    m, b = len(patient), _loadings()
    idio = np.sqrt(1.0 - (b ** 2).sum(axis=1))
    k = b.shape[1] + len(NIH_LABELS)
    z = (math.sqrt(PATIENT_SHARE) * rng.standard_normal((n_patients, k))[patient - 1]
         + math.sqrt(1 - PATIENT_SHARE) * rng.standard_normal((m, k)))
    latent = z[:, :b.shape[1]] @ b.T + z[:, b.shape[1]:] * idio
    labels = latent > np.array([NormalDist().inv_cdf(1 - p) for p in PREVALENCE])
    # Rank of the latent among positives: uniform severity, and persistent within a patient.
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(latent / math.sqrt(2.0)))
    severity = np.where(labels, np.clip((cdf - (1 - PREVALENCE)) / PREVALENCE, 1e-3, 1.0), 0.0)
    age = np.minimum(rng.integers(18, 86, n_patients)[patient - 1] + followup // 2, 95)
    male = (rng.random(n_patients) < 0.56)[patient - 1]
    # Bedside (AP) films are commoner for sick patients, as in the real set.
    ap = rng.random(m) < np.where(labels.any(axis=1), 0.45, 0.25)
    order, in_test, n_test = rng.permutation(n_patients), np.zeros(n_patients, bool), 0
    for p in order:
        if n_test >= TEST_FRACTION * m:
            break
        in_test[p], n_test = True, n_test + counts[p]
    names = [f"{p:08d}_{f:03d}.png" for p, f in zip(patient, followup)]
    return Cohort(names, patient, followup, age, male, ap, labels, severity, in_test[patient - 1])
