"""Run in a virtualenv with ``implicit`` (``IMPLICIT_PYTHON``): fit ALS on a customers-by-products
matrix and print, as JSON, the top 10 product indices for the requested customer rows.

    python implicit_als.py matrix.npz rows.json factors regularization alpha iterations
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from implicit.als import AlternatingLeastSquares
from scipy import sparse


def main() -> None:
    matrix_path, rows_path, factors, regularization, alpha, iterations = sys.argv[1:7]
    x = sparse.load_npz(matrix_path).tocsr()
    with open(rows_path) as listed:
        rows = np.array(json.load(listed), dtype=np.int64)
    model = AlternatingLeastSquares(factors=int(factors), regularization=float(regularization), alpha=float(alpha),
                                    iterations=int(iterations), random_state=7)  # fmt: skip
    started = time.perf_counter()
    model.fit(x, show_progress=False)
    fitted = time.perf_counter() - started
    ids, _ = model.recommend(rows, x[rows], N=10, filter_already_liked_items=False)
    print(json.dumps({"fit_s": fitted, "top": np.asarray(ids).tolist()}))


if __name__ == "__main__":
    main()
