"""The analyst's pandas notebook, as a script: ABC tiers and RFM scores from an orders CSV.

It does what tiercare does with examples/online-retail (orders.mapping.yaml and rules/), so the
benchmark runner can time both on the same file and check that they agree:

- clean (Online Retail only): drop lines without a CustomerID, cancelled invoices (InvoiceNo
  starting with "C"), and lines with a non-positive Quantity or UnitPrice; a line's revenue is
  Quantity * UnitPrice; the lines of one invoice form one order;
- ABC: customers sorted by revenue (descending, ties by customer id); the share of revenue of the
  customers before each one; A below 80%, B below 95%, C the rest (rules/tiers.yaml);
- RFM: quintile scores 1..5 over customers with an order, score = 1 + floor(5 * below / N), below
  = customers with a strictly worse value (recency: more days since the last order; frequency:
  fewer orders; monetary: less revenue), as crates/store/src/features.rs defines them; segments
  as rules/rfm.yaml.

Usage: python tiering.py --format retail|demo --at UNIX_SECONDS --input FILE --output FILE
Prints one JSON object with the counts (customers, tiers, rfm segments) and phase timings.
"""

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd


def read_retail(path):
    """Online Retail: clean it as orders.mapping.yaml does; (customer, order, revenue, time)."""
    lines = pd.read_csv(
        path,
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str, "Country": str},
        keep_default_na=False,
    )
    lines = lines[lines["CustomerID"] != ""]
    lines = lines[~lines["InvoiceNo"].str.startswith("C")]
    lines = lines[(lines["Quantity"] > 0) & (lines["UnitPrice"] > 0)]
    lines = lines.assign(amount=lines["Quantity"] * lines["UnitPrice"])
    # InvoiceDate is UK local time.
    when = pd.to_datetime(lines["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    when = when.dt.tz_localize("Europe/London", ambiguous=True, nonexistent="shift_forward")
    return pd.DataFrame(
        {
            "customer": lines["CustomerID"].to_numpy(),
            "order": lines["InvoiceNo"].to_numpy(),
            "amount": lines["amount"].to_numpy(),
            "unix": when.dt.as_unit("s").astype("int64").to_numpy(),
        }
    )


def read_demo(path):
    """A `tiercare demo` orders.csv: one order per line, times in UTC, nothing to clean."""
    orders = pd.read_csv(
        path, dtype={"order_id": str, "customer_id": str, "amount": float}
    )
    when = pd.to_datetime(orders["ordered_at"], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    return pd.DataFrame(
        {
            "customer": orders["customer_id"].to_numpy(),
            "order": orders["order_id"].to_numpy(),
            "amount": orders["amount"].to_numpy(),
            "unix": when.dt.as_unit("s").astype("int64").to_numpy(),
        }
    )


def quintile(worse_first_rank):
    """1 + floor(5 * below / N) from min-method ranks where rank 1 is the worst value."""
    below = worse_first_rank - 1
    return (1 + (5 * below) // len(below)).astype(int)


def tier_customers(lines, at):
    lines = lines[lines["unix"] <= at]
    per_order = lines.groupby("order", sort=False).agg(
        customer=("customer", "first"), amount=("amount", "sum"), unix=("unix", "min")
    )
    customers = per_order.groupby("customer").agg(
        revenue=("amount", "sum"), orders=("amount", "size"), last=("unix", "max")
    )
    # ABC: by revenue descending, ties by customer id ascending.
    customers = customers.reset_index().sort_values(
        ["revenue", "customer"], ascending=[False, True], kind="mergesort"
    )
    total = customers["revenue"].sum()
    before = (customers["revenue"].cumsum() - customers["revenue"]) / total
    positive = customers["revenue"] > 0
    customers["tier"] = np.select(
        [positive & (before < 0.80), positive & (before < 0.95)], ["A", "B"], default="C"
    )
    # RFM quintiles over customers with an order (all of them here).
    days = (at - customers["last"]) // 86400
    customers["r"] = quintile(days.rank(method="min", ascending=False))
    customers["f"] = quintile(customers["orders"].rank(method="min", ascending=True))
    customers["m"] = quintile((customers["revenue"] + 0.0).rank(method="min", ascending=True))
    r, f, m = customers["r"], customers["f"], customers["m"]
    customers["rfm"] = np.select(
        [
            (r >= 4) & (f >= 4) & (m >= 4),
            (r >= 3) & (f >= 4),
            (r <= 2) & (f >= 4) & (m >= 4),
            (r <= 2) & (f >= 3),
            (r >= 4) & (customers["orders"] == 1),
            r >= 4,
            r == 3,
            r == 1,
            r == 2,
        ],
        [
            "champions",
            "loyal",
            "cannot_lose",
            "at_risk",
            "new",
            "potential_loyalists",
            "need_attention",
            "lost",
            "hibernating",
        ],
        default="(none)",
    )
    return customers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["retail", "demo"], required=True)
    parser.add_argument("--at", type=int, required=True, help="assessment time, unix seconds")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    lines = read_retail(args.input) if args.format == "retail" else read_demo(args.input)
    read = time.perf_counter()
    customers = tier_customers(lines, args.at)
    computed = time.perf_counter()
    customers[["customer", "tier", "revenue", "orders", "r", "f", "m", "rfm"]].to_csv(
        args.output, index=False
    )
    written = time.perf_counter()
    json.dump(
        {
            "lines": int(len(lines)),
            "customers": int(len(customers)),
            "revenue": float(customers["revenue"].sum()),
            "tiers": {k: int(v) for k, v in customers["tier"].value_counts().items()},
            "rfm": {k: int(v) for k, v in customers["rfm"].value_counts().items()},
            "seconds": {
                "read_and_clean": read - started,
                "compute": computed - read,
                "write": written - computed,
            },
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
