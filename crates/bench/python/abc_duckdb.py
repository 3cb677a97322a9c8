"""Online Retail import/clean + ABC tiers in DuckDB, persisting the cleaned lines to a file.

What tiercare does, as a skilled analyst writes it in DuckDB: the CSV is read in parallel
(`read_csv`), the cleaned lines (every column, as tiercare keeps them) are stored in a table of
a database file, then the ABC tiers are computed from that table in SQL. Cleaning and ABC as in
abc_pandas.py.

Usage: python abc_duckdb.py --input online_retail.csv --at 2011-12-10 --database lines.duckdb
       --output tiers.csv
"""

import argparse
import json
import sys

import duckdb


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--at", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    con = duckdb.connect(args.database)
    con.execute(
        """
        CREATE OR REPLACE TABLE lines AS
        SELECT *, Quantity * UnitPrice AS amount
        FROM read_csv(?, header = true,
                      types = {'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR',
                               'CustomerID': 'VARCHAR', 'InvoiceDate': 'TIMESTAMP'})
        WHERE CustomerID IS NOT NULL AND NOT starts_with(InvoiceNo, 'C')
          AND Quantity > 0 AND UnitPrice > 0
        """,
        [args.input],
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE tiers AS
        WITH c AS (
            SELECT CustomerID AS customer, sum(amount) AS revenue
            FROM lines WHERE InvoiceDate < CAST(? AS TIMESTAMP) GROUP BY CustomerID
        ), r AS (
            SELECT customer, revenue,
                   (sum(revenue) OVER (ORDER BY revenue DESC, customer
                                       ROWS UNBOUNDED PRECEDING) - revenue)
                   / sum(revenue) OVER () AS before
            FROM c
        )
        SELECT customer,
               CASE WHEN revenue > 0 AND before < 0.80 THEN 'A'
                    WHEN revenue > 0 AND before < 0.95 THEN 'B'
                    ELSE 'C' END AS tier
        FROM r
        """,
        [args.at],
    )
    con.execute("COPY tiers TO ? (HEADER)", [args.output])
    kept = con.execute("SELECT count(*) FROM lines").fetchone()[0]
    counts = dict(con.execute("SELECT tier, count(*) FROM tiers GROUP BY tier").fetchall())
    con.close()
    json.dump(
        {"lines": kept, "customers": sum(counts.values()), "tiers": counts},
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
