use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::machine::{Action, OrderStatus};
use super::{CheckoutRequest, CheckoutResult, ListRole, Order};
use crate::db;
use crate::http::error::{Problem, Result};
use crate::http::extract::{HashedJson, HashedJsonOrEmpty, NoFields};
use crate::http::idempotency::{self, IdempotencyKey, Stored};
use crate::http::pagination::{Page, PageParams};
use crate::identity::tokens::Caller;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(checkout)
        .service(list_orders)
        .service(get_order)
        .service(accept)
        .service(reject)
        .service(cancel)
        .service(ship)
        .service(confirm)
        .service(dispute)
        .service(resolve);
}

/// Buy: lines from any number of shops become one order per shop, all or nothing; the total
/// is held from the buyer's wallet (or `buyer_shop_id`'s) in escrow. `Idempotency-Key` required.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = CheckoutRequest,
    responses(
        (status = 201, body = CheckoutResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "`buyer_shop_id` names no shop you can see"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`out-of-stock` (with `product_ids` and `lines`), `insufficient-funds`, or the same key still running"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "the key was used for another request"),
    )
)]
#[post("/checkouts")]
async fn checkout(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    body: HashedJson<CheckoutRequest>,
) -> Result<Stored> {
    let idem = idempotency::Request::new(
        caller.user_id,
        key,
        "POST /checkouts",
        &req,
        &body.body_hash,
    );
    let request = body.value;
    let policy = state.orders;
    idempotency::respond(&state.pool, idem, 201, move |conn| {
        super::checkout(conn, &caller, policy, &request)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// `buyer` (default: your purchases and your shops') or `seller` (your shops' sales).
    #[param(inline)]
    pub role: Option<ListRole>,
    pub status: Option<OrderStatus>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Your orders, newest first.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(OrderQuery),
    responses((status = 200, body = Page<Order>), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
#[get("/orders")]
async fn list_orders(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<OrderQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let before = paging.cursor::<Uuid>()?;
    let page = db::run(&state.pool, move |conn| {
        super::list(
            conn,
            &caller,
            q.role.unwrap_or(ListRole::Buyer),
            q.status,
            limit,
            before,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One order with its lines and events (its parties only; anyone else gets 404).
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/orders/{id}")]
async fn get_order(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let o = db::run(&state.pool, move |conn| super::get(conn, &caller, id)).await?;
    Ok(HttpResponse::Ok().json(o))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// The body of an action that needs a reason (reject, dispute).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredReasonBody {
    #[schema(required = true, value_type = String, min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$")]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    #[schema(
        required = true,
        value_type = String,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub courier_name: Option<String>,
    /// `08…`, `628…` or `+628…`; stored as E.164.
    #[schema(required = true, value_type = String, pattern = r"^(\+62|62|0)8[0-9]{8,11}$")]
    pub courier_phone: Option<String>,
    /// A tracking note for the buyer.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The seller keeps the sale: the order completes and settles.
    Release,
    /// The buyer gets the money back and the stock returns.
    Refund,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    pub outcome: Outcome,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

/// Runs one transition under the idempotency key.
#[allow(clippy::too_many_arguments)]
async fn transition(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: Uuid,
    body_hash: [u8; 32],
    operation: &'static str,
    action: Action,
    details: super::Details,
) -> Result<Stored> {
    let idem = idempotency::Request::new(caller.user_id, key, operation, &req, &body_hash);
    idempotency::respond(&state.pool, idem, 200, move |conn| {
        super::act(conn, &caller, id, action, &details)
    })
    .await
}

macro_rules! order_action {
    ($fn:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            tag = "orders",
            security(("bearer" = [])),
            params(("id" = Uuid, Path), IdempotencyKey),
            responses(
                (status = 200, body = Order),
                (status = 403, body = Problem, content_type = "application/problem+json"),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, body = Problem, content_type = "application/problem+json", description = "not allowed from the order's current status"),
            )
        )]
        #[post($path)]
        async fn $fn(
            state: web::Data<AppState>,
            req: HttpRequest,
            caller: Caller,
            key: IdempotencyKey,
            id: web::Path<Uuid>,
            body: HashedJsonOrEmpty<NoFields>,
        ) -> Result<Stored> {
            let details = super::details($action, None, None, None)?;
            transition(
                state,
                req,
                caller,
                key,
                id.into_inner(),
                body.body_hash,
                concat!("POST ", $path),
                $action,
                details,
            )
            .await
        }
    };
}

macro_rules! order_action_with_reason {
    ($fn:ident, $path:literal, $action:expr, $body:ty, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            tag = "orders",
            security(("bearer" = [])),
            params(("id" = Uuid, Path), IdempotencyKey),
            request_body = $body,
            responses(
                (status = 200, body = Order),
                (status = 400, body = Problem, content_type = "application/problem+json"),
                (status = 403, body = Problem, content_type = "application/problem+json"),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, body = Problem, content_type = "application/problem+json", description = "not allowed from the order's current status"),
            )
        )]
        #[post($path)]
        async fn $fn(
            state: web::Data<AppState>,
            req: HttpRequest,
            caller: Caller,
            key: IdempotencyKey,
            id: web::Path<Uuid>,
            body: HashedJsonOrEmpty<$body>,
        ) -> Result<Stored> {
            let details = super::details($action, body.value.reason.as_deref(), None, None)?;
            transition(
                state,
                req,
                caller,
                key,
                id.into_inner(),
                body.body_hash,
                concat!("POST ", $path),
                $action,
                details,
            )
            .await
        }
    };
}

order_action!(
    accept,
    "/orders/{id}/accept",
    Action::Accept,
    "Accept a placed order (the seller shop's operators)."
);
order_action!(
    confirm,
    "/orders/{id}/confirm",
    Action::Confirm,
    "Confirm receipt of a shipped order (the buyer): it completes and the escrow settles to the seller, the network fee and the village share."
);
order_action_with_reason!(
    reject,
    "/orders/{id}/reject",
    Action::Reject,
    RequiredReasonBody,
    "Reject a placed order with a reason (the seller): the money goes back to the buyer, the stock to the products."
);
order_action_with_reason!(
    cancel,
    "/orders/{id}/cancel",
    Action::Cancel,
    ReasonBody,
    "Cancel: the buyer while it is placed, the seller once accepted (reason optional). The money and the stock go back."
);
order_action_with_reason!(
    dispute,
    "/orders/{id}/dispute",
    Action::Dispute,
    RequiredReasonBody,
    "Dispute a shipped order with a reason (the buyer), before it completes; the seller village's admin resolves it."
);

/// Ship an accepted order with the courier's name and phone (the seller).
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKey),
    request_body = ShipBody,
    responses(
        (status = 200, body = Order),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/ship")]
async fn ship(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<ShipBody>,
) -> Result<Stored> {
    let b = &body.value;
    let details = super::details(
        Action::Ship,
        b.note.as_deref(),
        b.courier_name.as_deref(),
        b.courier_phone.as_deref(),
    )?;
    transition(
        state,
        req,
        caller,
        key,
        id.into_inner(),
        body.body_hash,
        "POST /orders/{id}/ship",
        Action::Ship,
        details,
    )
    .await
}

/// Resolve a dispute (admins of the seller's village): `release` completes the order and
/// settles; `refund` returns the money and the stock.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), IdempotencyKey),
    request_body = ResolveBody,
    responses(
        (status = 200, body = Order),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/resolve")]
async fn resolve(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    key: IdempotencyKey,
    id: web::Path<Uuid>,
    body: HashedJson<ResolveBody>,
) -> Result<Stored> {
    let action = match body.value.outcome {
        Outcome::Release => Action::Release,
        Outcome::Refund => Action::Refund,
    };
    let details = super::details(action, body.value.note.as_deref(), None, None)?;
    transition(
        state,
        req,
        caller,
        key,
        id.into_inner(),
        body.body_hash,
        "POST /orders/{id}/resolve",
        action,
        details,
    )
    .await
}
