use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::credentials::{self, PasswordChange, PasswordReset, ResetCode};
use super::memberships::{self, Member, NewMember, RolesUpdate};
use super::sessions::{self, Refreshed, TokenPair, bad_credentials};
use super::tokens::{Caller, PLATFORM_SCOPE, Role};
use super::{password, phone, ratelimit, users};
use crate::db::schema::{shop_operators, shops};
use crate::db::{self};
use crate::http::error::{Error, Problem, Result};
use crate::http::extract::Json;
use crate::http::pagination::{Page, PageParams};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(refresh)
        .service(logout)
        .service(me)
        .service(change_password)
        .service(reset_password)
        .service(issue_reset_code)
        .service(add_member)
        .service(list_members)
        .service(update_member)
        .service(remove_member);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(pattern = r"^(\+62|62|0)8[0-9]{8,11}$")]
    pub phone: String,
    pub password: String,
    /// The village the session is scoped to (a level-4 code). Platform admins may leave it
    /// out (or null) for a platform-scoped session: on a fresh install no village exists yet.
    #[serde(default)]
    pub village_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Log in to one village: access token (15 min) and refresh token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
    )
)]
#[post("/auth/login")]
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse> {
    let LoginRequest {
        phone: raw_phone,
        password,
        village_code,
    } = body.0;
    let phone = phone::normalize(&raw_phone).map_err(|m| Error::field("phone", m))?;
    if password.len() > 1024 {
        return Err(bad_credentials());
    }
    let address = client_address(&req, &state);
    let limits = state.login_limits;
    let phone2 = phone.clone();
    // Count the attempt before the expensive hash: a flood is refused cheaply.
    let user = db::run(&state.pool, move |conn| {
        ratelimit::hit_attempt(conn, &limits, &address, &format!("phone:{phone2}"))?;
        if rand::random::<u8>() == 0 {
            ratelimit::sweep(conn, limits.window_secs)?;
        }
        users::find_by_phone(conn, &phone2)
    })
    .await?;
    let ok = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(bad_credentials());
    };
    let tokens = state.tokens.clone();
    let policy = state.sessions.clone();
    let village = village_code.unwrap_or_else(|| PLATFORM_SCOPE.to_string());
    let pair = db::transaction(&state.pool, move |conn| {
        let roles = sessions::roles_in(conn, user.id, user.is_platform_admin, &village)?
            .ok_or_else(bad_credentials)?;
        sessions::start_session(conn, &tokens, &policy, user.id, &village, roles)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(pair))
}

/// Exchange a refresh token for a new pair. The old one stops working; presenting it again
/// revokes every token of the session.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenPair),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
async fn refresh(state: web::Data<AppState>, body: Json<RefreshRequest>) -> Result<HttpResponse> {
    let presented = body.0.refresh_token;
    let tokens = state.tokens.clone();
    let policy = state.sessions.clone();
    let outcome = db::transaction(&state.pool, move |conn| {
        sessions::refresh(conn, &tokens, &policy, &presented)
    })
    .await?;
    match outcome {
        Refreshed::Ok(pair) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(pair)),
        Refreshed::Rejected => Err(Error::Unauthorized(
            "refresh token is invalid or revoked".into(),
        )),
    }
}

/// End the session of this refresh token (every token of its family).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "logged out"), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
#[post("/auth/logout")]
async fn logout(state: web::Data<AppState>, body: Json<RefreshRequest>) -> Result<HttpResponse> {
    let presented = body.0.refresh_token;
    db::run(&state.pool, move |conn| sessions::logout(conn, &presented)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub phone: String,
    pub name: String,
    /// The village the token is scoped to; null for a platform admin's platform-scoped session.
    pub village_code: Option<String>,
    pub roles: Vec<Role>,
    /// Shops of this village the user operates.
    pub shops: Vec<Uuid>,
}

/// The signed-in user, their roles in the token's village and the shops they operate there.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/me")]
async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let me = db::run(&state.pool, move |conn| {
        let user = users::get(conn, caller.user_id)?;
        let shop_ids: Vec<Uuid> = shop_operators::table
            .inner_join(shops::table)
            .filter(shop_operators::user_id.eq(caller.user_id))
            .filter(shops::village_code.eq(&caller.village))
            .select(shops::id)
            .order(shops::id)
            .load(conn)?;
        Ok(Me {
            id: user.id,
            phone: user.phone,
            name: user.name,
            village_code: (caller.village != PLATFORM_SCOPE).then_some(caller.village),
            roles: caller.roles,
            shops: shop_ids,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(me))
}

/// Add a member to the village (creating the user if the phone is new). Village admins only.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path)),
    request_body = NewMember,
    responses(
        (status = 201, body = Member),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/villages/{code}/members")]
async fn add_member(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: Json<NewMember>,
) -> Result<HttpResponse> {
    let valid = memberships::validate_new(&body.0)?;
    // Cheap check before hashing (the token's snapshot); the real one runs in the transaction.
    if !memberships::may_read(&caller, &code) {
        let code = code.clone();
        db::run(&state.pool, move |conn| {
            crate::villages::get(conn, &code).map(|_| ())
        })
        .await?;
        return Err(Error::Forbidden(
            "only this village's admins manage its members".into(),
        ));
    }
    let hash = match body.0.password {
        Some(p) => Some(state.hasher.hash(p).await?),
        None => None,
    };
    let village = code.into_inner();
    let member = db::run(&state.pool, move |conn| {
        memberships::add(conn, &caller, &village, &valid, hash.as_deref())
    })
    .await?;
    Ok(HttpResponse::Created().json(member))
}

/// Members of the village. Village admins only.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path), PageParams),
    responses((status = 200, body = Page<Member>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/villages/{code}/members")]
async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    paging: web::Query<PageParams>,
) -> Result<HttpResponse> {
    let limit = paging.limit()?;
    let after = paging.cursor::<Uuid>()?;
    let village = code.into_inner();
    let page = db::run(&state.pool, move |conn| {
        memberships::list(conn, &caller, &village, limit, after)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Replace a member's roles. Village admins only.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path), ("user_id" = Uuid, Path)),
    request_body = RolesUpdate,
    responses((status = 200, body = Member), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[patch("/villages/{code}/members/{user_id}")]
async fn update_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
    body: Json<RolesUpdate>,
) -> Result<HttpResponse> {
    let roles = memberships::validate_roles("roles", &body.0.roles)?;
    let (village, user_id) = path.into_inner();
    let member = db::run(&state.pool, move |conn| {
        memberships::update_roles(conn, &caller, &village, user_id, &roles)
    })
    .await?;
    Ok(HttpResponse::Ok().json(member))
}

/// Remove a member from the village. Village admins only.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "removed"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/villages/{code}/members/{user_id}")]
async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse> {
    let (village, user_id) = path.into_inner();
    db::run(&state.pool, move |conn| {
        memberships::remove(conn, &caller, &village, user_id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The address a request is rate-limited under (through trusted proxies; IPv6 by /64).
fn client_address(req: &HttpRequest, state: &AppState) -> String {
    crate::http::client_addr::client_bucket_of(req, &state.trusted_proxies)
}

/// Change your own password (current and new). Every other session of yours ends; this one
/// goes on.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "changed"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "the new password is too short or long, or the current one is wrong"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/me/password")]
async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<PasswordChange>,
) -> Result<HttpResponse> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.0;
    password::validate(&new_password).map_err(|m| Error::field("new_password", m))?;
    let limits = state.login_limits;
    let user_id = caller.user_id;
    let stored = db::run(&state.pool, move |conn| {
        ratelimit::hit(
            conn,
            &format!("password:{user_id}"),
            limits.per_phone,
            limits.window_secs,
        )?;
        Ok(users::get(conn, user_id)?.password_hash)
    })
    .await?;
    if current_password.len() > 1024
        || !state
            .hasher
            .verify(current_password, Some(stored.clone()))
            .await?
    {
        return Err(Error::field(
            "current_password",
            "is not your current password",
        ));
    }
    let new_hash = state.hasher.hash(new_password).await?;
    db::run(&state.pool, move |conn| {
        credentials::change_password(conn, &caller, &stored, &new_hash)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set a new password with a one-time code from the village office. Every session of the
/// person ends. Rate limited like login.
#[utoipa::path(
    tag = "auth",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "password set"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "unknown phone, or the code is wrong, used or expired"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password-reset")]
async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<PasswordReset>,
) -> Result<HttpResponse> {
    let PasswordReset {
        phone: raw_phone,
        code,
        new_password,
    } = body.0;
    let phone = phone::normalize(&raw_phone).map_err(|m| Error::field("phone", m))?;
    password::validate(&new_password).map_err(|m| Error::field("new_password", m))?;
    let invalid = || Error::Unauthorized("invalid phone or reset code".into());
    if code.len() > 64 {
        return Err(invalid());
    }
    let address = client_address(&req, &state);
    let limits = state.login_limits;
    let found = db::run(&state.pool, move |conn| {
        ratelimit::hit_attempt(conn, &limits, &address, &format!("reset:{phone}"))?;
        credentials::find_reset(conn, &phone, &code)
    })
    .await?;
    let Some((reset, user)) = found else {
        return Err(invalid());
    };
    let new_hash = state.hasher.hash(new_password).await?;
    let done = db::run(&state.pool, move |conn| {
        credentials::redeem_reset(conn, reset, user, &new_hash)
    })
    .await?;
    if !done {
        return Err(invalid());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Issue a one-time password reset code for a member (admins and treasurers of the village;
/// see the rules in the description of `/auth/password-reset`). Hand it over in person.
#[utoipa::path(
    tag = "villages",
    security(("bearer" = [])),
    params(("code" = String, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 201, body = ResetCode),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/villages/{code}/members/{user_id}/password-reset")]
async fn issue_reset_code(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse> {
    let (village, user_id) = path.into_inner();
    let code = db::run(&state.pool, move |conn| {
        credentials::issue_reset(conn, &caller, &village, user_id)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(code))
}
