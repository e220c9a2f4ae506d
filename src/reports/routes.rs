use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::circulation::Circulation;
use super::dashboard::Dashboard;
use super::{Format, Granularity, Period};
use crate::db;
use crate::http::error::{Error, Problem, Result};
use crate::identity::tokens::Caller;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(dashboard)
        .service(circulation)
        .service(programme);
}

/// One aid programme with its figures and its LM3 (its village's admins and treasurers,
/// platform admins). Served here rather than in `aid` because it carries the LM3.
#[utoipa::path(
    tag = "aid",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = super::ProgrammeReport), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/aid-programmes/{id}")]
async fn programme(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let p = db::run(&state.pool, move |conn| super::programme(conn, &caller, id)).await?;
    Ok(HttpResponse::Ok().json(p))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// First day, `YYYY-MM-DD` (WIB), inclusive. Default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, inclusive, not before `from`, at most 1,098 days after it. Default: today
    /// (WIB), or 29 days after `from`.
    pub to: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CirculationParams {
    /// First day, `YYYY-MM-DD` (WIB), inclusive. Default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, inclusive, not before `from`, at most 1,098 days after it. Default: today
    /// (WIB), or 29 days after `from`.
    pub to: Option<String>,
    /// `day`, `week` (Monday to Sunday) or `month` (default).
    pub granularity: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    pub format: Option<String>,
}

fn format(req: &HttpRequest, param: Option<&str>) -> Result<Format> {
    match param {
        Some(f) => Format::parse(f)
            .ok_or_else(|| Error::field("format", format!("one of {}", Format::choices()))),
        None => {
            let csv = req
                .headers()
                .get_all(header::ACCEPT)
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|m| m.trim().starts_with("text/csv")));
            Ok(if csv { Format::Csv } else { Format::Json })
        }
    }
}

fn csv_response(body: Vec<u8>, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(body)
}

/// A village's dashboard: its shops' sales, its residents' and shops' purchases, PADes
/// revenue, wallet totals and aid (its admins and treasurers, platform admins; anyone else
/// 404). JSON, or CSV in the long format `period,bucket_start,bucket_end,section,key,label,
/// count,value_idr,ratio` (sections: sales, orders_by_status, top_product, top_buying_village,
/// purchases, purchases_by_seller_village, active_shops, pades_revenue, wallets, aid_disbursed,
/// aid_spent, aid_spent_by_village, aid_spent_by_shop).
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "village code"), DashboardParams),
    responses(
        (status = 200, content((Dashboard = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "bad dates, period or format, or an unknown parameter"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown village, or not the caller's to see")
    )
)]
#[get("/villages/{code}/dashboard")]
async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    code: web::Path<String>,
    q: web::Query<DashboardParams>,
) -> Result<HttpResponse> {
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), super::today())?;
    let fmt = format(&req, q.format.as_deref())?;
    let code = code.into_inner();
    let d = db::run(&state.pool, move |conn| {
        super::dashboard::dashboard(conn, &caller, &code, period)
    })
    .await?;
    Ok(match fmt {
        Format::Json => HttpResponse::Ok().json(d),
        Format::Csv => csv_response(super::csv::dashboard(&d)?, "dashboard"),
    })
}

/// A network's local circulation, per bucket and for the period: spend of its buyers by
/// distance, local share, the village flow matrix, inflow, leakage, local multiplier and LM3
/// (admins of member villages, platform admins; anyone else 404). Each figure's definition is
/// on its field in the `Circulation` schema. JSON, or CSV in the long format
/// `period,bucket_start,bucket_end,section,key,label,count,value_idr,ratio` with period `total`
/// or `bucket` (sections: spend, spend_by_distance, local_spend, local_share, flow, inflow,
/// leakage, local_multiplier, lm3).
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "network id"), CirculationParams),
    responses(
        (status = 200, content((Circulation = "application/json"), (String = "text/csv"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "bad dates, period, granularity or format, or an unknown parameter"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown network, or not the caller's to see")
    )
)]
#[get("/networks/{id}/circulation")]
async fn circulation(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<Uuid>,
    q: web::Query<CirculationParams>,
) -> Result<HttpResponse> {
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), super::today())?;
    let granularity = match q.granularity.as_deref() {
        None => Granularity::Month,
        Some(g) => Granularity::parse(g).ok_or_else(|| {
            Error::field("granularity", format!("one of {}", Granularity::choices()))
        })?,
    };
    let fmt = format(&req, q.format.as_deref())?;
    let id = id.into_inner();
    let c = db::run(&state.pool, move |conn| {
        super::circulation::circulation(conn, &caller, id, period, granularity)
    })
    .await?;
    Ok(match fmt {
        Format::Json => HttpResponse::Ok().json(c),
        Format::Csv => csv_response(super::csv::circulation(&c)?, "circulation"),
    })
}
