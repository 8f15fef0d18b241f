"""Strategies by name: bmmal's own (imported on first use), `@register`ed classes, and third-party
strategies from the `bmmal.strategies` entry-point group."""

from bmmal.registry import Registry

BUILTINS = {
    "badge": "bmmal.strategies.badge:Badge",
    "bald": "bmmal.strategies.bald:Bald",
    "bmmal": "bmmal.strategies.bmmal:Bmmal",
    "coregcn": "bmmal.strategies.gcn:CoreGCN",
    "coreset": "bmmal.strategies.coreset:Coreset",
    "deepfool": "bmmal.strategies.deepfool:DeepFool",
    "entropy": "bmmal.strategies.entropy:Entropy",
    "kmeans": "bmmal.strategies.kmeans:KMeansSampling",
    "least_confidence": "bmmal.strategies.least_confidence:LeastConfidence",
    "margin": "bmmal.strategies.margin:Margin",
    "multihead_badge": "bmmal.strategies.multihead_badge:MultiheadBadge",
    "random": "bmmal.strategies.random:RandomSampling",
    "uncertaingcn": "bmmal.strategies.gcn:UncertainGCN",
}

STRATEGIES = Registry("strategy", "bmmal.strategies", BUILTINS, named=True)
register = STRATEGIES.register
available = STRATEGIES.available
strategy_class = STRATEGIES.lookup
get = STRATEGIES.get
