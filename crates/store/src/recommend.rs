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
/// A product the customer already bought is never recommended. The whole purchase history is
/// read once into memory ([`Store::recommender`]), so a batch of emails costs one scan.
#[derive(Debug, Default)]
pub struct Recommender {
    /// Per customer rowid: the products bought, as sorted product indexes.
    items_of: HashMap<i64, Vec<u32>>,
    /// Per product index: the customers who bought it, sorted.
    buyers_of: Vec<Vec<i64>>,
    skus: Vec<String>,
    descriptions: Vec<String>,
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

impl Store {
    /// Reads every order line with a SKU of orders placed at or before `at`, and every
    /// customer's current tier, into a [`Recommender`] (one read transaction).
    ///
    /// Two scans in primary-key order, merged: the orders (id, customer, time) and the order
    /// lines, with no join and no sort, so that one `preview` of one email stays fast. A
    /// product's description is the one of its latest line (by order time, then order id, then
    /// line number) that has a non-empty one.
    pub fn recommender(&self, at: i64) -> Result<Recommender, StoreError> {
        let path = &self.label;
        let tx = self.conn.unchecked_transaction().at(path)?;
        // The orders placed at or before `at`, by id, stepped beside the lines (a merge join:
        // nothing of the orders is held but the current one).
        let mut orders_stmt = tx
            .prepare(
                "SELECT id, customer_id, ordered_at FROM orders \
                 WHERE ordered_at <= ?1 ORDER BY id",
            )
            .at(path)?;
        let mut orders = orders_stmt.query(params![at]).at(path)?;
        // (order id, customer, ordered_at) of the next order; `None` past the last.
        let step = |orders: &mut rusqlite::Rows<'_>| -> rusqlite::Result<_> {
            orders.next()?.map_or(Ok(None), |row| {
                Ok(Some((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                )))
            })
        };
        let mut order = step(&mut orders).at(path)?;
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut recommender = Recommender::default();
        // Per product: the (ordered_at, order id, line_no) of the line its description is from.
        let mut described: Vec<Option<(i64, i64, i64)>> = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT order_id, line_no, sku, description FROM order_items \
                     WHERE sku IS NOT NULL AND sku <> '' ORDER BY order_id, line_no",
                )
                .at(path)?;
            let mut rows = stmt.query([]).at(path)?;
            // The products of the order being read, added to its customer's at the next order.
            let mut basket: (i64, Vec<u32>) = (0, Vec::new());
            while let Some(row) = rows.next().at(path)? {
                let order_id: i64 = row.get(0).at(path)?;
                // Both scans run in order id order: advance the orders to this line's.
                while order.is_some_and(|(id, _, _)| id < order_id) {
                    order = step(&mut orders).at(path)?;
                }
                let Some((_, customer, ordered_at)) = order.filter(|o| o.0 == order_id) else {
                    continue;
                };
                if basket.0 != customer && !basket.1.is_empty() {
                    let items = recommender.items_of.entry(basket.0).or_default();
                    items.append(&mut basket.1);
                }
                basket.0 = customer;
                let line_no: i64 = row.get(1).at(path)?;
                let sku = row.get_ref(2).and_then(|v| Ok(v.as_str()?)).at(path)?;
                let item = match index.get(sku) {
                    Some(&item) => item,
                    None => {
                        let item = u32::try_from(index.len()).unwrap_or(u32::MAX);
                        index.insert(sku.to_owned(), item);
                        recommender.skus.push(sku.to_owned());
                        recommender.descriptions.push(sku.to_owned());
                        recommender.buyers_of.push(Vec::new());
                        described.push(None);
                        item
                    }
                };
                let slot = item as usize;
                let key = (ordered_at, order_id, line_no);
                if described[slot].is_none_or(|earlier| earlier < key) {
                    let description = row
                        .get_ref(3)
                        .and_then(|v| Ok(v.as_str_or_null()?))
                        .at(path)?
                        .map(str::trim)
                        .filter(|d| !d.is_empty());
                    if let Some(description) = description {
                        description.clone_into(&mut recommender.descriptions[slot]);
                        described[slot] = Some(key);
                    }
                }
                recommender.buyers_of[slot].push(customer);
                basket.1.push(item);
            }
            if !basket.1.is_empty() {
                recommender
                    .items_of
                    .entry(basket.0)
                    .or_default()
                    .append(&mut basket.1);
            }
        }
        for buyers in &mut recommender.buyers_of {
            buyers.sort_unstable();
            buyers.dedup();
        }
        for items in recommender.items_of.values_mut() {
            items.sort_unstable();
            items.dedup();
        }
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
}

impl Recommender {
    /// Up to `n` products for the customer with rowid `customer`, best first (see the
    /// [`Recommender`] for the method).
    #[must_use]
    pub fn recommend(&self, customer: i64, n: usize) -> Vec<Recommendation> {
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
        let mut out: Vec<Recommendation> = ranked
            .into_iter()
            .take(n)
            .map(|(item, score)| self.recommendation(item, score as f64, Basis::CoPurchase))
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
                .filter(|item| {
                    !owns(*item) && !out.iter().any(|r| r.sku == self.skus[*item as usize])
                });
            let missing = n - out.len();
            let filler: Vec<u32> = popular.take(missing).collect();
            out.extend(
                filler
                    .into_iter()
                    .map(|item| self.recommendation(item, 0.0, Basis::PopularInTier)),
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

    fn recommendation(&self, item: u32, score: f64, basis: Basis) -> Recommendation {
        let slot = item as usize;
        Recommendation {
            sku: self.skus[slot].clone(),
            description: self.descriptions[slot].clone(),
            score,
            buyers: self.buyers_of[slot].len() as u64,
            basis,
        }
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
