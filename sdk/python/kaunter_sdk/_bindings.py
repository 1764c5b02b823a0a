"""Finds the modules componentize-py generated for the world being built.

Inside a component they are the real imports; in native tests they are the same generated
modules (`componentize-py -d sdk/wit -w WORLD bindings .`), whose functions the fake host
replaces. kaunter's `types` interface is `kaunter_plugin_types` when the world also imports
`wasi:http` (whose own `types` would clash), `types` otherwise.
"""
import importlib
from types import ModuleType

_ALIASES = {"types": ("kaunter_plugin_types", "types")}

# componentize-py keeps only the modules imported while it builds the component (a snapshot of
# the initialised interpreter): import every interface the world may have now, not on first use.
_KNOWN = (
    "kaunter_plugin_types",
    "types",
    "config",
    "log",
    "kv",
    "clock",
    "crypto",
    "errors",
    "delivery",
    "webhook",
    "outgoing_handler",
    "wasi_http_types",
    "streams",
    "poll",
)
for _name in _KNOWN:
    try:
        importlib.import_module(f"wit_world.imports.{_name}")
    except ModuleNotFoundError:
        pass


def module(name: str) -> ModuleType:
    """The generated module for interface `name` (`types`, `kv`, `delivery`, `wasi_http_types`, ...)."""
    for candidate in _ALIASES.get(name, (name,)):
        try:
            return importlib.import_module(f"wit_world.imports.{candidate}")
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError(
        f"no generated bindings for `{name}`: run `componentize-py -d <sdk>/wit -w <world> bindings .` first"
    )
