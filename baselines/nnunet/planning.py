"""nnU-Net's own fingerprint, planning and preprocessing, run in-process, capped by a profile.

nnU-Net plans every configuration from the dataset's fingerprint; a profile then caps what it
planned (patch, base features, batch) and re-derives the U-Net topology for the capped patch
with nnU-Net's own `get_pool_and_conv_props`, so the network stays one nnU-Net would build.

nnU-Net runs fingerprinting and preprocessing in a pool of *spawned* processes; each one
re-imports torch and nnU-Net (~15 s on this kind of machine), which would dominate a smoke run.
The same per-case functions run here in threads instead (their heavy parts are numpy, SciPy
and SimpleITK, which release the GIL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.pool import ThreadPool
from typing import Any

import numpy as np
from nnunetv2.experiment_planning.dataset_fingerprint import fingerprint_extractor
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import (
    ExperimentPlanner,
)
from nnunetv2.experiment_planning.experiment_planners.network_topology import (
    get_pool_and_conv_props,
)
from nnunetv2.utilities import utils as nnunet_utils
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from baselines.nnunet.workspace import DATASET_NAME, PLANS, Workspace
from bench.io import write_json
from bench.profiles import Profile
from bench.provenance import available_cores

log = logging.getLogger(__name__)

# nnU-Net samples 1e8 foreground intensities (with replacement) for the CT normalisation
# percentiles, whatever the dataset's size: ~800 MB and ~10 s on a small dataset. A million
# samples pin the 0.5 / 99.5 percentiles just as well.
FOREGROUND_SAMPLES = 1e6


class ProfilePlanner(ExperimentPlanner):
    """nnU-Net's default planner with the profile's caps applied to each configuration."""

    def __init__(self, profile: Profile):
        spacing = profile.target_spacing_mm
        super().__init__(
            DATASET_NAME,
            overwrite_target_spacing=[float(s) for s in spacing] if spacing else None,
        )
        self.profile = profile
        if profile.base_features:
            self.UNet_base_num_features = profile.base_features
        if profile.max_features:
            self.UNet_max_features_2d = self.UNet_max_features_3d = profile.max_features
        if profile.patch_size:
            # A capped 3D patch would make nnU-Net search for a 3d_lowres configuration that
            # the cap then defeats; profiles with caps train 3d_fullres and 2d only.
            self.lowres_creation_threshold = 0.0

    def get_plans_for_configuration(
        self, spacing, median_shape, data_identifier, approximate_n_voxels_dataset, _cache
    ) -> dict:
        plan = super().get_plans_for_configuration(
            spacing, median_shape, data_identifier, approximate_n_voxels_dataset, _cache
        )
        is_3d = len(spacing) == 3
        cap = self.profile.patch_size if is_3d else self.profile.patch_size_2d
        batch = self.profile.batch_size if is_3d else self.profile.batch_size_2d
        if cap and any(p > c for p, c in zip(plan["patch_size"], cap, strict=True)):
            self._cap_patch(plan, spacing, np.minimum(plan["patch_size"], cap))
        if batch:
            plan["batch_size"] = int(batch)
        return plan

    def _cap_patch(self, plan: dict, spacing, patch) -> None:
        _, strides, kernels, patch, _ = get_pool_and_conv_props(
            spacing, patch, self.UNet_featuremap_min_edge_length, 999999
        )
        n_stages = len(strides)
        is_3d = len(spacing) == 3
        max_features = self.UNet_max_features_3d if is_3d else self.UNet_max_features_2d
        plan["patch_size"] = tuple(int(p) for p in patch)
        plan["architecture"]["arch_kwargs"].update(
            n_stages=n_stages,
            kernel_sizes=kernels,
            strides=strides,
            features_per_stage=tuple(
                min(max_features, self.UNet_base_num_features * 2**i) for i in range(n_stages)
            ),
            n_conv_per_stage=self.UNet_blocks_per_stage_encoder[:n_stages],
            n_conv_per_stage_decoder=self.UNet_blocks_per_stage_decoder[: n_stages - 1],
        )


class _ThreadContext:
    """Stands in for `multiprocessing.get_context("spawn")`: a pool of threads."""

    def __init__(self, threads: int):
        self.threads = threads

    def Pool(self, processes: int | None = None) -> ThreadPool:  # noqa: N802 (mirrors the API)
        return ThreadPool(self.threads)


class _InProcess:
    def __init__(self, threads: int):
        self.threads = threads

    def get_context(self, method: str | None = None) -> _ThreadContext:
        return _ThreadContext(self.threads)


@contextmanager
def _threads_for_pools(threads: int) -> Iterator[None]:
    """nnU-Net's process pools as thread pools: fingerprinting's, and the one that lists the
    raw files (`nnunetv2.utilities.utils.Pool`: 12 forked processes). That one's `terminate`
    sends SIGTERM, which the forked workers of a submitit job ignore (they inherit submitit's
    handler), so under `bench run --executor local` or `slurm` it never joined: a hang."""
    saved = fingerprint_extractor.multiprocessing, nnunet_utils.Pool
    fingerprint_extractor.multiprocessing = _InProcess(threads)
    nnunet_utils.Pool = lambda processes=None: ThreadPool(threads)
    try:
        yield
    finally:
        fingerprint_extractor.multiprocessing, nnunet_utils.Pool = saved


def normalised_like_the_image(channels: Sequence[str]) -> dict[str, str]:
    """Channels that nnU-Net must normalise with the image's intensity statistics, keyed by
    nnU-Net's channel index: the mirror holds the same CT values, only moved.

    nnU-Net's CT normalisation takes each channel's statistics from the voxels under the
    labels. Under a lesion the mirror holds the healthy twin, and where a cortical lesion's
    twin lands on the skull, bone: on the demo phantom that put the mirror's standard
    deviation at 25 HU against the image's 6 HU, so the mirror reached the network 4x flatter
    than the image (docs/methods.md, "What the demo model learns").
    """
    image = str(channels.index("image")) if "image" in channels else None
    if image is None:
        return {}
    return {str(i): image for i, name in enumerate(channels) if name == "mirrored"}


def preparation_key(
    workspace: Workspace, configuration: str, profile: Profile, channels: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything the preprocessed data depends on; a change means the workspace is stale."""
    import nnunetv2

    raw = workspace.raw_dataset
    cases = sorted(p.name for p in (raw / "imagesTr").iterdir())
    planning_fields = (
        "target_spacing_mm",
        "base_features",
        "max_features",
        "patch_size",
        "patch_size_2d",
        "batch_size",
        "batch_size_2d",
    )
    return {
        "configuration": configuration,
        "nnunetv2": getattr(nnunetv2, "__version__", "unknown"),
        "cases_sha256": hashlib.sha256("\n".join(cases).encode()).hexdigest(),
        "dataset_json": json.loads((raw / "dataset.json").read_text(encoding="utf-8")),
        "profile": {name: getattr(profile, name) for name in planning_fields},
        "normalised_like": normalised_like_the_image(channels),
    }


def plan_and_preprocess(
    workspace: Workspace, configuration: str, profile: Profile, channels: Sequence[str] = ()
) -> dict:
    """Fingerprint, plan and preprocess `configuration` once; return the plans.

    `channels` names the input channels in nnU-Net's order; a mirrored channel is normalised
    with the image's statistics (`normalised_like_the_image`).

    A marker written last (atomically) records what the data was prepared from; a rerun
    with the same inputs returns at once, a crash midway redoes the whole (cheap) step.
    """
    marker = workspace.preprocessed_dataset / f"prepared_{configuration}.json"
    key = json.loads(json.dumps(preparation_key(workspace, configuration, profile, channels)))
    plans_file = workspace.preprocessed_dataset / f"{PLANS}.json"
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == key:
        return json.loads(plans_file.read_text(encoding="utf-8"))
    threads = available_cores()
    with _threads_for_pools(threads):
        extractor = fingerprint_extractor.DatasetFingerprintExtractor(DATASET_NAME, threads)
        extractor.num_foreground_voxels_for_intensitystats = FOREGROUND_SAMPLES
        extractor.run(overwrite_existing=True)
        plans = ProfilePlanner(profile).plan_experiment()
        plans = _share_normalisation(plans, normalised_like_the_image(channels), plans_file)
        _preprocess(workspace, configuration, threads)
    write_json(key, marker)
    return plans


def _share_normalisation(plans: dict, like: dict[str, str], plans_file) -> dict:
    """Give each channel in `like` the intensity statistics of its source channel, in the
    plans that preprocessing, training and inference read."""
    if not like:
        return plans
    statistics = plans["foreground_intensity_properties_per_channel"]
    for channel, source in like.items():
        statistics[channel] = dict(statistics[source])
    write_json(plans, plans_file)
    return plans


def _preprocess(workspace: Workspace, configuration: str, threads: int) -> None:
    plans_manager = PlansManager(str(workspace.preprocessed_dataset / f"{PLANS}.json"))
    config = plans_manager.get_configuration(configuration)
    dataset_json = json.loads(
        (workspace.preprocessed_dataset / "dataset.json").read_text(encoding="utf-8")
    )
    output = workspace.preprocessed_dataset / config.data_identifier
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    cases = get_filenames_of_train_images_and_targets(str(workspace.raw_dataset), dataset_json)
    preprocessor = config.preprocessor_class(verbose=False)

    def one(identifier: str) -> None:
        entry = cases[identifier]
        preprocessor.run_case_save(
            str(output / identifier),
            entry["images"],
            entry["label"],
            plans_manager,
            config,
            dataset_json,
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, sorted(cases)))
    log.info("nnU-Net preprocessed %d cases for %s", len(cases), configuration)
