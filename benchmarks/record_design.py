"""Recording a space-filling table: cb_focal's CPU profile over its continuous space (1 - β and the
learning rate on log scales, focal α and γ), 32 Sobol points plus the profile's warm start, every
config trained to the last epoch once per seed with the trainable the searches run (train_fn), every
epoch kept, written in the recorded-table format (docs/recorded_tables.md).

    python benchmarks/record_design.py [--seeds 0 1 2 3] [--work DIR]   # hours on 2 cores; resumes

Each seed is one Tune run under `<work>/ray_results/design-s<seed>` (two trials at once, one CPU
each, no early stopping); an interrupted one is continued with Tune's restore, a finished one only
read, so the table can be recorded in parts, in several sessions. The table keeps every seed it held
before.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))   # replay_record

OUT = ROOT / "benchmarks" / "data" / "cb_focal_cpu_design.csv"
# name, config path, low, high, log: the cb_focal CPU profile's searched values (spaces/cb_focal.py)
PARAMS = [("loss.one_minus_beta", 1e-6, 1e-2, True), ("loss.alpha", 0.25, 0.75, False),
          ("loss.gamma", 0.0, 3.0, False), ("optim.lr", 3e-4, 1e-2, True)]
POINTS, DESIGN_SEED, POOL = 32, 0, "0 1"


def design() -> list[dict]:
    """The profile's warm start, then 32 scrambled Sobol points, each param in its own scaling."""
    from scipy.stats import qmc

    from spaces.cb_focal import SPEC
    from trainables.config import flatten

    warm = flatten(SPEC.cpu["best"]) | flatten({"loss": SPEC.best["loss"]})
    points = [{name: warm[name] for name, *_ in PARAMS}]
    for u in qmc.Sobol(d=len(PARAMS), scramble=True, seed=DESIGN_SEED).random(POINTS):
        point = {}
        for (name, low, high, log), x in zip(PARAMS, u):
            value = math.exp(math.log(low) + x * (math.log(high) - math.log(low))) if log else low + x * (high - low)
            point[name] = float(f"{value:.4g}")
        points.append(point)
    return points


def base_config(seed: int) -> dict:
    from spaces.cb_focal import SPEC
    from trainables.config import merge

    return merge(merge(SPEC.base, SPEC.cpu["config"]), {"train": {"seed": seed}, "data": {"root": None}})


def configs(seed: int) -> list[dict]:
    from trainables.config import merge, unflatten

    return [merge(base_config(seed), unflatten(point)) for point in design()]


def run_seed(work: Path, seed: int, max_t: int) -> None:
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from search.runner import prepare_data
    from trainables.data.sources import resolve_root
    from trainables.train import train_fn

    done = work / f"done-design-s{seed}"
    if done.exists():
        return
    name, storage = f"design-s{seed}", str(work / "ray_results")
    resolve_root(None)
    todo = configs(seed)
    prepare_data(None, todo[0])
    trainable = tune.with_resources(train_fn, {"cpu": 1})
    version = work / f"version-design-s{seed}"
    if not version.exists():   # the code the seed's first part ran; its later parts must run the same
        from search.runner import code_version

        version.write_text(code_version() + "\n")
    if tune.Tuner.can_restore(f"{storage}/{name}"):
        tuner = tune.Tuner.restore(f"{storage}/{name}", trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space=todo[0], tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=todo, max_concurrent=2), num_samples=len(todo),
            trial_dirname_creator=lambda t: f"trial_{t.trial_id}"),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=1,
                                      failure_config=tune.FailureConfig(max_failures=2),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    results = tuner.fit()
    if results.errors:
        sys.exit(f"error: {len(results.errors)} trial(s) of seed {seed} failed; run the same command to retry them")
    # Ctrl-C ends fit() without errors: only every config at its last epoch makes the seed done
    finished = sum(int((r.metrics or {}).get("epoch", 0)) >= max_t for r in results)
    if finished < len(todo):
        sys.exit(f"seed {seed}: {finished} of {len(todo)} configs finished (interrupted); the same command goes on")
    done.write_text("done\n")


def read_seed(work: Path, seed: int, max_t: int) -> list[dict]:
    from replay_record import trial_epochs

    from trainables.config import flatten

    rows = []
    names = [name for name, *_ in PARAMS]
    for trial in sorted((work / "ray_results" / f"design-s{seed}").glob("trial_*")):
        per_epoch, config = trial_epochs(trial, max_t)
        flat = flatten(config)
        rows += [{"seed": seed, **{n: flat[n] for n in names}, "epoch": e, "val_auc": f"{auc:.6f}",
                  "seconds": f"{secs:.1f}"} for e, (auc, secs) in sorted(per_epoch.items())]
    if len(rows) != (POINTS + 1) * max_t:
        sys.exit(f"error: seed {seed} has {len(rows) // max_t} finished configs, not {POINTS + 1}")
    return rows


def header(max_t: int) -> str:
    warm = " ".join(f"{k}={v:g}" for k, v in design()[0].items())
    params = "\n".join(f"# param: {n} float {lo:g} {hi:g}{' log' if log else ''}" for n, lo, hi, log in PARAMS)
    return (f"# table: cb_focal-cpu-design\n# metric: val_auc max\n{params}\n# warm: {warm}\n# pool: {POOL}\n"
            f"# cb_focal (class-balanced weighted focal loss), CPU profile (ResNet-10-T, 64 px, one stage), "
            f"{max_t} epochs, embedded synthetic set;\n# the profile's warm start + {POINTS} scrambled Sobol points "
            f"(scipy.stats.qmc, seed {DESIGN_SEED}); no early stopping\n"
            f"# recorded by: python benchmarks/record_design.py --seeds S (one seed at a time, resumable)\n")


def record(work: Path, seeds: list[int], out: Path) -> None:
    from replay_record import kept, seed_note

    from spaces.cb_focal import SPEC

    max_t = SPEC.cpu["config"]["train"]["max_epochs"]
    work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run_seed(work, seed, max_t)
    rows, notes = kept(out, seeds)
    rows += [r for seed in seeds for r in read_seed(work, seed, max_t)]
    notes += [seed_note(work / "ray_results" / f"design-s{s}", s, (work / f"version-design-s{s}").read_text().strip(),
                        rows) for s in seeds]
    notes.sort(key=lambda line: int(line.split()[2].rstrip(":")))
    rows.sort(key=lambda r: int(r["seed"]))
    with open(out, "w", newline="") as f:
        f.write(header(max_t) + "\n".join(notes) + "\n")
        fields = ["seed", *[n for n, *_ in PARAMS], "epoch", "val_auc", "seconds"]
        writer = csv.DictWriter(f, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows (seeds {sorted({int(r['seed']) for r in rows})}) to {out}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--work", type=Path, default=Path("design-work"))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    record(args.work.resolve(), args.seeds, args.out)


if __name__ == "__main__":
    main()
