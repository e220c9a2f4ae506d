//! A network's local circulation: where its buyers spend, what comes in and leaks out, the local
//! multiplier and LM3, per time bucket and for the whole period.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Date, Text, Uuid as SqlUuid};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::lm3::{self, Lm3};
use super::{Granularity, Period};
use crate::http::error::{Error, Result};
use crate::identity::authz;
use crate::identity::tokens::Caller;

/// The key of sellers outside the network in the flow matrix.
pub const OUTSIDE: &str = "outside";

/// A network's local circulation over an inclusive period of WIB days: `totals` for the whole
/// period and one entry of `buckets` per day, week (Monday to Sunday) or month, clipped to the
/// period. Membership is the network's as it is now.
///
/// The network's buyers are the orders whose `buyer_village_code` is a member village (the
/// buyer is a user or a shop). Spend is the `total_idr` of their orders completed (settled) in
/// the bucket; nothing placed but not completed counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Circulation {
    pub network_id: Uuid,
    /// The member villages.
    pub village_codes: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: Granularity,
    pub totals: Figures,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// First day of the bucket (the period's first day for a bucket it cuts).
    pub start: NaiveDate,
    /// Last day of the bucket (the period's last day for a bucket it cuts).
    pub end: NaiveDate,
    pub figures: Figures,
}

/// The figures of one bucket (or of the period).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Figures {
    /// All spend of the network's buyers.
    pub spend_idr: i64,
    /// Completed orders of the network's buyers.
    pub orders: i64,
    pub spend_by_distance: Distance,
    /// `same_village_idr + network_idr`: spend at sellers inside the network.
    pub local_spend_idr: i64,
    /// `local_spend_idr ÷ spend_idr`; null when there was no spend.
    pub local_share: Option<f64>,
    /// Buyer village → seller village, seller villages outside the network merged as
    /// `outside`; by buyer, then seller.
    pub flows: Vec<Flow>,
    pub inflow: Inflow,
    pub leakage: Leakage,
    /// `local_spend_idr ÷ inflow.total_idr`: how many times a rupiah that came in was spent
    /// locally; null when nothing came in.
    pub local_multiplier: Option<f64>,
    /// LM3 of the network: round 1 is what entered its holders from outside its trade (top-ups
    /// and aid disbursements into accounts of member villages, and the seller's net of sales
    /// to buyers outside the network); rounds 2 and 3 are the re-spend at sellers inside the
    /// network, attributed pro rata within the bucket: a holder h (a user: wallet and aid
    /// balances; a shop: its wallet) with total inflow T_h (every credit to its accounts in
    /// member villages except refunds), round-k income I_k and local spend L_h re-spends
    /// s_h = min(I_k, L_h × I_k ÷ T_h), and each seller it bought from receives
    /// s_h × net(h→seller) ÷ L_h as round-(k+1) income (net: what the seller's wallet was
    /// credited at settlement; fees end the chain). Integer arithmetic in micro-rupiah,
    /// rounded down; rounds in whole rupiah.
    pub lm3: Lm3,
}

/// Spend by distance between the buyer's and the seller's village, each order in the first
/// class that fits. Codes are Kemendagri `PP.RR.DD.VVVV`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Distance {
    /// Seller in the buyer's village.
    pub same_village_idr: i64,
    /// Seller in another village of the network.
    pub network_idr: i64,
    /// Outside the network, same district (first 8 characters of the code, `34.02.15`).
    pub district_idr: i64,
    /// Same regency or city (first 5, `34.02`).
    pub regency_idr: i64,
    /// Same province (first 2, `34`).
    pub province_idr: i64,
    pub elsewhere_idr: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Flow {
    pub from_village: String,
    /// A member village, or `outside`.
    pub to_village: String,
    pub orders: i64,
    pub amount_idr: i64,
}

/// Money that came into the network.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Inflow {
    /// Top-ups (`topup` credits) into user and shop wallets whose home village is a member.
    pub topups_idr: i64,
    /// `aid_funding` credits of programmes run by member villages.
    pub aid_funding_idr: i64,
    /// `total_idr` of completed orders sold by the network's shops to buyers outside it.
    pub sales_to_outside_idr: i64,
    pub total_idr: i64,
}

/// Money that left the network.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Leakage {
    /// Withdrawals (`withdrawal` debits) from user and shop wallets of member villages.
    pub withdrawals_idr: i64,
    /// Spend of the network's buyers at sellers outside it.
    pub spend_outside_idr: i64,
    pub total_idr: i64,
}

/// Who may see a network's circulation: an admin (now) of a member village, through a token
/// of that village, and platform admins; anyone else, and an unknown network, 404.
pub fn authorize(conn: &mut PgConnection, caller: &Caller, network: Uuid) -> Result<Vec<String>> {
    let members = super::network_villages(conn, network)?;
    let now = authz::current(conn, caller)?;
    if now.is_platform_admin() || members.iter().any(|v| now.is_village_admin(v)) {
        Ok(members)
    } else {
        Err(Error::NotFound)
    }
}

pub fn circulation(
    conn: &mut PgConnection,
    caller: &Caller,
    network: Uuid,
    p: Period,
    g: Granularity,
) -> Result<Circulation> {
    let members = authorize(conn, caller, network)?;
    build(conn, network, members, p, g)
}

#[derive(QueryableByName)]
struct TradeRow {
    #[diesel(sql_type = Date)]
    bucket: NaiveDate,
    #[diesel(sql_type = Text)]
    buyer_village: String,
    #[diesel(sql_type = Text)]
    seller_village: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    gmv_idr: i64,
}

#[derive(QueryableByName)]
struct LedgerRow {
    #[diesel(sql_type = Date)]
    bucket: NaiveDate,
    #[diesel(sql_type = Text)]
    account_kind: String,
    #[diesel(sql_type = Text)]
    tx_kind: String,
    #[diesel(sql_type = BigInt)]
    credit_idr: i64,
    #[diesel(sql_type = BigInt)]
    debit_idr: i64,
}

#[derive(QueryableByName)]
struct HolderRow {
    #[diesel(sql_type = Date)]
    bucket: NaiveDate,
    #[diesel(sql_type = SqlUuid)]
    holder_id: Uuid,
    #[diesel(sql_type = BigInt)]
    round1_idr: i64,
    #[diesel(sql_type = BigInt)]
    inflow_idr: i64,
}

#[derive(QueryableByName)]
struct SpendRow {
    #[diesel(sql_type = Date)]
    bucket: NaiveDate,
    #[diesel(sql_type = SqlUuid)]
    buyer_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    shop_id: Uuid,
    #[diesel(sql_type = Bool)]
    buyer_inside: bool,
    #[diesel(sql_type = BigInt)]
    spend_idr: i64,
    #[diesel(sql_type = BigInt)]
    net_idr: i64,
}

/// The flows of a bucket (or the period) as LM3 needs them.
#[derive(Default)]
struct Lm3Input {
    round1: BTreeMap<Uuid, i64>,
    inflow: BTreeMap<Uuid, i64>,
    spends: BTreeMap<(Uuid, Uuid), (i64, i64)>,
}

impl Lm3Input {
    fn lm3(&self) -> Lm3 {
        let holders: Vec<lm3::Holder> = self
            .inflow
            .iter()
            .map(|(id, t)| lm3::Holder {
                id: *id,
                inflow_idr: *t,
            })
            .collect();
        let spends: Vec<lm3::Spend> = self
            .spends
            .iter()
            .map(|((b, s), (amount, net))| lm3::Spend {
                buyer: *b,
                seller: *s,
                amount_idr: *amount,
                net_idr: *net,
            })
            .collect();
        lm3::lm3(&self.round1, &holders, &spends)
    }
}

/// The bucket expression over a rollup's `day` (a DATE, truncated as a timestamp without time
/// zone so the session's zone plays no part).
fn bucket_sql(g: Granularity) -> String {
    format!("date_trunc('{}', day::timestamp)::date", g.as_str())
}

/// The figures themselves (no access check).
pub fn build(
    conn: &mut PgConnection,
    network: Uuid,
    members: Vec<String>,
    p: Period,
    g: Granularity,
) -> Result<Circulation> {
    let b = bucket_sql(g);
    let trade: Vec<TradeRow> = diesel::sql_query(format!(
        "SELECT {b} AS bucket, buyer_village, seller_village,
                sum(orders)::bigint AS orders, sum(gmv_idr)::bigint AS gmv_idr
           FROM report_trade_daily
          WHERE (buyer_village = ANY($1) OR seller_village = ANY($1)) AND day BETWEEN $2 AND $3
          GROUP BY 1, 2, 3"
    ))
    .bind::<Array<Text>, _>(&members)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    let ledger: Vec<LedgerRow> = diesel::sql_query(format!(
        "SELECT {b} AS bucket, account_kind, tx_kind,
                sum(credit_idr)::bigint AS credit_idr, sum(debit_idr)::bigint AS debit_idr
           FROM report_ledger_daily
          WHERE village_code = ANY($1) AND day BETWEEN $2 AND $3
            AND tx_kind IN ('topup', 'withdrawal', 'aid_funding')
          GROUP BY 1, 2, 3"
    ))
    .bind::<Array<Text>, _>(&members)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    let holders: Vec<HolderRow> = diesel::sql_query(format!(
        "SELECT {b} AS bucket, holder_id,
                sum(topup_idr + aid_idr)::bigint AS round1_idr,
                sum(topup_idr + aid_idr + settlement_idr + other_idr)::bigint AS inflow_idr
           FROM report_holder_daily
          WHERE village_code = ANY($1) AND day BETWEEN $2 AND $3
          GROUP BY 1, 2"
    ))
    .bind::<Array<Text>, _>(&members)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    let spends: Vec<SpendRow> = diesel::sql_query(format!(
        "SELECT {b} AS bucket, buyer_id, shop_id, buyer_village = ANY($1) AS buyer_inside,
                sum(spend_idr)::bigint AS spend_idr, sum(net_idr)::bigint AS net_idr
           FROM report_spend_daily
          WHERE seller_village = ANY($1) AND day BETWEEN $2 AND $3
          GROUP BY 1, 2, 3, 4"
    ))
    .bind::<Array<Text>, _>(&members)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;

    let inside: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    let buckets = g.buckets(p);
    let index: BTreeMap<NaiveDate, usize> = buckets
        .iter()
        .enumerate()
        .map(|(i, (k, _, _))| (*k, i))
        .collect();
    // One accumulator per bucket, and one for the period.
    let n = buckets.len();
    let mut acc: Vec<Acc> = (0..=n).map(|_| Acc::default()).collect();
    let slot = |d: &NaiveDate| index.get(d).copied();
    for r in &trade {
        let Some(i) = slot(&r.bucket) else { continue };
        for a in [i, n] {
            acc[a].trade(&inside, r);
        }
    }
    for r in &ledger {
        let Some(i) = slot(&r.bucket) else { continue };
        for a in [i, n] {
            acc[a].ledger(r);
        }
    }
    for r in &holders {
        let Some(i) = slot(&r.bucket) else { continue };
        for a in [i, n] {
            *acc[a].lm3.round1.entry(r.holder_id).or_default() += r.round1_idr;
            *acc[a].lm3.inflow.entry(r.holder_id).or_default() += r.inflow_idr;
        }
    }
    for r in &spends {
        let Some(i) = slot(&r.bucket) else { continue };
        for a in [i, n] {
            let x = &mut acc[a].lm3;
            if r.buyer_inside {
                let s = x.spends.entry((r.buyer_id, r.shop_id)).or_default();
                s.0 += r.spend_idr;
                s.1 += r.net_idr;
            } else {
                // A sale to a buyer outside: money entering the seller (round 1).
                *x.round1.entry(r.shop_id).or_default() += r.net_idr;
            }
        }
    }
    let mut figures: Vec<Figures> = acc.into_iter().map(Acc::finish).collect();
    let totals = figures.pop().expect("the period's accumulator");
    Ok(Circulation {
        network_id: network,
        village_codes: members.clone(),
        from: p.from,
        to: p.to,
        granularity: g,
        totals,
        buckets: buckets
            .into_iter()
            .zip(figures)
            .map(|((_, start, end), figures)| Bucket {
                start,
                end,
                figures,
            })
            .collect(),
    })
}

#[derive(Default)]
struct Acc {
    f: Figures,
    flows: BTreeMap<(String, String), (i64, i64)>,
    lm3: Lm3Input,
}

/// The distance class of an order from `buyer` to `seller` (village codes).
fn class<'a>(
    d: &'a mut Distance,
    inside: &BTreeSet<&str>,
    buyer: &str,
    seller: &str,
) -> &'a mut i64 {
    let same = |n: usize| buyer.len() >= n && seller.len() >= n && buyer[..n] == seller[..n];
    if buyer == seller {
        &mut d.same_village_idr
    } else if inside.contains(seller) {
        &mut d.network_idr
    } else if same(8) {
        &mut d.district_idr
    } else if same(5) {
        &mut d.regency_idr
    } else if same(2) {
        &mut d.province_idr
    } else {
        &mut d.elsewhere_idr
    }
}

impl Acc {
    fn trade(&mut self, inside: &BTreeSet<&str>, r: &TradeRow) {
        let buyer_in = inside.contains(r.buyer_village.as_str());
        let seller_in = inside.contains(r.seller_village.as_str());
        if buyer_in {
            self.f.spend_idr += r.gmv_idr;
            self.f.orders += r.orders;
            *class(
                &mut self.f.spend_by_distance,
                inside,
                &r.buyer_village,
                &r.seller_village,
            ) += r.gmv_idr;
            let to = if seller_in {
                r.seller_village.clone()
            } else {
                self.f.leakage.spend_outside_idr += r.gmv_idr;
                OUTSIDE.to_string()
            };
            let flow = self.flows.entry((r.buyer_village.clone(), to)).or_default();
            flow.0 += r.orders;
            flow.1 += r.gmv_idr;
        } else if seller_in {
            self.f.inflow.sales_to_outside_idr += r.gmv_idr;
        }
    }

    fn ledger(&mut self, r: &LedgerRow) {
        let wallet = matches!(r.account_kind.as_str(), "user_wallet" | "shop_wallet");
        match (r.account_kind.as_str(), r.tx_kind.as_str()) {
            (_, "topup") if wallet => self.f.inflow.topups_idr += r.credit_idr,
            (_, "withdrawal") if wallet => self.f.leakage.withdrawals_idr += r.debit_idr,
            ("aid_programme", "aid_funding") => self.f.inflow.aid_funding_idr += r.credit_idr,
            _ => {}
        }
    }

    fn finish(self) -> Figures {
        let mut f = self.f;
        let d = &f.spend_by_distance;
        f.local_spend_idr = d.same_village_idr + d.network_idr;
        f.local_share = (f.spend_idr > 0).then(|| f.local_spend_idr as f64 / f.spend_idr as f64);
        f.inflow.total_idr =
            f.inflow.topups_idr + f.inflow.aid_funding_idr + f.inflow.sales_to_outside_idr;
        f.leakage.total_idr = f.leakage.withdrawals_idr + f.leakage.spend_outside_idr;
        f.local_multiplier =
            (f.inflow.total_idr > 0).then(|| f.local_spend_idr as f64 / f.inflow.total_idr as f64);
        f.flows = self
            .flows
            .into_iter()
            .map(|((from_village, to_village), (orders, amount_idr))| Flow {
                from_village,
                to_village,
                orders,
                amount_idr,
            })
            .collect();
        f.lm3 = self.lm3.lm3();
        f
    }
}

impl Default for Lm3 {
    fn default() -> Self {
        Lm3::from_rounds(0, 0, 0)
    }
}
