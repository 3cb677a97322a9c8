"""Reference values from `lifetimes` (BetaGeoFitter, GammaGammaFitter) on the CDNOW sample.

Run by `crates/growth/tests/cdnow.rs` in the tests' venv (`target/test-venv`, made by `.ci/deps`):

    python lifetimes_cdnow.py CDNOW_sample.txt

Calibration: purchases up to and including 1997-09-30 (the paper's first 39 weeks), at most one
purchase per customer per day (amounts of a day summed), times in days. Prints one JSON object:
the fitted parameters, and per customer (sample id order) frequency, recency, T, monetary value,
and lifetimes' p_alive, expected purchases in 7, 30, 90 and 365 days, expected average order value and 12-month
CLV (1%/month), and the tracking chart's weekly expected cumulative repeat purchases over 78
weeks, all computed on lifetimes' own fitted parameters.
"""

import json
import sys
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
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

repeat = summary[summary["frequency"] > 0]
ggf = GammaGammaFitter(penalizer_coef=0.0)
ggf.fit(repeat["frequency"], repeat["monetary_value"])

f, r, t = summary["frequency"], summary["recency"], summary["T"]
m = summary["monetary_value"]
p_alive = bgf.conditional_probability_alive(f, r, t)
expected_7 = bgf.conditional_expected_number_of_purchases_up_to_time(7, f, r, t)
expected_30 = bgf.conditional_expected_number_of_purchases_up_to_time(30, f, r, t)
expected_90 = bgf.conditional_expected_number_of_purchases_up_to_time(90, f, r, t)
expected_365 = bgf.conditional_expected_number_of_purchases_up_to_time(365, f, r, t)
aov = ggf.conditional_expected_average_profit(f, m)
clv = ggf.customer_lifetime_value(
    bgf, f, r, t, m, time=12, discount_rate=0.01, freq="D"
)

# The tracking chart (the paper's Figure 4): every customer of the sample, weeks from the first
# purchase day (1997-01-01) to 1998-06-30 (78 weeks); each week's expected cumulative repeat
# purchases are lifetimes' unconditional E[X(t)] summed over the customers, t = days from the
# customer's first purchase day to the week's last day (0 before it).
all_tx = pd.DataFrame(rows, columns=["id", "date", "amount"])
all_tx["date"] = pd.to_datetime(all_tx["date"], format="%Y%m%d")
first = all_tx.groupby("id")["date"].min()
start = first.min()
tracking = []
for week in range(1, 79):
    end = start + pd.Timedelta(days=7 * week - 1)
    since = (end - first).dt.days.clip(lower=0).astype(float)
    tracking.append(float(bgf.expected_number_of_purchases_up_to_time(since.values).sum()))

out = {
    "bgnbd": {k: float(v) for k, v in bgf.params_.items()},
    "bgnbd_log_likelihood": float(-bgf._negative_log_likelihood_ * len(summary)),
    "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
    "tracking_expected": tracking,
    "customers": [
        {
            "id": int(i),
            "frequency": float(v[0]),
            "recency": float(v[1]),
            "T": float(v[2]),
            "monetary_value": float(v[3]),
            "p_alive": float(v[4]),
            "expected_90": float(v[5]),
            "expected_365": float(v[6]),
            "expected_order_value": float(v[7]),
            "clv_12m": float(v[8]),
            "expected_7": float(v[9]),
            "expected_30": float(v[10]),
        }
        for i, v in zip(
            summary.index,
            zip(*(list(map(float, c)) for c in (f, r, t, m, p_alive, expected_90, expected_365, aov, clv, expected_7, expected_30))),
        )
    ],
}
json.dump(out, sys.stdout)
