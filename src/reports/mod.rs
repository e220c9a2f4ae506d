//! Reports: the village dashboard, a network's local circulation (with LM3), and an aid
//! programme's LM3.
//!
//! Reports read daily rollups (migration `2026-12-01-000006_reports`) that a trigger on
//! `postings` keeps in the same transaction as each ledger change, so a year over millions of
//! orders is a scan of a few thousand rollup rows. Days are WIB (Asia/Jakarta, UTC+7, no
//! daylight saving) dates of the ledger rows' own timestamps; a period is inclusive.

pub mod circulation;
pub mod csv;
pub mod dashboard;
pub mod lm3;
pub mod routes;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::http::error::{Error, FieldError, Result};
pub use lm3::Lm3;

/// Longest period a report covers (three years).
pub const MAX_DAYS: i64 = 366 * 3;
/// Days of the default period, ending today.
pub const DEFAULT_DAYS: i64 = 30;

pub use crate::aid::today;
use crate::aid::wib;

/// The first instant of a WIB day.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(wib())
        .single()
        .expect("a fixed offset has one midnight")
        .with_timezone(&Utc)
}

/// An inclusive range of WIB days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// From the query's `from` and `to` (`YYYY-MM-DD`): by default the 30 days ending today
    /// (or ending `to`, or starting `from`); `to >= from`, at most [`MAX_DAYS`] days.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: NaiveDate) -> Result<Period> {
        let mut errors = Vec::new();
        let mut date = |field: &str, v: Option<&str>| {
            v.and_then(|s| match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) if s.len() == 10 => Some(d),
                _ => {
                    errors.push(FieldError::new(field, "a date YYYY-MM-DD"));
                    None
                }
            })
        };
        let f = date("from", from);
        let t = date("to", to);
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let span = Duration::days(DEFAULT_DAYS - 1);
        let (from, to) = match (f, t) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, f + span),
            (None, Some(t)) => (t - span, t),
            (None, None) => (today - span, today),
        };
        if to < from {
            return Err(Error::field("to", "must not be before from"));
        }
        if (to - from).num_days() + 1 > MAX_DAYS {
            return Err(Error::field(
                "to",
                format!("a report covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(Period { from, to })
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }
}

crate::text_enum! {
    /// Width of a circulation bucket (WIB days; weeks start on Monday).
    pub enum Granularity {
        Day = "day",
        Week = "week",
        Month = "month",
    }
}

impl Granularity {
    /// The first day of the bucket holding `d`.
    pub fn bucket_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => d,
            Granularity::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Granularity::Month => d.with_day(1).expect("day 1 exists"),
        }
    }

    /// The first day of the bucket after the one starting at `start`.
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => start + Duration::days(1),
            Granularity::Week => start + Duration::days(7),
            Granularity::Month => start
                .checked_add_months(chrono::Months::new(1))
                .expect("dates stay in range"),
        }
    }

    /// The buckets covering `p`: (key = bucket's first day, start, end) with start and end
    /// clipped to the period.
    pub fn buckets(self, p: Period) -> Vec<(NaiveDate, NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        let mut key = self.bucket_of(p.from);
        while key <= p.to {
            let next = self.next(key);
            out.push((key, key.max(p.from), (next - Duration::days(1)).min(p.to)));
            key = next;
        }
        out
    }
}

crate::text_enum! {
    /// How a report is returned (`?format=`; `Accept: text/csv` also selects CSV).
    pub enum Format {
        Json = "json",
        Csv = "csv",
    }
}

/// The villages of a network, or 404.
pub fn network_villages(conn: &mut PgConnection, network: Uuid) -> Result<Vec<String>> {
    use crate::db::schema::{network_villages, networks};
    let exists: bool =
        diesel::select(diesel::dsl::exists(networks::table.find(network))).get_result(conn)?;
    if !exists {
        return Err(Error::NotFound);
    }
    Ok(network_villages::table
        .filter(network_villages::network_id.eq(network))
        .select(network_villages::village_code)
        .order(network_villages::village_code)
        .load(conn)?)
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct ProgrammeRow {
    #[diesel(sql_type = Array<Text>)]
    area: Vec<String>,
    #[diesel(sql_type = Date)]
    starts_on: NaiveDate,
    #[diesel(sql_type = Date)]
    ends_on: NaiveDate,
}

#[derive(QueryableByName)]
struct AidSale {
    #[diesel(sql_type = SqlUuid)]
    shop_id: Uuid,
    #[diesel(sql_type = BigInt)]
    amount_idr: i64,
    #[diesel(sql_type = BigInt)]
    total_idr: i64,
    #[diesel(sql_type = BigInt)]
    net_idr: i64,
}

#[derive(QueryableByName)]
struct HolderRow {
    #[diesel(sql_type = SqlUuid)]
    holder_id: Uuid,
    #[diesel(sql_type = BigInt)]
    inflow_idr: i64,
}

#[derive(QueryableByName)]
struct SpendRow {
    #[diesel(sql_type = SqlUuid)]
    buyer_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    shop_id: Uuid,
    #[diesel(sql_type = BigInt)]
    spend_idr: i64,
    #[diesel(sql_type = BigInt)]
    net_idr: i64,
}

/// An aid programme as its village's admins and treasurers see it: the ledger figures of
/// [`crate::aid::Programme`] and its LM3 ([`programme_lm3`]).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProgrammeReport {
    #[serde(flatten)]
    pub programme: crate::aid::Programme,
    /// LM3 of the programme: (disbursed + aid spent in completed orders + what their sellers
    /// re-spent inside the area) ÷ disbursed; null before anything was disbursed. The rounds
    /// are in `lm3_rounds`.
    pub lm3: Option<f64>,
    pub lm3_rounds: Lm3,
}

/// One programme with its LM3, for those who may see the programme (else 404).
pub fn programme(
    conn: &mut PgConnection,
    caller: &crate::identity::tokens::Caller,
    id: Uuid,
) -> Result<ProgrammeReport> {
    let programme = crate::aid::get(conn, caller, id)?;
    let rounds = programme_lm3(conn, id)?;
    Ok(ProgrammeReport {
        programme,
        lm3: rounds.lm3,
        lm3_rounds: rounds,
    })
}

/// An aid programme's LM3. Round 1: everything the programme disbursed (`aid_disbursement`
/// debits of its account). Round 2: its aid spent in completed orders (`order_aid`, exact).
/// Round 3: what the sellers of round 2 re-spent in the programme's area (scope `village`: the
/// shops of its village; `network`: the shops of the villages of its network), pro rata as in
/// [`lm3`]: a seller's round-2 income is Σ aid × seller net ÷ order total over its orders, and
/// its flows (inflow, local spend) are those of the programme's period, `starts_on` through
/// the earlier of today and `ends_on` (WIB). 404 for an unknown programme; who may see it is
/// the caller's business.
pub fn programme_lm3(conn: &mut PgConnection, programme: Uuid) -> Result<Lm3> {
    let p: ProgrammeRow = diesel::sql_query(
        "SELECT p.starts_on, p.ends_on,
                CASE WHEN p.scope = 'network'
                     THEN ARRAY(SELECT village_code FROM network_villages WHERE network_id = p.network_id)
                     ELSE ARRAY[p.village_code] END AS area
           FROM aid_programmes p WHERE p.id = $1",
    )
    .bind::<SqlUuid, _>(programme)
    .get_results(conn)?
    .pop()
    .ok_or(Error::NotFound)?;
    let disbursed: Sum = diesel::sql_query(
        "SELECT COALESCE(-sum(p.amount_idr), 0)::bigint AS n
           FROM accounts a
           JOIN postings p ON p.account_id = a.id
           JOIN ledger_transactions t ON t.id = p.transaction_id
          WHERE a.kind = 'aid_programme' AND a.programme_id = $1 AND t.kind = 'aid_disbursement'",
    )
    .bind::<SqlUuid, _>(programme)
    .get_result(conn)?;
    let sales: Vec<AidSale> = diesel::sql_query(
        "SELECT o.shop_id, oa.amount_idr, o.total_idr,
                COALESCE((SELECT sum(p.amount_idr) FROM ledger_transactions t
                            JOIN postings p ON p.transaction_id = t.id
                            JOIN accounts a ON a.id = p.account_id
                           WHERE t.order_id = o.id AND t.kind = 'settlement'
                             AND a.kind = 'shop_wallet'), 0)::bigint AS net_idr
           FROM order_aid oa JOIN orders o ON o.id = oa.order_id
          WHERE oa.programme_id = $1 AND o.status = 'completed'",
    )
    .bind::<SqlUuid, _>(programme)
    .load(conn)?;
    let r1 = i128::from(disbursed.n) * lm3::SCALE;
    let r2: i128 = sales
        .iter()
        .map(|s| i128::from(s.amount_idr) * lm3::SCALE)
        .sum();
    let mut i2 = lm3::Incomes::new();
    for s in &sales {
        *i2.entry(s.shop_id).or_default() +=
            i128::from(s.amount_idr) * lm3::SCALE * i128::from(s.net_idr)
                / i128::from(s.total_idr.max(1));
    }
    let sellers: Vec<Uuid> = i2.keys().copied().collect();
    let to = p.ends_on.min(today());
    let holders: Vec<HolderRow> = diesel::sql_query(
        "SELECT holder_id,
                sum(topup_idr + aid_idr + settlement_idr + other_idr)::bigint AS inflow_idr
           FROM report_holder_daily
          WHERE holder_id = ANY($1) AND day BETWEEN $2 AND $3
          GROUP BY holder_id",
    )
    .bind::<Array<SqlUuid>, _>(&sellers)
    .bind::<Date, _>(p.starts_on)
    .bind::<Date, _>(to)
    .load(conn)?;
    let spends: Vec<SpendRow> = diesel::sql_query(
        "SELECT buyer_id, shop_id, sum(spend_idr)::bigint AS spend_idr, sum(net_idr)::bigint AS net_idr
           FROM report_spend_daily
          WHERE buyer_id = ANY($1) AND seller_village = ANY($2) AND day BETWEEN $3 AND $4
          GROUP BY buyer_id, shop_id",
    )
    .bind::<Array<SqlUuid>, _>(&sellers)
    .bind::<Array<Text>, _>(&p.area)
    .bind::<Date, _>(p.starts_on)
    .bind::<Date, _>(to)
    .load(conn)?;
    let economy = lm3::Economy::new(
        &holders
            .iter()
            .map(|h| lm3::Holder {
                id: h.holder_id,
                inflow_idr: h.inflow_idr,
            })
            .collect::<Vec<_>>(),
        &spends
            .iter()
            .map(|s| lm3::Spend {
                buyer: s.buyer_id,
                seller: s.shop_id,
                amount_idr: s.spend_idr,
                net_idr: s.net_idr,
            })
            .collect::<Vec<_>>(),
    );
    let (r3, _) = economy.respend(&i2);
    Ok(Lm3::from_rounds(r1, r2, r3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_default_to_thirty_days_and_refuse_nonsense() {
        let today = d("2026-12-10");
        let p = Period::parse(None, None, today).unwrap();
        assert_eq!((p.from, p.to, p.days()), (d("2026-11-11"), today, 30));
        assert!(Period::parse(Some("2026-12-10"), Some("2026-12-09"), today).is_err());
        assert!(Period::parse(Some("2026-13-01"), None, today).is_err());
        assert!(Period::parse(Some("2026-1-01"), None, today).is_err());
        assert!(Period::parse(Some("2020-01-01"), Some("2026-01-01"), today).is_err());
        assert_eq!(
            Period::parse(Some("2026-12-01"), Some("2026-12-01"), today)
                .unwrap()
                .days(),
            1
        );
    }

    #[test]
    fn buckets_are_clipped_weeks_start_on_monday() {
        let p = Period {
            from: d("2026-12-02"), // a Wednesday
            to: d("2026-12-15"),
        };
        let weeks = Granularity::Week.buckets(p);
        assert_eq!(
            weeks,
            vec![
                (d("2026-11-30"), d("2026-12-02"), d("2026-12-06")),
                (d("2026-12-07"), d("2026-12-07"), d("2026-12-13")),
                (d("2026-12-14"), d("2026-12-14"), d("2026-12-15")),
            ]
        );
        let months = Granularity::Month.buckets(Period {
            from: d("2026-01-31"),
            to: d("2026-03-01"),
        });
        assert_eq!(months.len(), 3);
        assert_eq!(
            months[1],
            (d("2026-02-01"), d("2026-02-01"), d("2026-02-28"))
        );
        assert_eq!(Granularity::Day.buckets(p).len(), 14);
    }

    #[test]
    fn wib_days_start_at_17_utc() {
        assert_eq!(
            day_start(d("2026-12-02")).to_rfc3339(),
            "2026-12-01T17:00:00+00:00"
        );
    }
}
