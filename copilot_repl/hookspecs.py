"""The hooks a plugin may implement. Hook calls are keyword-only, so specs can grow safely."""

import pluggy

hookspec = pluggy.HookspecMarker("copilot_repl")
hookimpl = pluggy.HookimplMarker("copilot_repl")


@hookspec
def register_tokenizers(register):
    """Call `register(TokenizerClass)` for each tokenizer this plugin provides."""
