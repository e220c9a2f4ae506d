//! Orders: checkout (one order per seller shop, all or nothing), the state machine with escrow,
//! the timers, and reads for the parties.
//!
//! Money and the order change commit together: a checkout holds the buyer's money in the
//! seller village's escrow in the same transaction that takes the stock and writes the orders;
//! a transition moves escrow (settle or refund) in the same transaction that changes the status
//! and writes its event.

pub mod machine;
pub mod routes;
pub mod timers;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int4, Nullable, Text, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use self::machine::{Action, Actor, Money, OrderStatus, Refusal};
use crate::db::schema::{order_aid, order_events, order_lines, orders, shop_operators};
use crate::http::error::{Error, FieldError, Result, text_field};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;
use crate::ledger::{self, AccountKind, Entry, TxKind, split};

/// Most lines one checkout may carry.
pub const MAX_LINES: usize = 100;
/// Most units of one product in one line.
pub const MAX_QUANTITY: i64 = 1_000_000;

crate::text_enum! {
    pub enum DeliveryMethod {
        Pickup = "pickup",
        Delivery = "delivery",
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutLine {
    pub product_id: Uuid,
    /// 1..=1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    pub method: DeliveryMethod,
    /// Required for `delivery`; not allowed with `pickup`. 5 to 500 characters once trimmed.
    #[schema(
        min_length = 5,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]{3,}[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Buy for a shop you operate (an inter-village BUMDes order, paid from its wallet).
    pub buyer_shop_id: Option<Uuid>,
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<CheckoutLine>,
    pub delivery: DeliveryRequest,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

/// Rates and what else a checkout needs from outside: the platform's fee (configuration).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub platform_fee_bps: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Buyer {
    /// The person who placed the order.
    pub user_id: Uuid,
    /// Set when a shop bought (paid from its wallet).
    pub shop_id: Option<Uuid>,
    pub village_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub method: DeliveryMethod,
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Fees {
    /// The network buyer and seller share, whose fee applies (none: no network fee).
    pub network_id: Option<Uuid>,
    pub network_fee_bps: i32,
    pub village_share_bps: i32,
    pub platform_fee_bps: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Courier {
    pub name: String,
    pub phone: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = order_lines)]
pub struct Line {
    #[serde(skip)]
    pub order_id: Uuid,
    pub line_no: i32,
    pub product_id: Uuid,
    /// Snapshot at checkout.
    pub name: String,
    pub unit: String,
    /// The final price per unit at checkout.
    pub unit_price_idr: i64,
    pub quantity: i32,
    pub line_total_idr: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = order_events)]
pub struct Event {
    pub id: Uuid,
    #[serde(skip)]
    pub order_id: Uuid,
    #[diesel(deserialize_as = Option<OrderStatus>)]
    pub from_status: Option<OrderStatus>,
    pub to_status: OrderStatus,
    pub actor_id: Option<Uuid>,
    pub actor: Actor,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: Uuid,
    pub checkout_id: Uuid,
    pub status: OrderStatus,
    pub buyer_user_id: Uuid,
    pub buyer_shop_id: Option<Uuid>,
    pub buyer_account_id: Uuid,
    pub buyer_village_code: String,
    pub shop_id: Uuid,
    pub village_code: String,
    pub escrow_account_id: Uuid,
    pub network_id: Option<Uuid>,
    pub network_fee_bps: i32,
    pub village_share_bps: i32,
    pub platform_fee_bps: i32,
    pub delivery_method: DeliveryMethod,
    pub delivery_address: Option<String>,
    pub delivery_fee_idr: i64,
    pub items_total_idr: i64,
    pub total_idr: i64,
    pub note: Option<String>,
    pub courier_name: Option<String>,
    pub courier_phone: Option<String>,
    pub tracking_note: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub aid_paid_idr: i64,
}

/// An order as its parties see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    /// The checkout that placed it (with the other shops' orders).
    pub checkout_id: Uuid,
    pub status: OrderStatus,
    pub buyer: Buyer,
    pub shop_id: Uuid,
    /// The seller's village.
    pub village_code: String,
    pub lines: Vec<Line>,
    pub items_total_idr: i64,
    pub delivery: Delivery,
    pub delivery_fee_idr: i64,
    /// Lines plus delivery, held in escrow until the order completes or is refunded.
    pub total_idr: i64,
    /// The part of `total_idr` paid from the buyer's aid balances (the wallet paid the rest);
    /// a refund returns it to them.
    pub paid_from_aid_idr: i64,
    pub fees: Fees,
    pub note: Option<String>,
    pub courier: Option<Courier>,
    pub placed_at: DateTime<Utc>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Oldest first. Absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
}

impl Order {
    fn from_parts(r: OrderRow, lines: Vec<Line>, events: Option<Vec<Event>>) -> Self {
        Order {
            id: r.id,
            checkout_id: r.checkout_id,
            status: r.status,
            buyer: Buyer {
                user_id: r.buyer_user_id,
                shop_id: r.buyer_shop_id,
                village_code: r.buyer_village_code,
            },
            shop_id: r.shop_id,
            village_code: r.village_code,
            lines,
            items_total_idr: r.items_total_idr,
            delivery: Delivery {
                method: r.delivery_method,
                address: r.delivery_address,
            },
            delivery_fee_idr: r.delivery_fee_idr,
            total_idr: r.total_idr,
            paid_from_aid_idr: r.aid_paid_idr,
            fees: Fees {
                network_id: r.network_id,
                network_fee_bps: r.network_fee_bps,
                village_share_bps: r.village_share_bps,
                platform_fee_bps: r.platform_fee_bps,
            },
            note: r.note,
            courier: match (r.courier_name, r.courier_phone) {
                (Some(name), Some(phone)) => Some(Courier {
                    name,
                    phone,
                    note: r.tracking_note,
                }),
                _ => None,
            },
            placed_at: r.placed_at,
            shipped_at: r.shipped_at,
            updated_at: r.updated_at,
            events,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResult {
    /// The checkout id (shared by its orders).
    pub id: Uuid,
    pub orders: Vec<Order>,
    /// Everything held in escrow: from the buyer's aid balances (`paid_from_aid_idr`) and
    /// wallet (`paid_from_wallet_idr`).
    pub total_idr: i64,
    pub paid_from_aid_idr: i64,
    pub paid_from_wallet_idr: i64,
}

fn out_of_stock(failing: Vec<(usize, Uuid)>) -> Error {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "product_ids".into(),
        serde_json::json!(failing.iter().map(|(_, id)| id).collect::<Vec<_>>()),
    );
    extra.insert(
        "lines".into(),
        serde_json::json!(
            failing
                .iter()
                .map(|(i, id)| serde_json::json!({"index": i, "product_id": id}))
                .collect::<Vec<_>>()
        ),
    );
    Error::Conflict {
        slug: "out-of-stock",
        detail: format!(
            "{} line(s) cannot be bought now: the product is not for sale or has too little stock",
            failing.len()
        ),
        extra: Some(extra),
    }
}

struct ValidCheckout {
    lines: Vec<(Uuid, i32)>,
    address: Option<String>,
    note: Option<String>,
}

fn validate(req: &CheckoutRequest) -> Result<ValidCheckout> {
    let mut errors = Vec::new();
    if req.lines.is_empty() || req.lines.len() > MAX_LINES {
        errors.push(FieldError::new("lines", format!("1 to {MAX_LINES} lines")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, l) in req.lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&l.quantity) {
            errors.push(FieldError::new(
                format!("lines[{i}].quantity"),
                format!("1 to {MAX_QUANTITY}"),
            ));
        }
        if !seen.insert(l.product_id) {
            errors.push(FieldError::new(
                format!("lines[{i}].product_id"),
                "this product is in an earlier line already",
            ));
        }
    }
    let address = match (req.delivery.method, req.delivery.address.as_deref()) {
        (DeliveryMethod::Delivery, Some(a)) => {
            Some(text_field("delivery.address", a, 5, 500, &mut errors))
        }
        (DeliveryMethod::Delivery, None) => {
            errors.push(FieldError::new("delivery.address", "required for delivery"));
            None
        }
        (DeliveryMethod::Pickup, Some(_)) => {
            errors.push(FieldError::new(
                "delivery.address",
                "not used with pickup: leave it out",
            ));
            None
        }
        (DeliveryMethod::Pickup, None) => None,
    };
    let note = req
        .note
        .as_deref()
        .map(|n| text_field("note", n, 0, 500, &mut errors));
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(ValidCheckout {
        lines: req
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity as i32))
            .collect(),
        address,
        note,
    })
}

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    shop_id: Uuid,
    #[diesel(sql_type = Text)]
    village_code: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    unit: String,
    #[diesel(sql_type = BigInt)]
    final_price_idr: i64,
    #[diesel(sql_type = BigInt)]
    delivery_fee_village_idr: i64,
    #[diesel(sql_type = BigInt)]
    delivery_fee_other_idr: i64,
    #[diesel(sql_type = Bool)]
    pickup: bool,
}

#[derive(QueryableByName)]
struct SellerVillage {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Int4)]
    village_share_bps: i32,
    #[diesel(sql_type = SqlUuid)]
    escrow_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    network_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Int4>)]
    network_fee_bps: Option<i32>,
}

/// Places the orders of one checkout (see the module documentation). Round trips, whatever the
/// number of lines and shops: the caller's membership, the buyer's wallet, the stock (one
/// conditional UPDATE for every line), the sellers' rates and escrows, then five writes
/// (orders, lines, events, ledger transactions, postings), plus the savepoint.
pub fn checkout(
    conn: &mut PgConnection,
    caller: &Caller,
    policy: Policy,
    req: &CheckoutRequest,
) -> Result<CheckoutResult> {
    let valid = validate(req)?;
    conn.transaction(|conn| {
        let now = authz::current(conn, caller)?;
        if !now.is_member_of(&caller.village) {
            return Err(Error::Forbidden(
                "sign in to a village you are a member of to buy".into(),
            ));
        }
        // Who pays: the person's wallet, or a shop's they operate.
        let (buyer_account, buyer_village) = match req.buyer_shop_id {
            Some(shop) => {
                let s = crate::shops::load_managed(conn, caller, shop, false)?;
                if s.status != crate::shops::ShopStatus::Active {
                    return Err(Error::field("buyer_shop_id", "the shop is not active"));
                }
                (ledger::shop_wallet(conn, shop)?.id, s.village_code)
            }
            None => (
                ledger::user_wallet(conn, caller.user_id)?.id,
                caller.village.clone(),
            ),
        };
        let mut lines = valid.lines.clone();
        lines.sort_by_key(|(id, _)| *id);
        let ids: Vec<Uuid> = lines.iter().map(|(id, _)| *id).collect();
        let qty: Vec<i32> = lines.iter().map(|(_, q)| *q).collect();
        // The stock: one conditional update, in product order (so concurrent checkouts lock
        // the same rows in the same order). Never a read-then-write: no oversell. Nobody buys
        // from a shop they operate (buyer and seller would be one party).
        let taken: Vec<Taken> = diesel::sql_query(
            "UPDATE products p SET stock = p.stock - v.q
               FROM unnest($1::uuid[], $2::int4[]) AS v(id, q), shops s
              WHERE p.id = v.id AND s.id = p.shop_id AND p.status = 'active'
                AND s.status = 'active' AND p.stock >= v.q
                AND NOT EXISTS (SELECT 1 FROM shop_operators so
                                 WHERE so.shop_id = p.shop_id AND so.user_id = $3)
                -- Lock in id order whatever the plan (refunds do the same).
                AND p.id IN (SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE)
          RETURNING p.id, p.shop_id, p.village_code, p.name, p.unit, p.final_price_idr,
                    s.delivery_fee_village_idr, s.delivery_fee_other_idr, s.pickup",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Int4>, _>(&qty)
        .bind::<SqlUuid, _>(caller.user_id)
        .load(conn)?;
        if taken.len() < lines.len() {
            // Only on failure: say why each missing line failed.
            let own: Vec<Uuid> = diesel::sql_query(
                "SELECT p.id FROM products p JOIN shop_operators so ON so.shop_id = p.shop_id
                  WHERE p.id = ANY($1) AND so.user_id = $2",
            )
            .bind::<Array<SqlUuid>, _>(&ids)
            .bind::<SqlUuid, _>(caller.user_id)
            .load::<IdRow>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
            if !own.is_empty() {
                let errors = valid
                    .lines
                    .iter()
                    .enumerate()
                    .filter(|(_, (id, _))| own.contains(id))
                    .map(|(i, _)| {
                        FieldError::new(
                            format!("lines[{i}].product_id"),
                            "a product of a shop you operate",
                        )
                    })
                    .collect();
                return Err(Error::Validation(errors));
            }
            let failing = valid
                .lines
                .iter()
                .enumerate()
                .filter(|(_, (id, _))| !taken.iter().any(|t| t.id == *id))
                .map(|(i, (id, _))| (i, *id))
                .collect();
            return Err(out_of_stock(failing));
        }
        // One order per seller shop, lines in the request's order.
        let mut by_shop: BTreeMap<Uuid, Vec<(usize, &Taken, i32)>> = BTreeMap::new();
        for (i, (id, q)) in valid.lines.iter().enumerate() {
            let t = taken.iter().find(|t| t.id == *id).expect("taken");
            by_shop.entry(t.shop_id).or_default().push((i, t, *q));
        }
        if req.buyer_shop_id.is_some_and(|b| by_shop.contains_key(&b)) {
            return Err(Error::field(
                "buyer_shop_id",
                "a shop does not buy from itself",
            ));
        }
        let seller_villages: Vec<String> = {
            let mut v: Vec<String> = taken.iter().map(|t| t.village_code.clone()).collect();
            v.sort();
            v.dedup();
            v
        };
        let rates: Vec<SellerVillage> = diesel::sql_query(
            "SELECT v.code, v.village_share_bps, e.id AS escrow_id, n.id AS network_id,
                    n.network_fee_bps
               FROM villages v
               JOIN accounts e ON e.kind = 'escrow' AND e.village_code = v.code
               LEFT JOIN LATERAL (
                    SELECT n.id, n.network_fee_bps FROM networks n
                      JOIN network_villages a ON a.network_id = n.id AND a.village_code = v.code
                      JOIN network_villages b ON b.network_id = n.id AND b.village_code = $2
                     ORDER BY n.id LIMIT 1) n ON TRUE
              WHERE v.code = ANY($1)",
        )
        .bind::<Array<Text>, _>(&seller_villages)
        .bind::<Text, _>(&buyer_village)
        .load(conn)?;
        let checkout_id = Uuid::now_v7();
        let mut plans = Vec::new();
        for (shop, shop_lines) in &by_shop {
            let first = shop_lines[0].1;
            let r = rates
                .iter()
                .find(|r| r.code == first.village_code)
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("no escrow for a village")))?;
            let fee_rates = split::Rates {
                network_fee_bps: r.network_fee_bps.unwrap_or(0),
                village_share_bps: r.village_share_bps,
                platform_fee_bps: policy.platform_fee_bps,
            };
            if !fee_rates.valid() {
                return Err(Error::conflict(format!(
                    "the fees of village {} add up to more than 100 %; its admin must lower them",
                    r.code
                )));
            }
            let delivery_fee = match req.delivery.method {
                DeliveryMethod::Pickup if !first.pickup => {
                    return Err(Error::field(
                        "delivery.method",
                        format!("shop {shop} does not offer pickup"),
                    ));
                }
                DeliveryMethod::Pickup => 0,
                DeliveryMethod::Delivery if first.village_code == buyer_village => {
                    first.delivery_fee_village_idr
                }
                DeliveryMethod::Delivery => first.delivery_fee_other_idr,
            };
            let items_total: i64 = shop_lines
                .iter()
                .map(|(_, t, q)| t.final_price_idr * i64::from(*q))
                .sum();
            plans.push((
                shop,
                shop_lines,
                first,
                r,
                fee_rates,
                delivery_fee,
                items_total,
            ));
        }
        // Aid pays first, for the orders from shops in its area (a person's checkout only).
        let sources = match req.buyer_shop_id {
            Some(_) => Vec::new(),
            None => crate::aid::spendable(conn, caller.user_id, crate::aid::today())?,
        };
        let totals: Vec<(&str, i64)> = plans
            .iter()
            .map(|p| (p.2.village_code.as_str(), p.6 + p.5))
            .collect();
        let aid_parts = crate::aid::allocate(&sources, &totals);
        let mut new_orders = Vec::new();
        let mut new_lines = Vec::new();
        let mut new_aid = Vec::new();
        let mut entries = Vec::new();
        for ((shop, shop_lines, first, r, fee_rates, delivery_fee, items_total), aid) in
            plans.into_iter().zip(aid_parts)
        {
            let order_id = Uuid::now_v7();
            let total = items_total + delivery_fee;
            let aid_paid: i64 = aid.iter().map(|(_, a)| a).sum();
            for (n, (_, t, q)) in shop_lines.iter().enumerate() {
                new_lines.push((
                    order_lines::order_id.eq(order_id),
                    order_lines::line_no.eq(n as i32 + 1),
                    order_lines::product_id.eq(t.id),
                    order_lines::name.eq(t.name.clone()),
                    order_lines::unit.eq(t.unit.clone()),
                    order_lines::unit_price_idr.eq(t.final_price_idr),
                    order_lines::quantity.eq(*q),
                    order_lines::line_total_idr.eq(t.final_price_idr * i64::from(*q)),
                ));
            }
            new_orders.push((
                orders::id.eq(order_id),
                orders::checkout_id.eq(checkout_id),
                orders::status.eq(OrderStatus::Placed),
                orders::buyer_user_id.eq(caller.user_id),
                orders::buyer_shop_id.eq(req.buyer_shop_id),
                orders::buyer_account_id.eq(buyer_account),
                orders::buyer_village_code.eq(buyer_village.clone()),
                orders::shop_id.eq(*shop),
                orders::village_code.eq(first.village_code.clone()),
                orders::escrow_account_id.eq(r.escrow_id),
                orders::network_id.eq(r.network_id),
                orders::network_fee_bps.eq(fee_rates.network_fee_bps),
                orders::village_share_bps.eq(fee_rates.village_share_bps),
                orders::platform_fee_bps.eq(fee_rates.platform_fee_bps),
                (
                    orders::delivery_method.eq(req.delivery.method),
                    orders::delivery_address.eq(valid.address.clone()),
                    orders::delivery_fee_idr.eq(delivery_fee),
                    orders::items_total_idr.eq(items_total),
                    orders::total_idr.eq(total),
                    orders::note.eq(valid.note.clone()),
                    orders::aid_paid_idr.eq(aid_paid),
                ),
            ));
            let mut postings = vec![(buyer_account, aid_paid - total), (r.escrow_id, total)];
            for (i, amount) in aid {
                let s = &sources[i];
                postings.push((s.account_id, -amount));
                new_aid.push((
                    order_aid::order_id.eq(order_id),
                    order_aid::programme_id.eq(s.programme_id),
                    order_aid::account_id.eq(s.account_id),
                    order_aid::amount_idr.eq(amount),
                ));
            }
            entries.push(Entry {
                kind: TxKind::Hold,
                order_id: Some(order_id),
                actor: Some(caller.user_id),
                note: None,
                postings,
            });
        }
        let mut rows: Vec<OrderRow> = diesel::insert_into(orders::table)
            .values(&new_orders)
            .returning(OrderRow::as_returning())
            .get_results(conn)?;
        rows.sort_by_key(|r| r.id);
        let mut lines: Vec<Line> = diesel::insert_into(order_lines::table)
            .values(&new_lines)
            .returning(Line::as_returning())
            .get_results(conn)?;
        lines.sort_by_key(|l| (l.order_id, l.line_no));
        let order_ids: Vec<Uuid> = entries.iter().filter_map(|e| e.order_id).collect();
        let events: Vec<_> = order_ids
            .iter()
            .map(|id| {
                (
                    order_events::id.eq(Uuid::now_v7()),
                    order_events::order_id.eq(*id),
                    order_events::to_status.eq(OrderStatus::Placed),
                    order_events::actor_id.eq(Some(caller.user_id)),
                    order_events::actor.eq(Actor::Buyer),
                )
            })
            .collect();
        diesel::insert_into(order_events::table)
            .values(&events)
            .execute(conn)?;
        if !new_aid.is_empty() {
            diesel::insert_into(order_aid::table)
                .values(&new_aid)
                .execute(conn)?;
        }
        ledger::post(conn, &entries)?;
        let orders: Vec<Order> = rows
            .into_iter()
            .map(|r| {
                let id = r.id;
                Order::from_parts(
                    r,
                    lines.iter().filter(|l| l.order_id == id).cloned().collect(),
                    None,
                )
            })
            .collect();
        let total_idr: i64 = orders.iter().map(|o| o.total_idr).sum();
        let paid_from_aid_idr: i64 = orders.iter().map(|o| o.paid_from_aid_idr).sum();
        Ok(CheckoutResult {
            id: checkout_id,
            orders,
            total_idr,
            paid_from_aid_idr,
            paid_from_wallet_idr: total_idr - paid_from_aid_idr,
        })
    })
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Orders with their lines (and events), in id order.
fn load_many(conn: &mut PgConnection, ids: &[Uuid], with_events: bool) -> Result<Vec<Order>> {
    let rows: Vec<OrderRow> = orders::table
        .filter(orders::id.eq_any(ids))
        .select(OrderRow::as_select())
        .order(orders::id)
        .load(conn)?;
    let lines: Vec<Line> = order_lines::table
        .filter(order_lines::order_id.eq_any(ids))
        .select(Line::as_select())
        .order((order_lines::order_id, order_lines::line_no))
        .load(conn)?;
    let events: Vec<Event> = if with_events {
        order_events::table
            .filter(order_events::order_id.eq_any(ids))
            .select(Event::as_select())
            .order(order_events::id)
            .load(conn)?
    } else {
        Vec::new()
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let id = r.id;
            Order::from_parts(
                r,
                lines.iter().filter(|l| l.order_id == id).cloned().collect(),
                with_events.then(|| {
                    events
                        .iter()
                        .filter(|e| e.order_id == id)
                        .cloned()
                        .collect()
                }),
            )
        })
        .collect())
}

/// The roles `caller` holds on an order, as the token says (for reads) or as the database
/// says now (`now`, for transitions).
fn roles_on(
    conn: &mut PgConnection,
    caller: &Caller,
    o: &OrderRow,
    now: Option<&authz::Current>,
) -> Result<Vec<Actor>> {
    let mut roles = Vec::new();
    let operates = |conn: &mut PgConnection, shop: Uuid| -> Result<bool> {
        Ok(diesel::select(diesel::dsl::exists(
            shop_operators::table.find((shop, caller.user_id)),
        ))
        .get_result(conn)?)
    };
    let buyer = match o.buyer_shop_id {
        // A shop's order is the shop's: any of its operators, through its village's token.
        Some(shop) => caller.village == o.buyer_village_code && operates(conn, shop)?,
        None => o.buyer_user_id == caller.user_id,
    };
    if buyer {
        roles.push(Actor::Buyer);
    }
    if caller.village == o.village_code && operates(conn, o.shop_id)? {
        roles.push(Actor::Seller);
    }
    let admin = match now {
        Some(now) => now.is_village_admin(&o.village_code),
        None => caller.is_village_admin(&o.village_code),
    };
    if admin {
        roles.push(Actor::SellerAdmin);
    }
    Ok(roles)
}

/// One order with lines and events, for its parties only: the buyer (or the buying shop's
/// operators), the seller shop's operators and the seller village's admins. Anyone else: 404.
pub fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Order> {
    let row: OrderRow = orders::table
        .find(id)
        .select(OrderRow::as_select())
        .first(conn)?;
    if roles_on(conn, caller, &row, None)?.is_empty() {
        return Err(Error::NotFound);
    }
    load_many(conn, &[id], true)?.pop().ok_or(Error::NotFound)
}

crate::text_enum! {
    pub enum ListRole {
        Buyer = "buyer",
        Seller = "seller",
    }
}

/// The caller's orders as buyer (theirs, and their shops' purchases) or as seller (their shops'
/// sales), newest first.
pub fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    role: ListRole,
    status: Option<OrderStatus>,
    limit: i64,
    before: Option<Uuid>,
) -> Result<Page<Order>> {
    let my_shops: Vec<Uuid> = shop_operators::table
        .inner_join(crate::db::schema::shops::table)
        .filter(shop_operators::user_id.eq(caller.user_id))
        .filter(crate::db::schema::shops::village_code.eq(&caller.village))
        .select(shop_operators::shop_id)
        .load(conn)?;
    let mut q = orders::table
        .select(orders::id)
        .order(orders::id.desc())
        .limit(limit + 1)
        .into_boxed();
    q = match role {
        ListRole::Buyer => q.filter(
            orders::buyer_user_id
                .eq(caller.user_id)
                .and(orders::buyer_shop_id.is_null())
                .or(orders::buyer_shop_id.eq_any(my_shops.clone())),
        ),
        ListRole::Seller => q.filter(orders::shop_id.eq_any(my_shops)),
    };
    if let Some(s) = status {
        q = q.filter(orders::status.eq(s));
    }
    if let Some(b) = before {
        q = q.filter(orders::id.lt(b));
    }
    let ids: Vec<Uuid> = q.load(conn)?;
    let pg = page(ids, limit, |id| *id, |id| id);
    let mut items = load_many(conn, &pg.items, false)?;
    items.reverse();
    Ok(Page {
        items,
        next_cursor: pg.next_cursor,
    })
}

/// What comes with a transition request.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub note: Option<String>,
    pub courier_name: Option<String>,
    pub courier_phone: Option<String>,
}

/// A transition asked for by a party: authorized against the roles they hold now.
pub fn act(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    action: Action,
    details: &Details,
) -> Result<Order> {
    conn.transaction(|conn| {
        let row = lock(conn, id)?;
        let now = authz::current(conn, caller)?;
        let roles = roles_on(conn, caller, &row, Some(&now))?;
        if roles.is_empty() {
            return Err(Error::NotFound);
        }
        apply(conn, row, action, &roles, Some(caller.user_id), details)?;
        load_many(conn, &[id], true)?.pop().ok_or(Error::NotFound)
    })
}

fn lock(conn: &mut PgConnection, id: Uuid) -> Result<OrderRow> {
    Ok(orders::table
        .find(id)
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)?)
}

/// Moves a locked order: status, event, money and stock, together.
fn apply(
    conn: &mut PgConnection,
    row: OrderRow,
    action: Action,
    roles: &[Actor],
    actor_id: Option<Uuid>,
    details: &Details,
) -> Result<OrderStatus> {
    let (actor, to) = machine::next(row.status, action, roles).map_err(|r| match r {
        Refusal::NotFromHere => Error::conflict(format!(
            "an order that is {} cannot be {}ed",
            row.status,
            action.as_str().trim_end_matches('e')
        )),
        Refusal::NotYours => {
            Error::Forbidden(format!("you may not {} this order", action.as_str()))
        }
    })?;
    let shipped = to == OrderStatus::Shipped;
    let changed = diesel::update(
        orders::table
            .find(row.id)
            .filter(orders::status.eq(row.status)),
    )
    .set((
        orders::status.eq(to),
        orders::updated_at.eq(diesel::dsl::now),
        orders::shipped_at.eq(if shipped {
            Some(Utc::now())
        } else {
            row.shipped_at
        }),
        orders::courier_name.eq(if shipped {
            details.courier_name.clone()
        } else {
            row.courier_name.clone()
        }),
        orders::courier_phone.eq(if shipped {
            details.courier_phone.clone()
        } else {
            row.courier_phone.clone()
        }),
        orders::tracking_note.eq(if shipped {
            details.note.clone()
        } else {
            row.tracking_note.clone()
        }),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Err(Error::conflict("the order changed meanwhile"));
    }
    diesel::insert_into(order_events::table)
        .values((
            order_events::id.eq(Uuid::now_v7()),
            order_events::order_id.eq(row.id),
            order_events::from_status.eq(Some(row.status)),
            order_events::to_status.eq(to),
            order_events::actor_id.eq(actor_id),
            order_events::actor.eq(actor),
            order_events::note.eq(details.note.clone()),
        ))
        .execute(conn)
        .map_err(|e| {
            crate::http::error::on_constraint(e, |c| {
                (c == "order_events_once").then(|| Error::conflict("the order changed meanwhile"))
            })
        })?;
    match machine::money(to) {
        Money::Hold => {}
        Money::Settle => {
            let s = split::split(
                row.items_total_idr,
                row.delivery_fee_idr,
                split::Rates {
                    network_fee_bps: row.network_fee_bps,
                    village_share_bps: row.village_share_bps,
                    platform_fee_bps: row.platform_fee_bps,
                },
            );
            let seller = ledger::shop_wallet(conn, row.shop_id)?.id;
            let revenue =
                ledger::village_account(conn, AccountKind::VillageRevenue, &row.village_code)?;
            let platform = fee_account(conn, AccountKind::PlatformFee, None)?;
            let mut postings = vec![
                (row.escrow_account_id, -row.total_idr),
                (seller, s.seller),
                (revenue, s.village_share),
                (platform, s.platform_fee),
            ];
            if let Some(n) = row.network_id {
                postings.push((
                    fee_account(conn, AccountKind::NetworkFee, Some(n))?,
                    s.network_fee,
                ));
            }
            ledger::post(
                conn,
                &[Entry {
                    kind: TxKind::Settlement,
                    order_id: Some(row.id),
                    actor: actor_id,
                    note: None,
                    postings,
                }],
            )?;
        }
        Money::Refund => {
            // The stock before the money, products in id order: a checkout locks its products
            // and then the accounts, so a refund taking the escrow first and the products
            // after deadlocked with it.
            diesel::sql_query(
                "SELECT id FROM products WHERE id IN (
                     SELECT product_id FROM order_lines WHERE order_id = $1)
                  ORDER BY id FOR UPDATE",
            )
            .bind::<SqlUuid, _>(row.id)
            .load::<IdRow>(conn)?;
            diesel::sql_query(
                "UPDATE products p SET stock = p.stock + l.quantity
                   FROM order_lines l WHERE l.order_id = $1 AND p.id = l.product_id",
            )
            .bind::<SqlUuid, _>(row.id)
            .execute(conn)?;
            // Aid goes back to the balances it came from (or to a programme closed meanwhile).
            let mut postings = vec![
                (row.escrow_account_id, -row.total_idr),
                (row.buyer_account_id, row.total_idr - row.aid_paid_idr),
            ];
            if row.aid_paid_idr > 0 {
                postings.extend(crate::aid::refund_targets(conn, row.id)?);
            }
            ledger::post(
                conn,
                &[Entry {
                    kind: TxKind::Refund,
                    order_id: Some(row.id),
                    actor: actor_id,
                    note: None,
                    postings,
                }],
            )?;
        }
    }
    Ok(to)
}

fn fee_account(conn: &mut PgConnection, kind: AccountKind, network: Option<Uuid>) -> Result<Uuid> {
    use crate::db::schema::accounts;
    let mut q = accounts::table
        .filter(accounts::kind.eq(kind))
        .select(accounts::id)
        .into_boxed();
    if let Some(n) = network {
        q = q.filter(accounts::network_id.eq(n));
    }
    Ok(q.first(conn)?)
}

/// Checks what a transition request carries: a reason where one is required (reject,
/// dispute), a courier to ship, at most 500 characters of note.
pub fn details(
    action: Action,
    note: Option<&str>,
    courier_name: Option<&str>,
    courier_phone: Option<&str>,
) -> Result<Details> {
    let mut errors = Vec::new();
    let note_field = match action {
        Action::Reject | Action::Cancel | Action::Dispute => "reason",
        _ => "note",
    };
    let note = note
        .map(|n| text_field(note_field, n, 1, 500, &mut errors))
        .filter(|n| !n.is_empty());
    if matches!(action, Action::Reject | Action::Dispute) && note.is_none() && errors.is_empty() {
        errors.push(FieldError::new("reason", "required"));
    }
    let (courier_name, courier_phone) = if action == Action::Ship {
        let name = match courier_name {
            Some(n) => Some(text_field("courier_name", n, 1, 100, &mut errors)),
            None => {
                errors.push(FieldError::new("courier_name", "required"));
                None
            }
        };
        let phone = match courier_phone.map(crate::identity::phone::normalize) {
            Some(Ok(p)) => Some(p),
            Some(Err(m)) => {
                errors.push(FieldError::new("courier_phone", m));
                None
            }
            None => {
                errors.push(FieldError::new("courier_phone", "required"));
                None
            }
        };
        (name, phone)
    } else {
        (None, None)
    };
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(Details {
        note,
        courier_name,
        courier_phone,
    })
}
