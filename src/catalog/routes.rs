use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::search::{ProductPage, ProductQuery};
use super::{Adjustment, Category, NewAdjustment, NewProduct, Product, ProductUpdate};
use crate::db;
use crate::http::error::{Error, Problem, Result};
use crate::http::extract::Json;
use crate::http::pagination::{Page, PageParams};
use crate::http::{IfMatch, if_match, if_none_match};
use crate::identity::tokens::{Caller, MaybeCaller};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_categories)
        .service(create_product)
        .service(shop_products)
        .service(search_products)
        .service(get_product)
        .service(update_product)
        .service(archive_product)
        .service(adjust_stock)
        .service(stock_history);
}

fn with_etag(mut res: actix_web::HttpResponseBuilder, p: &Product) -> HttpResponse {
    res.insert_header((header::ETAG, p.etag())).json(p)
}

/// The platform's product categories.
#[utoipa::path(tag = "catalog", responses((status = 200, body = Vec<Category>)))]
#[get("/categories")]
async fn list_categories(state: web::Data<AppState>) -> Result<HttpResponse> {
    let list = db::run(&state.pool, super::categories).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(list))
}

/// Add a product to a shop (its operators or the village admin).
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "shop id")),
    request_body = NewProduct,
    responses(
        (status = 201, body = Product, headers(("ETag" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/shops/{id}/products")]
async fn create_product(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<NewProduct>,
) -> Result<HttpResponse> {
    let shop = id.into_inner();
    let p = db::transaction(&state.pool, move |conn| {
        super::create(conn, &caller, shop, &body.0)
    })
    .await?;
    Ok(with_etag(HttpResponse::Created(), &p))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShopProductsQuery {
    /// draft, active, inactive or archived; all when absent.
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Every product of a shop, drafts and archived included (its operators and village admin).
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "shop id"), ShopProductsQuery),
    responses((status = 200, body = Page<Product>), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/shops/{id}/products")]
async fn shop_products(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    q: web::Query<ShopProductsQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let before = paging.cursor::<Uuid>()?;
    let shop = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::search::for_managers(conn, &caller, shop, q.status.as_deref(), limit, before)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Search the catalogue, or sync changes for offline use (`updated_since`).
#[utoipa::path(
    tag = "catalog",
    params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
#[get("/products")]
async fn search_products(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    q: web::Query<ProductQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::search::search(conn, caller.0.as_ref(), &q)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One product. `If-None-Match` with its current `ETag` answers 304.
#[utoipa::path(
    tag = "catalog",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Product, headers(("ETag" = String))),
        (status = 304, description = "not modified"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/products/{id}")]
async fn get_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: MaybeCaller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let p = db::run(&state.pool, move |conn| {
        super::get(conn, caller.0.as_ref(), id)
    })
    .await?;
    if if_none_match(&req, &p.etag()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, p.etag()))
            .finish());
    }
    Ok(with_etag(HttpResponse::Ok(), &p))
}

/// Change a product. `If-Match` with the `ETag` you read is required: 412 when it changed since.
/// The body is checked first: an invalid body is a 400 whatever the `If-Match`.
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = "the ETag you read")),
    request_body = ProductUpdate,
    responses(
        (status = 200, body = Product, headers(("ETag" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/products/{id}")]
async fn update_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<ProductUpdate>,
) -> Result<HttpResponse> {
    let precondition = if_match(&req);
    if precondition == IfMatch::Absent {
        return Err(Error::PreconditionRequired(
            "send If-Match with the product's ETag".into(),
        ));
    }
    // Evaluated after the body is checked (in `update`): an unparseable ETag is a 412 too.
    let id = id.into_inner();
    let p = db::transaction(&state.pool, move |conn| {
        super::update(conn, &caller, id, precondition, &body.0)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), &p))
}

/// Delete a product: it is archived (kept for orders and offline sync). `If-Match` is optional.
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "archived"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 412, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/products/{id}")]
async fn archive_product(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let expected = if_match(&req).expected_version()?;
    let id = id.into_inner();
    db::transaction(&state.pool, move |conn| {
        super::archive(conn, &caller, id, expected)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add or remove stock with a reason (restock, spoilage, a count). Never below zero.
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewAdjustment,
    responses((status = 201, body = Adjustment), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/products/{id}/stock-adjustments")]
async fn adjust_stock(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<NewAdjustment>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let a = db::transaction(&state.pool, move |conn| {
        super::adjust_stock(conn, &caller, id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(a))
}

/// Stock history of a product, newest first (its operators).
#[utoipa::path(
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<Adjustment>), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/products/{id}/stock-adjustments")]
async fn stock_history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let before = paging.cursor::<Uuid>()?;
    let id = id.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::adjustments(conn, &caller, id, limit, before)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
