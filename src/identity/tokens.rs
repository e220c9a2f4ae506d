//! Access tokens (JWT, HS256, 15 minutes, scoped to one village) and the [`Caller`] extractor.
//!
//! Validation is strict: one algorithm, every claim required, `nbf` checked, leeway 5 s, and the
//! header's `kid` must name a key of the server's key map (so keys can rotate).

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::http::error::{Error, Result};
use crate::state::AppState;

pub const ACCESS_TTL_SECS: i64 = 15 * 60;
const LEEWAY_SECS: u64 = 5;

crate::text_enum! {
    /// A role of a user in one village. `platform_admin` is global (a flag on the user) and
    /// appears in tokens as a role.
    pub enum Role {
        Admin = "admin",
        Treasurer = "treasurer",
        Member = "member",
        PlatformAdmin = "platform_admin",
    }
}

impl Role {
    /// Roles a village admin may grant (platform admin is not a village role).
    pub fn parse_village_role(s: &str) -> Option<Role> {
        Role::parse(s).filter(|r| r.is_village_role())
    }

    pub fn is_village_role(self) -> bool {
        self != Role::PlatformAdmin
    }
}

/// The `village` claim of a platform-scoped token (a platform admin who logged in without a
/// village): it equals no village code, so every tenancy check of a village fails for it.
pub const PLATFORM_SCOPE: &str = "";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    /// The village the token is scoped to; [`PLATFORM_SCOPE`] for a platform-scoped token.
    pub village: String,
    pub roles: Vec<Role>,
    /// The login session (refresh family) the token was issued in.
    pub sid: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

pub struct TokenKeys {
    signing_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    /// `keys`: `(kid, secret)`; the first one signs, every one verifies.
    pub fn new(keys: &[(String, Vec<u8>)], issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let (signing_kid, secret) = keys.first().ok_or_else(|| anyhow::anyhow!("no JWT key"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["sub", "iat", "nbf", "exp", "iss", "aud"]);
        Ok(Self {
            signing_kid: signing_kid.clone(),
            encoding: EncodingKey::from_secret(secret),
            decoding: keys
                .iter()
                .map(|(kid, s)| (kid.clone(), DecodingKey::from_secret(s)))
                .collect(),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        })
    }

    pub fn issue(&self, user: Uuid, village: &str, roles: Vec<Role>, sid: Uuid) -> Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            village: village.to_string(),
            roles,
            sid,
            iat: now,
            nbf: now,
            exp: now + ACCESS_TTL_SECS,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::now_v7(),
        };
        self.sign(&claims)
    }

    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| Error::Internal(anyhow::anyhow!("signing a token: {e}")))
    }

    pub fn verify(&self, token: &str) -> Result<Claims> {
        let invalid = || Error::Unauthorized("invalid or expired access token".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::HS256 {
            return Err(invalid());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or_else(invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            tracing::debug!(error = %e, "access token rejected");
            invalid()
        })?;
        Ok(data.claims)
    }
}

/// The authenticated caller: who, in which village, with which roles — as the token says. The
/// roles are a snapshot (up to 15 minutes old), good for reads; writes that change privileges,
/// settings or money authorize with [`super::authz::current`] instead.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    /// The token's village; [`PLATFORM_SCOPE`] when platform-scoped.
    pub village: String,
    pub roles: Vec<Role>,
    pub session: Uuid,
}

impl Caller {
    /// A caller outside any login session (the command line: `pasar seed`, fixtures). Its writes
    /// are authorized against the database like any other.
    pub fn offline(user_id: Uuid, village: &str, roles: Vec<Role>) -> Self {
        Caller {
            user_id,
            village: village.to_string(),
            roles,
            session: Uuid::nil(),
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.has(Role::PlatformAdmin)
    }

    /// Admin of `village`, acting through a token scoped to it.
    pub fn is_village_admin(&self, village: &str) -> bool {
        self.village == village && self.has(Role::Admin)
    }

    /// Any village role (member, treasurer or admin) in `village`.
    pub fn is_member_of(&self, village: &str) -> bool {
        self.village == village
            && self
                .roles
                .iter()
                .any(|r| matches!(r, Role::Admin | Role::Treasurer | Role::Member))
    }
}

fn bearer(req: &HttpRequest) -> Option<Result<String>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .ok_or_else(|| Error::Unauthorized("Authorization must be `Bearer <token>`".into()));
    Some(parsed)
}

fn caller_from(req: &HttpRequest) -> Option<Result<Caller>> {
    let token = match bearer(req)? {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    Some(state.tokens.verify(&token).map(|c| Caller {
        user_id: c.sub,
        village: c.village,
        roles: c.roles,
        session: c.sid,
    }))
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_from(req).unwrap_or_else(|| {
            Err(Error::Unauthorized(
                "this request needs `Authorization: Bearer <token>`".into(),
            ))
        }))
    }
}

/// For public endpoints that personalise when signed in. A token that is present but invalid is
/// still a 401: silently ignoring it would hide a client bug.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_from(req).transpose().map(MaybeCaller))
    }
}

pub type SharedKeys = Arc<TokenKeys>;

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &[("k1".into(), b"0123456789abcdef0123456789abcdef".to_vec())],
            "pasar",
            "pasar-api",
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let user = Uuid::now_v7();
        let t = k
            .issue(user, "34.02.15.2004", vec![Role::Member], Uuid::now_v7())
            .unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, user);
        assert_eq!(c.village, "34.02.15.2004");
        assert_eq!(c.roles, vec![Role::Member]);
    }

    #[test]
    fn rejects_other_keys_and_garbage() {
        let k = keys();
        let other = TokenKeys::new(
            &[("k1".into(), b"ffffffffffffffffffffffffffffffff".to_vec())],
            "pasar",
            "pasar-api",
        )
        .unwrap();
        let t = other
            .issue(Uuid::now_v7(), "34", vec![], Uuid::now_v7())
            .unwrap();
        assert!(k.verify(&t).is_err());
        assert!(k.verify("a.b.c").is_err());
        assert!(k.verify("").is_err());
    }
}
