"""Online Retail import/clean + ABC tiers, as a skilled analyst writes it in pandas (in memory).

The same cleaning as examples/online-retail/orders.mapping.yaml (lines with a CustomerID, not
cancelled, positive quantity and price; revenue = Quantity * UnitPrice) and the same ABC as
rules/tiers.yaml (customers by revenue descending, ties by id; A below 80 % of revenue before
them, B below 95 %, C the rest), up to --at (a naive local date, exclusive).

Usage: python abc_pandas.py --input online_retail.csv --at 2011-12-10 --output tiers.csv
Prints {"lines": kept lines, "customers": n, "tiers": {tier: count}}; writes customer,tier.
"""

import argparse
import json
import sys

import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--at", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    lines = pd.read_csv(
        args.input,
        usecols=["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
        dtype={"InvoiceNo": str, "CustomerID": str},
        parse_dates=["InvoiceDate"],
        date_format="%Y-%m-%d %H:%M:%S",
    )
    lines = lines[
        lines["CustomerID"].notna()
        & ~lines["InvoiceNo"].str.startswith("C")
        & (lines["Quantity"] > 0)
        & (lines["UnitPrice"] > 0)
        & (lines["InvoiceDate"] < pd.Timestamp(args.at))
    ]
    revenue = (
        (lines["Quantity"] * lines["UnitPrice"]).groupby(lines["CustomerID"]).sum().rename("revenue")
    )
    customers = revenue.reset_index().sort_values(
        ["revenue", "CustomerID"], ascending=[False, True], kind="mergesort"
    )
    before = (customers["revenue"].cumsum() - customers["revenue"]) / customers["revenue"].sum()
    positive = customers["revenue"] > 0
    customers["tier"] = np.select(
        [positive & (before < 0.80), positive & (before < 0.95)], ["A", "B"], default="C"
    )
    customers[["CustomerID", "tier"]].to_csv(args.output, index=False, header=["customer", "tier"])
    json.dump(
        {
            "lines": int(len(lines)),
            "customers": int(len(customers)),
            "tiers": {k: int(v) for k, v in customers["tier"].value_counts().items()},
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
