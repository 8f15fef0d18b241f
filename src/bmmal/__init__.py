"""bmmal: balanced multimodal active learning.

`bmmal.pool_outputs(model, data, labeled, needs)` turns any model with `embed`/`fuse` methods (the
`MultimodalModel` protocol) into the `PoolOutputs` that every strategy in `bmmal.strategies` selects from.
"""

from bmmal import datasets, strategies
from bmmal.errors import BmmalError
from bmmal.inference import MultimodalModel, pool_outputs
from bmmal.outputs import PoolOutputs

__version__ = "0.1.0"
__all__ = ["BmmalError", "MultimodalModel", "PoolOutputs", "__version__", "datasets", "pool_outputs", "strategies"]
