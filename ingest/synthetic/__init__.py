"""A seeded synthetic fleet: a contract dataset plus labelled ground truth.

The subpackage holds the city (:mod:`.city`: roads, sites), the truck days
(:mod:`.fleet`: knots, sampled reports, truth events) and the dataset writer
(:mod:`.dataset`: :func:`generate`). Import the public names from here.
"""

from haulwatch.ingest.synthetic.dataset import (
    ASSUMED_CORRIDOR_DEFAULT_M,
    CONDITIONS,
    TRUTH_COLUMNS,
    GeneratedDataset,
    SyntheticError,
    generate,
)

__all__ = [
    "ASSUMED_CORRIDOR_DEFAULT_M",
    "CONDITIONS",
    "TRUTH_COLUMNS",
    "GeneratedDataset",
    "SyntheticError",
    "generate",
]
