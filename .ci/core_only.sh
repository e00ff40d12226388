#!/usr/bin/env bash
# CI: the core install alone (no `methods` extra: no torch, nnU-Net, MONAI, SMP, submitit) in a
# fresh virtual environment scores predictions, runs the statistics, scores a predictions-only
# submission and checks the leaderboard. The inputs are the smoke phantom, built by `bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-core.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"

started=$SECONDS
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet .
echo "core install: $((SECONDS - started)) s"
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "error: the core install brought torch" >&2
    exit 1
fi
bench="$venv/bin/bench"  # the installed package: the repository is not on its import path

"$bench" data phantom --profile smoke --out "$work/data" --quiet
# Predictions: rater C's masks for every case; the submission: those of the split's
# validation cases (what `bench score` accepts).
"$venv/bin/python" - "$work" <<'PY'
import json, shutil, sys
from pathlib import Path

work = Path(sys.argv[1])
labels = work / "data" / "labels" / "C"
shutil.copytree(labels, work / "predictions")
masks = work / "submission" / "masks"
masks.mkdir(parents=True)
split = json.loads((work / "data" / "splits.json").read_text())
for case in (c for fold in split["folds"] for c in fold["val"]):
    shutil.copy(labels / f"{case}.nii.gz", masks)
(work / "submission" / "submission.toml").write_text(
    'name = "core_check"\nauthors = ["CI"]\ncontact = "ci@example.org"\n'
    'description = "rater C, scored by the core install"\nlicense = "CC0-1.0"\n'
    'kind = "predictions"\nentry = "masks"\n'
)
PY

"$bench" evaluate --dataset "$work/data" --predictions "$work/predictions" --method copy_c \
    --out "$work/metrics.csv"
"$bench" stats --metrics "$work/metrics.csv" --method copy_c --dataset "$work/data"
"$bench" score --submission "$work/submission" --dataset "$work/data" --out "$work/scored"
"$bench" leaderboard --check
echo "core-only commands: ok ($((SECONDS - started)) s)"
