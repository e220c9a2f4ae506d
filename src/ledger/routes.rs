use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Movement, NewMovement, StatementLine, TxKind, Wallet};
use crate::db;
use crate::http::error::{Problem, Result};
use crate::http::extract::HashedJson;
use crate::http::idempotency::{self, IdempotencyKey, Stored};
use crate::http::pagination::{Page, PageParams};
use crate::identity::tokens::Caller;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(my_wallet)
        .service(shop_wallet)
        .service(statement)
        .service(topup)
        .service(withdraw);
}

/// The caller's own wallet.
#[utoipa::path(
    tag = "wallets",
    security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 404, body = Problem, content_type = "application/problem+json", description = "no wallet (a platform admin without a village)"))
)]
#[get("/wallets/me")]
async fn my_wallet(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let w = db::run(&state.pool, move |conn| super::my_wallet(conn, &caller)).await?;
    Ok(HttpResponse::Ok().json(w))
}

/// A shop's wallet (its operators, and the village's admins and treasurers).
#[utoipa::path(
    tag = "wallets",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "shop id")),
    responses((status = 200, body = Wallet), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/shops/{id}/wallet")]
async fn shop_wallet(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let shop = id.into_inner();
    let w = db::run(&state.pool, move |conn| {
        let account = super::shop_wallet(conn, shop)?;
        super::load_wallet(conn, &caller, account.id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(w))
}

/// A wallet's statement, newest first, each line with the balance after it.
#[utoipa::path(
    tag = "wallets",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "wallet id"), PageParams),
    responses((status = 200, body = Page<StatementLine>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/wallets/{id}/transactions")]
async fn statement(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let before = paging.cursor::<i64>()?;
    let id = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::statement(conn, &caller, id, limit, before)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn move_cash(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: Uuid,
    body: HashedJson<NewMovement>,
    kind: TxKind,
) -> Result<Stored> {
    let operation = match kind {
        TxKind::Topup => "POST /wallets/{id}/topups",
        _ => "POST /wallets/{id}/withdrawals",
    };
    let idem = idempotency::Request::new(caller.user_id, key, operation, &req, &body.body_hash);
    let movement = body.value;
    idempotency::respond(&state.pool, idem, 201, move |conn| {
        super::move_cash(conn, &caller, id, kind, &movement)
    })
    .await
}

/// Record cash a wallet's holder handed to the treasurer (cash → wallet). Treasurers of the
/// wallet's home village, checked against their current membership. `Idempotency-Key` required.
#[utoipa::path(
    tag = "wallets",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "wallet id"), IdempotencyKey),
    request_body = NewMovement,
    responses(
        (status = 201, body = Movement),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the same key is still being processed"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "the key was used for another request"),
    )
)]
#[post("/wallets/{id}/topups")]
async fn topup(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<NewMovement>,
) -> Result<Stored> {
    move_cash(
        state,
        req,
        caller,
        key,
        id.into_inner(),
        body,
        TxKind::Topup,
    )
    .await
}

/// Pay cash out of a wallet (wallet → cash). Treasurers of the wallet's home village.
/// `Idempotency-Key` required; 409 `insufficient-funds` when the balance is too low.
#[utoipa::path(
    tag = "wallets",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "wallet id"), IdempotencyKey),
    request_body = NewMovement,
    responses(
        (status = 201, body = Movement),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "insufficient-funds, or the same key is still being processed"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/wallets/{id}/withdrawals")]
async fn withdraw(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<NewMovement>,
) -> Result<Stored> {
    move_cash(
        state,
        req,
        caller,
        key,
        id.into_inner(),
        body,
        TxKind::Withdrawal,
    )
    .await
}
