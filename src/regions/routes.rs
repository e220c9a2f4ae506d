use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::Region;
use crate::db;
use crate::http::error::{Error, Problem, Result};
use crate::http::pagination::{Page, PageParams};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(search_regions)
        .service(get_region)
        .service(region_children);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// Name to look for; typo-tolerant (`panggungharja` finds Panggungharjo).
    pub q: Option<String>,
    /// 1 province, 2 regency/city, 3 district, 4 village.
    #[param(minimum = 1, maximum = 4)]
    pub level: Option<i16>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Search regions by name, ranked (exact, prefix, then similar names).
#[utoipa::path(
    tag = "regions",
    params(RegionQuery),
    responses(
        (status = 200, body = Page<Region>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/regions")]
async fn search_regions(
    state: web::Data<AppState>,
    query: web::Query<RegionQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    if let Some(level) = q.level
        && !(1..=4).contains(&level)
    {
        return Err(Error::field("level", "must be 1, 2, 3 or 4"));
    }
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(Error::field("q", "at most 100 characters"));
    }
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let cursor = paging.cursor::<super::SearchCursor>()?;
    let page = db::run(&state.pool, move |conn| {
        super::search(conn, q.q.as_deref(), q.level, limit, cursor)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One region with its parents.
#[utoipa::path(
    tag = "regions",
    params(("code" = String, Path, description = "Kemendagri code, e.g. 34.02.15.2004")),
    responses(
        (status = 200, body = Region),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/regions/{code}")]
async fn get_region(state: web::Data<AppState>, code: web::Path<String>) -> Result<HttpResponse> {
    let code = code.into_inner();
    let region = db::run(&state.pool, move |conn| super::get(conn, &code)).await?;
    Ok(HttpResponse::Ok().json(region))
}

/// The regions one level below, in code order.
#[utoipa::path(
    tag = "regions",
    params(("code" = String, Path, description = "Kemendagri code"), PageParams),
    responses(
        (status = 200, body = Page<Region>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/regions/{code}/children")]
async fn region_children(
    state: web::Data<AppState>,
    code: web::Path<String>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let limit = paging.limit()?;
    let after = paging.cursor::<String>()?;
    let page = db::run(&state.pool, move |conn| {
        super::children(conn, &code, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
