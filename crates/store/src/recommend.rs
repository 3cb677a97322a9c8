//! Product recommendations from purchase history: item-to-item co-occurrence over order lines.
//!
//! See [`Recommender`] for the method.

use std::collections::HashMap;

use rusqlite::params;

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// Why a product is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Bought by customers who bought the same products.
    CoPurchase,
    /// Popular among customers of the same tier (or everyone, without a tier).
    PopularInTier,
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recommendation {
    /// The product's SKU.
    pub sku: String,
    /// Its latest non-empty description, or the SKU.
    pub description: String,
    /// The co-occurrence score (0 for [`Basis::PopularInTier`]).
    pub score: f64,
    /// How many distinct customers bought it.
    pub buyers: u64,
    /// Why it is recommended.
    pub basis: Basis,
}

/// Co-occurrence scores by product index, sorted (for the tests).
pub type Scores = Vec<(u32, u64)>;

/// The purchase history as of one time, ready to recommend for any customer.
///
/// # The method
///
/// A product is an order line's `sku` (lines without one are ignored). For a customer `c` who
/// bought the set of products `I(c)` (orders placed at or before the recommendation time):
///
/// 1. every other customer `d` who bought at least one product of `I(c)` is a *neighbour*, with
///    an overlap `|I(c) ∩ I(d)|`;
/// 2. every product `j` a neighbour bought and `c` did not scores the sum of its buyers'
///    overlaps: `score(j) = Σ_{i ∈ I(c)} |buyers(i) ∩ buyers(j) \ {c}|`, the classic
///    item-to-item co-occurrence count summed over the customer's products;
/// 3. products are ranked by score, then by how many customers bought them, then by SKU (so
///    the order is deterministic), and the top `n` are taken;
/// 4. when fewer than `n` have a score (a customer without order lines, or whose products
///    nobody else bought), the rest are the products most bought (by distinct customers) by
///    customers *of the same tier*, or by everyone when the customer has no tier; they have
///    score 0 and [`Basis::PopularInTier`].
///
/// The sum is read from an item-to-item co-occurrence table (`co(i, j)` for every pair of
/// products bought by one customer), built once per [`Recommender`]: a customer then costs
/// the length of their products' rows, not a walk over their neighbours.
///
/// A product the customer already bought is never recommended. Every product's buyers are read
/// once into memory ([`Store::recommender`]), so a batch of emails costs one scan; a product's
/// description is read when it is first recommended ([`Store::recommend`]).
#[derive(Debug, Default)]
pub struct Recommender {
    /// Per customer rowid: the products bought, as sorted product indexes.
    items_of: HashMap<i64, Vec<u32>>,
    /// Per product index: the customers who bought it, sorted.
    buyers_of: Vec<Vec<i64>>,
    skus: Vec<String>,
    /// Per product: its description, read at its first recommendation ([`Store::recommend`]).
    descriptions: Vec<std::sync::OnceLock<String>>,
    /// The recommendation time: only orders placed at or before it count.
    at: i64,
    /// Each customer's current tier.
    tier_of: HashMap<i64, String>,
    /// Per tier (`None`: customers without one): products by distinct buyers in the tier, most
    /// bought first (then by SKU); computed at the first fallback.
    popular: std::sync::OnceLock<HashMap<Option<String>, Vec<u32>>>,
    /// Per product: every other product with the number of customers who bought both
    /// (`co(i, j)`), computed at the first recommendation.
    co: std::sync::OnceLock<Vec<Vec<(u32, u32)>>>,
    /// Whether a recommendation was made already (the first one walks the neighbours).
    recommended: std::sync::atomic::AtomicBool,
}

/// Every order line with a SKU (`sku > ''`: not NULL and not empty), product by product in SKU
/// (byte) order: a walk of the index `order_items_by_sku`, which holds the order id.
const LINES_BY_PRODUCT: &str = "SELECT sku, order_id FROM order_items WHERE sku > '' ORDER BY sku";

impl Store {
    /// Reads every product's buyers (order lines with a SKU of orders placed at or before `at`)
    /// and every customer's current tier into a [`Recommender`] (one read transaction).
    ///
    /// Two scans, neither sorted by SQLite: the orders placed at or before `at` (id and
    /// customer), held as a sorted list, and the index `order_items_by_sku`, which gives
    /// each product's lines together (SKU and order id only: no description text is read, and a
    /// SKU is compared with the previous line's instead of hashed). Descriptions are read per
    /// recommended product, by [`Store::recommend`].
    pub fn recommender(&self, at: i64) -> Result<Recommender, StoreError> {
        let path = &self.label;
        let tx = self.conn.unchecked_transaction().at(path)?;
        // (order id, customer) of the orders placed at or before `at`, by id.
        let owners: Vec<(i64, i64)> = {
            let mut stmt = tx
                .prepare("SELECT id, customer_id FROM orders WHERE ordered_at <= ?1 ORDER BY id")
                .at(path)?;
            let rows = stmt
                .query_map(params![at], |row| Ok((row.get(0)?, row.get(1)?)))
                .at(path)?;
            rows.collect::<rusqlite::Result<_>>().at(path)?
        };
        // Order ids are normally dense: a table indexed by `id - first`; else a binary search.
        let first = owners.first().map_or(0, |&(id, _)| id);
        let span = owners
            .last()
            .and_then(|&(last, _)| usize::try_from(last - first + 1).ok())
            .filter(|&span| span <= 4 * owners.len() + 1024);
        let direct: Option<Vec<i64>> = span.map(|span| {
            let mut table = vec![i64::MIN; span];
            for &(id, customer) in &owners {
                table[usize::try_from(id - first).expect("within the span")] = customer;
            }
            table
        });
        let customer_of = |order: i64| -> Option<i64> {
            match &direct {
                Some(table) => usize::try_from(order - first)
                    .ok()
                    .and_then(|index| table.get(index).copied())
                    .filter(|&customer| customer != i64::MIN),
                None => owners
                    .binary_search_by_key(&order, |&(id, _)| id)
                    .ok()
                    .map(|index| owners[index].1),
            }
        };
        let mut recommender = Recommender {
            at,
            ..Recommender::default()
        };
        {
            let mut stmt = tx.prepare(LINES_BY_PRODUCT).at(path)?;
            let mut rows = stmt.query([]).at(path)?;
            // The SKU of the product being read and whether it has a line at or before `at` yet
            // (a product only exists once it has one).
            let mut current: (Vec<u8>, bool) = (Vec::new(), false);
            while let Some(row) = rows.next().at(path)? {
                let order_id: i64 = row.get(1).at(path)?;
                // Bytes, compared with the previous line's; text only for a new product.
                let sku = row.get_ref(0).and_then(|v| Ok(v.as_bytes()?)).at(path)?;
                if sku != current.0.as_slice() {
                    sku.clone_into(&mut current.0);
                    current.1 = false;
                }
                let Some(customer) = customer_of(order_id) else {
                    continue;
                };
                if !current.1 {
                    current.1 = true;
                    let sku = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).at(path)?;
                    recommender.skus.push(sku.to_owned());
                    recommender.buyers_of.push(Vec::new());
                }
                recommender
                    .buyers_of
                    .last_mut()
                    .expect("pushed above")
                    .push(customer);
            }
        }
        drop(direct);
        drop(owners);
        // Products are numbered in SKU order, so each customer's list is built sorted.
        for (item, buyers) in (0_u32..).zip(&mut recommender.buyers_of) {
            buyers.sort_unstable();
            buyers.dedup();
            for &buyer in buyers.iter() {
                recommender.items_of.entry(buyer).or_default().push(item);
            }
        }
        recommender.descriptions = (0..recommender.skus.len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        let mut stmt = tx
            .prepare("SELECT customer_id, tier FROM customer_tiers")
            .at(path)?;
        let tiers = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect::<rusqlite::Result<HashMap<i64, String>>>)
            .at(path)?;
        recommender.tier_of = tiers;
        Ok(recommender)
    }

    /// Up to `n` products for the customer with rowid `customer`, best first (see the
    /// [`Recommender`] for the method), with their descriptions: a product's is the one of its
    /// latest line (by order time, then order id, then line number) placed at or before the
    /// recommender's time that has a non-empty one, else its SKU. Each product's description
    /// is read once per recommender, from its own lines (the index `order_items_by_sku`).
    pub fn recommend(
        &self,
        recommender: &Recommender,
        customer: i64,
        n: usize,
    ) -> Result<Vec<Recommendation>, StoreError> {
        recommender
            .ranked(customer, n)
            .into_iter()
            .map(|(item, score, basis)| {
                let slot = item as usize;
                let description = match recommender.descriptions[slot].get() {
                    Some(description) => description.clone(),
                    None => {
                        let read = self.description(&recommender.skus[slot], recommender.at)?;
                        recommender.descriptions[slot].get_or_init(|| read).clone()
                    }
                };
                Ok(Recommendation {
                    sku: recommender.skus[slot].clone(),
                    description,
                    score,
                    buyers: recommender.buyers_of[slot].len() as u64,
                    basis,
                })
            })
            .collect()
    }

    /// The description of the product `sku` as of `at` (see [`Store::recommend`]).
    fn description(&self, sku: &str, at: i64) -> Result<String, StoreError> {
        let path = &self.label;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.ordered_at, i.order_id, i.line_no, i.description \
                 FROM order_items i JOIN orders o ON o.id = i.order_id \
                 WHERE i.sku = ?1 AND o.ordered_at <= ?2 AND i.description IS NOT NULL",
            )
            .at(path)?;
        let mut rows = stmt.query(params![sku, at]).at(path)?;
        let mut latest: Option<((i64, i64, i64), String)> = None;
        while let Some(row) = rows.next().at(path)? {
            let key: (i64, i64, i64) = (
                row.get(0).at(path)?,
                row.get(1).at(path)?,
                row.get(2).at(path)?,
            );
            if latest.as_ref().is_some_and(|(earlier, _)| *earlier >= key) {
                continue;
            }
            let text = row
                .get_ref(3)
                .and_then(|v| Ok(v.as_str()?))
                .at(path)?
                .trim();
            if !text.is_empty() {
                latest = Some((key, text.to_owned()));
            }
        }
        Ok(latest.map_or_else(|| sku.to_owned(), |(_, text)| text))
    }
}

impl Recommender {
    /// Up to `n` products for the customer with rowid `customer`, best first (see the
    /// [`Recommender`] for the method): product, score and basis; [`Store::recommend`] adds the
    /// descriptions.
    fn ranked(&self, customer: i64, n: usize) -> Vec<(u32, f64, Basis)> {
        if n == 0 {
            return Vec::new();
        }
        let own: &[u32] = self.items_of.get(&customer).map_or(&[], Vec::as_slice);
        let owns = |item: u32| own.binary_search(&item).is_ok();
        // 1-2. Σ over the customer's products i of co(i, j): the same sum as over neighbours'
        // overlaps. The first recommendation walks the neighbours (one customer, as `preview`
        // renders, costs the length of their neighbours' rows); from the second one on, the
        // item-to-item co-occurrence rows are built once and read (a batch). The customer never
        // counts in co(i, j) for a product j they did not buy, so both give the same sums.
        let first = !self
            .recommended
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        let scores = if first && self.co.get().is_none() {
            self.walk_neighbours(customer, own)
        } else {
            self.read_co_occurrence(own)
        };
        let mut ranked: Vec<(u32, u64)> = scores.into_iter().collect();
        ranked.sort_by(|(a, sa), (b, sb)| {
            sb.cmp(sa)
                .then_with(|| self.buyers(*b).cmp(&self.buyers(*a)))
                .then_with(|| self.skus[*a as usize].cmp(&self.skus[*b as usize]))
        });
        let mut out: Vec<(u32, f64, Basis)> = ranked
            .into_iter()
            .take(n)
            .map(|(item, score)| (item, score as f64, Basis::CoPurchase))
            .collect();
        if out.len() < n {
            // 4. fill with what the customer's tier buys most. The customer's own purchases
            // count in the tier's totals only for products they own, which are skipped anyway.
            let tier = self.tier_of.get(&customer).cloned();
            let popular = self
                .popular_by_tier()
                .get(&tier)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .copied()
                .filter(|item| !owns(*item) && !out.iter().any(|r| r.0 == *item));
            let missing = n - out.len();
            let filler: Vec<u32> = popular.take(missing).collect();
            out.extend(
                filler
                    .into_iter()
                    .map(|item| (item, 0.0, Basis::PopularInTier)),
            );
        }
        out
    }

    /// Scores of the products the customer did not buy, from the co-occurrence rows.
    fn read_co_occurrence(&self, own: &[u32]) -> HashMap<u32, u64> {
        let owns = |item: u32| own.binary_search(&item).is_ok();
        let co = self.co_occurrence();
        let mut scores: HashMap<u32, u64> = HashMap::new();
        for &item in own {
            for &(other, count) in &co[item as usize] {
                if !owns(other) {
                    *scores.entry(other).or_default() += u64::from(count);
                }
            }
        }
        scores
    }

    /// The same scores as [`read_co_occurrence`](Recommender::read_co_occurrence), from the
    /// neighbours: each other buyer of the customer's products adds their overlap with the
    /// customer to every product of theirs the customer did not buy.
    fn walk_neighbours(&self, customer: i64, own: &[u32]) -> HashMap<u32, u64> {
        let owns = |item: u32| own.binary_search(&item).is_ok();
        let mut overlaps: HashMap<i64, u64> = HashMap::new();
        for &item in own {
            for &buyer in &self.buyers_of[item as usize] {
                if buyer != customer {
                    *overlaps.entry(buyer).or_default() += 1;
                }
            }
        }
        // Dense per product (every overlap is at least 1, so a product scored is above 0).
        let mut scores = vec![0_u64; self.skus.len()];
        for (neighbour, overlap) in overlaps {
            for &item in self.items_of.get(&neighbour).map_or(&[][..], Vec::as_slice) {
                if !owns(item) {
                    scores[item as usize] += overlap;
                }
            }
        }
        (0_u32..)
            .zip(scores)
            .filter(|&(_, score)| score > 0)
            .collect()
    }

    /// The item-to-item co-occurrence rows: one pass over every customer's pairs of products.
    fn co_occurrence(&self) -> &[Vec<(u32, u32)>] {
        self.co.get_or_init(|| {
            let mut rows: Vec<HashMap<u32, u32>> = vec![HashMap::new(); self.skus.len()];
            for items in self.items_of.values() {
                for &a in items {
                    let row = &mut rows[a as usize];
                    for &b in items {
                        if a != b {
                            *row.entry(b).or_default() += 1;
                        }
                    }
                }
            }
            rows.into_iter()
                .map(|row| {
                    let mut row: Vec<(u32, u32)> = row.into_iter().collect();
                    row.sort_unstable();
                    row
                })
                .collect()
        })
    }

    /// Products by distinct buyers per tier, most bought first (then by SKU).
    fn popular_by_tier(&self) -> &HashMap<Option<String>, Vec<u32>> {
        self.popular.get_or_init(|| {
            let mut counts: HashMap<Option<String>, HashMap<u32, u64>> = HashMap::new();
            for (customer, items) in &self.items_of {
                let tier = self.tier_of.get(customer).cloned();
                let tier_counts = counts.entry(tier).or_default();
                for &item in items {
                    *tier_counts.entry(item).or_default() += 1;
                }
            }
            counts
                .into_iter()
                .map(|(tier, items)| {
                    let mut ranked: Vec<(u32, u64)> = items.into_iter().collect();
                    ranked.sort_by(|(a, ca), (b, cb)| {
                        cb.cmp(ca)
                            .then_with(|| self.skus[*a as usize].cmp(&self.skus[*b as usize]))
                    });
                    (tier, ranked.into_iter().map(|(item, _)| item).collect())
                })
                .collect()
        })
    }

    fn buyers(&self, item: u32) -> usize {
        self.buyers_of[item as usize].len()
    }

    /// The co-occurrence scores of `customer`'s products both ways (built table, neighbour
    /// walk), sorted: equal by construction, compared by the tests.
    #[doc(hidden)]
    #[must_use]
    pub fn scores_both_ways(&self, customer: i64) -> (Scores, Scores) {
        let own: &[u32] = self.items_of.get(&customer).map_or(&[], Vec::as_slice);
        let mut table: Vec<(u32, u64)> = self.read_co_occurrence(own).into_iter().collect();
        let mut walk: Vec<(u32, u64)> = self.walk_neighbours(customer, own).into_iter().collect();
        table.sort_unstable();
        walk.sort_unstable();
        (table, walk)
    }

    /// The customers with purchases, by rowid.
    #[doc(hidden)]
    pub fn customers(&self) -> impl Iterator<Item = i64> + '_ {
        self.items_of.keys().copied()
    }

    /// How many products the history holds.
    #[must_use]
    pub fn products(&self) -> usize {
        self.skus.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_products_lines_are_read_from_the_index_without_a_sort() {
        let store = Store::open_in_memory().unwrap();
        let plan = store.query_plan(LINES_BY_PRODUCT);
        assert!(plan.contains("COVERING INDEX order_items_by_sku"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
