"""PMR: prototypical modal rebalance.

Fan, Xu, Wang, Wang, Guo, "PMR: Prototypical Modal Rebalance for Multimodal Learning", CVPR 2023.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from bmmal.trainers.base import (
    LossTerms,
    TrainingMethod,
    check,
    check_window,
    loss_terms,
    present_ratios,
    present_rows,
    true_class_confidence,
)
from bmmal.trainers.registry import register


def class_prototypes(embeddings: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class mean embedding [C, d]; rows of classes without a sample are NaN (left out later)."""
    sums = torch.zeros(num_classes, embeddings.shape[1], dtype=torch.float32, device=embeddings.device)
    sums.index_add_(0, targets, embeddings.float())
    counts = torch.bincount(targets, minlength=num_classes).float()[:, None]
    return sums / counts.where(counts > 0, torch.full_like(counts, float("nan")))


def prototype_logits(embeddings: torch.Tensor, targets: torch.Tensor, prototypes: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(-||z - c_k|| over the classes k that have a prototype, targets as positions among those classes)."""
    known = ~prototypes.isnan().any(1)
    position = torch.cumsum(known, 0) - 1
    squared = (embeddings.float()[:, None, :] - prototypes[known][None]).pow(2).sum(-1)
    return -squared.clamp_min(1e-12).sqrt(), position[targets]  # clamped: finite gradient at distance 0


def pmr_coefficients(scores: torch.Tensor, alpha: float, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(beta, gamma) per modality from the prototype confidence scores s_m.

    rho_m = s_m / mean_{k != m} s_k; a lagging modality (rho_m < 1) gets beta_m = alpha (1 / rho_m - 1)
    on its prototypical cross-entropy (for M = 2: alpha (rho_other - 1), the paper's form); a leading
    one (rho_m > 1) gets gamma_m = mu on its prototypical entropy regulariser.
    """
    rho = present_ratios(scores)
    beta = torch.where(rho < 1, alpha * (1 / rho.clamp_min(1e-12) - 1), torch.zeros_like(rho))
    gamma = torch.where(rho > 1, torch.full_like(rho, mu), torch.zeros_like(rho))
    return beta, gamma


@register
@dataclass
class PMR(TrainingMethod):
    """Pulls a lagging modality's encoder toward its class prototypes, and slows the leading one.

    At the start of every epoch the prototype c_k^m of class k for modality m is the mean embedding of
    the labelled rows of class k (eval mode, no gradient); the paper recomputes prototypes every epoch
    as well (it may use a sample of the training set, here it is all labelled rows: small in active
    learning). Per batch, the prototypical probabilities are p^m = softmax_k(-||z_m - c_k^m||), the
    prototypical cross-entropy is PCE_m = CE(p^m, y), and modality m's confidence is
    s_m = sum_i p^m_i[y_i]. A modality absent from some rows: its prototypes, PCE, entropy and s_m (a
    mean over its rows times the batch size) use the rows that have it only. With rho_m = s_m / mean_{k != m} s_k (the paper's s_a / s_v for M = 2):
    loss = joint loss + sum_m beta_m PCE_m - sum_m gamma_m mean_i H(p^m_i), where beta_m = alpha (1/rho_m - 1)
    for lagging modalities (rho_m < 1) and gamma_m = mu for leading ones (rho_m > 1); zero otherwise.
    The PCE term accelerates the slow encoder; the entropy regulariser (PER) keeps the leading
    modality's prototype distribution from collapsing early, slowing it. Both only in epochs
    [modulation_starts, modulation_ends); outside them this is joint training. Classes absent from the
    labelled set have no prototype and are left out of the softmax (the same classes for every
    modality, since all prototypes come from the same labelled rows).

    Parameters: `alpha` = 1.0 (strength of the rebalancing PCE term; the paper tunes it per dataset),
    `mu` = 0.1 (weight of the entropy regulariser; our default), `modulation_starts` = 0 and
    `modulation_ends` = 50 (early epochs only, as in OGM-GE whose code PMR builds on). Works for any
    number of modalities and either fusion (it uses the encoders' embeddings only).
    """

    name = "pmr"
    summary = "PMR (Fan et al. 2023): prototype cross-entropy for lagging modalities, entropy brake for leaders"
    alpha: float = 1.0
    mu: float = 0.1
    modulation_starts: int = 0
    modulation_ends: int = 50
    prototypes: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        check(self.alpha >= 0 and self.mu >= 0, f"trainer 'pmr': alpha and mu must be >= 0, got {self.alpha}, {self.mu}")
        check_window(self.name, self.modulation_starts, self.modulation_ends)

    def _active(self, model) -> bool:
        return len(model.modalities) >= 2 and (self.alpha > 0 or self.mu > 0) and self.modulating()

    def start(self, model, config) -> None:
        super().start(model, config)
        self.prototypes = {}

    def start_epoch(self, epoch, model, labeled) -> None:
        super().start_epoch(epoch, model, labeled)
        if not self._active(model):
            self.prototypes = {}
            return
        embeddings, targets = labeled()
        # the model embeds an absent modality as exactly zero: such rows do not shape the prototypes
        have = {m: (z != 0).any(dim=1) for m, z in embeddings.items()}
        self.prototypes = {m: class_prototypes(z[have[m]], targets[have[m]], model.num_classes)
                           for m, z in embeddings.items()}

    def loss(self, out, targets) -> LossTerms:
        terms = loss_terms(out, targets, self.config)
        if not self.prototypes:
            return terms
        logits, positions, rows = {}, {}, {}
        for m, z in out.embeddings.items():
            logits[m], positions[m] = prototype_logits(z, targets, self.prototypes[m])
            # rows that have m and whose class has an m prototype (with complete data: every row)
            known = ~self.prototypes[m].isnan().any(1)[targets]
            present = present_rows(out, m)
            rows[m] = known if present is None else known & present
        probs = {m: z.softmax(1) for m, z in logits.items()}
        scores = torch.stack([true_class_confidence(z, positions[m].clamp_min(0), rows[m])
                              for m, z in logits.items()]).detach()
        beta, gamma = pmr_coefficients(scores, self.alpha, self.mu)
        extra = []
        for (m, z), b, g in zip(logits.items(), beta.tolist(), gamma.tolist()):
            keep = rows[m]
            if not bool(keep.any()):
                continue
            if b > 0:
                extra.append(b * F.cross_entropy(z[keep], positions[m][keep]))
            if g > 0:
                entropy = -torch.special.xlogy(probs[m][keep], probs[m][keep]).sum(1).mean()
                extra.append(-g * entropy)
        if extra:
            terms.extra = torch.stack(extra).sum()
        return terms
