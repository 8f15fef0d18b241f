"""MMPareto: Pareto integration of the multimodal and the unimodal gradient of each encoder.

Wei and Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", ICML 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bmmal.trainers.base import TrainingMethod
from bmmal.trainers.registry import register


def min_norm_weight(g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """The weight a in [0, 1] minimising ||a g1 + (1 - a) g2|| (closed form for two vectors)."""
    diff = g1 - g2
    denominator = diff.dot(diff)
    if denominator <= 0:
        return g1.new_tensor(0.5)
    return ((g2 - g1).dot(g2) / denominator).clamp(0.0, 1.0)


def pareto_combine(g_multi: torch.Tensor, g_uni: torch.Tensor, pareto: bool = True) -> torch.Tensor:
    """One encoder's update from its multimodal and unimodal gradients (flat vectors).

    No conflict (cos >= 0), or `pareto` off: the uniform sum g_multi + g_uni. Conflict: the min-norm
    point d = a g_multi + (1 - a) g_uni of the segment between them (it has the same non-negative inner
    product ||d||^2 with both when a is interior), rescaled to the length of the uniform sum.
    """
    total = g_multi + g_uni
    if not pareto or g_multi.dot(g_uni) >= 0:
        return total
    a = min_norm_weight(g_multi, g_uni)
    direction = a * g_multi + (1 - a) * g_uni
    length = direction.norm()
    if length == 0:
        return direction
    return direction * (total.norm() / length)


@register
@dataclass
class MMPareto(TrainingMethod):
    """Per encoder, the fused-loss gradient and its own unimodal-loss gradient, combined without conflict.

    For every modality m, g_multi = grad of the (weighted) fused loss and g_uni = grad of m's (weighted)
    unimodal loss w.r.t. all parameters of encoder m, flattened into one vector each. Following the
    paper's algorithm: if cos(g_multi, g_uni) >= 0 the encoder gets their plain sum (the "uniform
    baseline", i.e. joint training); if they conflict it gets the min-norm (MGDA) combination
    a g_multi + (1 - a) g_uni, a = clamp(<g_uni - g_multi, g_uni> / ||g_multi - g_uni||^2, 0, 1), whose
    direction is common to both losses, rescaled to the magnitude ||g_multi + g_uni|| of the uniform sum
    it replaces (the paper's magnitude step: Pareto weights summing to 1 shrink the update, which the
    paper finds hurts generalisation. Followed exactly: the cosine test, the two-gradient min-norm
    weights, equal loss weights. Our reading: the rescaling target ||g_multi + g_uni||, the length of
    the uniform update, which could not be checked against the paper's text here). Heads get the
    ordinary gradient of the total loss (each head sees one loss only). The losses are weighted as in
    joint training (`fused_loss_weight`, `unimodal_loss_weight`: 1 and 1, the paper's equal weighting).

    Parameters: `pareto` = True (False always takes the uniform sum: joint training with M + 1 backward
    passes instead of one). Cost: M + 1 backward passes per batch. Works for any number of modalities.
    """

    name = "mmpareto"
    summary = "MMPareto (Wei & Hu 2024): per encoder, Pareto-combine conflicting fused/unimodal gradients"
    pareto: bool = True

    def backward(self, model, out, terms, targets, scale) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        losses = {"fused": terms.fused / terms.norm, **{m: t / terms.norm for m, t in terms.unimodal.items()}}
        if terms.extra is not None:
            losses["extra"] = terms.extra
        grads = {name: torch.autograd.grad(scale(loss), params, retain_graph=i + 1 < len(losses), allow_unused=True)
                 for i, (name, loss) in enumerate(losses.items())}
        done = set()
        for m in model.modalities:
            own = {id(q) for q in model.encoders[m].parameters()}
            index = [i for i, p in enumerate(params) if id(p) in own]
            part = [params[i] for i in index]
            g_uni = _flat([grads[m][i] for i in index], part)
            g_multi = sum(_flat([grads[n][i] for i in index], part) for n in losses if n != m)
            combined = pareto_combine(g_multi, g_uni, self.pareto)
            for p, chunk in zip(part, torch.split(combined, [p.numel() for p in part])):
                p.grad = chunk.view_as(p).clone()
            done.update(index)
        for i, p in enumerate(params):
            parts = [grads[n][i] for n in losses if grads[n][i] is not None]
            if i not in done and parts:
                p.grad = torch.stack(parts).sum(0)


def _flat(grads: list[torch.Tensor | None], params: list[torch.Tensor]) -> torch.Tensor:
    """One vector of the gradients (zeros where a loss does not reach a parameter)."""
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])
