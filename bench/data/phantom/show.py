"""A montage of one case: a few axial slices through the lesion in a brain window, with every
rater's contour (and the truth, where the dataset has one) in its own colour.

Works for any bench dataset v1, not only the phantom: a person checks that labels sit where
the images say they should.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.dataset import load_dataset
from bench.io import atomic_path, read_image

BRAIN_WINDOW_HU = (0.0, 80.0)  # level 40, width 80
COLOURS = ("#ffd400", "#00c8ff", "#ff3df2", "#3dff5a", "#ff7f0e", "#ffffff")


def choose_slices(label_stack: np.ndarray, count: int) -> list[int]:
    """Up to `count` slices spread over the labelled extent (the middle ones when empty)."""
    nz = label_stack.shape[0]
    labelled = np.flatnonzero(label_stack.reshape(nz, -1).any(axis=1))
    if len(labelled) == 0:
        middle = nz // 2
        labelled = np.arange(max(0, middle - count // 2), min(nz, middle + (count + 1) // 2))
    if len(labelled) <= count:
        return [int(k) for k in labelled]
    picks = np.linspace(0, len(labelled) - 1, count).round().astype(int)
    return [int(labelled[i]) for i in picks]


def render_case(
    dataset_dir: str | Path, case_id: str, out_png: str | Path, n_slices: int = 4
) -> Path:
    """Write the montage PNG for `case_id` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    dataset = load_dataset(dataset_dir)
    case = dataset.case(case_id)
    image, geometry = read_image(case.image, case.id)
    names = list(dataset.label_sets)
    labels = {name: read_image(case.labels[name], case.id)[0] > 0 for name in names}
    union = np.any(np.stack(list(labels.values())), axis=0)
    slices = choose_slices(union, n_slices)

    _, dy, dx = geometry.spacing_zyx_mm
    columns = max(1, len(slices))
    figure, axes = plt.subplots(1, columns, figsize=(3.6 * columns, 4.3), squeeze=False)
    for axis, k in zip(axes[0], slices, strict=False):
        axis.imshow(
            image[k],
            cmap="gray",
            vmin=BRAIN_WINDOW_HU[0],
            vmax=BRAIN_WINDOW_HU[1],
            aspect=dy / dx,
            interpolation="nearest",
        )
        for name, colour in zip(names, COLOURS, strict=False):
            if labels[name][k].any():
                style = "--" if name == dataset.truth else "-"
                axis.contour(
                    labels[name][k].astype(float),
                    levels=[0.5],
                    colors=[colour],
                    linewidths=1.0,
                    linestyles=style,
                )
        axis.set_title(f"slice {k}", fontsize=9)
        axis.set_axis_off()
    voxel_ml = geometry.voxel_volume_ml
    handles = [
        Line2D(
            [0],
            [0],
            color=colour,
            linestyle="--" if name == dataset.truth else "-",
            label=f"{name} ({float(labels[name].sum()) * voxel_ml:.1f} ml)",
        )
        for name, colour in zip(names, COLOURS, strict=False)
    ]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    side = f", laterality {case.laterality}" if case.laterality else ""
    figure.suptitle(f"{dataset.name}: case {case.id}{side} (window L40 W80)", fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 0.95))
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return out_png
