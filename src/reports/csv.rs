//! Reports as CSV: one flat "long" table per report, so a spreadsheet can pivot it.
//!
//! Columns, always these, in this order: `period` (`total`, or `bucket` for a circulation time
//! bucket), `bucket_start`, `bucket_end` (WIB dates), `section`, `key`, `label`, `count`,
//! `value_idr`, `ratio`. Empty cells are absent values. Sections:
//!
//! - dashboard: `sales` (count = completed orders, value = GMV), `orders_by_status` (key =
//!   status, count = orders placed), `top_product` (key = product id, label = name, count =
//!   quantity, value = revenue), `top_buying_village` and `purchases_by_seller_village` (key =
//!   village code, label = name, count = orders, value = amount), `purchases` (totals),
//!   `active_shops` (count), `pades_revenue` (value), `wallets` (key = `user_wallet`,
//!   `shop_wallet` or `total`, count = wallets, value = balances), `aid_disbursed`, `aid_spent`
//!   (value), `aid_spent_by_village` (key = village), `aid_spent_by_shop` (key = shop id, label =
//!   name).
//! - circulation, for the period and each bucket: `spend` (count = orders, value = all spend),
//!   `spend_by_distance` (key = `same_village`, `network`, `district`, `regency`, `province`,
//!   `elsewhere`), `local_spend`, `local_share` (ratio), `flow` (key = buyer village, label =
//!   seller village or `outside`, count = orders, value = amount), `inflow` and `leakage` (key =
//!   the component or `total`), `local_multiplier` (ratio), `lm3` (key = `round1`, `round2`,
//!   `round3` with value; key `lm3` with ratio).

use chrono::NaiveDate;
use serde::Serialize;

use super::circulation::{Circulation, Figures};
use super::dashboard::Dashboard;
use crate::http::error::{Error, Result};

/// One CSV row (the header is these field names).
#[derive(Debug, Serialize)]
pub struct Row {
    pub period: &'static str,
    pub bucket_start: NaiveDate,
    pub bucket_end: NaiveDate,
    pub section: &'static str,
    pub key: String,
    pub label: String,
    pub count: Option<i64>,
    pub value_idr: Option<i64>,
    pub ratio: Option<f64>,
}

struct Rows {
    period: &'static str,
    start: NaiveDate,
    end: NaiveDate,
    out: Vec<Row>,
}

impl Rows {
    fn push(
        &mut self,
        section: &'static str,
        key: impl Into<String>,
        label: impl Into<String>,
        count: Option<i64>,
        value_idr: Option<i64>,
        ratio: Option<f64>,
    ) {
        self.out.push(Row {
            period: self.period,
            bucket_start: self.start,
            bucket_end: self.end,
            section,
            key: key.into(),
            label: label.into(),
            count,
            value_idr,
            ratio,
        });
    }
}

fn write(rows: &[Row]) -> Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::Internal(e.into()))?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))
}

pub fn dashboard(d: &Dashboard) -> Result<Vec<u8>> {
    let mut r = Rows {
        period: "total",
        start: d.from,
        end: d.to,
        out: Vec::new(),
    };
    let s = &d.sales;
    r.push(
        "sales",
        "",
        "",
        Some(s.completed_orders),
        Some(s.gmv_idr),
        None,
    );
    for c in &s.orders_by_status {
        r.push(
            "orders_by_status",
            c.status.as_str(),
            "",
            Some(c.orders),
            None,
            None,
        );
    }
    for p in &s.top_products {
        r.push(
            "top_product",
            p.product_id.to_string(),
            p.name.clone(),
            Some(p.quantity),
            Some(p.revenue_idr),
            None,
        );
    }
    let villages = |r: &mut Rows, section, list: &[super::dashboard::VillageAmount]| {
        for v in list {
            r.push(
                section,
                v.village_code.clone(),
                v.village_name.clone().unwrap_or_default(),
                Some(v.orders),
                Some(v.amount_idr),
                None,
            );
        }
    };
    villages(&mut r, "top_buying_village", &s.top_buying_villages);
    r.push(
        "purchases",
        "",
        "",
        Some(d.purchases.orders),
        Some(d.purchases.total_idr),
        None,
    );
    villages(
        &mut r,
        "purchases_by_seller_village",
        &d.purchases.by_seller_village,
    );
    r.push("active_shops", "", "", Some(d.active_shops), None, None);
    r.push(
        "pades_revenue",
        "",
        "",
        None,
        Some(d.pades_revenue_idr),
        None,
    );
    let w = &d.wallets;
    r.push(
        "wallets",
        "user_wallet",
        "",
        Some(w.user_wallets),
        Some(w.user_wallets_idr),
        None,
    );
    r.push(
        "wallets",
        "shop_wallet",
        "",
        Some(w.shop_wallets),
        Some(w.shop_wallets_idr),
        None,
    );
    r.push(
        "wallets",
        "total",
        "",
        Some(w.user_wallets + w.shop_wallets),
        Some(w.total_idr),
        None,
    );
    r.push(
        "aid_disbursed",
        "",
        "",
        None,
        Some(d.aid.disbursed_idr),
        None,
    );
    r.push("aid_spent", "", "", None, Some(d.aid.spent_idr), None);
    for v in &d.aid.spent_by_seller_village {
        r.push(
            "aid_spent_by_village",
            v.village_code.clone(),
            v.village_name.clone().unwrap_or_default(),
            None,
            Some(v.amount_idr),
            None,
        );
    }
    for s in &d.aid.spent_by_shop {
        r.push(
            "aid_spent_by_shop",
            s.shop_id.to_string(),
            s.shop_name.clone(),
            None,
            Some(s.amount_idr),
            None,
        );
    }
    write(&r.out)
}

fn figures(r: &mut Rows, f: &Figures) {
    r.push("spend", "", "", Some(f.orders), Some(f.spend_idr), None);
    let d = &f.spend_by_distance;
    for (k, v) in [
        ("same_village", d.same_village_idr),
        ("network", d.network_idr),
        ("district", d.district_idr),
        ("regency", d.regency_idr),
        ("province", d.province_idr),
        ("elsewhere", d.elsewhere_idr),
    ] {
        r.push("spend_by_distance", k, "", None, Some(v), None);
    }
    r.push("local_spend", "", "", None, Some(f.local_spend_idr), None);
    r.push("local_share", "", "", None, None, f.local_share);
    for fl in &f.flows {
        r.push(
            "flow",
            fl.from_village.clone(),
            fl.to_village.clone(),
            Some(fl.orders),
            Some(fl.amount_idr),
            None,
        );
    }
    let i = &f.inflow;
    for (k, v) in [
        ("topups", i.topups_idr),
        ("aid_funding", i.aid_funding_idr),
        ("sales_to_outside", i.sales_to_outside_idr),
        ("total", i.total_idr),
    ] {
        r.push("inflow", k, "", None, Some(v), None);
    }
    let l = &f.leakage;
    for (k, v) in [
        ("withdrawals", l.withdrawals_idr),
        ("spend_outside", l.spend_outside_idr),
        ("total", l.total_idr),
    ] {
        r.push("leakage", k, "", None, Some(v), None);
    }
    r.push("local_multiplier", "", "", None, None, f.local_multiplier);
    for (k, v) in [
        ("round1", f.lm3.round1_idr),
        ("round2", f.lm3.round2_idr),
        ("round3", f.lm3.round3_idr),
    ] {
        r.push("lm3", k, "", None, Some(v), None);
    }
    r.push("lm3", "lm3", "", None, None, f.lm3.lm3);
}

pub fn circulation(c: &Circulation) -> Result<Vec<u8>> {
    let mut r = Rows {
        period: "total",
        start: c.from,
        end: c.to,
        out: Vec::new(),
    };
    figures(&mut r, &c.totals);
    for b in &c.buckets {
        r.period = "bucket";
        r.start = b.start;
        r.end = b.end;
        figures(&mut r, &b.figures);
    }
    write(&r.out)
}
