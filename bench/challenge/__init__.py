"""Challenge mode: a submission predicts blind, in a sandbox, and is scored afterwards.

- `predict` (`bench challenge predict`): copies only the images into a sandbox folder and runs
  the submission's trained predictor there in a child process without network, with the
  dataset hidden, under time and memory limits; writes `<case>.nii.gz` masks and
  `challenge_record.json` (see `bench.challenge.predict` and `bench.challenge.sandbox`).
- `score_challenge` (`bench challenge score`): scores those masks against the hidden labels.

Importing this package imports nothing heavy; the submodules load what they need.
"""
