"""Built-in tokenizer plugins, installed as `copilot_repl_plugins` and registered by entry point."""
