"""On PYTHONPATH, this makes `import torch` fail in the process: what completes must not need it."""

import sys

sys.modules["torch"] = None  # type: ignore[assignment]
