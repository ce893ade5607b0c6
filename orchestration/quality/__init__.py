"""Data-quality gates: a suite per raw stream, validated on each batch before it is committed."""

from orchestration.quality.suites import FRESHNESS_MAX_LAG_DAYS, SUITES, suite_for
from orchestration.quality.validate import BatchResult, Failure, QualityGateError, validate_batch

__all__ = [
    "FRESHNESS_MAX_LAG_DAYS",
    "SUITES",
    "BatchResult",
    "Failure",
    "QualityGateError",
    "suite_for",
    "validate_batch",
]
