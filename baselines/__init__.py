"""Built-in methods, registered lazily so that `bench list` imports no deep-learning library.

Each entry names the adapter class as "module:Class" and says in one line what it does.
"""

from bench.registry import METHODS

BUILTIN_METHODS: dict[str, tuple[str, str]] = {}

for _name, (_target, _description) in BUILTIN_METHODS.items():
    METHODS.register_lazy(_name, _target, _description)
