//! The double-entry ledger: accounts, balanced transactions of postings, wallets, top-ups and
//! withdrawals.
//!
//! Every owner has its accounts from the moment it exists (database triggers): a wallet per
//! user and per shop, an escrow, a revenue (PADes) and a `cash` account per village, a fee
//! account per network and one for the platform. `cash` stands for money outside the system
//! and is the only account that may go below zero; one per village, so top-ups in different
//! villages never wait on each other.
//!
//! A user's wallet has one **home village**: the village of their first membership. Its
//! treasurer records their top-ups and pays out their withdrawals; a shop's wallet belongs to
//! the shop's village. Money moves only through [`post`]: the database applies each posting to
//! its account's balance in the same statement, refuses an overdraft (a CHECK) and an
//! unbalanced transaction (at commit), and never lets a posting change.

pub mod routes;
pub mod split;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::{accounts, ledger_transactions, postings, shop_operators};
use crate::http::error::{Error, FieldError, Result, text_field};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;

crate::text_enum! {
    pub enum AccountKind {
        UserWallet = "user_wallet",
        ShopWallet = "shop_wallet",
        Escrow = "escrow",
        VillageRevenue = "village_revenue",
        NetworkFee = "network_fee",
        PlatformFee = "platform_fee",
        Cash = "cash",
        /// What an aid programme holds before it is disbursed (and what returns to it).
        AidProgramme = "aid_programme",
        /// One recipient's aid balance in one programme: spendable only in its area.
        AidBalance = "aid_balance",
    }
}

crate::text_enum! {
    /// What a ledger transaction was: money in or out of the system, or an order's hold,
    /// settlement or refund.
    pub enum TxKind {
        Topup = "topup",
        Withdrawal = "withdrawal",
        Hold = "hold",
        Settlement = "settlement",
        Refund = "refund",
        /// Cash into an aid programme.
        AidFunding = "aid_funding",
        /// A programme into its recipients' aid balances.
        AidDisbursement = "aid_disbursement",
        /// An aid balance back into its programme: the remainder at the end of the period.
        AidReturn = "aid_return",
    }
}

/// Largest single top-up or withdrawal (Rp 1 miliar): a typing slip is refused, not booked.
pub const MAX_MOVEMENT_IDR: i64 = 1_000_000_000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: Uuid,
    pub kind: AccountKind,
    pub village_code: Option<String>,
    pub user_id: Option<Uuid>,
    pub shop_id: Option<Uuid>,
    pub network_id: Option<Uuid>,
    pub balance_idr: i64,
}

/// A wallet as its holder (or the treasurer) sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub id: Uuid,
    /// `user_wallet` or `shop_wallet`.
    pub kind: AccountKind,
    pub balance_idr: i64,
    /// The home village: its treasurer tops the wallet up and pays it out.
    pub village_code: String,
    pub user_id: Option<Uuid>,
    pub shop_id: Option<Uuid>,
}

impl TryFrom<Account> for Wallet {
    type Error = Error;
    fn try_from(a: Account) -> Result<Self> {
        match (a.kind, a.village_code) {
            (AccountKind::UserWallet | AccountKind::ShopWallet, Some(village_code)) => Ok(Wallet {
                id: a.id,
                kind: a.kind,
                balance_idr: a.balance_idr,
                village_code,
                user_id: a.user_id,
                shop_id: a.shop_id,
            }),
            _ => Err(Error::NotFound),
        }
    }
}

pub fn insufficient_funds() -> Error {
    Error::Conflict {
        slug: "insufficient-funds",
        detail: "the balance is not enough for this".into(),
        extra: None,
    }
}

/// One balanced ledger transaction to write.
pub struct Entry {
    pub kind: TxKind,
    pub order_id: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub note: Option<String>,
    /// (account, amount): credits positive, debits negative; zero amounts are left out.
    pub postings: Vec<(Uuid, i64)>,
}

/// Writes ledger transactions in two statements, whatever their number. Postings go in account
/// order, so concurrent writers lock accounts in one order and never deadlock on them. An
/// overdraft is 409 `insufficient-funds` (the database's CHECK decides, not a read before).
pub fn post(conn: &mut PgConnection, entries: &[Entry]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let txs: Vec<_> = entries
        .iter()
        .zip(&ids)
        .map(|(e, id)| {
            (
                ledger_transactions::id.eq(*id),
                ledger_transactions::kind.eq(e.kind),
                ledger_transactions::order_id.eq(e.order_id),
                ledger_transactions::actor_id.eq(e.actor),
                ledger_transactions::note.eq(e.note.as_deref()),
            )
        })
        .collect();
    diesel::insert_into(ledger_transactions::table)
        .values(&txs)
        .execute(conn)?;
    let mut lines: Vec<(Uuid, Uuid, i64)> = entries
        .iter()
        .zip(&ids)
        .flat_map(|(e, id)| {
            e.postings
                .iter()
                .filter(|(_, amount)| *amount != 0)
                .map(move |(account, amount)| (*account, *id, *amount))
        })
        .collect();
    lines.sort_by_key(|(account, _, _)| *account);
    let rows: Vec<_> = lines
        .iter()
        .map(|(account, tx, amount)| {
            (
                postings::id.eq(Uuid::now_v7()),
                postings::transaction_id.eq(*tx),
                postings::account_id.eq(*account),
                postings::amount_idr.eq(*amount),
            )
        })
        .collect();
    diesel::insert_into(postings::table)
        .values(&rows)
        .execute(conn)
        .map_err(|e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, ref info)
                if info.constraint_name() == Some("accounts_no_overdraft") =>
            {
                insufficient_funds()
            }
            other => Error::from(other),
        })?;
    Ok(ids)
}

pub fn account(conn: &mut PgConnection, id: Uuid) -> Result<Account> {
    Ok(accounts::table
        .find(id)
        .select(Account::as_select())
        .first(conn)?)
}

/// The escrow, revenue or cash account of a village.
pub fn village_account(conn: &mut PgConnection, kind: AccountKind, village: &str) -> Result<Uuid> {
    Ok(accounts::table
        .filter(accounts::kind.eq(kind))
        .filter(accounts::village_code.eq(village))
        .select(accounts::id)
        .first(conn)?)
}

pub fn user_wallet(conn: &mut PgConnection, user: Uuid) -> Result<Account> {
    Ok(accounts::table
        .filter(accounts::kind.eq(AccountKind::UserWallet))
        .filter(accounts::user_id.eq(user))
        .select(Account::as_select())
        .first(conn)?)
}

pub fn shop_wallet(conn: &mut PgConnection, shop: Uuid) -> Result<Account> {
    Ok(accounts::table
        .filter(accounts::kind.eq(AccountKind::ShopWallet))
        .filter(accounts::shop_id.eq(shop))
        .select(Account::as_select())
        .first(conn)?)
}

/// A wallet as `caller` may see it: their own, a shop's they operate (through a token of the
/// shop's village), or any wallet of the token's village for its admins and treasurers.
/// Everyone else: 404.
pub fn load_wallet(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Wallet> {
    let wallet = Wallet::try_from(account(conn, id)?)?;
    let own = wallet.user_id == Some(caller.user_id);
    let office = caller.village == wallet.village_code
        && (caller.has(crate::identity::tokens::Role::Treasurer)
            || caller.has(crate::identity::tokens::Role::Admin));
    let operator = match wallet.shop_id {
        Some(shop) if caller.village == wallet.village_code => diesel::select(diesel::dsl::exists(
            shop_operators::table.find((shop, caller.user_id)),
        ))
        .get_result(conn)?,
        _ => false,
    };
    if own || office || operator {
        Ok(wallet)
    } else {
        Err(Error::NotFound)
    }
}

/// The caller's wallet and the sum of their aid balances.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyWallet {
    #[serde(flatten)]
    pub wallet: Wallet,
    /// Aid received and not yet spent or returned, over all programmes: spendable only at
    /// shops in each programme's area, during its period, and never paid out as cash
    /// (`GET /me/aid` lists them).
    pub aid_balance_idr: i64,
}

/// The caller's own wallet. A platform admin without a membership has none.
pub fn my_wallet(conn: &mut PgConnection, caller: &Caller) -> Result<MyWallet> {
    let wallet = Wallet::try_from(user_wallet(conn, caller.user_id)?)?;
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        aid: i64,
    }
    let aid = diesel::sql_query(
        "SELECT COALESCE(sum(balance_idr), 0)::bigint AS aid FROM accounts
          WHERE kind = 'aid_balance' AND user_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(caller.user_id)
    .get_result::<Sum>(conn)?
    .aid;
    Ok(MyWallet {
        wallet,
        aid_balance_idr: aid,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMovement {
    /// Integer rupiah, 1..=1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount_idr: i64,
    /// What it was for (a receipt number, "setoran tunai"…).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

/// A top-up or withdrawal as booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Movement {
    pub transaction_id: Uuid,
    pub kind: TxKind,
    pub wallet_id: Uuid,
    pub amount_idr: i64,
    /// The wallet's balance right after.
    pub balance_idr: i64,
}

pub fn validate_movement(m: &NewMovement) -> Result<Option<String>> {
    let mut errors = Vec::new();
    if !(1..=MAX_MOVEMENT_IDR).contains(&m.amount_idr) {
        errors.push(FieldError::new(
            "amount_idr",
            format!("1 to {MAX_MOVEMENT_IDR} rupiah"),
        ));
    }
    let note = m
        .note
        .as_deref()
        .map(|n| text_field("note", n, 0, 500, &mut errors));
    if errors.is_empty() {
        Ok(note)
    } else {
        Err(Error::Validation(errors))
    }
}

/// Cash received by the treasurer of the wallet's home village (cash → wallet), or paid out
/// (wallet → cash). The treasurer role is read now, in this transaction.
pub fn move_cash(
    conn: &mut PgConnection,
    caller: &Caller,
    wallet_id: Uuid,
    kind: TxKind,
    m: &NewMovement,
) -> Result<Movement> {
    let note = validate_movement(m)?;
    conn.transaction(|conn| {
        let wallet = load_wallet(conn, caller, wallet_id)?;
        if !authz::current(conn, caller)?.is_treasurer_of(&wallet.village_code) {
            return Err(Error::Forbidden(
                "only a treasurer of the wallet's home village records cash".into(),
            ));
        }
        let cash = village_account(conn, AccountKind::Cash, &wallet.village_code)?;
        let amount = match kind {
            TxKind::Topup => m.amount_idr,
            TxKind::Withdrawal => -m.amount_idr,
            _ => unreachable!("cash moves are top-ups or withdrawals"),
        };
        let tx = post(
            conn,
            &[Entry {
                kind,
                order_id: None,
                actor: Some(caller.user_id),
                note,
                postings: vec![(cash, -amount), (wallet.id, amount)],
            }],
        )?[0];
        let balance = account(conn, wallet.id)?.balance_idr;
        Ok(Movement {
            transaction_id: tx,
            kind,
            wallet_id: wallet.id,
            amount_idr: m.amount_idr,
            balance_idr: balance,
        })
    })
}

/// One line of a wallet's statement.
#[derive(Debug, Queryable, Serialize, ToSchema)]
pub struct StatementLine {
    /// The posting.
    pub id: Uuid,
    pub transaction_id: Uuid,
    pub kind: TxKind,
    /// Credit (positive) or debit (negative), rupiah.
    pub amount_idr: i64,
    /// The wallet's balance right after this line.
    pub balance_after_idr: i64,
    pub order_id: Option<Uuid>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub entry_no: i64,
}

/// A wallet's statement, newest first, with the running balance.
pub fn statement(
    conn: &mut PgConnection,
    caller: &Caller,
    wallet_id: Uuid,
    limit: i64,
    before: Option<i64>,
) -> Result<Page<StatementLine>> {
    let wallet = load_wallet(conn, caller, wallet_id)?;
    let rows: Vec<StatementLine> = postings::table
        .inner_join(ledger_transactions::table)
        .filter(postings::account_id.eq(wallet.id))
        .filter(postings::entry_no.lt(before.unwrap_or(i64::MAX)))
        .select((
            postings::id,
            postings::transaction_id,
            ledger_transactions::kind,
            postings::amount_idr,
            postings::balance_after_idr,
            ledger_transactions::order_id,
            ledger_transactions::note,
            postings::created_at,
            postings::entry_no,
        ))
        .order(postings::entry_no.desc())
        .limit(limit + 1)
        .load(conn)?;
    Ok(page(rows, limit, |r| r.entry_no, |r| r))
}

/// What the global ledger check found (all zero when the books are right).
#[derive(Debug, Default, PartialEq, Eq, QueryableByName, Serialize)]
pub struct LedgerCheck {
    /// Ledger transactions whose postings do not sum to zero.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub unbalanced_transactions: i64,
    /// Accounts whose balance differs from the sum of their postings.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub wrong_balances: i64,
    /// Accounts other than cash below zero.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub overdrawn: i64,
    /// Escrow accounts holding other than the totals of their village's open orders (placed,
    /// accepted, shipped, disputed).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub escrow_mismatches: i64,
    /// Aid balances still holding money after their programme closed (the remainder returns
    /// when it closes).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub aid_left_after_close: i64,
    /// Orders whose `aid_paid_idr` differs from the aid parts recorded for them.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub aid_paid_mismatches: i64,
    /// Products whose stock is not opening stock + adjustments − units in orders that hold or
    /// sold them (no unit created or lost).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub stock_mismatches: i64,
    /// The sum of every balance (zero: money only moves between accounts).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub total: i64,
}

impl LedgerCheck {
    /// What is wrong, in words (empty when the books are right).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (n, what) in [
            (
                self.unbalanced_transactions,
                "ledger transactions do not balance",
            ),
            (
                self.wrong_balances,
                "account balances differ from their postings",
            ),
            (self.overdrawn, "accounts other than cash are below zero"),
            (
                self.escrow_mismatches,
                "escrow accounts differ from their open orders",
            ),
            (
                self.aid_left_after_close,
                "aid balances hold money after their programme closed",
            ),
            (
                self.aid_paid_mismatches,
                "orders' aid payments differ from their aid parts",
            ),
            (
                self.stock_mismatches,
                "products' stock differs from opening stock, adjustments and orders",
            ),
        ] {
            if n != 0 {
                out.push(format!("{n} {what}"));
            }
        }
        if self.total != 0 {
            out.push(format!("all balances sum to {} instead of 0", self.total));
        }
        out
    }
}

/// Checks the whole ledger in one snapshot.
pub fn check(conn: &mut PgConnection) -> Result<LedgerCheck> {
    Ok(diesel::sql_query(
        "SELECT
           (SELECT count(*) FROM (SELECT transaction_id FROM postings GROUP BY 1 HAVING sum(amount_idr) <> 0) u) AS unbalanced_transactions,
           (SELECT count(*) FROM accounts a
              WHERE a.balance_idr <> COALESCE((SELECT sum(amount_idr) FROM postings p WHERE p.account_id = a.id), 0)) AS wrong_balances,
           (SELECT count(*) FROM accounts WHERE kind <> 'cash' AND balance_idr < 0) AS overdrawn,
           (SELECT count(*) FROM accounts a WHERE a.kind = 'escrow'
               AND a.balance_idr <> COALESCE((SELECT sum(total_idr) FROM orders o
                     WHERE o.escrow_account_id = a.id
                       AND o.status IN ('placed', 'accepted', 'shipped', 'disputed')), 0)) AS escrow_mismatches,
           (SELECT count(*) FROM accounts a JOIN aid_programmes p ON p.id = a.programme_id
              WHERE a.kind = 'aid_balance' AND p.closed_at IS NOT NULL AND a.balance_idr <> 0) AS aid_left_after_close,
           (SELECT count(*) FROM orders o
              WHERE o.aid_paid_idr <> COALESCE((SELECT sum(amount_idr) FROM order_aid oa WHERE oa.order_id = o.id), 0)) AS aid_paid_mismatches,
           (SELECT count(*) FROM products p
              WHERE p.stock <> p.opening_stock
                  + COALESCE((SELECT sum(a.delta) FROM stock_adjustments a WHERE a.product_id = p.id), 0)
                  - COALESCE((SELECT sum(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id
                               WHERE l.product_id = p.id
                                 AND o.status IN ('placed', 'accepted', 'shipped', 'disputed', 'completed')), 0)) AS stock_mismatches,
           (SELECT COALESCE(sum(balance_idr), 0)::bigint FROM accounts) AS total",
    )
    .get_result(conn)?)
}
