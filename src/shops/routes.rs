use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Decision, Operator, Shop, ShopApplication, ShopUpdate};
use crate::db;
use crate::http::error::{Error, Problem, Result};
use crate::http::extract::Json;
use crate::http::pagination::{Page, PageParams};
use crate::identity::phone;
use crate::identity::tokens::{Caller, MaybeCaller};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(apply)
        .service(list_shops)
        .service(get_shop)
        .service(update_shop)
        .service(approve)
        .service(reject)
        .service(suspend)
        .service(list_operators)
        .service(add_operator)
        .service(remove_operator);
}

/// Apply for a shop in this village (any member). It starts `pending`.
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = ShopApplication,
    responses(
        (status = 201, body = Shop),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/villages/{code}/shops")]
async fn apply(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: Json<ShopApplication>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let shop = db::transaction(&state.pool, move |conn| {
        super::apply(conn, &caller, &code, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(shop))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShopQuery {
    /// Default `active`; other statuses for the village admin.
    pub status: Option<super::ShopStatus>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[utoipa::path(
    tag = "shops",
    params(("code" = String, Path), ShopQuery),
    responses((status = 200, body = Page<Shop>), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}/shops")]
async fn list_shops(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    code: web::Path<String>,
    q: web::Query<ShopQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let code = code.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::list(conn, caller.0.as_ref(), &code, q.status, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    tag = "shops",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Shop), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/shops/{id}")]
async fn get_shop(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let (shop, _) = db::run(&state.pool, move |conn| {
        super::load(conn, caller.0.as_ref(), id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(shop))
}

/// Change the shop's name, description and delivery settings (its operators).
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = ShopUpdate,
    responses((status = 200, body = Shop), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/shops/{id}")]
async fn update_shop(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<ShopUpdate>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let shop = db::transaction(&state.pool, move |conn| {
        super::update(conn, &caller, id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(shop))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$")]
    pub reason: Option<String>,
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: Uuid,
    decision: Decision,
    reason: Option<String>,
) -> Result<HttpResponse> {
    let shop = db::transaction(&state.pool, move |conn| {
        super::decide(conn, &caller, id, decision, reason.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(shop))
}

/// Approve a pending (or reinstate a suspended) shop: it becomes `active` (village admin).
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Shop), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/shops/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    decide(state, caller, id.into_inner(), Decision::Approve, None).await
}

/// Reject a pending shop with a reason (village admin).
#[utoipa::path(
    tag = "shops",
    operation_id = "reject_shop",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = Reason,
    responses((status = 200, body = Shop), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/shops/{id}/reject")]
async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<Reason>,
) -> Result<HttpResponse> {
    decide(
        state,
        caller,
        id.into_inner(),
        Decision::Reject,
        body.0.reason,
    )
    .await
}

/// Suspend an active shop with a reason (village admin).
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = Reason,
    responses((status = 200, body = Shop), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/shops/{id}/suspend")]
async fn suspend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<Reason>,
) -> Result<HttpResponse> {
    decide(
        state,
        caller,
        id.into_inner(),
        Decision::Suspend,
        body.0.reason,
    )
    .await
}

#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<Operator>), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/shops/{id}/operators")]
async fn list_operators(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let ops = db::run(&state.pool, move |conn| {
        super::operators(conn, &caller, id, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ops))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    /// Phone of a member of the shop's village.
    #[schema(pattern = r"^(\+62|62|0)8[0-9]{8,11}$")]
    pub phone: String,
}

/// Link a member of the village as an operator (operators or the village admin).
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewOperator,
    responses((status = 201, body = Operator), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/shops/{id}/operators")]
async fn add_operator(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<NewOperator>,
) -> Result<HttpResponse> {
    let phone = phone::normalize(&body.0.phone).map_err(|m| Error::field("phone", m))?;
    let id = id.into_inner();
    let ops = db::transaction(&state.pool, move |conn| {
        super::add_operator(conn, &caller, id, &phone)
    })
    .await?;
    Ok(HttpResponse::Created().json(ops))
}

/// Unlink an operator; the last one stays (operators or the village admin).
#[utoipa::path(
    tag = "shops",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "removed"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/shops/{id}/operators/{user_id}")]
async fn remove_operator(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse> {
    let (id, user) = path.into_inner();
    db::transaction(&state.pool, move |conn| {
        super::remove_operator(conn, &caller, id, user)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
