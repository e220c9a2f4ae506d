//! Aid programmes (bantuan, e.g. BLT Dana Desa): money a village pays its residents as a
//! balance spendable only at shops inside the programme's area, never as cash.
//!
//! It all lives in the one ledger. The treasurer funds a programme (village cash → programme
//! account) and disburses it to listed recipients (programme → each recipient's aid balance,
//! one `aid_balance` account per programme and recipient). At checkout the buyer's aid balances
//! pay first for every order from a shop inside their area (see [`allocate`]), the wallet pays
//! the rest; `order_aid` records which balance paid how much, so a refund returns each part to
//! where it came from. When the period is over (its last day, in WIB, has passed) the timers
//! return every unspent aid balance to the programme, once ([`close_due`]).
//!
//! Periods are calendar days in WIB (Asia/Jakarta, UTC+7), the zone most villages keep; a
//! village in WITA or WIT sees its programme open and close an hour or two early.

pub mod routes;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Text, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit;
use crate::db::schema::{accounts, aid_programmes, memberships};
use crate::http::error::{Error, FieldError, Result, text_field};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;
use crate::ledger::{self, AccountKind, Entry, MAX_MOVEMENT_IDR, NewMovement, TxKind};

/// Most recipients in one disbursement request.
pub const MAX_RECIPIENTS: usize = 1000;
/// Longest programme period (three years).
pub const MAX_PERIOD_DAYS: i64 = 3 * 366;

crate::text_enum! {
    /// What the programme is for.
    pub enum AidKind {
        /// Bantuan Langsung Tunai from the village fund (Dana Desa).
        BltDanaDesa = "blt_dana_desa",
        ProducerSubsidy = "producer_subsidy",
        SocialAssistance = "social_assistance",
        Other = "other",
    }
}

crate::text_enum! {
    /// Where the aid may be spent: the running village's shops, or the shops of every village
    /// of one of its networks.
    pub enum AidScope {
        Village = "village",
        Network = "network",
    }
}

crate::text_enum! {
    /// `upcoming` before the first day, `active` through the last day (spendable), `ended`
    /// after it until the timers returned the remainder, then `closed`.
    pub enum ProgrammeStatus {
        Upcoming = "upcoming",
        Active = "active",
        Ended = "ended",
        Closed = "closed",
    }
}

/// WIB (UTC+7): the zone of aid periods, report days and their timers.
pub fn wib() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("UTC+7 is a valid offset")
}

/// `now` as a calendar day in WIB.
pub fn wib_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&wib()).date_naive()
}

/// Today in WIB.
pub fn today() -> NaiveDate {
    wib_date(Utc::now())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = aid_programmes)]
pub struct ProgrammeRow {
    pub id: Uuid,
    pub village_code: String,
    pub name: String,
    pub kind: AidKind,
    pub scope: AidScope,
    pub network_id: Option<Uuid>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl ProgrammeStatus {
    fn of(closed: bool, starts_on: NaiveDate, ends_on: NaiveDate, today: NaiveDate) -> Self {
        if closed {
            ProgrammeStatus::Closed
        } else if today < starts_on {
            ProgrammeStatus::Upcoming
        } else if today <= ends_on {
            ProgrammeStatus::Active
        } else {
            ProgrammeStatus::Ended
        }
    }
}

impl ProgrammeRow {
    pub fn status(&self, today: NaiveDate) -> ProgrammeStatus {
        ProgrammeStatus::of(
            self.closed_at.is_some(),
            self.starts_on,
            self.ends_on,
            today,
        )
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgramme {
    /// 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    pub kind: AidKind,
    /// First day it may be spent (WIB).
    pub starts_on: NaiveDate,
    /// Last day it may be spent (WIB); not before `starts_on` nor before today, at most three
    /// years after `starts_on`.
    pub ends_on: NaiveDate,
    pub scope: AidScope,
    /// With scope `network`: one of the village's networks (may be left out when the village
    /// belongs to exactly one). Not allowed with scope `village`.
    pub network_id: Option<Uuid>,
}

/// A programme with its figures. Money figures are integer rupiah from the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct Programme {
    pub id: Uuid,
    pub village_code: String,
    pub name: String,
    pub kind: AidKind,
    pub scope: AidScope,
    pub network_id: Option<Uuid>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub status: ProgrammeStatus,
    /// The programme's ledger account (what is not yet disbursed, and what returned).
    pub account_id: Uuid,
    /// Cash put in by the treasurer.
    pub funded_idr: i64,
    /// Paid into recipients' aid balances.
    pub disbursed_idr: i64,
    /// Aid paid into orders, less what refunds gave back.
    pub spent_idr: i64,
    /// Unspent aid that went back to the programme when it closed (and aid refunded after).
    pub returned_idr: i64,
    /// What the programme account holds now.
    pub balance_idr: i64,
    /// What recipients hold now, still spendable while the programme is active.
    pub outstanding_idr: i64,
    /// Recipients who received anything.
    pub recipients: i64,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// A member of the programme's village.
    pub user_id: Uuid,
    /// 1..=1,000,000,000 rupiah.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount_idr: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDisbursement {
    /// 1–1000 recipients, each at most once.
    #[schema(min_items = 1, max_items = 1000)]
    pub recipients: Vec<Recipient>,
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

/// A funding or disbursement as booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Booked {
    pub transaction_id: Uuid,
    pub kind: TxKind,
    pub programme_id: Uuid,
    pub amount_idr: i64,
    /// The programme account's balance right after.
    pub balance_idr: i64,
    /// Disbursements: how many recipients were paid.
    pub recipients: usize,
}

/// One recipient's aid in one programme.
#[derive(Debug, Queryable, Serialize, ToSchema)]
pub struct RecipientBalance {
    pub user_id: Uuid,
    pub name: String,
    /// The aid balance account.
    pub account_id: Uuid,
    /// Everything disbursed to them.
    pub received_idr: i64,
    /// What they hold now.
    pub balance_idr: i64,
}

/// One of the caller's aid balances.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyAid {
    pub programme_id: Uuid,
    pub name: String,
    pub village_code: String,
    pub scope: AidScope,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub status: ProgrammeStatus,
    pub account_id: Uuid,
    pub balance_idr: i64,
    /// The villages whose shops accept it.
    pub area: Vec<String>,
}

fn load_row(conn: &mut PgConnection, id: Uuid) -> Result<ProgrammeRow> {
    Ok(aid_programmes::table
        .find(id)
        .select(ProgrammeRow::as_select())
        .first(conn)?)
}

/// The programme account.
fn programme_account(conn: &mut PgConnection, id: Uuid) -> Result<Uuid> {
    Ok(accounts::table
        .filter(accounts::kind.eq(AccountKind::AidProgramme))
        .filter(accounts::programme_id.eq(id))
        .select(accounts::id)
        .first(conn)?)
}

/// Who may see a programme: its village's admins and treasurers, and platform admins. Everyone
/// else gets 404. Decided here only.
fn visible(now: &authz::Current, row: &ProgrammeRow) -> bool {
    now.is_platform_admin()
        || now.is_village_admin(&row.village_code)
        || now.is_treasurer_of(&row.village_code)
}

fn validate_new(p: &NewProgramme, today: NaiveDate) -> Result<String> {
    let mut errors = Vec::new();
    let name = text_field("name", &p.name, 1, 200, &mut errors);
    if p.ends_on < p.starts_on {
        errors.push(FieldError::new("ends_on", "not before starts_on"));
    } else if p.ends_on < today {
        errors.push(FieldError::new("ends_on", "not in the past"));
    } else if (p.ends_on - p.starts_on).num_days() > MAX_PERIOD_DAYS {
        errors.push(FieldError::new(
            "ends_on",
            "at most three years after starts_on",
        ));
    }
    if p.scope == AidScope::Village && p.network_id.is_some() {
        errors.push(FieldError::new("network_id", "only with scope network"));
    }
    if errors.is_empty() {
        Ok(name)
    } else {
        Err(Error::Validation(errors))
    }
}

/// A village admin starts a programme for their village.
pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    p: &NewProgramme,
) -> Result<Programme> {
    let name = validate_new(p, today())?;
    conn.transaction(|conn| {
        let now = authz::current(conn, caller)?;
        if !now.is_village_admin(village) {
            return Err(if now.is_member_of(village) || now.is_platform_admin() {
                Error::Forbidden("only the village's admins start aid programmes".into())
            } else {
                Error::NotFound
            });
        }
        let network_id = match p.scope {
            AidScope::Village => None,
            AidScope::Network => {
                let mine = crate::villages::network_ids_of(conn, village)?;
                match p.network_id {
                    Some(n) if mine.contains(&n) => Some(n),
                    Some(_) => {
                        return Err(Error::field("network_id", "not a network of this village"));
                    }
                    None if mine.len() == 1 => Some(mine[0]),
                    None if mine.is_empty() => {
                        return Err(Error::field("scope", "the village belongs to no network"));
                    }
                    None => {
                        return Err(Error::field(
                            "network_id",
                            "required: the village belongs to several networks",
                        ));
                    }
                }
            }
        };
        let id = Uuid::now_v7();
        diesel::insert_into(aid_programmes::table)
            .values((
                aid_programmes::id.eq(id),
                aid_programmes::village_code.eq(village),
                aid_programmes::name.eq(&name),
                aid_programmes::kind.eq(p.kind),
                aid_programmes::scope.eq(p.scope),
                aid_programmes::network_id.eq(network_id),
                aid_programmes::starts_on.eq(p.starts_on),
                aid_programmes::ends_on.eq(p.ends_on),
                aid_programmes::created_by.eq(caller.user_id),
            ))
            .execute(conn)?;
        let row = load_row(conn, id)?;
        let programme = summary(conn, row)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(village),
                action: "aid.create",
                entity_type: "aid_programme",
                entity_id: id.to_string(),
                before: None,
                after: audit::snapshot(&programme),
            },
        )?;
        Ok(programme)
    })
}

#[derive(QueryableByName)]
struct Figures {
    #[diesel(sql_type = BigInt)]
    funded: i64,
    #[diesel(sql_type = BigInt)]
    disbursed: i64,
    #[diesel(sql_type = BigInt)]
    returned: i64,
    #[diesel(sql_type = BigInt)]
    balance: i64,
    #[diesel(sql_type = BigInt)]
    outstanding: i64,
    #[diesel(sql_type = BigInt)]
    recipients: i64,
    #[diesel(sql_type = BigInt)]
    spent: i64,
    #[diesel(sql_type = SqlUuid)]
    account_id: Uuid,
}

/// A programme's figures, from its ledger accounts and the orders it paid for.
fn summary(conn: &mut PgConnection, row: ProgrammeRow) -> Result<Programme> {
    let f: Figures = diesel::sql_query(
        "WITH pa AS (SELECT id, balance_idr FROM accounts WHERE kind = 'aid_programme' AND programme_id = $1),
              moves AS (
                SELECT t.kind, sum(p.amount_idr) AS amount
                  FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id
                 WHERE p.account_id = (SELECT id FROM pa)
                 GROUP BY t.kind)
         SELECT COALESCE((SELECT amount FROM moves WHERE kind = 'aid_funding'), 0)::bigint AS funded,
                COALESCE(-(SELECT amount FROM moves WHERE kind = 'aid_disbursement'), 0)::bigint AS disbursed,
                COALESCE((SELECT sum(amount) FROM moves WHERE kind IN ('aid_return', 'refund')), 0)::bigint AS returned,
                (SELECT balance_idr FROM pa) AS balance,
                COALESCE((SELECT sum(balance_idr) FROM accounts
                           WHERE kind = 'aid_balance' AND programme_id = $1), 0)::bigint AS outstanding,
                (SELECT count(*) FROM accounts WHERE kind = 'aid_balance' AND programme_id = $1) AS recipients,
                COALESCE((SELECT sum(oa.amount_idr) FROM order_aid oa JOIN orders o ON o.id = oa.order_id
                           WHERE oa.programme_id = $1
                             AND o.status NOT IN ('rejected', 'cancelled', 'expired', 'refunded')), 0)::bigint AS spent,
                (SELECT id FROM pa) AS account_id",
    )
    .bind::<SqlUuid, _>(row.id)
    .get_result(conn)?;
    Ok(Programme {
        status: row.status(today()),
        id: row.id,
        village_code: row.village_code,
        name: row.name,
        kind: row.kind,
        scope: row.scope,
        network_id: row.network_id,
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        account_id: f.account_id,
        funded_idr: f.funded,
        disbursed_idr: f.disbursed,
        spent_idr: f.spent,
        returned_idr: f.returned,
        balance_idr: f.balance,
        outstanding_idr: f.outstanding,
        recipients: f.recipients,
        created_at: row.created_at,
        closed_at: row.closed_at,
    })
}

/// One programme, for its village's admins and treasurers and platform admins (else 404).
pub fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Programme> {
    let row = load_row(conn, id)?;
    if !visible(&authz::current(conn, caller)?, &row) {
        return Err(Error::NotFound);
    }
    summary(conn, row)
}

/// A village's programmes, newest first.
pub fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    limit: i64,
    before: Option<Uuid>,
) -> Result<Page<Programme>> {
    let now = authz::current(conn, caller)?;
    if !(now.is_platform_admin() || now.is_village_admin(village) || now.is_treasurer_of(village)) {
        return Err(Error::NotFound);
    }
    let mut q = aid_programmes::table
        .filter(aid_programmes::village_code.eq(village))
        .select(ProgrammeRow::as_select())
        .order(aid_programmes::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(aid_programmes::id.lt(b));
    }
    let rows: Vec<ProgrammeRow> = q.load(conn)?;
    let has_more = rows.len() as i64 > limit;
    let mut items = Vec::new();
    for row in rows.into_iter().take(limit as usize) {
        items.push(summary(conn, row)?);
    }
    let last = items.last().map(|p| p.id);
    Ok(Page {
        items,
        next_cursor: if has_more {
            last.map(|id| crate::http::pagination::encode_cursor(&id))
        } else {
            None
        },
    })
}

/// Locks the programme for a treasurer's money move and checks it is still open.
fn lock_for_treasurer(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<ProgrammeRow> {
    let row: ProgrammeRow = aid_programmes::table
        .find(id)
        .select(ProgrammeRow::as_select())
        .for_update()
        .first(conn)?;
    let now = authz::current(conn, caller)?;
    if !visible(&now, &row) {
        return Err(Error::NotFound);
    }
    if !now.is_treasurer_of(&row.village_code) {
        return Err(Error::Forbidden(
            "only a treasurer of the programme's village moves its money".into(),
        ));
    }
    match row.status(today()) {
        ProgrammeStatus::Upcoming | ProgrammeStatus::Active => Ok(row),
        _ => Err(Error::conflict("the programme's period is over")),
    }
}

/// The treasurer puts village cash into the programme (cash → programme).
pub fn fund(conn: &mut PgConnection, caller: &Caller, id: Uuid, m: &NewMovement) -> Result<Booked> {
    let note = ledger::validate_movement(m)?;
    conn.transaction(|conn| {
        let row = lock_for_treasurer(conn, caller, id)?;
        let cash = ledger::village_account(conn, AccountKind::Cash, &row.village_code)?;
        let account = programme_account(conn, id)?;
        let tx = ledger::post(
            conn,
            &[Entry {
                kind: TxKind::AidFunding,
                order_id: None,
                actor: Some(caller.user_id),
                note,
                postings: vec![(cash, -m.amount_idr), (account, m.amount_idr)],
            }],
        )?[0];
        let booked = Booked {
            transaction_id: tx,
            kind: TxKind::AidFunding,
            programme_id: id,
            amount_idr: m.amount_idr,
            balance_idr: ledger::account(conn, account)?.balance_idr,
            recipients: 0,
        };
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&row.village_code),
                action: "aid.fund",
                entity_type: "aid_programme",
                entity_id: id.to_string(),
                before: None,
                after: audit::snapshot(&booked),
            },
        )?;
        Ok(booked)
    })
}

fn validate_disbursement(d: &NewDisbursement) -> Result<Option<String>> {
    let mut errors = Vec::new();
    if d.recipients.is_empty() || d.recipients.len() > MAX_RECIPIENTS {
        errors.push(FieldError::new(
            "recipients",
            format!("1 to {MAX_RECIPIENTS} recipients"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in d.recipients.iter().enumerate() {
        if !(1..=MAX_MOVEMENT_IDR).contains(&r.amount_idr) {
            errors.push(FieldError::new(
                format!("recipients[{i}].amount_idr"),
                format!("1 to {MAX_MOVEMENT_IDR} rupiah"),
            ));
        }
        if !seen.insert(r.user_id) {
            errors.push(FieldError::new(
                format!("recipients[{i}].user_id"),
                "listed twice",
            ));
        }
    }
    let note = d
        .note
        .as_deref()
        .map(|n| text_field("note", n, 0, 500, &mut errors));
    if errors.is_empty() {
        Ok(note)
    } else {
        Err(Error::Validation(errors))
    }
}

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The treasurer pays recipients (members of the programme's village) from the programme, in
/// one ledger transaction: 409 `insufficient-funds` when it holds less than the total.
pub fn disburse(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    d: &NewDisbursement,
) -> Result<Booked> {
    let note = validate_disbursement(d)?;
    conn.transaction(|conn| {
        let row = lock_for_treasurer(conn, caller, id)?;
        let users: Vec<Uuid> = d.recipients.iter().map(|r| r.user_id).collect();
        let members: Vec<Uuid> = memberships::table
            .filter(memberships::village_code.eq(&row.village_code))
            .filter(memberships::user_id.eq_any(&users))
            .select(memberships::user_id)
            .load(conn)?;
        let strangers: Vec<FieldError> = d
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, r)| !members.contains(&r.user_id))
            .map(|(i, _)| {
                FieldError::new(
                    format!("recipients[{i}].user_id"),
                    "not a member of the programme's village",
                )
            })
            .collect();
        if !strangers.is_empty() {
            return Err(Error::Validation(strangers));
        }
        // Aid balances come to be with the first disbursement to each recipient.
        let held: Vec<AccountRow> = diesel::sql_query(
            "WITH new AS (
                 INSERT INTO accounts (kind, village_code, user_id, programme_id)
                 SELECT 'aid_balance', $2, u, $1 FROM unnest($3::uuid[]) AS u
                 ON CONFLICT (programme_id, user_id) WHERE kind = 'aid_balance' DO NOTHING
                 RETURNING user_id, id)
             SELECT user_id, id FROM new
             UNION ALL
             SELECT user_id, id FROM accounts
              WHERE kind = 'aid_balance' AND programme_id = $1 AND user_id = ANY($3)",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(&row.village_code)
        .bind::<Array<SqlUuid>, _>(&users)
        .load(conn)?;
        let account_of: BTreeMap<Uuid, Uuid> =
            held.into_iter().map(|a| (a.user_id, a.id)).collect();
        let programme = programme_account(conn, id)?;
        let total: i64 = d.recipients.iter().map(|r| r.amount_idr).sum();
        let mut lines = vec![(programme, -total)];
        for r in &d.recipients {
            lines.push((account_of[&r.user_id], r.amount_idr));
        }
        let tx = ledger::post(
            conn,
            &[Entry {
                kind: TxKind::AidDisbursement,
                order_id: None,
                actor: Some(caller.user_id),
                note,
                postings: lines,
            }],
        )?[0];
        let booked = Booked {
            transaction_id: tx,
            kind: TxKind::AidDisbursement,
            programme_id: id,
            amount_idr: total,
            balance_idr: ledger::account(conn, programme)?.balance_idr,
            recipients: d.recipients.len(),
        };
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&row.village_code),
                action: "aid.disburse",
                entity_type: "aid_programme",
                entity_id: id.to_string(),
                before: None,
                after: audit::snapshot(&booked),
            },
        )?;
        Ok(booked)
    })
}

/// A programme's recipients with what they received and hold, by user id.
pub fn recipients(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<RecipientBalance>> {
    let row = load_row(conn, id)?;
    if !visible(&authz::current(conn, caller)?, &row) {
        return Err(Error::NotFound);
    }
    let rows: Vec<RecipientRow> = diesel::sql_query(
        "SELECT a.user_id, u.name, a.id AS account_id, a.balance_idr,
                COALESCE((SELECT sum(p.amount_idr) FROM postings p
                            JOIN ledger_transactions t ON t.id = p.transaction_id
                           WHERE p.account_id = a.id AND t.kind = 'aid_disbursement'), 0)::bigint AS received_idr
           FROM accounts a JOIN users u ON u.id = a.user_id
          WHERE a.kind = 'aid_balance' AND a.programme_id = $1
            AND a.user_id > COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)
          ORDER BY a.user_id LIMIT $3",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(after)
    .bind::<BigInt, _>(limit + 1)
    .load(conn)?;
    Ok(page(
        rows,
        limit,
        |r| r.user_id,
        |r| RecipientBalance {
            user_id: r.user_id,
            name: r.name,
            account_id: r.account_id,
            received_idr: r.received_idr,
            balance_idr: r.balance_idr,
        },
    ))
}

#[derive(QueryableByName)]
struct RecipientRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = SqlUuid)]
    account_id: Uuid,
    #[diesel(sql_type = BigInt)]
    balance_idr: i64,
    #[diesel(sql_type = BigInt)]
    received_idr: i64,
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = SqlUuid)]
    account_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    programme_id: Uuid,
    #[diesel(sql_type = BigInt)]
    balance_idr: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    village_code: String,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Date)]
    starts_on: NaiveDate,
    #[diesel(sql_type = Date)]
    ends_on: NaiveDate,
    #[diesel(sql_type = Array<Text>)]
    area: Vec<String>,
}

const SOURCES: &str = "SELECT a.id AS account_id, p.id AS programme_id, a.balance_idr, p.name,
        p.village_code, p.scope, p.starts_on, p.ends_on,
        CASE WHEN p.scope = 'village' THEN ARRAY[p.village_code]
             ELSE ARRAY(SELECT village_code FROM network_villages n
                         WHERE n.network_id = p.network_id ORDER BY 1) END AS area
   FROM accounts a JOIN aid_programmes p ON p.id = a.programme_id
  WHERE a.kind = 'aid_balance' AND a.user_id = $1";

/// The caller's aid balances in programmes not yet closed, soonest ending first.
pub fn mine(conn: &mut PgConnection, caller: &Caller) -> Result<Vec<MyAid>> {
    let rows: Vec<SourceRow> = diesel::sql_query(format!(
        "{SOURCES} AND p.closed_at IS NULL ORDER BY p.ends_on, p.id"
    ))
    .bind::<SqlUuid, _>(caller.user_id)
    .load(conn)?;
    let today = today();
    Ok(rows
        .into_iter()
        .map(|r| {
            // Closed programmes are not listed.
            let status = ProgrammeStatus::of(false, r.starts_on, r.ends_on, today);
            MyAid {
                programme_id: r.programme_id,
                name: r.name,
                village_code: r.village_code,
                scope: if r.scope == "network" {
                    AidScope::Network
                } else {
                    AidScope::Village
                },
                starts_on: r.starts_on,
                ends_on: r.ends_on,
                status,
                account_id: r.account_id,
                balance_idr: r.balance_idr,
                area: r.area,
            }
        })
        .collect())
}

/// An aid balance a checkout may spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub programme_id: Uuid,
    pub account_id: Uuid,
    pub balance_idr: i64,
    /// Villages whose shops accept it.
    pub area: Vec<String>,
}

/// A buyer's aid balances spendable today, for a checkout. Checkouts of one buyer take a
/// transaction-scoped advisory lock first, so two of them never plan to spend the same aid
/// (the second reads what the first left). Nothing else takes that lock, and it is taken
/// after the products and before any account, so it adds no lock cycle.
pub fn spendable(conn: &mut PgConnection, user: Uuid, today: NaiveDate) -> Result<Vec<Source>> {
    let any: bool = diesel::select(diesel::dsl::exists(
        accounts::table
            .filter(accounts::kind.eq(AccountKind::AidBalance))
            .filter(accounts::user_id.eq(user))
            .filter(accounts::balance_idr.gt(0)),
    ))
    .get_result(conn)?;
    if !any {
        return Ok(Vec::new());
    }
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('aid:' || $1::text, 0))")
        .bind::<SqlUuid, _>(user)
        .execute(conn)?;
    let rows: Vec<SourceRow> = diesel::sql_query(format!(
        "{SOURCES} AND a.balance_idr > 0 AND p.closed_at IS NULL
            AND p.starts_on <= $2 AND p.ends_on >= $2"
    ))
    .bind::<SqlUuid, _>(user)
    .bind::<Date, _>(today)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Source {
            programme_id: r.programme_id,
            account_id: r.account_id,
            balance_idr: r.balance_idr,
            area: r.area,
        })
        .collect())
}

/// How much each aid source pays towards each order (`orders`: seller village and total, in
/// checkout order); the wallet pays the rest. Each order takes from the sources whose area has
/// its seller, narrowest area first (a village's aid before a network's, so the wider one is
/// left for orders only it can pay), then the lowest programme id. Never more than a source
/// holds, never more than an order's total.
pub fn allocate(sources: &[Source], orders: &[(&str, i64)]) -> Vec<Vec<(usize, i64)>> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| (sources[i].area.len(), sources[i].programme_id));
    let mut left: Vec<i64> = sources.iter().map(|s| s.balance_idr.max(0)).collect();
    orders
        .iter()
        .map(|(village, total)| {
            let mut due = (*total).max(0);
            let mut paid = Vec::new();
            for &i in &order {
                if due == 0 {
                    break;
                }
                if left[i] > 0 && sources[i].area.iter().any(|v| v == village) {
                    let take = left[i].min(due);
                    left[i] -= take;
                    due -= take;
                    paid.push((i, take));
                }
            }
            paid
        })
        .collect()
}

/// Where a refund sends aid back: to the recipient's balance, or, when the programme has
/// closed meanwhile (its remainder already returned), to the programme. Locks the programmes
/// `FOR SHARE` so a closing cannot run between the decision and the posting.
pub fn refund_targets(conn: &mut PgConnection, order: Uuid) -> Result<Vec<(Uuid, i64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        target: Uuid,
        #[diesel(sql_type = BigInt)]
        amount_idr: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "WITH p AS (SELECT id, closed_at FROM aid_programmes
                     WHERE id IN (SELECT programme_id FROM order_aid WHERE order_id = $1)
                     ORDER BY id FOR SHARE)
         SELECT CASE WHEN p.closed_at IS NULL THEN oa.account_id
                     ELSE (SELECT id FROM accounts WHERE kind = 'aid_programme' AND programme_id = p.id)
                END AS target, oa.amount_idr
           FROM order_aid oa JOIN p ON p.id = oa.programme_id
          WHERE oa.order_id = $1",
    )
    .bind::<SqlUuid, _>(order)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.target, r.amount_idr)).collect())
}

/// Closes one programme whose period is over at `today` (or `id`, closed early by its admin):
/// every aid balance returns to the programme in one ledger transaction, and `closed_at` is
/// set, so it happens once. `false` when there was nothing to close.
fn close_one(conn: &mut PgConnection, today: NaiveDate, id: Option<Uuid>) -> Result<bool> {
    conn.transaction(|conn| {
        let base = aid_programmes::table
            .filter(aid_programmes::closed_at.is_null())
            .select(ProgrammeRow::as_select())
            .limit(1);
        let found: Option<ProgrammeRow> = match id {
            Some(id) => base
                .filter(aid_programmes::id.eq(id))
                .for_update()
                .first(conn)
                .optional()?,
            None => base
                .filter(aid_programmes::ends_on.lt(today))
                .order(aid_programmes::ends_on)
                .for_update()
                .skip_locked()
                .first(conn)
                .optional()?,
        };
        let Some(row) = found else {
            return Ok(false);
        };
        let held: Vec<(Uuid, i64)> = accounts::table
            .filter(accounts::kind.eq(AccountKind::AidBalance))
            .filter(accounts::programme_id.eq(row.id))
            .filter(accounts::balance_idr.ne(0))
            .select((accounts::id, accounts::balance_idr))
            .order(accounts::id)
            .for_update()
            .load(conn)?;
        if !held.is_empty() {
            let programme = programme_account(conn, row.id)?;
            let total: i64 = held.iter().map(|(_, b)| b).sum();
            let mut lines: Vec<(Uuid, i64)> = held.iter().map(|(a, b)| (*a, -b)).collect();
            lines.push((programme, total));
            ledger::post(
                conn,
                &[Entry {
                    kind: TxKind::AidReturn,
                    order_id: None,
                    actor: None,
                    note: Some(format!("remainder of {}", row.name)),
                    postings: lines,
                }],
            )?;
        }
        diesel::update(aid_programmes::table.find(row.id))
            .set(aid_programmes::closed_at.eq(diesel::dsl::now))
            .execute(conn)?;
        Ok(true)
    })
}

/// Closes every programme whose last day is before `today` (WIB), at most `batch`. Safe with
/// several server processes: each programme is taken with `FOR UPDATE SKIP LOCKED`.
pub fn close_due(conn: &mut PgConnection, today: NaiveDate, batch: usize) -> Result<usize> {
    let mut closed = 0;
    while closed < batch && close_one(conn, today, None)? {
        closed += 1;
    }
    Ok(closed)
}

/// A village admin ends a programme now: spending stops and the remainder returns.
pub fn close(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Programme> {
    conn.transaction(|conn| {
        let row = load_row(conn, id)?;
        let now = authz::current(conn, caller)?;
        if !visible(&now, &row) {
            return Err(Error::NotFound);
        }
        if !now.is_village_admin(&row.village_code) {
            return Err(Error::Forbidden(
                "only the village's admins close its programmes".into(),
            ));
        }
        if !close_one(conn, today(), Some(id))? {
            return Err(Error::conflict("the programme is already closed"));
        }
        let closed = load_row(conn, id)?;
        let programme = summary(conn, closed)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&row.village_code),
                action: "aid.close",
                entity_type: "aid_programme",
                entity_id: id.to_string(),
                before: None,
                after: audit::snapshot(&programme),
            },
        )?;
        Ok(programme)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn source(n: u128, balance: i64, area: &[&str]) -> Source {
        Source {
            programme_id: Uuid::from_u128(n),
            account_id: Uuid::from_u128(100 + n),
            balance_idr: balance,
            area: area.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn aid_pays_only_in_its_area_and_the_narrowest_first() {
        let sources = [source(1, 50_000, &["A", "B"]), source(2, 30_000, &["A"])];
        // Order in A: the village's aid first (30k), then the network's (10k).
        // Order in B: only the network's aid (40k left), then the wallet pays 20k.
        // Order in C: nothing.
        let paid = allocate(&sources, &[("A", 40_000), ("B", 60_000), ("C", 5_000)]);
        assert_eq!(
            paid,
            vec![vec![(1, 30_000), (0, 10_000)], vec![(0, 40_000)], vec![]]
        );
    }

    proptest! {
        #[test]
        fn allocation_never_overspends(
            balances in proptest::collection::vec(0i64..100_000, 0..4),
            areas in proptest::collection::vec(proptest::collection::vec(0usize..3, 1..3), 4),
            orders in proptest::collection::vec((0usize..3, 1i64..80_000), 0..6),
        ) {
            let villages = ["A", "B", "C"];
            let sources: Vec<Source> = balances.iter().enumerate().map(|(i, b)| {
                let area: Vec<&str> = areas[i].iter().map(|v| villages[*v]).collect();
                source(i as u128, *b, &area)
            }).collect();
            let orders: Vec<(&str, i64)> = orders.iter().map(|(v, t)| (villages[*v], *t)).collect();
            let paid = allocate(&sources, &orders);
            let mut spent = vec![0i64; sources.len()];
            for (o, parts) in orders.iter().zip(&paid) {
                let sum: i64 = parts.iter().map(|(_, a)| a).sum();
                prop_assert!(sum <= o.1);
                for (i, a) in parts {
                    prop_assert!(*a > 0);
                    prop_assert!(sources[*i].area.iter().any(|v| v == o.0));
                    spent[*i] += a;
                }
                // An order left partly unpaid means no eligible source had money left.
            }
            for (i, s) in spent.iter().enumerate() {
                prop_assert!(*s <= sources[i].balance_idr);
            }
        }
    }
}
