"""The common inference runner: every method's validation cases go through this one loop.

Per case: channels (the mirrored one is cached on disk) -> the adapter's preprocessing ->
sliding windows with test-time mirroring -> softmax -> the adapter's inverse mapping to the
image's grid -> threshold, or the fold's chosen `Postprocessing` -> the mask (uint8) and the
lesion probability (float32) written as NIfTI with the image's exact header, atomically.

Reading and preprocessing the next case runs in a background thread while the network works
on the current one, and the NIfTI writing of a finished case runs in another; numpy, SciPy,
SimpleITK and torch release the GIL in their heavy parts, so threads are enough. A case is
finished when its record exists (written last, after the mask and probability, each atomically),
and a rerun skips it; a rerun first deletes the temporary files that a process killed while
writing an unfinished case left behind (a stray `.<case>.nii.gz.<random>.tmp.nii.gz` in the
predictions folder would otherwise be scored as a prediction).
"""

from __future__ import annotations

import logging
import os
import queue
import resource
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.adapter import Predictor, channel_files
from bench.io import (
    Geometry,
    read_geometry,
    read_image,
    remove_stale_temporaries,
    write_image,
    write_json,
)
from bench.predictions import is_finished, output_paths
from bench.runner.postprocess import Postprocessing
from bench.runner.threads import cpu_threads
from bench.runner.window import WindowSettings, count_windows, predict_logits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseInput:
    id: str
    image: Path


@dataclass(frozen=True)
class InferenceSettings:
    """How the runner infers; built from a profile, with the device chosen at run time."""

    overlap: float = 0.5
    sw_batch_size: int = 4
    sw_batch_size_2d: int = 16
    tta_mirror_axes: tuple[int, ...] = (0, 1, 2)  # image axes (z, y, x)
    threshold: float = 0.5  # a voxel is lesion when its probability is above this
    device: str | None = None  # None: CUDA when available, else CPU
    amp: bool | None = None  # None: mixed precision on CUDA only
    threads: int | None = None  # CPU threads for torch; None: every core
    postprocessing: Postprocessing | None = None  # None: the threshold alone

    def mask_rule(self) -> Postprocessing:
        return self.postprocessing or Postprocessing(threshold=self.threshold)

    @classmethod
    def from_profile(cls, profile: Any, **overrides: Any) -> InferenceSettings:
        """The profile's settings; an override given as None keeps the profile's value."""
        values = {
            "overlap": profile.sw_overlap,
            "sw_batch_size": profile.sw_batch_size,
            "sw_batch_size_2d": profile.sw_batch_size_2d,
            "tta_mirror_axes": tuple(profile.tta_mirror_axes),
            "threshold": profile.threshold,
            "threads": profile.threads,
        }
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def resolved_device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class CaseRecord:
    """What one case cost. `latency_s` is the case's own work; overlap makes the wall shorter."""

    case: str
    preprocess_s: float
    inference_s: float
    invert_s: float
    write_s: float
    latency_s: float
    windows: int
    mirrors: int
    network_shape: tuple[int, ...]
    peak_rss_mb: float
    peak_device_mb: float | None
    device: str


@dataclass
class RunSummary:
    records: list[CaseRecord]
    skipped: list[str]
    wall_s: float

    @property
    def throughput_cases_per_min(self) -> float:
        return 60.0 * len(self.records) / self.wall_s if self.records and self.wall_s else 0.0


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if os.uname().sysname != "Darwin" else peak / 2**20


@contextmanager
def torch_threads(device: str, threads: int | None) -> Iterator[None]:
    """On CPU, `threads` torch threads (None: every core; see `bench.runner.threads`)."""
    if device != "cpu":
        yield
        return
    with cpu_threads(threads):
        yield


_DONE = object()


def _prefetch(
    predictor: Predictor,
    cases: Sequence[CaseInput],
    cache_dir: Path,
    out: queue.Queue,
    stop: threading.Event,
    needs_image: bool = False,
) -> None:
    """Read and preprocess each case ahead of the network (runs in a background thread);
    with `needs_image`, also the image itself (HU, for the intracranial restriction)."""

    def offer(item: Any) -> bool:
        """Hand `item` over unless the consumer has stopped (never block forever)."""
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    for case in cases:
        started = time.perf_counter()
        try:
            files = channel_files(case.image, predictor.input_channels, cache_dir)
            geometry = read_geometry(case.image, case.id)
            data, info = predictor.preprocess(files)
            image = read_image(case.image, case.id)[0] if needs_image else None
            item: Any = (case, geometry, np.ascontiguousarray(data, np.float32), info, image)
        except BaseException as error:  # handed to the consumer, which re-raises it
            item = (case, error)
        if not offer((item, time.perf_counter() - started)) or len(item) == 2:
            return
    offer((_DONE, 0.0))


def predict_cases(
    predictor: Predictor,
    cases: Sequence[CaseInput],
    out_dir: Path,
    settings: InferenceSettings,
    cache_dir: Path,
    progress: bool = False,
) -> RunSummary:
    """Predict every unfinished case of `cases` into `out_dir`; return what each one cost."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    todo = [case for case in cases if not is_finished(out_dir, case.id)]
    skipped = [case.id for case in cases if is_finished(out_dir, case.id)]
    if skipped:
        log.info("%d case(s) already predicted in %s: skipped", len(skipped), out_dir)
    for case in todo:  # each case has one writer: the unit whose fold validates it
        for path in output_paths(out_dir, case.id):
            for stale in remove_stale_temporaries(path.parent, path.name):
                log.info("removed %s, left by an interrupted run", stale)
    device = settings.resolved_device()
    window = WindowSettings(
        overlap=settings.overlap,
        sw_batch_size=settings.sw_batch_size_2d if predictor.is_2d else settings.sw_batch_size,
        mirror_axes=predictor.tta_axes(settings.tta_mirror_axes),
        device=device,
        amp=settings.amp,
    )
    _prepare_network(predictor, device)
    records: list[CaseRecord] = []
    started = time.perf_counter()
    prefetched: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    rule = settings.mask_rule()
    reader = threading.Thread(
        target=_prefetch,
        args=(predictor, todo, cache_dir, prefetched, stop, rule.intracranial),
        daemon=True,
    )
    writes: list[Future] = []
    with (
        torch_threads(device, settings.threads),
        ThreadPoolExecutor(1, thread_name_prefix="bench-writer") as writer,
        tqdm(total=len(todo), desc="predict", unit="case", disable=not progress) as bar,
    ):
        reader.start()
        try:
            while True:
                item, preprocess_s = prefetched.get()
                if item is _DONE:
                    break
                if len(item) == 2:
                    raise item[1]
                case, geometry, data, info, image = item
                record, outputs = _infer_case(
                    predictor, case, geometry, data, info, window, rule, image
                )
                record.preprocess_s = preprocess_s
                writes.append(
                    writer.submit(_write_case, out_dir, case.id, geometry, outputs, record)
                )
                records.append(record)
                bar.update()
            for future in writes:
                future.result()  # re-raise a failed write here, not silently
        finally:
            stop.set()
            reader.join(timeout=30)
    return RunSummary(records, skipped, time.perf_counter() - started)


def _prepare_network(predictor: Predictor, device: str) -> None:
    import torch

    if isinstance(predictor.network, torch.nn.Module):
        predictor.network.to(device).eval()


def _infer_case(
    predictor: Predictor,
    case: CaseInput,
    geometry: Geometry,
    data: np.ndarray,
    info: Any,
    window: WindowSettings,
    rule: Postprocessing,
    image: np.ndarray | None,
) -> tuple[CaseRecord, tuple[np.ndarray, np.ndarray]]:
    import torch

    on_cuda = window.device.startswith("cuda")
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    logits = predict_logits(predictor.network, data, predictor.patch_size, window)
    probabilities = torch.softmax(logits, dim=0).cpu().numpy()
    inferred = time.perf_counter()
    full = np.asarray(predictor.invert(probabilities, info), dtype=np.float32)
    lesion = full[predictor.foreground_class]
    if lesion.shape != tuple(geometry.shape_zyx):
        raise RuntimeError(
            f"case {case.id}: the adapter's invert returned shape {lesion.shape}, "
            f"the image is {geometry.shape_zyx}"
        )
    mask = rule.apply(lesion, geometry.voxel_volume_ml, image)
    inverted = time.perf_counter()
    record = CaseRecord(
        case=case.id,
        preprocess_s=0.0,
        inference_s=inferred - started,
        invert_s=inverted - inferred,
        write_s=0.0,
        latency_s=0.0,
        windows=count_windows(data.shape[1:], predictor.patch_size, window.overlap),
        mirrors=2 ** len(window.mirror_axes),
        network_shape=tuple(int(n) for n in data.shape[1:]),
        peak_rss_mb=peak_rss_mb(),
        peak_device_mb=torch.cuda.max_memory_allocated() / 2**20 if on_cuda else None,
        device=window.device,
    )
    return record, (mask, lesion)


def _write_case(
    out_dir: Path,
    case_id: str,
    geometry: Geometry,
    outputs: tuple[np.ndarray, np.ndarray],
    record: CaseRecord,
) -> None:
    """Probability, mask, then the record: the record's presence means the case is complete."""
    started = time.perf_counter()
    mask, lesion = outputs
    mask_path, probability_path, record_path = output_paths(out_dir, case_id)
    write_image(lesion.astype(np.float32), geometry, probability_path)
    write_image(mask, geometry, mask_path)
    record.write_s = time.perf_counter() - started
    record.latency_s = record.preprocess_s + record.inference_s + record.invert_s + record.write_s
    write_json(asdict(record), record_path)
