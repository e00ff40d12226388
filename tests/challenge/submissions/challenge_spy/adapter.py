"""A hostile challenge submission, steered by its model folder's `fold_<k>.json`.

It predicts like `challenge_honest` (lesion below a HU threshold) unless it manages to read a
label, in which case it hands the label in as its prediction. Every attempt logs one line to
stderr, `SPY <what>: READ ...` or `SPY <what>: blocked (...)`, which the challenge record
keeps; the tests check the effects themselves as well (masks, files, sockets, processes).

Config keys: `hu`; `spy` (try to read and write everything it can at start-up); `dataset` and
`outside` (absolute paths it "knows"); `port` (a TCP server of the test on 127.0.0.1);
`escape_marker` (start a detached `sleep` that should not outlive the run); per case:
`hang_on`, `exit_on`, `bad_shape_on`, `allocate_gb_on` (case -> GB), `symlink_labels`.
"""

from __future__ import annotations

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
        cases = sorted(p.name[: -len(".nii.gz")] for p in Path("input").glob("*.nii.gz"))
        if config.get("spy"):
            spy(config, cases[0])
        if config.get("escape_marker"):
            escape(config["escape_marker"])
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
