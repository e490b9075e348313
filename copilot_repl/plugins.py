"""The plugin manager. Built-in tokenizers are found through the same entry-point group,
`copilot_repl`, that a third-party package declares, so both are treated alike."""

from __future__ import annotations

import importlib

import pluggy

from copilot_repl import hookspecs

ENTRY_POINT_GROUP = "copilot_repl"
# Used only when running from a source tree that was never installed (no entry points exist then).
BUILTIN_MODULES = ("copilot_repl_plugins.char", "copilot_repl_plugins.bpe", "copilot_repl_plugins.tiktoken_compact")

pm = pluggy.PluginManager("copilot_repl")
pm.add_hookspecs(hookspecs)
_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in BUILTIN_MODULES:
        if pm.get_plugin(module_name.rsplit(".", 1)[1]) is None:
            try:
                pm.register(importlib.import_module(module_name), name=module_name.rsplit(".", 1)[1])
            except (ImportError, ValueError):
                pass


def registered_tokenizers() -> dict[str, type]:
    """Every tokenizer class registered by a plugin, by name."""
    _load()
    found: dict[str, type] = {}
    pm.hook.register_tokenizers(register=lambda cls: found.setdefault(cls.name, cls))
    return found


def tokenizer_sources() -> dict[str, str]:
    """Where each tokenizer comes from (the plugin's distribution or module), for `:tokenizers`."""
    _load()
    sources: dict[str, str] = {}
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for plugin in pm.get_plugins():
        dist = dists.get(id(plugin))
        origin = f"{dist.project_name} {dist.version}" if dist else getattr(plugin, "__name__", str(plugin))
        plugin.register_tokenizers(register=lambda cls, o=origin: sources.setdefault(cls.name, o))
    return sources
