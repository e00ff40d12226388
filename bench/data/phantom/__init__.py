"""The embedded default dataset: a deterministic digital NCCT stroke phantom.

Built from nilearn's MNI152 2009a templates (offline), with per-case pose and shape, thick
slices, CT noise, an acute MCA-territory lesion, distractors, three simulated raters (A, B, C)
and the hidden truth. Exports are imported lazily (`bench.lazy`) so that the CLI can read the
profile table without importing nilearn.
"""

from bench.lazy import lazy_exports

_EXPORTS = {
    "build_phantom": "bench.data.phantom.build",
    "dataset_or_default": "bench.data.phantom.build",
    "default_cache_dir": "bench.data.phantom.build",
    "ensure_default_phantom": "bench.data.phantom.build",
    "PROFILES": "bench.data.phantom.profiles",
    "PhantomProfile": "bench.data.phantom.profiles",
    "get_profile": "bench.data.phantom.profiles",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
