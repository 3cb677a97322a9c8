"""Reference values for `expected_orders(days)` (crates/engine/tests/expected_orders.rs).

Generated once with `lifetimes` 0.11.3 in the tests' venv (`target/test-venv`, `.ci/deps`):

    target/test-venv/bin/python crates/engine/tests/reference/expected_orders_cdnow.py \
        crates/growth/tests/data/CDNOW_sample.txt > crates/engine/tests/data/expected_orders_cdnow.csv

The CDNOW sample's calibration period as in `crates/growth/tests/reference/lifetimes_cdnow.py`
(purchases up to 1997-09-30, one purchase a day, times in days), BetaGeoFitter's fit, then
`conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)` for every tenth
customer (sample ids 1, 11, 21, ...) at horizons of 1, 7, 30, 90, 180 and 365 days. The first
line holds lifetimes' fitted parameters (r, alpha in days, a, b), full precision.
"""

import sys
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")

rows = []
with open(sys.argv[1], encoding="ascii") as f:
    for line in f:
        parts = line.split()
        if parts:
            rows.append((int(parts[1]), parts[2], float(parts[4])))
tx = pd.DataFrame(rows, columns=["id", "date", "amount"])
tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
tx = tx[tx["date"] <= "1997-09-30"]
summary = summary_data_from_transaction_data(
    tx, "id", "date", monetary_value_col="amount", observation_period_end="1997-09-30", freq="D"
).sort_index()

bgf = BetaGeoFitter(penalizer_coef=0.0)
bgf.fit(summary["frequency"], summary["recency"], summary["T"])
p = bgf.params_
print(f"# r={p['r']!r} alpha={p['alpha']!r} a={p['a']!r} b={p['b']!r}")
horizons = [1, 7, 30, 90, 180, 365]
print("id,frequency,recency,T," + ",".join(f"e{t}" for t in horizons))
picked = summary[(summary.index - 1) % 10 == 0]
f, r, t = picked["frequency"], picked["recency"], picked["T"]
columns = [bgf.conditional_expected_number_of_purchases_up_to_time(h, f, r, t) for h in horizons]
for i, (cid, row) in enumerate(picked.iterrows()):
    values = ",".join(repr(float(c.iloc[i])) for c in columns)
    print(f"{cid},{int(row['frequency'])},{int(row['recency'])},{int(row['T'])},{values}")
