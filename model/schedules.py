"""Training schedules of the DVAE pre-training (docs/method.md §4)."""

from __future__ import annotations


def kl_weight(epoch: int, warmup_epochs: int, enabled: bool = True) -> float:
    """KL warm-up: weight rises linearly 0 -> 1 over the first ``warmup_epochs`` epochs (0-based), then 1."""
    if not enabled or warmup_epochs <= 0:
        return 1.0
    return min(1.0, epoch / warmup_epochs)


def ss_probability(epoch: int, ss_start: int, ss_end: int, enabled: bool = True, ss_max: float = 1.0) -> float:
    """Scheduled sampling: P(recurrence driven by the model's own x̂_{t-1}) at ``epoch`` (0-based).

    0 before ``ss_start``, linear 0 -> ``ss_max`` between ``ss_start`` and ``ss_end``, ``ss_max`` afterwards
    (the reference: ``ss_max`` = 1).
    """
    if not enabled or epoch < ss_start:
        return 0.0
    if epoch >= ss_end:
        return ss_max
    return ss_max * (epoch - ss_start) / (ss_end - ss_start)


def final_schedule_epoch(ss_start: int, ss_end: int, kl_warmup: bool, schedule_sampling: bool) -> int:
    """First epoch from which both schedules are constant; early stopping compares epochs from here on."""
    end = ss_start if kl_warmup else 0
    if schedule_sampling:
        end = max(end, ss_end)
    return end
