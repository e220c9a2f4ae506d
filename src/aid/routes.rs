use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Booked, MyAid, NewDisbursement, NewProgramme, Programme, RecipientBalance};
use crate::db;
use crate::http::error::{Problem, Result};
use crate::http::extract::{HashedJson, HashedJsonOrEmpty, Json, NoFields};
use crate::http::idempotency::{self, IdempotencyKey, Stored};
use crate::http::pagination::{Page, PageParams};
use crate::identity::tokens::Caller;
use crate::ledger::NewMovement;
use crate::state::AppState;

/// `GET /aid-programmes/{id}` is served by `reports` (it carries the programme's LM3).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(fund)
        .service(disburse)
        .service(close)
        .service(recipients)
        .service(mine);
}

/// Start an aid programme (village admins, checked against their current membership).
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "the village that runs it")),
    request_body = NewProgramme,
    responses(
        (status = 201, body = Programme),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/villages/{code}/aid-programmes")]
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: Json<NewProgramme>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let p = db::run(&state.pool, move |conn| {
        super::create(conn, &caller, &code, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(p))
}

/// A village's programmes, newest first (its admins and treasurers).
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("code" = String, Path), PageParams),
    responses((status = 200, body = Page<Programme>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}/aid-programmes")]
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let before = paging.cursor::<Uuid>()?;
    let code = code.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::list(conn, &caller, &code, limit, before)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Put village cash into the programme (cash → programme). Treasurers of its village, while
/// the period is not over. `Idempotency-Key` required.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKey),
    request_body = NewMovement,
    responses(
        (status = 201, body = Booked),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the period is over, or the same key is still being processed"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "the key was used for another request"),
    )
)]
#[post("/aid-programmes/{id}/funding")]
async fn fund(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<NewMovement>,
) -> Result<Stored> {
    let id = id.into_inner();
    let idem = idempotency::Request::new(
        caller.user_id,
        key,
        "POST /aid-programmes/{id}/funding",
        &req,
        &body.body_hash,
    );
    let m = body.value;
    idempotency::respond(&state.pool, idem, 201, move |conn| {
        super::fund(conn, &caller, id, &m)
    })
    .await
}

/// Pay recipients (members of the programme's village) from the programme into their aid
/// balances, all in one ledger transaction. Treasurers of its village. `Idempotency-Key`
/// required; 409 `insufficient-funds` when the programme holds less than the total.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKey),
    request_body = NewDisbursement,
    responses(
        (status = 201, body = Booked),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "bad amounts, a recipient listed twice or not a member of the village"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "insufficient-funds, the period is over, or the same key is still being processed"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/aid-programmes/{id}/disbursements")]
async fn disburse(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<NewDisbursement>,
) -> Result<Stored> {
    let id = id.into_inner();
    let idem = idempotency::Request::new(
        caller.user_id,
        key,
        "POST /aid-programmes/{id}/disbursements",
        &req,
        &body.body_hash,
    );
    let d = body.value;
    idempotency::respond(&state.pool, idem, 201, move |conn| {
        super::disburse(conn, &caller, id, &d)
    })
    .await
}

/// End the programme now (village admins): spending stops and every unspent aid balance
/// returns to the programme. The timers do the same after the last day. `Idempotency-Key`
/// required; 409 when it is already closed.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKey),
    responses(
        (status = 200, body = Programme),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/aid-programmes/{id}/close")]
async fn close(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJsonOrEmpty<NoFields>,
) -> Result<Stored> {
    let id = id.into_inner();
    let idem = idempotency::Request::new(
        caller.user_id,
        key,
        "POST /aid-programmes/{id}/close",
        &req,
        &body.body_hash,
    );
    idempotency::respond(&state.pool, idem, 200, move |conn| {
        super::close(conn, &caller, id)
    })
    .await
}

/// A programme's recipients: what each received and holds, by user id.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<RecipientBalance>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/aid-programmes/{id}/recipients")]
async fn recipients(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let id = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::recipients(conn, &caller, id, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The caller's aid balances in programmes not yet closed, soonest ending first, each with
/// the villages whose shops accept it.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<MyAid>))
)]
#[get("/me/aid")]
async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let aid = db::run(&state.pool, move |conn| super::mine(conn, &caller)).await?;
    Ok(HttpResponse::Ok().json(aid))
}
