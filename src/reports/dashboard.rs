//! A village's dashboard: its shops' sales, its residents' and shops' purchases, PADes revenue,
//! wallet totals and aid, over an inclusive period of WIB days.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Period, day_start};
use crate::http::error::{Error, Result};
use crate::identity::authz;
use crate::identity::tokens::Caller;
use crate::orders::machine::OrderStatus;

/// Rows of the top lists.
pub const TOP: usize = 10;

/// A village's dashboard. Every amount is integer rupiah; "in the period" means on a WIB day
/// from `from` through `to`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub village_code: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub sales: Sales,
    pub purchases: Purchases,
    /// Shops of the village whose status is `active` now.
    pub active_shops: i64,
    /// PADes revenue received: credits to the village's `village_revenue` account in the
    /// period (its share of every completed sale of its shops).
    pub pades_revenue_idr: i64,
    pub wallets: WalletTotals,
    pub aid: AidSummary,
}

/// Sales of the village's shops.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sales {
    /// GMV: sum of `total_idr` (lines + delivery) of the shops' orders completed (settled) in
    /// the period.
    pub gmv_idr: i64,
    /// Orders completed in the period.
    pub completed_orders: i64,
    /// Orders placed in the period, by their status now (every status listed, zeros too).
    pub orders_by_status: Vec<StatusCount>,
    /// The 10 products with the most revenue (sum of `line_total_idr`, delivery excluded) in
    /// orders completed in the period; ties by product id.
    pub top_products: Vec<TopProduct>,
    /// The 10 buying villages (the buyer's village: a user's at checkout, a buying shop's)
    /// with the most GMV completed in the period, the village itself included.
    pub top_buying_villages: Vec<VillageAmount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCount {
    pub status: OrderStatus,
    pub orders: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopProduct {
    pub product_id: Uuid,
    /// The product's name now.
    pub name: String,
    pub quantity: i64,
    pub revenue_idr: i64,
}

/// Orders and money of one village in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct VillageAmount {
    pub village_code: String,
    pub village_name: Option<String>,
    pub orders: i64,
    pub amount_idr: i64,
}

/// Purchases by the village's residents and shops: orders whose buyer village is this one,
/// completed in the period, by seller village.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purchases {
    pub total_idr: i64,
    pub orders: i64,
    /// Largest first (all seller villages).
    pub by_seller_village: Vec<VillageAmount>,
}

/// Balances now of the wallets whose home village is this one.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletTotals {
    pub user_wallets: i64,
    pub user_wallets_idr: i64,
    pub shop_wallets: i64,
    pub shop_wallets_idr: i64,
    pub total_idr: i64,
}

/// The village's aid programmes.
#[derive(Debug, Serialize, ToSchema)]
pub struct AidSummary {
    /// Disbursed in the period: debits of the programmes' accounts by `aid_disbursement`.
    pub disbursed_idr: i64,
    /// Aid of the village's programmes spent in orders completed in the period (`order_aid`).
    pub spent_idr: i64,
    /// Where it was spent, by seller village, largest first.
    pub spent_by_seller_village: Vec<VillageAmount>,
    /// Where it was spent, by shop, largest first.
    pub spent_by_shop: Vec<ShopAmount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopAmount {
    pub shop_id: Uuid,
    pub shop_name: String,
    pub village_code: String,
    pub amount_idr: i64,
}

#[derive(QueryableByName)]
struct VillageRow {
    #[diesel(sql_type = Text)]
    village_code: String,
    #[diesel(sql_type = Nullable<Text>)]
    village_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    amount_idr: i64,
}

impl From<VillageRow> for VillageAmount {
    fn from(r: VillageRow) -> Self {
        VillageAmount {
            village_code: r.village_code,
            village_name: r.village_name,
            orders: r.orders,
            amount_idr: r.amount_idr,
        }
    }
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct ProductRow {
    #[diesel(sql_type = SqlUuid)]
    product_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    quantity: i64,
    #[diesel(sql_type = BigInt)]
    revenue_idr: i64,
}

#[derive(QueryableByName)]
struct Figures {
    #[diesel(sql_type = BigInt)]
    active_shops: i64,
    #[diesel(sql_type = BigInt)]
    pades_revenue_idr: i64,
    #[diesel(sql_type = BigInt)]
    aid_disbursed_idr: i64,
    #[diesel(sql_type = BigInt)]
    user_wallets: i64,
    #[diesel(sql_type = BigInt)]
    user_wallets_idr: i64,
    #[diesel(sql_type = BigInt)]
    shop_wallets: i64,
    #[diesel(sql_type = BigInt)]
    shop_wallets_idr: i64,
}

#[derive(QueryableByName)]
struct ShopRow {
    #[diesel(sql_type = SqlUuid)]
    shop_id: Uuid,
    #[diesel(sql_type = Text)]
    shop_name: String,
    #[diesel(sql_type = Text)]
    village_code: String,
    #[diesel(sql_type = BigInt)]
    amount_idr: i64,
}

/// Who may see a village's dashboard: its admins and treasurers (now, not the token's
/// snapshot) and platform admins; everyone else gets 404, as for an unknown village.
pub fn authorize(conn: &mut PgConnection, caller: &Caller, village: &str) -> Result<()> {
    let now = authz::current(conn, caller)?;
    if now.is_platform_admin() || now.is_village_admin(village) || now.is_treasurer_of(village) {
        crate::villages::get(conn, village).map(|_| ())
    } else {
        Err(Error::NotFound)
    }
}

/// The dashboard of `village` over `p`, for a caller allowed to see it.
pub fn dashboard(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    p: Period,
) -> Result<Dashboard> {
    authorize(conn, caller, village)?;
    build(conn, village, p)
}

fn trade_by(
    conn: &mut PgConnection,
    own: &str,
    other: &str,
    village: &str,
    p: Period,
) -> Result<Vec<VillageAmount>> {
    let rows: Vec<VillageRow> = diesel::sql_query(format!(
        "SELECT r.village_code, v.name AS village_name, r.orders, r.amount_idr
           FROM (SELECT {other} AS village_code, sum(orders)::bigint AS orders, sum(gmv_idr)::bigint AS amount_idr
                   FROM report_trade_daily WHERE {own} = $1 AND day BETWEEN $2 AND $3
                  GROUP BY 1) r
           LEFT JOIN villages v ON v.code = r.village_code
          ORDER BY r.amount_idr DESC, r.village_code"
    ))
    .bind::<Text, _>(village)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    Ok(rows.into_iter().map(VillageAmount::from).collect())
}

/// The figures themselves (no access check).
pub fn build(conn: &mut PgConnection, village: &str, p: Period) -> Result<Dashboard> {
    let buyers = trade_by(conn, "seller_village", "buyer_village", village, p)?;
    let sellers = trade_by(conn, "buyer_village", "seller_village", village, p)?;
    let statuses: Vec<StatusRow> = diesel::sql_query(
        "SELECT status, count(*) AS n FROM orders
          WHERE village_code = $1 AND placed_at >= $2 AND placed_at < $3 GROUP BY status",
    )
    .bind::<Text, _>(village)
    .bind::<Timestamptz, _>(day_start(p.from))
    .bind::<Timestamptz, _>(day_start(p.to + Duration::days(1)))
    .load(conn)?;
    let top_products: Vec<ProductRow> = diesel::sql_query(
        "SELECT r.product_id, p.name, r.quantity, r.revenue_idr
           FROM (SELECT product_id, sum(quantity)::bigint AS quantity, sum(revenue_idr)::bigint AS revenue_idr
                   FROM report_product_daily WHERE village_code = $1 AND day BETWEEN $2 AND $3
                  GROUP BY product_id ORDER BY 3 DESC, 1 LIMIT 10) r
           JOIN products p ON p.id = r.product_id
          ORDER BY r.revenue_idr DESC, r.product_id",
    )
    .bind::<Text, _>(village)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    let f: Figures = diesel::sql_query(
        "SELECT (SELECT count(*) FROM shops WHERE village_code = $1 AND status = 'active') AS active_shops,
                COALESCE((SELECT sum(credit_idr) FROM report_ledger_daily
                           WHERE village_code = $1 AND day BETWEEN $2 AND $3
                             AND account_kind = 'village_revenue'), 0)::bigint AS pades_revenue_idr,
                COALESCE((SELECT sum(debit_idr) FROM report_ledger_daily
                           WHERE village_code = $1 AND day BETWEEN $2 AND $3
                             AND account_kind = 'aid_programme' AND tx_kind = 'aid_disbursement'), 0)::bigint AS aid_disbursed_idr,
                count(*) FILTER (WHERE kind = 'user_wallet') AS user_wallets,
                COALESCE(sum(balance_idr) FILTER (WHERE kind = 'user_wallet'), 0)::bigint AS user_wallets_idr,
                count(*) FILTER (WHERE kind = 'shop_wallet') AS shop_wallets,
                COALESCE(sum(balance_idr) FILTER (WHERE kind = 'shop_wallet'), 0)::bigint AS shop_wallets_idr
           FROM accounts WHERE village_code = $1 AND kind IN ('user_wallet', 'shop_wallet')",
    )
    .bind::<Text, _>(village)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .get_result(conn)?;
    let aid_villages: Vec<VillageRow> = diesel::sql_query(
        "SELECT r.seller_village AS village_code, v.name AS village_name, 0::bigint AS orders, r.amount_idr
           FROM (SELECT seller_village, sum(amount_idr)::bigint AS amount_idr FROM report_aid_spent_daily
                  WHERE programme_village = $1 AND day BETWEEN $2 AND $3 GROUP BY 1) r
           LEFT JOIN villages v ON v.code = r.seller_village
          ORDER BY r.amount_idr DESC, r.seller_village",
    )
    .bind::<Text, _>(village)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;
    let aid_shops: Vec<ShopRow> = diesel::sql_query(
        "SELECT r.shop_id, s.name AS shop_name, s.village_code, r.amount_idr
           FROM (SELECT shop_id, sum(amount_idr)::bigint AS amount_idr FROM report_aid_spent_daily
                  WHERE programme_village = $1 AND day BETWEEN $2 AND $3 GROUP BY 1) r
           JOIN shops s ON s.id = r.shop_id
          ORDER BY r.amount_idr DESC, r.shop_id",
    )
    .bind::<Text, _>(village)
    .bind::<Date, _>(p.from)
    .bind::<Date, _>(p.to)
    .load(conn)?;

    let gmv_idr = buyers.iter().map(|b| b.amount_idr).sum();
    let completed_orders = buyers.iter().map(|b| b.orders).sum();
    let orders_by_status = OrderStatus::ALL
        .iter()
        .map(|s| StatusCount {
            status: *s,
            orders: statuses
                .iter()
                .find(|r| r.status == s.as_str())
                .map_or(0, |r| r.n),
        })
        .collect();
    let spent_idr = aid_villages.iter().map(|v| v.amount_idr).sum();
    Ok(Dashboard {
        village_code: village.to_string(),
        from: p.from,
        to: p.to,
        sales: Sales {
            gmv_idr,
            completed_orders,
            orders_by_status,
            top_products: top_products
                .into_iter()
                .map(|r| TopProduct {
                    product_id: r.product_id,
                    name: r.name,
                    quantity: r.quantity,
                    revenue_idr: r.revenue_idr,
                })
                .collect(),
            top_buying_villages: buyers.into_iter().take(TOP).collect(),
        },
        purchases: Purchases {
            total_idr: sellers.iter().map(|s| s.amount_idr).sum(),
            orders: sellers.iter().map(|s| s.orders).sum(),
            by_seller_village: sellers,
        },
        active_shops: f.active_shops,
        pades_revenue_idr: f.pades_revenue_idr,
        wallets: WalletTotals {
            user_wallets: f.user_wallets,
            user_wallets_idr: f.user_wallets_idr,
            shop_wallets: f.shop_wallets,
            shop_wallets_idr: f.shop_wallets_idr,
            total_idr: f.user_wallets_idr + f.shop_wallets_idr,
        },
        aid: AidSummary {
            disbursed_idr: f.aid_disbursed_idr,
            spent_idr,
            spent_by_seller_village: aid_villages.into_iter().map(VillageAmount::from).collect(),
            spent_by_shop: aid_shops
                .into_iter()
                .map(|r| ShopAmount {
                    shop_id: r.shop_id,
                    shop_name: r.shop_name,
                    village_code: r.village_code,
                    amount_idr: r.amount_idr,
                })
                .collect(),
        },
    })
}
