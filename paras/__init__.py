"""The shipped default model lives in `default/`; installed as the `copilot_repl_paras` package."""
