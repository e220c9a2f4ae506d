//! A believable year of trade before today's demo activity, so that every dashboard and
//! circulation figure has something to show. Written straight into the tables (bulk INSERTs),
//! backdated, in the order the money moved.
//!
//! **The model.** Every day of the year, each village's residents place checkouts: a Poisson
//! number with a base rate per village, times
//! - the weekday (Saturday ×1.25, Sunday ×1.35) and the village's own market day in the
//!   five-day Javanese *pasaran* week (Legi, Pahing, Pon, Wage, Kliwon: ×1.6), as Pasar Legi
//!   or Pasar Pon are held;
//! - the season: rice harvests (March–April, August–September ×1.15, producer groups sell
//!   more), the lean months before the first harvest (January–February ×0.9), Ramadan (×1.35,
//!   the last ten days ×1.8), Lebaran itself (×0.5) and the week after (×1.15), the year's end
//!   (×1.1);
//! - a growth trend (the platform gains users: ×0.75 at the start, ×1.2 at the end);
//! - the hour of day (mornings and evenings).
//!
//! Where a network resident buys: 62 % in their own village, 28 % in another network village,
//! 10 % outside (the same-district village, the Sleman village, Jakarta). Outside villages'
//! residents buy at home or from the network. 8 % of checkouts span two shops. Each network
//! BUMDes shop ("Lapak …") buys stock every few days from another village's producer group or
//! UMKM (B2B, `buyer_shop_id`, paid from its wallet).
//!
//! Outcomes: ~2 % expire (48 h), 3 % are rejected, 2.5 % cancelled by the buyer, 1.5 % by the
//! seller after accepting; of the shipped, 4 % are disputed (a third refunded by the seller
//! village's admin, the rest released), a quarter complete by the 72 h timer, the rest by the
//! buyer's confirmation. Every history order is final before today, so the live demo's timers
//! find none of them.
//!
//! Money: each member's treasurer records a monthly top-up (payday, a budget per person, extra
//! before Lebaran), and an ad-hoc one when a checkout needs more than the wallet holds; members
//! now and then withdraw cash; every shop withdraws its earnings weekly. Settlement splits with
//! [`split::split`], exactly as the order machine does.
//!
//! Aid: a BLT Dana Desa programme (Rp 300.000 a recipient a month, three months) in
//! Panggungharjo, scope `village`, over and closed (remainder returned), and one in Guwosari,
//! scope `network`, still running today (its later disbursements are the live system's). The
//! recipients (residents, never the demo accounts) shop more while it lasts, mostly in its
//! area, and their checkouts there take the aid balance first.
//!
//! Stock: a sale takes stock as checkout does; when a product runs out the shop restocks (a
//! stock adjustment); at the end a stock count brings every product back to the opening stock
//! it was created with, so `stock = opening + adjustments − sold` holds for every product.
//!
//! Every row's time is backdated and its id is a UUIDv7 of that time, issued in time order, so
//! id order is time order. Postings are inserted in the order the money moved (the database
//! numbers them in insertion order and refuses an overdraft at every posting); the simulation
//! keeps every balance in Rust, so nothing overdraws. The ledger goes in in slices of a few
//! thousand transactions, each its own database transaction: one transaction for a year of
//! updates to the same hot accounts (escrows, the network fee) slows down quadratically.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use diesel::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::db::schema::{
    accounts, aid_programmes, ledger_transactions, memberships, networks, order_aid, order_events,
    order_lines, orders, postings, products, shop_operators, shops, stock_adjustments, users,
    villages,
};
use crate::ledger::split;

/// How much history, and from which seed.
#[derive(Debug, Clone)]
pub struct Params {
    /// Days of history before today.
    pub days: i64,
    /// Multiplies the residents' rate of checkouts (0.8: roughly 25,000 orders a year; the
    /// BUMDes' B2B orders and the aid recipients' extra shopping do not scale).
    pub scale: f64,
    /// Residents (buyers) added to each network village and each outside village.
    pub residents: usize,
    pub outside_residents: usize,
    /// Recipients of each aid programme.
    pub aid_recipients: usize,
    pub seed: u64,
    /// "Today": the history ends before it (the live demo happens now).
    pub now: DateTime<Utc>,
}

impl Params {
    /// The year of `pasar seed demo`.
    pub fn full() -> Self {
        Params {
            days: 365,
            scale: 0.8,
            residents: 60,
            outside_residents: 25,
            aid_recipients: 24,
            seed: 14,
            now: Utc::now(),
        }
    }
}

/// BLT Dana Desa: Rp 300.000 a recipient a month, for three months.
pub const AID_MONTHLY_IDR: i64 = 300_000;
pub const AID_MONTHS: u32 = 3;

/// What the history wrote, for the summary.
#[derive(Debug, Default)]
pub struct Report {
    pub orders: usize,
    pub completed: usize,
    pub b2b: usize,
    pub gmv_idr: i64,
    pub topups_idr: i64,
    pub withdrawals_idr: i64,
    pub ledger_transactions: usize,
    pub postings: usize,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub aid_funded_idr: i64,
    pub aid_disbursed_idr: i64,
    pub aid_spent_idr: i64,
    pub aid_returned_idr: i64,
}

fn wib() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7")
}

/// Microseconds since the epoch: the simulation's clock.
type Micros = i64;

fn at(date: NaiveDate, h: u32, m: u32, s: u32) -> Micros {
    wib()
        .from_local_datetime(&date.and_time(NaiveTime::from_hms_opt(h, m, s).expect("a time")))
        .single()
        .expect("WIB has no gaps")
        .timestamp_micros()
}

fn ts(t: Micros) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).expect("a time in range")
}

fn wib_date(t: Micros) -> NaiveDate {
    ts(t).with_timezone(&wib()).date_naive()
}

const MIN: Micros = 60_000_000;
const HOUR: Micros = 60 * MIN;
const DAY: Micros = 24 * HOUR;

/// UUIDv7 ids from the simulated clock, strictly increasing in the order they are issued
/// (within one millisecond a counter in the 12 `rand_a` bits), random bits from the seeded RNG.
struct Ids {
    rng: StdRng,
    last_ms: u64,
    counter: u16,
}

impl Ids {
    fn at(&mut self, t: Micros) -> Uuid {
        let ms = (t / 1000) as u64;
        if ms > self.last_ms {
            self.last_ms = ms;
            self.counter = self.rng.random_range(0..1024);
        } else if self.counter >= 0x0fff {
            self.last_ms += 1;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        let mut bytes: [u8; 10] = self.rng.random();
        bytes[0] = (self.counter >> 8) as u8;
        bytes[1] = self.counter as u8;
        uuid::Builder::from_unix_timestamp_millis(self.last_ms, &bytes).into_uuid()
    }
}

/// A v7 id of time `t` outside the monotonic sequence (rows made before the simulation).
fn id_once(rng: &mut StdRng, t: Micros) -> Uuid {
    let bytes: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis((t / 1000) as u64, &bytes).into_uuid()
}

// ---------------------------------------------------------------------------------------------
// The world: what the setup made, read back from the database.

pub struct Village {
    pub code: String,
    pub name: String,
    pub in_network: bool,
    pub share_bps: i32,
    /// Market day in the pasaran week (0 Legi … 4 Kliwon); none for a city kelurahan.
    pub pasaran: Option<u32>,
    /// Relative size of its trade.
    pub weight: f64,
    pub admin: Uuid,
    pub treasurer: Uuid,
    pub escrow: Uuid,
    pub revenue: Uuid,
    pub cash: Uuid,
    people: Vec<usize>,
    shops: Vec<usize>,
    bumdes_shop: Option<usize>,
}

struct Person {
    user: Uuid,
    village: usize,
    wallet: Uuid,
    budget: i64,
    operates: Vec<usize>,
    /// One of the documented demo accounts: never an aid recipient.
    demo: bool,
}

struct Shop {
    id: Uuid,
    village: usize,
    kind: String,
    operators: Vec<Uuid>,
    wallet: Uuid,
    fee_village: i64,
    fee_other: i64,
    pickup: bool,
    products: Vec<usize>,
}

struct Product {
    id: Uuid,
    name: String,
    unit: String,
    price: i64,
    stock0: i32,
}

pub struct World {
    network_id: Uuid,
    network_fee_bps: i32,
    platform_fee: Uuid,
    network_fee: Uuid,
    villages: Vec<Village>,
    people: Vec<Person>,
    shops: Vec<Shop>,
    products: Vec<Product>,
}

/// (code, market day, weight) of the villages the history trades in: the network's first.
pub struct VillageSpec {
    pub code: &'static str,
    pub in_network: bool,
    pub pasaran: Option<u32>,
    pub weight: f64,
}

impl World {
    pub fn load(
        conn: &mut PgConnection,
        network_name: &str,
        specs: &[VillageSpec],
    ) -> anyhow::Result<World> {
        let (network_id, network_fee_bps): (Uuid, i32) = networks::table
            .filter(networks::name.eq(network_name))
            .select((networks::id, networks::network_fee_bps))
            .first(conn)?;
        let codes: Vec<&str> = specs.iter().map(|s| s.code).collect();
        type AccountRow = (
            Uuid,
            String,
            Option<String>,
            Option<Uuid>,
            Option<Uuid>,
            Option<Uuid>,
        );
        let accts: Vec<AccountRow> = accounts::table
            .filter(
                accounts::village_code
                    .eq_any(&codes)
                    .or(accounts::village_code.is_null()),
            )
            .select((
                accounts::id,
                accounts::kind,
                accounts::village_code,
                accounts::user_id,
                accounts::shop_id,
                accounts::network_id,
            ))
            .load(conn)?;
        let find = |kind: &str, village: Option<&str>| -> anyhow::Result<Uuid> {
            accts
                .iter()
                .find(|a| a.1 == kind && a.2.as_deref() == village)
                .map(|a| a.0)
                .ok_or_else(|| anyhow::anyhow!("no {kind} account for {village:?}"))
        };
        let platform_fee = find("platform_fee", None)?;
        let network_fee = accts
            .iter()
            .find(|a| a.1 == "network_fee" && a.5 == Some(network_id))
            .map(|a| a.0)
            .ok_or_else(|| anyhow::anyhow!("no network fee account"))?;
        let user_wallets: HashMap<Uuid, Uuid> = accts
            .iter()
            .filter(|a| a.1 == "user_wallet")
            .filter_map(|a| a.3.map(|u| (u, a.0)))
            .collect();
        let shop_wallets: HashMap<Uuid, Uuid> = accts
            .iter()
            .filter(|a| a.1 == "shop_wallet")
            .filter_map(|a| a.4.map(|s| (s, a.0)))
            .collect();
        let operators: Vec<(Uuid, Uuid)> = shop_operators::table
            .select((shop_operators::shop_id, shop_operators::user_id))
            .order((shop_operators::shop_id, shop_operators::user_id))
            .load(conn)?;

        let mut w = World {
            network_id,
            network_fee_bps,
            platform_fee,
            network_fee,
            villages: Vec::new(),
            people: Vec::new(),
            shops: Vec::new(),
            products: Vec::new(),
        };
        for spec in specs {
            let (name, share_bps): (String, i32) = villages::table
                .find(spec.code)
                .select((villages::name, villages::village_share_bps))
                .first(conn)?;
            let vi = w.villages.len();
            let members: Vec<(Uuid, Vec<String>, String)> = memberships::table
                .inner_join(users::table)
                .filter(memberships::village_code.eq(spec.code))
                .select((memberships::user_id, memberships::roles, users::phone))
                .order((memberships::created_at, memberships::user_id))
                .load(conn)?;
            let has = |roles: &[String], r: &str| roles.iter().any(|x| x == r);
            let admin = members
                .iter()
                .find(|m| has(&m.1, "admin"))
                .map(|m| m.0)
                .ok_or_else(|| anyhow::anyhow!("{} has no admin", spec.code))?;
            let treasurer = members
                .iter()
                .find(|m| has(&m.1, "treasurer"))
                .map(|m| m.0)
                .ok_or_else(|| anyhow::anyhow!("{} has no treasurer", spec.code))?;
            let shop_rows: Vec<(Uuid, String, i64, i64, bool, Option<Uuid>)> = shops::table
                .filter(shops::village_code.eq(spec.code))
                .filter(shops::status.eq("active"))
                .select((
                    shops::id,
                    shops::kind,
                    shops::delivery_fee_village_idr,
                    shops::delivery_fee_other_idr,
                    shops::pickup,
                    shops::bumdes_unit_id,
                ))
                .order((shops::created_at, shops::id))
                .load(conn)?;
            let mut village_shops = Vec::new();
            let mut bumdes_shop = None;
            for (id, kind, fee_village, fee_other, pickup, unit) in shop_rows {
                let si = w.shops.len();
                if unit.is_some() && bumdes_shop.is_none() {
                    bumdes_shop = Some(si);
                }
                let prods: Vec<(Uuid, String, String, i64, i32)> = products::table
                    .filter(products::shop_id.eq(id))
                    .filter(products::status.eq("active"))
                    .select((
                        products::id,
                        products::name,
                        products::unit,
                        products::final_price_idr,
                        products::stock,
                    ))
                    .order(products::id)
                    .load(conn)?;
                let mut pis = Vec::new();
                for (id, name, unit, price, stock0) in prods {
                    pis.push(w.products.len());
                    w.products.push(Product {
                        id,
                        name,
                        unit,
                        price,
                        stock0,
                    });
                }
                w.shops.push(Shop {
                    id,
                    village: vi,
                    kind,
                    operators: operators
                        .iter()
                        .filter(|o| o.0 == id)
                        .map(|o| o.1)
                        .collect(),
                    wallet: *shop_wallets
                        .get(&id)
                        .ok_or_else(|| anyhow::anyhow!("a shop without a wallet"))?,
                    fee_village,
                    fee_other,
                    pickup,
                    products: pis,
                });
                village_shops.push(si);
            }
            let mut people = Vec::new();
            for (k, (user, roles, phone)) in members.iter().enumerate() {
                if !(has(roles, "member") || has(roles, "treasurer")) {
                    continue;
                }
                let Some(wallet) = user_wallets.get(user) else {
                    continue; // their home wallet is another village's
                };
                let pi = w.people.len();
                people.push(pi);
                w.people.push(Person {
                    user: *user,
                    village: vi,
                    wallet: *wallet,
                    // Rp 150.000 to Rp 1.200.000 a month, by person.
                    budget: 150_000 + ((k as i64 * 7919) % 22) * 50_000,
                    operates: village_shops
                        .iter()
                        .copied()
                        .filter(|s| w.shops[*s].operators.contains(user))
                        .collect(),
                    demo: phone.starts_with("+6281200"),
                });
            }
            w.villages.push(Village {
                code: spec.code.to_string(),
                name,
                in_network: spec.in_network,
                share_bps,
                pasaran: spec.pasaran,
                weight: spec.weight,
                admin,
                treasurer,
                escrow: find("escrow", Some(spec.code))?,
                revenue: find("village_revenue", Some(spec.code))?,
                cash: find("cash", Some(spec.code))?,
                people,
                shops: village_shops,
                bumdes_shop,
            });
        }
        Ok(w)
    }
}

// ---------------------------------------------------------------------------------------------
// The calendar.

/// 0 Legi, 1 Pahing, 2 Pon, 3 Wage, 4 Kliwon (17 August 1945 was Jumat Legi).
fn pasaran(date: NaiveDate) -> u32 {
    let legi = NaiveDate::from_ymd_opt(1945, 8, 17).expect("a date");
    (date - legi).num_days().rem_euclid(5) as u32
}

/// Idul Fitri (Lebaran) of the years around the demo.
const LEBARAN: [(i32, u32, u32); 6] = [
    (2025, 3, 31),
    (2026, 3, 20),
    (2027, 3, 10),
    (2028, 2, 27),
    (2029, 2, 14),
    (2030, 2, 4),
];

fn season(date: NaiveDate) -> f64 {
    let mut f = match date.month() {
        3 | 4 | 8 | 9 => 1.15,
        1 | 2 => 0.9,
        12 => 1.1,
        _ => 1.0,
    };
    let days_to_lebaran = LEBARAN
        .iter()
        .map(|(y, m, d)| (date - NaiveDate::from_ymd_opt(*y, *m, *d).expect("a date")).num_days())
        .min_by_key(|d| d.abs())
        .unwrap_or(1000);
    f *= match days_to_lebaran {
        -30..=-11 => 1.35,
        -10..=-1 => 1.8,
        0..=2 => 0.5,
        3..=9 => 1.15,
        _ => 1.0,
    };
    f
}

fn harvest(date: NaiveDate) -> bool {
    matches!(date.month(), 3 | 4 | 8 | 9)
}

fn weekday_factor(date: NaiveDate) -> f64 {
    match date.weekday() {
        Weekday::Sat => 1.25,
        Weekday::Sun => 1.35,
        Weekday::Fri => 1.0,
        _ => 0.9,
    }
}

/// Checkouts by hour of day (WIB): mornings before work and evenings after.
const HOURS: [f64; 24] = [
    0.2, 0.1, 0.1, 0.2, 0.6, 1.5, 3.0, 4.0, 4.0, 3.5, 3.0, 2.8, 2.5, 2.5, 2.5, 3.0, 3.5, 3.5, 3.8,
    4.5, 4.5, 3.5, 1.8, 0.8,
];

// ---------------------------------------------------------------------------------------------
// Rows, as they are inserted.

#[derive(Insertable)]
#[diesel(table_name = orders)]
struct NewOrder {
    id: Uuid,
    checkout_id: Uuid,
    status: String,
    buyer_user_id: Uuid,
    buyer_shop_id: Option<Uuid>,
    buyer_account_id: Uuid,
    buyer_village_code: String,
    shop_id: Uuid,
    village_code: String,
    escrow_account_id: Uuid,
    network_id: Option<Uuid>,
    network_fee_bps: i32,
    village_share_bps: i32,
    platform_fee_bps: i32,
    delivery_method: String,
    delivery_address: Option<String>,
    delivery_fee_idr: i64,
    items_total_idr: i64,
    total_idr: i64,
    courier_name: Option<String>,
    courier_phone: Option<String>,
    placed_at: DateTime<Utc>,
    shipped_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    aid_paid_idr: i64,
}

#[derive(Insertable)]
#[diesel(table_name = order_lines)]
struct NewLine {
    order_id: Uuid,
    line_no: i32,
    product_id: Uuid,
    name: String,
    unit: String,
    unit_price_idr: i64,
    quantity: i32,
    line_total_idr: i64,
}

#[derive(Insertable)]
#[diesel(table_name = order_events)]
struct NewEvent {
    id: Uuid,
    order_id: Uuid,
    from_status: Option<&'static str>,
    to_status: &'static str,
    actor_id: Option<Uuid>,
    actor: &'static str,
    note: Option<&'static str>,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = ledger_transactions)]
struct NewTx {
    id: Uuid,
    kind: &'static str,
    order_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    note: Option<&'static str>,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = postings)]
struct NewPosting {
    id: Uuid,
    transaction_id: Uuid,
    account_id: Uuid,
    amount_idr: i64,
    created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = order_aid)]
struct NewOrderAid {
    order_id: Uuid,
    programme_id: Uuid,
    account_id: Uuid,
    amount_idr: i64,
}

#[derive(Insertable)]
#[diesel(table_name = stock_adjustments)]
struct NewAdjustment {
    id: Uuid,
    product_id: Uuid,
    delta: i32,
    stock_after: i32,
    reason: &'static str,
    actor_id: Uuid,
    created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// The simulation.

struct Programme {
    id: Uuid,
    village: usize,
    network: bool,
    account: Uuid,
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    /// Recipients (person indexes) and their aid balance accounts.
    recipients: Vec<(usize, Uuid)>,
    /// Whether the period is over before today (the remainder goes back, `closed_at` set).
    closes: bool,
}

enum Who {
    Buyer,
    Seller,
    SellerAdmin,
    System,
}

struct Step {
    t: Micros,
    to: &'static str,
    who: Who,
    note: Option<&'static str>,
}

enum Ev {
    /// Residents' (or a BUMDes shop's) checkout at these shops.
    Checkout {
        buyer: Buyer,
        shops: Vec<usize>,
    },
    /// A top-up by the home village's treasurer.
    Topup {
        person: usize,
        amount: i64,
    },
    /// A BUMDes shop's working capital, topped up by its treasurer.
    ShopCapital {
        shop: usize,
        amount: i64,
    },
    /// A member takes part of their balance out in cash.
    Withdraw {
        person: usize,
        share: f64,
    },
    /// A shop takes its earnings out (weekly).
    Payout {
        shop: usize,
    },
    /// The next move of a placed order.
    Step {
        order: usize,
        step: usize,
    },
    AidFund {
        prog: usize,
    },
    AidDisburse {
        prog: usize,
        month: u32,
    },
    AidReturn {
        prog: usize,
    },
}

#[derive(Clone, Copy)]
enum Buyer {
    Person(usize),
    /// A shop buying (B2B), placed by this operator.
    Shop(usize, Uuid),
}

struct OrderSim {
    id: Uuid,
    shop: usize,
    buyer: Buyer,
    buyer_account: Uuid,
    escrow: Uuid,
    items: i64,
    delivery: i64,
    total: i64,
    rates: split::Rates,
    network: bool,
    aid: Option<(usize, Uuid, i64)>,
    lines: Vec<(usize, i32)>,
    steps: Vec<Step>,
}

struct Sim<'w> {
    w: &'w World,
    p: &'w Params,
    rng: StdRng,
    ids: Ids,
    now: Micros,
    /// Nothing may happen at or after this (the live demo runs at `now`).
    limit: Micros,
    balance: HashMap<Uuid, i64>,
    stock: Vec<i32>,
    heap: BinaryHeap<Reverse<(Micros, u64)>>,
    events: Vec<Option<(Micros, Ev)>>,
    programmes: Vec<Programme>,
    /// A recipient's programme and aid balance account.
    aid_of: HashMap<usize, (usize, Uuid)>,
    sims: Vec<OrderSim>,
    // Output.
    orders: Vec<NewOrder>,
    lines: Vec<NewLine>,
    order_events: Vec<NewEvent>,
    txs: Vec<NewTx>,
    /// Per ledger transaction: the end of its postings in `postings`.
    tx_ends: Vec<usize>,
    postings: Vec<NewPosting>,
    order_aid: Vec<NewOrderAid>,
    adjustments: Vec<NewAdjustment>,
    report: Report,
}

const REJECT_REASONS: [&str; 3] = [
    "Stok sedang kosong, mohon maaf",
    "Tidak bisa kirim ke alamat ini",
    "Toko sedang libur",
];
const CANCEL_BUYER: [&str; 3] = ["Salah pesan", "Sudah beli di pasar", "Ganti barang lain"];
const CANCEL_SELLER: [&str; 2] = ["Kurir tidak tersedia", "Barang rusak sebelum dikirim"];
const DISPUTES: [&str; 3] = [
    "Barang belum sampai",
    "Jumlah kurang",
    "Barang rusak saat diterima",
];

impl<'w> Sim<'w> {
    fn push(&mut self, t: Micros, ev: Ev) {
        if t >= self.limit {
            return;
        }
        let seq = self.events.len() as u64;
        self.events.push(Some((t, ev)));
        self.heap.push(Reverse((t, seq)));
    }

    fn bal(&self, a: Uuid) -> i64 {
        self.balance.get(&a).copied().unwrap_or(0)
    }

    /// One balanced ledger transaction at the current time.
    fn post(
        &mut self,
        kind: &'static str,
        order: Option<Uuid>,
        actor: Option<Uuid>,
        note: Option<&'static str>,
        lines: &[(Uuid, i64)],
    ) {
        debug_assert_eq!(lines.iter().map(|l| l.1).sum::<i64>(), 0);
        let t = self.now;
        let id = self.ids.at(t);
        self.txs.push(NewTx {
            id,
            kind,
            order_id: order,
            actor_id: actor,
            note,
            created_at: ts(t),
        });
        for (account, amount) in lines.iter().copied().filter(|l| l.1 != 0) {
            let b = self.balance.entry(account).or_insert(0);
            *b += amount;
            assert!(
                *b >= 0 || self.w.villages.iter().any(|v| v.cash == account),
                "the simulation overdrew an account"
            );
            let pid = self.ids.at(t);
            self.postings.push(NewPosting {
                id: pid,
                transaction_id: id,
                account_id: account,
                amount_idr: amount,
                created_at: ts(t),
            });
        }
        self.tx_ends.push(self.postings.len());
    }

    fn person_topup(&mut self, person: usize, amount: i64, note: &'static str) {
        let p = &self.w.people[person];
        let v = &self.w.villages[p.village];
        let (cash, wallet, treasurer) = (v.cash, p.wallet, v.treasurer);
        self.report.topups_idr += amount;
        self.post(
            "topup",
            None,
            Some(treasurer),
            Some(note),
            &[(cash, -amount), (wallet, amount)],
        );
    }

    fn run(&mut self) {
        let bar = ProgressBar::new(self.p.days as u64);
        bar.set_style(
            ProgressStyle::with_template("history  {bar:40} {pos}/{len} days {msg}")
                .expect("a template"),
        );
        let mut day = 0;
        while let Some(Reverse((t, seq))) = self.heap.pop() {
            let (_, ev) = self.events[seq as usize].take().expect("each event once");
            self.now = t;
            let d = ((t - self.start()) / DAY).clamp(0, self.p.days);
            if d > day {
                bar.set_position(d as u64);
                bar.set_message(format!("{} orders", self.orders.len()));
                day = d;
            }
            self.handle(ev);
        }
        bar.finish_and_clear();
        self.stock_count();
    }

    fn start(&self) -> Micros {
        let today = ts(self.limit).with_timezone(&wib()).date_naive();
        at(today - Duration::days(self.p.days), 0, 0, 0)
    }

    /// Everything that happens without being caused by an earlier event, for the whole year.
    fn schedule(&mut self) {
        let start_day = wib_date(self.start());
        let w = self.w;
        // Some people shop a lot, some rarely; aid recipients (poorer households) rarely with
        // their own money.
        let activity: Vec<f64> = (0..w.people.len())
            .map(|pi| {
                if self.aid_of.contains_key(&pi) {
                    0.15
                } else if w.people[pi].demo {
                    1.0
                } else {
                    0.3 + ((pi * 31) % 17) as f64 / 10.0
                }
            })
            .collect();
        let cumulative: Vec<Vec<f64>> = w
            .villages
            .iter()
            .map(|v| {
                let mut sum = 0.0;
                v.people
                    .iter()
                    .map(|pi| {
                        sum += activity[*pi];
                        sum
                    })
                    .collect()
            })
            .collect();
        for v in &w.villages {
            // Each BUMDes shop starts with its working capital.
            if let Some(s) = v.bumdes_shop {
                self.push(
                    at(start_day, 9, 0, 0),
                    Ev::ShopCapital {
                        shop: s,
                        amount: 2_000_000,
                    },
                );
            }
        }
        for d in 0..self.p.days {
            let date = start_day + Duration::days(d);
            let trend = 0.75 + 0.45 * d as f64 / self.p.days as f64;
            let base = season(date) * weekday_factor(date) * trend * self.p.scale;
            for (vi, v) in w.villages.iter().enumerate() {
                let market = if v.pasaran == Some(pasaran(date)) {
                    1.6
                } else {
                    1.0
                };
                let n = self.poisson(11.0 * v.weight * market * base);
                for _ in 0..n {
                    if v.people.is_empty() {
                        break;
                    }
                    let cum = &cumulative[vi];
                    let x = self.rng.random::<f64>() * cum[cum.len() - 1];
                    let person = v.people[cum.partition_point(|c| *c <= x).min(cum.len() - 1)];
                    let t = self.time_of_day(date);
                    let shops = self.destinations(person, date);
                    if !shops.is_empty() {
                        self.push(
                            t,
                            Ev::Checkout {
                                buyer: Buyer::Person(person),
                                shops,
                            },
                        );
                    }
                }
                // The BUMDes shop restocks from a producer group or UMKM of another village.
                if let Some(s) = v.bumdes_shop
                    && v.in_network
                    && self.rng.random_bool((0.2 * base / self.p.scale).min(1.0))
                {
                    let seller = self.b2b_seller(vi);
                    let operator = w.shops[s].operators[0];
                    let t = at(
                        date,
                        self.rng.random_range(8..15),
                        self.rng.random_range(0..60),
                        self.rng.random_range(0..60),
                    );
                    self.push(
                        t,
                        Ev::Checkout {
                            buyer: Buyer::Shop(s, operator),
                            shops: vec![seller],
                        },
                    );
                }
            }
            // Aid recipients shop more while their programme runs.
            for prog in 0..self.programmes.len() {
                let pr = &self.programmes[prog];
                if date < pr.starts_on || date > pr.ends_on {
                    continue;
                }
                let n = self.poisson(pr.recipients.len() as f64 * 0.06 * base / self.p.scale);
                for _ in 0..n {
                    let pr = &self.programmes[prog];
                    let person = pr.recipients[self.rng.random_range(0..pr.recipients.len())].0;
                    let t = self.time_of_day(date);
                    let shops = self.destinations(person, date);
                    if !shops.is_empty() {
                        self.push(
                            t,
                            Ev::Checkout {
                                buyer: Buyer::Person(person),
                                shops,
                            },
                        );
                    }
                }
            }
            // Paydays, withdrawals and shop payouts.
            for (pi, p) in w.people.iter().enumerate() {
                if date.day() == 1 + (pi as u32 % 7) {
                    let lebaran_bonus = if season(date + Duration::days(14)) > 1.3 {
                        1.5
                    } else {
                        1.0
                    };
                    let amount =
                        ((p.budget as f64 * lebaran_bonus * self.rng.random_range(0.7..1.3))
                            / 10_000.0)
                            .round() as i64
                            * 10_000;
                    let t = at(
                        date,
                        self.rng.random_range(8..14),
                        self.rng.random_range(0..60),
                        0,
                    );
                    self.push(t, Ev::Topup { person: pi, amount });
                }
                if self.rng.random_bool(0.06 / 30.0) {
                    let t = at(
                        date,
                        self.rng.random_range(8..15),
                        self.rng.random_range(0..60),
                        0,
                    );
                    let share = self.rng.random_range(0.3..0.7);
                    self.push(t, Ev::Withdraw { person: pi, share });
                }
            }
            for (si, _) in w.shops.iter().enumerate() {
                if (d + si as i64) % 7 == 0 {
                    let t = at(date, 14, self.rng.random_range(0..60), 0);
                    self.push(t, Ev::Payout { shop: si });
                }
            }
        }
        for prog in 0..self.programmes.len() {
            let pr = &self.programmes[prog];
            let (starts, ends, closes) = (pr.starts_on, pr.ends_on, pr.closes);
            self.push(
                at(starts - Duration::days(3), 10, 0, 0),
                Ev::AidFund { prog },
            );
            for month in 0..AID_MONTHS {
                let day = starts
                    .checked_add_months(chrono::Months::new(month))
                    .expect("a date");
                self.push(at(day, 9, 0, 0), Ev::AidDisburse { prog, month });
            }
            if closes {
                self.push(
                    at(ends + Duration::days(1), 0, 15, 0),
                    Ev::AidReturn { prog },
                );
            }
        }
    }

    fn poisson(&mut self, lambda: f64) -> usize {
        if lambda <= 0.0 {
            return 0;
        }
        let l = (-lambda).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.rng.random::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }

    fn time_of_day(&mut self, date: NaiveDate) -> Micros {
        let total: f64 = HOURS.iter().sum();
        let mut x = self.rng.random::<f64>() * total;
        let mut hour = 23;
        for (h, w) in HOURS.iter().enumerate() {
            if x < *w {
                hour = h;
                break;
            }
            x -= w;
        }
        at(
            date,
            hour as u32,
            self.rng.random_range(0..60),
            self.rng.random_range(0..60),
        ) + self.rng.random_range(0..1_000_000)
    }

    /// The programme `person` may spend in on `date`, if any.
    fn programme_of(&self, person: usize, date: NaiveDate) -> Option<(usize, Uuid)> {
        let (prog, acct) = *self.aid_of.get(&person)?;
        let pr = &self.programmes[prog];
        (date >= pr.starts_on && date <= pr.ends_on).then_some((prog, acct))
    }

    fn in_area(&self, prog: usize, shop: usize) -> bool {
        let pr = &self.programmes[prog];
        let v = self.w.shops[shop].village;
        if pr.network {
            self.w.villages[v].in_network
        } else {
            v == pr.village
        }
    }

    /// Where a person buys today: one shop, sometimes two.
    fn destinations(&mut self, person: usize, date: NaiveDate) -> Vec<usize> {
        let w = self.w;
        let p = &w.people[person];
        let home = p.village;
        let network: Vec<usize> = (0..w.villages.len())
            .filter(|v| w.villages[*v].in_network)
            .collect();
        let outside: Vec<usize> = (0..w.villages.len())
            .filter(|v| !w.villages[*v].in_network)
            .collect();
        let u: f64 = self.rng.random();
        let village = if let Some((prog, _)) = self.programme_of(person, date)
            && u < 0.85
        {
            // Aid is spent in its area, mostly at home.
            let pr = &self.programmes[prog];
            if !pr.network || self.rng.random_bool(0.7) {
                home
            } else {
                network[self.rng.random_range(0..network.len())]
            }
        } else if w.villages[home].in_network {
            if u < 0.62 {
                home
            } else if u < 0.90 {
                let others: Vec<usize> = network.iter().copied().filter(|v| *v != home).collect();
                others[self.rng.random_range(0..others.len())]
            } else {
                // The nearer an outside village, the more it is visited.
                let weights = [0.5, 0.3, 0.2];
                let mut x = self.rng.random::<f64>();
                let mut pick = outside[outside.len() - 1];
                for (k, o) in outside.iter().enumerate() {
                    let wk = weights.get(k).copied().unwrap_or(0.1);
                    if x < wk {
                        pick = *o;
                        break;
                    }
                    x -= wk;
                }
                pick
            }
        } else {
            let at_home = if w.villages[home].pasaran.is_some() {
                0.55
            } else {
                0.4
            };
            if u < at_home {
                home
            } else {
                network[self.rng.random_range(0..network.len())]
            }
        };
        let mut shops = Vec::new();
        let first = self.pick_shop(village, person, date, None);
        if let Some(s) = first {
            shops.push(s);
            if self.rng.random_bool(0.08)
                && let Some(s2) = self.pick_shop(village, person, date, Some(s))
            {
                shops.push(s2);
            }
        }
        shops
    }

    fn pick_shop(
        &mut self,
        village: usize,
        person: usize,
        date: NaiveDate,
        not: Option<usize>,
    ) -> Option<usize> {
        let w = self.w;
        let candidates: Vec<(usize, f64)> = w.villages[village]
            .shops
            .iter()
            .copied()
            .filter(|s| Some(*s) != not && !w.people[person].operates.contains(s))
            .map(|s| {
                let weight = if w.shops[s].kind == "group" && harvest(date) {
                    1.5
                } else {
                    1.0
                };
                (s, weight)
            })
            .collect();
        let total: f64 = candidates.iter().map(|c| c.1).sum();
        let mut x = self.rng.random::<f64>() * total;
        for (s, wt) in &candidates {
            if x < *wt {
                return Some(*s);
            }
            x -= wt;
        }
        candidates.last().map(|c| c.0)
    }

    /// A producer group or UMKM of another network village (sometimes outside) for a BUMDes.
    fn b2b_seller(&mut self, buyer_village: usize) -> usize {
        let w = self.w;
        let outside = self.rng.random_bool(0.1);
        let candidates: Vec<usize> = w
            .shops
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.village != buyer_village
                    && w.villages[s.village].in_network != outside
                    && s.kind != "bumdes_unit"
            })
            .map(|(i, _)| i)
            .collect();
        candidates[self.rng.random_range(0..candidates.len())]
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Checkout { buyer, shops } => self.checkout(buyer, &shops),
            Ev::Topup { person, amount } => {
                self.person_topup(person, amount, "setoran tunai bulanan")
            }
            Ev::ShopCapital { shop, amount } => self.shop_capital(shop, amount),
            Ev::Withdraw { person, share } => {
                let wallet = self.w.people[person].wallet;
                let amount = (self.bal(wallet) as f64 * share / 10_000.0).floor() as i64 * 10_000;
                if amount >= 50_000 {
                    let v = &self.w.villages[self.w.people[person].village];
                    let (cash, treasurer) = (v.cash, v.treasurer);
                    self.report.withdrawals_idr += amount;
                    self.post(
                        "withdrawal",
                        None,
                        Some(treasurer),
                        Some("penarikan tunai"),
                        &[(wallet, -amount), (cash, amount)],
                    );
                }
            }
            Ev::Payout { shop } => {
                let s = &self.w.shops[shop];
                let keep = if s.kind == "bumdes_unit" { 0.4 } else { 0.8 };
                let amount = (self.bal(s.wallet) as f64 * keep / 10_000.0).floor() as i64 * 10_000;
                if amount >= 100_000 {
                    let v = &self.w.villages[s.village];
                    let (cash, treasurer, wallet) = (v.cash, v.treasurer, s.wallet);
                    self.report.withdrawals_idr += amount;
                    self.post(
                        "withdrawal",
                        None,
                        Some(treasurer),
                        Some("penarikan hasil penjualan"),
                        &[(wallet, -amount), (cash, amount)],
                    );
                }
            }
            Ev::Step { order, step } => self.step(order, step),
            Ev::AidFund { prog } => {
                let pr = &self.programmes[prog];
                let amount = pr.recipients.len() as i64 * AID_MONTHLY_IDR * i64::from(AID_MONTHS);
                let v = &self.w.villages[pr.village];
                let (cash, acct, treasurer) = (v.cash, pr.account, v.treasurer);
                self.report.aid_funded_idr += amount;
                self.post(
                    "aid_funding",
                    None,
                    Some(treasurer),
                    Some("Pendanaan BLT Dana Desa dari APBDes"),
                    &[(cash, -amount), (acct, amount)],
                );
            }
            Ev::AidDisburse { prog, month } => {
                let pr = &self.programmes[prog];
                let treasurer = self.w.villages[pr.village].treasurer;
                let mut lines = vec![(pr.account, -(pr.recipients.len() as i64 * AID_MONTHLY_IDR))];
                lines.extend(pr.recipients.iter().map(|(_, a)| (*a, AID_MONTHLY_IDR)));
                self.report.aid_disbursed_idr += pr.recipients.len() as i64 * AID_MONTHLY_IDR;
                let note = match month {
                    0 => "Penyaluran BLT Dana Desa bulan ke-1",
                    1 => "Penyaluran BLT Dana Desa bulan ke-2",
                    _ => "Penyaluran BLT Dana Desa bulan ke-3",
                };
                self.post(
                    "aid_disbursement",
                    None,
                    Some(treasurer),
                    Some(note),
                    &lines,
                );
            }
            Ev::AidReturn { prog } => {
                let pr = &self.programmes[prog];
                let mut lines: Vec<(Uuid, i64)> = pr
                    .recipients
                    .iter()
                    .map(|(_, a)| (*a, -self.bal(*a)))
                    .filter(|l| l.1 != 0)
                    .collect();
                let back: i64 = -lines.iter().map(|l| l.1).sum::<i64>();
                if back > 0 {
                    lines.push((pr.account, back));
                    self.report.aid_returned_idr += back;
                    self.post(
                        "aid_return",
                        None,
                        None,
                        Some("Sisa BLT kembali ke program"),
                        &lines,
                    );
                }
            }
        }
    }

    fn shop_capital(&mut self, shop: usize, amount: i64) {
        let s = &self.w.shops[shop];
        let v = &self.w.villages[s.village];
        let (cash, wallet, treasurer) = (v.cash, s.wallet, v.treasurer);
        self.report.topups_idr += amount;
        self.post(
            "topup",
            None,
            Some(treasurer),
            Some("penyertaan modal BUMDes"),
            &[(cash, -amount), (wallet, amount)],
        );
    }

    fn quantity(&mut self, unit: &str, price: i64, b2b: bool) -> i32 {
        let q = match unit {
            _ if price >= 100_000 => {
                if self.rng.random_bool(0.1) {
                    2
                } else {
                    1
                }
            }
            _ if price <= 5_000 => self.rng.random_range(4..=15),
            "kg" => self.rng.random_range(1..=5),
            "ikat" => self.rng.random_range(1..=4),
            "pcs" if b2b => self.rng.random_range(3..=10),
            "pcs" => self.rng.random_range(1..=3),
            _ => self.rng.random_range(1..=3),
        };
        if b2b && price < 100_000 { q * 4 } else { q }
    }

    fn checkout(&mut self, buyer: Buyer, shop_list: &[usize]) {
        let w = self.w;
        let t0 = self.now;
        let date = wib_date(t0);
        let (buyer_village, account, buyer_user, buyer_shop) = match buyer {
            Buyer::Person(p) => (
                w.people[p].village,
                w.people[p].wallet,
                w.people[p].user,
                None,
            ),
            Buyer::Shop(s, op) => (w.shops[s].village, w.shops[s].wallet, op, Some(s)),
        };
        let b2b = buyer_shop.is_some();
        // Plan every order of the checkout: lines, delivery, aid, the path to its final status.
        struct Plan {
            shop: usize,
            lines: Vec<(usize, i32)>,
            items: i64,
            delivery_fee: i64,
            delivery: bool,
            aid: i64,
            steps: Vec<Step>,
        }
        let mut plans = Vec::new();
        let mut aid_left = match buyer {
            Buyer::Person(p) => self
                .programme_of(p, date)
                .map(|(prog, acct)| (prog, acct, self.bal(acct))),
            Buyer::Shop(..) => None,
        };
        for &s in shop_list {
            let shop = &w.shops[s];
            let n = match self.rng.random_range(0..100) {
                0..55 => 1,
                55..85 => 2,
                _ => 3,
            }
            .min(shop.products.len());
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < n {
                // Each shop has its favourites: the first products sell more.
                let k = (self.rng.random::<f64>().powi(2) * shop.products.len() as f64) as usize;
                let pi = shop.products[k.min(shop.products.len() - 1)];
                if !chosen.contains(&pi) {
                    chosen.push(pi);
                }
            }
            let mut lines = Vec::new();
            for pi in chosen {
                let q = self.quantity(&w.products[pi].unit.clone(), w.products[pi].price, b2b);
                lines.push((pi, q));
            }
            let items: i64 = lines
                .iter()
                .map(|(pi, q)| w.products[*pi].price * i64::from(*q))
                .sum();
            let far = w.villages[shop.village].code[..2] != w.villages[buyer_village].code[..2];
            let delivery = b2b || far || !shop.pickup || self.rng.random_bool(0.6);
            let delivery_fee = match (delivery, shop.village == buyer_village) {
                (false, _) => 0,
                (true, true) => shop.fee_village,
                (true, false) => shop.fee_other,
            };
            let total = items + delivery_fee;
            let aid = match &mut aid_left {
                Some((prog, _, left)) if *left > 0 && self.in_area(*prog, s) => {
                    let a = (*left).min(total);
                    *left -= a;
                    a
                }
                _ => 0,
            };
            // Aid spent in the last days of a closing programme is never refunded after the
            // remainder went back.
            let force_complete = aid > 0
                && aid_left.as_ref().is_some_and(|(prog, _, _)| {
                    let pr = &self.programmes[*prog];
                    pr.closes && pr.ends_on - date < Duration::days(8)
                });
            let Some(steps) = self.path(t0, b2b, force_complete) else {
                return; // too late to finish before today: it never happened
            };
            plans.push(Plan {
                shop: s,
                lines,
                items,
                delivery_fee,
                delivery,
                aid,
                steps,
            });
        }
        if plans.is_empty() {
            return;
        }
        // Not enough in the wallet: the buyer hands cash to the treasurer first.
        let need: i64 = plans.iter().map(|p| p.items + p.delivery_fee - p.aid).sum();
        let have = self.bal(account);
        if have < need {
            let amount = ((need - have) / 50_000 + 2) * 50_000;
            match buyer {
                Buyer::Person(p) => self.person_topup(p, amount, "setoran tunai"),
                Buyer::Shop(s, _) => self.shop_capital(s, amount),
            }
        }
        let checkout_id = self.ids.at(t0);
        for plan in plans {
            let shop = &w.shops[plan.shop];
            let seller_village = &w.villages[shop.village];
            let network = seller_village.in_network && w.villages[buyer_village].in_network;
            let rates = split::Rates {
                network_fee_bps: if network { w.network_fee_bps } else { 0 },
                village_share_bps: seller_village.share_bps,
                platform_fee_bps: 0,
            };
            let order_id = self.ids.at(t0);
            // Stock: restock first when it ran out, then take it.
            for (pi, q) in &plan.lines {
                if self.stock[*pi] < *q {
                    let delta = *q - self.stock[*pi] + self.rng.random_range(10..40);
                    self.stock[*pi] += delta;
                    let id = self.ids.at(t0);
                    self.adjustments.push(NewAdjustment {
                        id,
                        product_id: w.products[*pi].id,
                        delta,
                        stock_after: self.stock[*pi],
                        reason: "restock",
                        actor_id: shop.operators[0],
                        created_at: ts(t0),
                    });
                }
                self.stock[*pi] -= q;
            }
            for (n, (pi, q)) in plan.lines.iter().enumerate() {
                let p = &w.products[*pi];
                self.lines.push(NewLine {
                    order_id,
                    line_no: n as i32 + 1,
                    product_id: p.id,
                    name: p.name.clone(),
                    unit: p.unit.clone(),
                    unit_price_idr: p.price,
                    quantity: *q,
                    line_total_idr: p.price * i64::from(*q),
                });
            }
            let total = plan.items + plan.delivery_fee;
            let address = plan.delivery.then(|| {
                format!(
                    "Dusun {} RT {:02}, {}",
                    ["Krajan", "Kauman", "Jetis", "Ngasem", "Glugo"][self.rng.random_range(0..5)],
                    self.rng.random_range(1..12),
                    w.villages[buyer_village].name
                )
            });
            let last = plan.steps.last().map(|s| s.t).unwrap_or(t0);
            let shipped_at = plan.steps.iter().find(|s| s.to == "shipped").map(|s| s.t);
            let final_status = plan.steps.last().map(|s| s.to).unwrap_or("placed");
            self.orders.push(NewOrder {
                id: order_id,
                checkout_id,
                status: final_status.to_string(),
                buyer_user_id: buyer_user,
                buyer_shop_id: buyer_shop.map(|s| w.shops[s].id),
                buyer_account_id: account,
                buyer_village_code: w.villages[buyer_village].code.clone(),
                shop_id: shop.id,
                village_code: seller_village.code.clone(),
                escrow_account_id: seller_village.escrow,
                network_id: network.then_some(w.network_id),
                network_fee_bps: rates.network_fee_bps,
                village_share_bps: rates.village_share_bps,
                platform_fee_bps: rates.platform_fee_bps,
                delivery_method: if plan.delivery { "delivery" } else { "pickup" }.into(),
                delivery_address: address,
                delivery_fee_idr: plan.delivery_fee,
                items_total_idr: plan.items,
                total_idr: total,
                courier_name: shipped_at.map(|_| format!("Kurir Desa {}", seller_village.name)),
                courier_phone: shipped_at.map(|_| format!("+628139999{:04}", plan.shop)),
                placed_at: ts(t0),
                shipped_at: shipped_at.map(ts),
                updated_at: ts(last),
                aid_paid_idr: plan.aid,
            });
            self.report.orders += 1;
            if final_status == "completed" {
                self.report.completed += 1;
                self.report.gmv_idr += total;
            }
            if b2b {
                self.report.b2b += 1;
            }
            let eid = self.ids.at(t0);
            self.order_events.push(NewEvent {
                id: eid,
                order_id,
                from_status: None,
                to_status: "placed",
                actor_id: Some(buyer_user),
                actor: "buyer",
                note: None,
                created_at: ts(t0),
            });
            let mut hold = vec![
                (account, -(total - plan.aid)),
                (seller_village.escrow, total),
            ];
            let aid = if plan.aid > 0 {
                let (prog, acct, _) = aid_left.expect("aid was taken from a balance");
                hold.push((acct, -plan.aid));
                self.order_aid.push(NewOrderAid {
                    order_id,
                    programme_id: self.programmes[prog].id,
                    account_id: acct,
                    amount_idr: plan.aid,
                });
                if final_status == "completed" {
                    self.report.aid_spent_idr += plan.aid;
                }
                Some((prog, acct, plan.aid))
            } else {
                None
            };
            self.post("hold", Some(order_id), Some(buyer_user), None, &hold);
            let oi = self.sims.len();
            let steps_at: Vec<Micros> = plan.steps.iter().map(|s| s.t).collect();
            self.sims.push(OrderSim {
                id: order_id,
                shop: plan.shop,
                buyer,
                buyer_account: account,
                escrow: seller_village.escrow,
                items: plan.items,
                delivery: plan.delivery_fee,
                total,
                rates,
                network,
                aid,
                lines: plan.lines,
                steps: plan.steps,
            });
            for (k, t) in steps_at.into_iter().enumerate() {
                self.push(t, Ev::Step { order: oi, step: k });
            }
        }
    }

    /// The moves of an order placed at `t0` to its final status, all before the limit; `None`
    /// when even a quick completion would not fit.
    fn path(&mut self, t0: Micros, b2b: bool, force_complete: bool) -> Option<Vec<Step>> {
        let mut r = |lo: Micros, hi: Micros| self.rng.random_range(lo..hi);
        let u: f64 = if force_complete || b2b {
            1.0
        } else {
            r(0, 1_000_000) as f64 / 1e6
        };
        let mut steps = Vec::new();
        let step = |t, to, who, note| Step { t, to, who, note };
        let pick = |list: &[&'static str], x: Micros| list[x as usize % list.len()];
        if u < 0.02 {
            steps.push(step(
                t0 + 48 * HOUR + r(0, 30_000_000),
                "expired",
                Who::System,
                None,
            ));
        } else if u < 0.05 {
            let x = r(0, 1000);
            let t = t0 + r(20 * MIN, 8 * HOUR);
            steps.push(step(
                t,
                "rejected",
                Who::Seller,
                Some(pick(&REJECT_REASONS, x)),
            ));
        } else if u < 0.075 {
            let x = r(0, 1000);
            let t = t0 + r(5 * MIN, 3 * HOUR);
            steps.push(step(
                t,
                "cancelled",
                Who::Buyer,
                Some(pick(&CANCEL_BUYER, x)),
            ));
        } else {
            let accepted = t0 + r(10 * MIN, 6 * HOUR);
            steps.push(step(accepted, "accepted", Who::Seller, None));
            if u < 0.09 {
                let x = r(0, 1000);
                let t = accepted + r(HOUR, 20 * HOUR);
                steps.push(step(
                    t,
                    "cancelled",
                    Who::Seller,
                    Some(pick(&CANCEL_SELLER, x)),
                ));
            } else {
                let shipped = accepted + r(HOUR, if b2b { 48 } else { 24 } * HOUR);
                steps.push(step(shipped, "shipped", Who::Seller, None));
                let v = r(0, 1000);
                if !force_complete && !b2b && v < 40 {
                    let disputed = shipped + r(6 * HOUR, 60 * HOUR);
                    let x = r(0, 1000);
                    steps.push(step(
                        disputed,
                        "disputed",
                        Who::Buyer,
                        Some(pick(&DISPUTES, x)),
                    ));
                    let resolved = disputed + r(4 * HOUR, 72 * HOUR);
                    if v < 14 {
                        steps.push(step(
                            resolved,
                            "refunded",
                            Who::SellerAdmin,
                            Some("Dikembalikan ke pembeli"),
                        ));
                    } else {
                        steps.push(step(
                            resolved,
                            "completed",
                            Who::SellerAdmin,
                            Some("Sudah dicek: lengkap"),
                        ));
                    }
                } else if v < 290 {
                    steps.push(step(
                        shipped + 72 * HOUR + r(0, 30_000_000),
                        "completed",
                        Who::System,
                        None,
                    ));
                } else {
                    steps.push(step(
                        shipped + r(2 * HOUR, 60 * HOUR),
                        "completed",
                        Who::Buyer,
                        None,
                    ));
                }
            }
        }
        let end = steps.last().map(|s| s.t).unwrap_or(t0);
        if end < self.limit {
            return Some(steps);
        }
        // Late in the year: a quick one, or none.
        let quick = vec![
            step(t0 + 10 * MIN, "accepted", Who::Seller, None),
            step(t0 + HOUR, "shipped", Who::Seller, None),
            step(t0 + 3 * HOUR, "completed", Who::Buyer, None),
        ];
        (t0 + 3 * HOUR < self.limit).then_some(quick)
    }

    fn step(&mut self, oi: usize, k: usize) {
        let w = self.w;
        let o = &self.sims[oi];
        let s = &o.steps[k];
        let from = if k == 0 { "placed" } else { o.steps[k - 1].to };
        let (to, note) = (s.to, s.note);
        let shop = &w.shops[o.shop];
        let seller_village = &w.villages[shop.village];
        let (actor, actor_id) = match s.who {
            Who::Buyer => (
                "buyer",
                Some(match o.buyer {
                    Buyer::Person(p) => w.people[p].user,
                    Buyer::Shop(_, op) => op,
                }),
            ),
            Who::Seller => ("seller", Some(shop.operators[k % shop.operators.len()])),
            Who::SellerAdmin => ("seller_admin", Some(seller_village.admin)),
            Who::System => ("system", None),
        };
        let (order_id, escrow, total, buyer_account) = (o.id, o.escrow, o.total, o.buyer_account);
        let settlement = {
            let sp = split::split(o.items, o.delivery, o.rates);
            let mut lines = vec![
                (escrow, -total),
                (shop.wallet, sp.seller),
                (seller_village.revenue, sp.village_share),
                (w.platform_fee, sp.platform_fee),
            ];
            if o.network {
                lines.push((w.network_fee, sp.network_fee));
            }
            lines
        };
        let aid = o.aid;
        let lines = o.lines.clone();
        let eid = self.ids.at(self.now);
        self.order_events.push(NewEvent {
            id: eid,
            order_id,
            from_status: Some(from),
            to_status: to,
            actor_id,
            actor,
            note,
            created_at: ts(self.now),
        });
        match to {
            "completed" => self.post("settlement", Some(order_id), actor_id, None, &settlement),
            "rejected" | "cancelled" | "expired" | "refunded" => {
                // The stock goes back, and the money to where it came from.
                for (pi, q) in lines {
                    self.stock[pi] += q;
                }
                let mut refund = vec![(escrow, -total)];
                let from_aid = aid.map(|a| a.2).unwrap_or(0);
                if let Some((_, acct, a)) = aid {
                    refund.push((acct, a));
                }
                refund.push((buyer_account, total - from_aid));
                self.post("refund", Some(order_id), actor_id, None, &refund);
            }
            _ => {}
        }
    }

    /// The year's last stock count: every product back to its opening stock.
    fn stock_count(&mut self) {
        let t = self.now + 1_000_000;
        for (pi, p) in self.w.products.iter().enumerate() {
            let delta = p.stock0 - self.stock[pi];
            if delta != 0 {
                let shop = self
                    .w
                    .shops
                    .iter()
                    .find(|s| s.products.contains(&pi))
                    .expect("a product's shop");
                let id = self.ids.at(t);
                self.adjustments.push(NewAdjustment {
                    id,
                    product_id: p.id,
                    delta,
                    stock_after: p.stock0,
                    reason: "stock opname",
                    actor_id: shop.operators[0],
                    created_at: ts(t),
                });
                self.stock[pi] = p.stock0;
            }
        }
    }
}

/// Writes the year of history (see the module documentation) and says what it wrote.
pub fn run(conn: &mut PgConnection, world: &World, p: &Params) -> anyhow::Result<Report> {
    let limit = p.now.timestamp_micros() - 5 * MIN;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let ids = Ids {
        rng: StdRng::seed_from_u64(p.seed ^ 0x5eed),
        last_ms: 0,
        counter: 0,
    };
    let mut sim = Sim {
        w: world,
        p,
        rng: StdRng::seed_from_u64(p.seed.wrapping_add(1)),
        ids,
        now: 0,
        limit,
        balance: HashMap::new(),
        stock: world.products.iter().map(|p| p.stock0).collect(),
        heap: BinaryHeap::new(),
        events: Vec::new(),
        programmes: Vec::new(),
        aid_of: HashMap::new(),
        sims: Vec::new(),
        orders: Vec::new(),
        lines: Vec::new(),
        order_events: Vec::new(),
        txs: Vec::new(),
        tx_ends: Vec::new(),
        postings: Vec::new(),
        order_aid: Vec::new(),
        adjustments: Vec::new(),
        report: Report::default(),
    };
    let start = sim.start();
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        backdate_setup(conn, world, start)?;
        sim.programmes = create_programmes(conn, world, p, &mut rng, limit)?;
        Ok(())
    })?;
    for (prog, pr) in sim.programmes.iter().enumerate() {
        for (person, acct) in &pr.recipients {
            sim.aid_of.insert(*person, (prog, *acct));
        }
    }
    sim.schedule();
    sim.run();
    sim.report.first_day = sim
        .orders
        .first()
        .map(|o| o.placed_at.with_timezone(&wib()).date_naive());
    sim.report.last_day = sim
        .orders
        .last()
        .map(|o| o.placed_at.with_timezone(&wib()).date_naive());
    sim.report.ledger_transactions = sim.txs.len();
    sim.report.postings = sim.postings.len();
    write(conn, &mut sim)?;
    Ok(std::mem::take(&mut sim.report))
}

/// The setup's rows say they were made before the year began (the audit log keeps its times:
/// it is append-only).
fn backdate_setup(conn: &mut PgConnection, w: &World, start: Micros) -> anyhow::Result<()> {
    use diesel::sql_types::{Array, Text, Timestamptz};
    let codes: Vec<String> = w.villages.iter().map(|v| v.code.clone()).collect();
    let when = ts(start - 30 * DAY);
    for sql in [
        "UPDATE villages SET created_at = $2 WHERE code = ANY($1)",
        "UPDATE network_villages SET joined_at = $2 WHERE village_code = ANY($1)",
        "UPDATE networks SET created_at = $2 WHERE id IN
            (SELECT network_id FROM network_villages WHERE village_code = ANY($1))",
        "UPDATE memberships SET created_at = $2 WHERE village_code = ANY($1)",
        "UPDATE users SET created_at = $2 WHERE id IN
            (SELECT user_id FROM memberships WHERE village_code = ANY($1))",
        "UPDATE bumdes SET created_at = $2 WHERE village_code = ANY($1)",
        "UPDATE bumdes_units SET created_at = $2 WHERE village_code = ANY($1)",
        "UPDATE shops SET created_at = $2 WHERE village_code = ANY($1)",
        "UPDATE shop_operators SET added_at = $2 WHERE shop_id IN
            (SELECT id FROM shops WHERE village_code = ANY($1))",
        "UPDATE products SET created_at = $2 WHERE village_code = ANY($1)",
        "UPDATE accounts SET created_at = $2 WHERE village_code = ANY($1) OR village_code IS NULL",
    ] {
        diesel::sql_query(sql)
            .bind::<Array<Text>, _>(&codes)
            .bind::<Timestamptz, _>(when)
            .execute(conn)?;
    }
    Ok(())
}

/// The two BLT Dana Desa programmes, their accounts and their recipients' aid balances.
fn create_programmes(
    conn: &mut PgConnection,
    w: &World,
    p: &Params,
    rng: &mut StdRng,
    limit: Micros,
) -> anyhow::Result<Vec<Programme>> {
    let today = wib_date(limit);
    let first_of = |months_back: u32| {
        today
            .with_day(1)
            .expect("a first day")
            .checked_sub_months(chrono::Months::new(months_back))
            .expect("a date")
    };
    // Panggungharjo: eight months ago, over; Guwosari: since last month, running.
    let specs = [
        (
            0usize,
            false,
            first_of(8),
            "BLT Dana Desa Panggungharjo Tahap II",
        ),
        (1usize, true, first_of(1), "BLT Dana Desa Guwosari Tahap IV"),
    ];
    let mut out = Vec::new();
    for (vi, network, starts_on, name) in specs {
        let Some(v) = w.villages.get(vi) else {
            continue;
        };
        let ends_on = starts_on
            .checked_add_months(chrono::Months::new(AID_MONTHS))
            .expect("a date")
            - Duration::days(1);
        if starts_on < wib_date(limit - p.days * DAY) {
            continue; // a shorter history than the programme
        }
        let created = at(starts_on - Duration::days(7), 10, 0, 0);
        let closes = at(ends_on + Duration::days(1), 0, 15, 0) < limit;
        let id = id_once(rng, created);
        diesel::insert_into(aid_programmes::table)
            .values((
                aid_programmes::id.eq(id),
                aid_programmes::village_code.eq(&v.code),
                aid_programmes::name.eq(name),
                aid_programmes::kind.eq("blt_dana_desa"),
                aid_programmes::scope.eq(if network { "network" } else { "village" }),
                aid_programmes::network_id.eq(network.then_some(w.network_id)),
                aid_programmes::starts_on.eq(starts_on),
                aid_programmes::ends_on.eq(ends_on),
                aid_programmes::created_by.eq(v.admin),
                aid_programmes::created_at.eq(ts(created)),
                aid_programmes::closed_at
                    .eq(closes.then(|| ts(at(ends_on + Duration::days(1), 0, 15, 0)))),
            ))
            .execute(conn)?;
        let account: Uuid = diesel::update(
            accounts::table
                .filter(accounts::kind.eq("aid_programme"))
                .filter(accounts::programme_id.eq(id)),
        )
        .set(accounts::created_at.eq(ts(created)))
        .returning(accounts::id)
        .get_result(conn)?;
        // Residents who operate no shop, never the documented demo accounts.
        let recipients: Vec<usize> = v
            .people
            .iter()
            .copied()
            .filter(|pi| !w.people[*pi].demo && w.people[*pi].operates.is_empty())
            .take(p.aid_recipients)
            .collect();
        let mut rows = Vec::new();
        let mut balances = Vec::new();
        for pi in recipients {
            let acct = id_once(rng, created);
            rows.push((
                accounts::id.eq(acct),
                accounts::kind.eq("aid_balance"),
                accounts::village_code.eq(Some(v.code.clone())),
                accounts::user_id.eq(Some(w.people[pi].user)),
                accounts::programme_id.eq(Some(id)),
                accounts::created_at.eq(ts(created)),
            ));
            balances.push((pi, acct));
        }
        diesel::insert_into(accounts::table)
            .values(&rows)
            .execute(conn)?;
        out.push(Programme {
            id,
            village: vi,
            network,
            account,
            starts_on,
            ends_on,
            recipients: balances,
            closes,
        });
    }
    Ok(out)
}

/// Most bind parameters of one statement (PostgreSQL allows 65,535).
const MAX_BINDS: usize = 60_000;
/// Ledger transactions per database transaction: measured on a year of history, 500 took
/// 16 s, 2,500 took 22 s and 20,000 took 63 s (every update of a hot account within one
/// transaction walks the versions the transaction made before).
const LEDGER_SLICE: usize = 500;

fn write(conn: &mut PgConnection, sim: &mut Sim) -> anyhow::Result<()> {
    let total = sim.orders.len()
        + sim.lines.len()
        + sim.order_events.len()
        + sim.order_aid.len()
        + sim.adjustments.len()
        + sim.txs.len()
        + sim.postings.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("writing  {bar:40} {pos}/{len} rows {msg}")
            .expect("a template"),
    );
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        bar.set_message("orders");
        for c in sim.orders.chunks(MAX_BINDS / 25) {
            diesel::insert_into(orders::table).values(c).execute(conn)?;
            bar.inc(c.len() as u64);
        }
        bar.set_message("lines");
        for c in sim.lines.chunks(MAX_BINDS / 8) {
            diesel::insert_into(order_lines::table)
                .values(c)
                .execute(conn)?;
            bar.inc(c.len() as u64);
        }
        bar.set_message("events");
        for c in sim.order_events.chunks(MAX_BINDS / 8) {
            diesel::insert_into(order_events::table)
                .values(c)
                .execute(conn)?;
            bar.inc(c.len() as u64);
        }
        for c in sim.order_aid.chunks(MAX_BINDS / 4) {
            diesel::insert_into(order_aid::table)
                .values(c)
                .execute(conn)?;
            bar.inc(c.len() as u64);
        }
        for c in sim.adjustments.chunks(MAX_BINDS / 7) {
            diesel::insert_into(stock_adjustments::table)
                .values(c)
                .execute(conn)?;
            bar.inc(c.len() as u64);
        }
        Ok(())
    })?;
    bar.set_message("ledger");
    let mut from_tx = 0;
    let mut from_posting = 0;
    while from_tx < sim.txs.len() {
        let to_tx = (from_tx + LEDGER_SLICE).min(sim.txs.len());
        let to_posting = sim.tx_ends[to_tx - 1];
        conn.transaction::<_, anyhow::Error, _>(|conn| {
            // A seed: losing the last slices in a crash is fine, waiting for a flush per slice
            // is not.
            diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
            for c in sim.txs[from_tx..to_tx].chunks(MAX_BINDS / 6) {
                diesel::insert_into(ledger_transactions::table)
                    .values(c)
                    .execute(conn)?;
                bar.inc(c.len() as u64);
            }
            // In the order the money moved: the database numbers each account's postings in
            // insertion order and checks the balance at every one.
            for c in sim.postings[from_posting..to_posting].chunks(MAX_BINDS / 5) {
                diesel::insert_into(postings::table)
                    .values(c)
                    .execute(conn)?;
                bar.inc(c.len() as u64);
            }
            Ok(())
        })?;
        from_tx = to_tx;
        from_posting = to_posting;
    }
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasaran_and_seasons() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert_eq!(pasaran(d(1945, 8, 17)), 0, "Jumat Legi");
        assert_eq!(pasaran(d(1945, 8, 22)), 0, "five days later, Legi again");
        assert_eq!(pasaran(d(1945, 8, 18)), 1, "Pahing");
        // The last ten days of Ramadan are the year's peak; Lebaran itself is quiet.
        assert!(season(d(2026, 3, 15)) > 1.9);
        assert!(season(d(2026, 3, 20)) < 0.6);
        assert!((season(d(2026, 6, 10)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn ids_follow_the_clock_even_within_a_millisecond() {
        let mut ids = Ids {
            rng: StdRng::seed_from_u64(1),
            last_ms: 0,
            counter: 0,
        };
        let t = at(
            NaiveDate::from_ymd_opt(2026, 5, 1).expect("a date"),
            8,
            0,
            0,
        );
        let mut last = Uuid::nil();
        for k in 0..10_000 {
            let id = ids.at(t + (k / 3000) * 1000);
            assert!(id > last);
            assert_eq!(id.get_version_num(), 7);
            last = id;
        }
        let (secs, _) = last.get_timestamp().expect("v7").to_unix();
        assert_eq!(secs as i64, t / 1_000_000);
    }
}
