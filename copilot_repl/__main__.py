from copilot_repl.cli import main

raise SystemExit(main())
