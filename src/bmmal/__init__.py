"""bmmal: balanced multimodal active learning."""

from bmmal import datasets, strategies
from bmmal.errors import BmmalError

__version__ = "0.1.0"
__all__ = ["BmmalError", "__version__", "datasets", "strategies"]
