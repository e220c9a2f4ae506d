use actix_web::{HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::bumdes::{self, Bumdes, NewBumdes, NewUnit, Unit};
use super::{Network, NetworkUpdate, Village, VillageUpdate};
use crate::audit::{self, AuditEntry};
use crate::db;
use crate::http::error::{Error, Problem, Result};
use crate::http::extract::Json;
use crate::http::pagination::{Page, PageParams};
use crate::identity::tokens::Caller;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(onboard_village)
        .service(list_villages)
        .service(get_village)
        .service(update_village)
        .service(village_audit)
        .service(create_network)
        .service(list_networks)
        .service(get_network)
        .service(update_network)
        .service(create_bumdes)
        .service(list_bumdes)
        .service(get_bumdes)
        .service(add_unit)
        .service(accept_partnership)
        .service(decline_partnership);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardRequest {
    /// A level-4 region code, e.g. `34.02.15.2004`.
    #[schema(pattern = r"^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}$")]
    pub code: String,
}

/// Onboard a village (platform admins).
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    request_body = OnboardRequest,
    responses(
        (status = 201, body = Village),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/villages")]
async fn onboard_village(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<OnboardRequest>,
) -> Result<HttpResponse> {
    let code = body.0.code;
    let village = db::run(&state.pool, move |conn| {
        super::onboard(conn, &caller, &code)
    })
    .await?;
    Ok(HttpResponse::Created().json(village))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VillageQuery {
    /// Region code prefix: villages inside this province, regency or district.
    pub region: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Onboarded villages, in code order.
#[utoipa::path(tag = "villages", params(VillageQuery), responses((status = 200, body = Page<Village>)))]
#[get("/villages")]
async fn list_villages(
    state: web::Data<AppState>,
    q: web::Query<VillageQuery>,
) -> Result<HttpResponse> {
    let q = q.into_inner();
    let paging = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let after = paging.cursor::<String>()?;
    let page = db::run(&state.pool, move |conn| {
        super::list(conn, q.region.as_deref(), limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    tag = "villages",
    params(("code" = String, Path)),
    responses((status = 200, body = Village), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}")]
async fn get_village(state: web::Data<AppState>, code: web::Path<String>) -> Result<HttpResponse> {
    let code = code.into_inner();
    let v = db::run(&state.pool, move |conn| super::get(conn, &code)).await?;
    Ok(HttpResponse::Ok().json(v))
}

/// Change village settings (its admins): IDM status, village share.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = VillageUpdate,
    responses((status = 200, body = Village), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/villages/{code}")]
async fn update_village(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: Json<VillageUpdate>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let v = db::transaction(&state.pool, move |conn| {
        super::update(conn, &caller, &code, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(v))
}

/// The village's audit log, newest first (its admins).
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path), PageParams),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}/audit")]
async fn village_audit(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let before = paging.cursor::<Uuid>()?;
    let code = code.into_inner();
    let page = db::run(&state.pool, move |conn| {
        super::get(conn, &code)?;
        if !caller.is_village_admin(&code) {
            return Err(Error::Forbidden(
                "only this village's admins read its audit log".into(),
            ));
        }
        audit::list(conn, &code, limit, before)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNetwork {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[schema(min_items = 1, max_items = 1000)]
    pub village_codes: Vec<String>,
    /// Fee of the network on each completed sale, basis points (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000)]
    pub network_fee_bps: i32,
}

/// Create a network of villages (platform admins).
#[utoipa::path(
    tag = "networks",
    security(("bearer" = [])),
    request_body = NewNetwork,
    responses((status = 201, body = Network), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/networks")]
async fn create_network(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NewNetwork>,
) -> Result<HttpResponse> {
    let n = db::run(&state.pool, move |conn| {
        super::create_network(
            conn,
            &caller,
            &body.0.name,
            &body.0.village_codes,
            body.0.network_fee_bps,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(n))
}

#[utoipa::path(tag = "networks", params(PageParams), responses((status = 200, body = Page<Network>)))]
#[get("/networks")]
async fn list_networks(
    state: web::Data<AppState>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let page = db::run(&state.pool, move |conn| {
        super::list_networks(conn, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    tag = "networks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Network), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/networks/{id}")]
async fn get_network(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let n = db::run(&state.pool, move |conn| super::get_network(conn, id)).await?;
    Ok(HttpResponse::Ok().json(n))
}

/// Rename, change the fee or the member villages (platform admins).
#[utoipa::path(
    tag = "networks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NetworkUpdate,
    responses((status = 200, body = Network), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/networks/{id}")]
async fn update_network(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<NetworkUpdate>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let n = db::transaction(&state.pool, move |conn| {
        super::update_network(conn, &caller, id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(n))
}

/// Register a BUMDes of this village (its admins).
#[utoipa::path(
    tag = "bumdes",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = NewBumdes,
    responses((status = 201, body = Bumdes), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[post("/villages/{code}/bumdes")]
async fn create_bumdes(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: Json<NewBumdes>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let b = db::transaction(&state.pool, move |conn| {
        bumdes::create(conn, &caller, &code, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(b))
}

/// BUMDes the village owns or co-owns, with their units.
#[utoipa::path(
    tag = "bumdes",
    params(("code" = String, Path)),
    params(PageParams),
    responses((status = 200, body = Page<Bumdes>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}/bumdes")]
async fn list_bumdes(
    state: web::Data<AppState>,
    code: web::Path<String>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let code = code.into_inner();
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let list = db::run(&state.pool, move |conn| {
        bumdes::list_for_village(conn, &code, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(
    tag = "bumdes",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Bumdes), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/bumdes/{id}")]
async fn get_bumdes(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let b = db::run(&state.pool, move |conn| bumdes::get(conn, id)).await?;
    Ok(HttpResponse::Ok().json(b))
}

/// Add a business unit (unit usaha) to a BUMDes (admins of its lead village).
#[utoipa::path(
    tag = "bumdes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = NewUnit,
    responses((status = 201, body = Unit), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[post("/bumdes/{id}/units")]
async fn add_unit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: Json<NewUnit>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let u = db::transaction(&state.pool, move |conn| {
        bumdes::add_unit(conn, &caller, id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Created().json(u))
}

async fn answer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
    answer: bumdes::Answer,
) -> Result<HttpResponse> {
    let (id, code) = path.into_inner();
    let b = db::run(&state.pool, move |conn| {
        bumdes::answer_invitation(conn, &caller, id, &code, answer)
    })
    .await?;
    Ok(HttpResponse::Ok().json(b))
}

/// Accept co-ownership of a BUMDes Bersama another village registered (admins of the invited
/// village, or a platform admin). Until then it is not listed under this village.
#[utoipa::path(
    tag = "bumdes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("code" = String, Path, description = "the invited village")),
    responses((status = 200, body = Bumdes), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/bumdes/{id}/partners/{code}/accept")]
async fn accept_partnership(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse> {
    answer(state, caller, path, bumdes::Answer::Accept).await
}

/// Decline co-ownership of a BUMDes Bersama (admins of the invited village, or a platform admin).
#[utoipa::path(
    tag = "bumdes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("code" = String, Path, description = "the invited village")),
    responses((status = 200, body = Bumdes), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"))
)]
#[post("/bumdes/{id}/partners/{code}/decline")]
async fn decline_partnership(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse> {
    answer(state, caller, path, bumdes::Answer::Decline).await
}
