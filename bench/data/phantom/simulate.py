"""One phantom patient, end to end in memory: anatomy, lesion, distractors, scans, raters.

All of a patient's randomness comes from one generator seeded by (dataset seed, patient
index), drawn in a fixed order, so a patient is the same whatever else is in the dataset and
the same seed always gives the same bytes. Dataset-level choices (which patients have no
visible lesion, which get a second scan, each patient's volume quantile) are stratified so
that even a 40-patient phantom has the cohort's proportions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.data.phantom import acquisition, anatomy, distractors, lesion, pose, raters
from bench.data.phantom.profiles import PhantomProfile
from bench.io import Geometry

GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
TRUTH = "truth"
REREAD_SUFFIX = "_reread"
REREAD_STREAM = 101  # the rereadings' own random stream, apart from the patient's


@dataclass(frozen=True)
class PatientPlan:
    """The dataset-level facts about patient `index` (stratified, see module docstring)."""

    index: int
    visible_lesion: bool
    second_scan: bool
    volume_quantile: float

    @property
    def patient_id(self) -> str:
        return f"ph{self.index:04d}"


@dataclass
class ScanResult:
    case_id: str
    patient_id: str
    scan_index: int
    image: np.ndarray  # int16 HU (z, y, x)
    labels: dict[str, np.ndarray]  # rater or truth -> uint8 0/1
    laterality: str
    meta: dict[str, Any] = field(default_factory=dict)


def plan_patients(n_patients: int, block: int, seed: int) -> list[PatientPlan]:
    """In each block of `block` patients exactly one has no visible lesion and one other gets a
    second scan; volume quantiles follow a golden-ratio sequence (low discrepancy) over the
    patients with a visible lesion, so that the lesions alone cover the volume distribution
    evenly wherever the lesion-free patients fall."""
    offset = float(np.random.default_rng([seed, 11]).random())
    plans, lesions = [], 0
    for index in range(n_patients):
        block_rng = np.random.default_rng([seed, index // block, 7])
        order = block_rng.permutation(block)
        position = index % block
        visible = bool(position != order[0])
        rank = lesions if visible else index  # planned, never rendered
        lesions += visible
        plans.append(
            PatientPlan(
                index=index,
                visible_lesion=visible,
                second_scan=bool(position == order[1]),
                volume_quantile=float((offset + rank * GOLDEN) % 1.0) * 0.98 + 0.01,
            )
        )
    return plans


def simulate_patient(
    plan: PatientPlan,
    profile: PhantomProfile,
    template: anatomy.Template,
    geometry: Geometry,
    seed: int,
    rereaders: tuple[str, ...] = (),
) -> list[ScanResult]:
    """The patient's scans. Each rater in `rereaders` also reads every scan a second time, as
    `<rater>_reread` in the labels, from randomness of its own: the dataset's bytes are the
    same with or without rereadings (`bench.data.phantom.power` uses them as a method at
    parity with that rater)."""
    rng = np.random.default_rng([seed, plan.index])
    tissue = anatomy.draw_tissue_hu(rng)
    lower = template.affine[:3, 3]
    upper = lower + template.affine[[0, 1, 2], [0, 1, 2]] * (np.asarray(template.shape) - 1)
    shape = pose.draw_head_shape(rng, (lower, upper), template.ventricle_center_mm)
    head_scale = float(np.prod(shape.scale_xyz))

    wanted_ml = lesion.volume_from_quantile(plan.volume_quantile)
    lesion_plan = lesion.plan_lesion(rng, template, wanted_ml / head_scale)
    first_lesion = lesion.render_lesion(template, lesion_plan) if plan.visible_lesion else None
    found = distractors.draw_distractors(
        rng, template, first_lesion.occupancy if first_lesion else None
    )
    warp = acquisition.head_warp(template, shape)
    head = anatomy.head_hu(template, tissue)
    head = distractors.apply_distractors(head, template, tissue, found)

    scans = []
    for scan_index in range(2 if plan.second_scan else 1):
        growth = 1.0 if scan_index == 0 else float(rng.uniform(1.15, 1.5))
        maps = None
        hu_map = head
        if plan.visible_lesion:
            maps = (
                first_lesion
                if scan_index == 0
                else lesion.render_lesion(template, lesion_plan, growth)
            )
            hu_map = lesion.apply_lesion(head, template, tissue, maps, lesion_plan)
        scan_pose = pose.draw_pose(rng, profile.z_center_mni_mm)
        to_head = pose.scanner_to_head_affine(scan_pose, shape)
        sampled = acquisition.sample_scan(
            geometry,
            profile.subslices,
            template,
            warp,
            to_head,
            hu_map,
            (maps.occupancy, maps.drop_hu) if maps else None,
        )
        noise_sd = float(rng.uniform(2.5, 4.5))
        image = acquisition.add_noise(sampled.hu, rng, noise_sd, profile.inplane_mm)
        streaks = bool(rng.random() < 0.5)
        if streaks:
            image = acquisition.add_skull_base_streaks(image, rng, geometry, scan_pose, shape)
        truth = (sampled.occupancy >= 0.5).astype(np.uint8)
        truth_ml = float(truth.sum()) * geometry.voxel_volume_ml
        faint = raters.is_inconspicuous(lesion_plan.core_drop_hu, truth_ml)
        brain = raters.drawable(sampled.hu)
        labels = {
            name: raters.draw_rater_mask(
                rng, raters.STYLES[name], sampled.drop_hu, geometry.spacing_zyx_mm, faint, brain
            )
            for name in raters.RATERS
        }
        for name in rereaders:
            labels[f"{name}{REREAD_SUFFIX}"] = raters.draw_rater_mask(
                np.random.default_rng([seed, plan.index, scan_index, REREAD_STREAM]),
                raters.STYLES[name],
                sampled.drop_hu,
                geometry.spacing_zyx_mm,
                faint,
                brain,
            )
        labels[TRUTH] = truth
        suffix = f"_s{scan_index}" if scan_index else ""
        scans.append(
            ScanResult(
                case_id=plan.patient_id + suffix,
                patient_id=plan.patient_id,
                scan_index=scan_index,
                image=acquisition.to_int16_hu(image),
                labels=labels,
                laterality=lesion_plan.side,
                meta={
                    "visible_lesion": plan.visible_lesion,
                    "truth_volume_ml": round(truth_ml, 3),
                    "lesion_core_drop_hu": round(lesion_plan.core_drop_hu, 2)
                    if plan.visible_lesion
                    else 0.0,
                    "noise_sd_hu": round(noise_sd, 2),
                    "skull_base_streaks": streaks,
                    "old_infarcts": len(found.old_infarcts),
                    "calcifications": len(found.calcifications),
                    "ventricle_enlargement": round(shape.ventricle_gain, 3),
                    "head_scale": [round(s, 4) for s in shape.scale_xyz],
                    "pose": scan_pose.as_dict(),
                    # Scanner LPS mm -> template MNI mm (RAS), rigid pose and size only.
                    "scanner_to_mni_mm": [[round(v, 6) for v in row] for row in to_head.tolist()],
                },
            )
        )
    return scans
