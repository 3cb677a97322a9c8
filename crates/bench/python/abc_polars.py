"""Online Retail import/clean + ABC tiers in polars: a lazy CSV scan, in memory.

Cleaning and ABC as in abc_pandas.py, as a skilled analyst writes them in polars.

Usage: python abc_polars.py --input online_retail.csv --at 2011-12-10 --output tiers.csv
"""

import argparse
import datetime
import json
import sys

import polars as pl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--at", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    at = datetime.datetime.fromisoformat(args.at)

    lines = pl.scan_csv(
        args.input,
        schema_overrides={"InvoiceNo": pl.String, "StockCode": pl.String, "CustomerID": pl.String},
        try_parse_dates=True,
    ).filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") > 0)
        & (pl.col("InvoiceDate") < at)
    )
    revenue = pl.col("revenue")
    before = (revenue.cum_sum() - revenue) / revenue.sum()
    customers = (
        lines.group_by("CustomerID")
        .agg(revenue=(pl.col("Quantity") * pl.col("UnitPrice")).sum(), lines=pl.len())
        .sort(["revenue", "CustomerID"], descending=[True, False])
        .with_columns(
            tier=pl.when((revenue > 0) & (before < 0.80))
            .then(pl.lit("A"))
            .when((revenue > 0) & (before < 0.95))
            .then(pl.lit("B"))
            .otherwise(pl.lit("C"))
        )
        .collect()
    )
    customers.select(customer="CustomerID", tier="tier").write_csv(args.output)
    json.dump(
        {
            "lines": int(customers["lines"].sum()),
            "customers": customers.height,
            "tiers": dict(customers["tier"].value_counts().iter_rows()),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
