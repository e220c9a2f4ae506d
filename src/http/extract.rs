//! Request extractors that answer bad input with our problem documents, naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::{Error, FieldError};

/// Largest JSON body accepted.
pub const JSON_LIMIT: usize = 64 * 1024;

/// JSON body extractor: checks the content type and size, and reports the path of the field
/// that failed (`lines[1].quantity`), including unknown fields.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload, false);
        Box::pin(async move { parse_json(&body.await?).map(Json) })
    }
}

/// [`Json`] that also keeps the SHA-256 of the raw body bytes, for `Idempotency-Key` requests
/// (see [`crate::http::idempotency`]): the same bytes are the same request. Bad input is refused
/// exactly as by [`Json`].
pub struct HashedJson<T> {
    pub value: T,
    pub body_hash: [u8; 32],
}

impl<T: DeserializeOwned + 'static> FromRequest for HashedJson<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload, false);
        Box::pin(async move {
            let body = body.await?;
            Ok(HashedJson {
                value: parse_json(&body)?,
                body_hash: sha256(&body),
            })
        })
    }
}

/// [`HashedJson`] for actions whose body is optional (`/accept` with no body, or `{}`): a request
/// without a body (and then without a content type) gives `T::default()` and the hash of the
/// empty body; any other body is read as by [`HashedJson`]. The hash is of the bytes as sent, so
/// no body and `{}` are different requests under one key (a retry resends the same bytes).
pub struct HashedJsonOrEmpty<T> {
    pub value: T,
    pub body_hash: [u8; 32],
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for HashedJsonOrEmpty<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json_body(req, payload, true);
        Box::pin(async move {
            let body = body.await?;
            Ok(HashedJsonOrEmpty {
                value: if body.is_empty() {
                    T::default()
                } else {
                    parse_json(&body)?
                },
                body_hash: sha256(&body),
            })
        })
    }
}

/// The body of an action that takes no fields: `{}` (or no body, with [`HashedJsonOrEmpty`]);
/// any member is an unknown field.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// SHA-256 of `bytes` (`sha256(b"")` is the hash of a request without a body).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads a JSON body whole: refuses another content type (before reading, so a wrong client
/// learns it cheaply) and a body over [`JSON_LIMIT`]. With `may_be_empty`, a body of no bytes
/// needs no content type.
fn read_json_body(
    req: &HttpRequest,
    payload: &mut Payload,
    may_be_empty: bool,
) -> impl Future<Output = Result<web::Bytes, Error>> + 'static {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    let mut payload = payload.take();
    let not_json = || Error::BadRequest("Content-Type must be application/json".into());
    async move {
        if !is_json && !may_be_empty {
            return Err(not_json());
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| Error::BadRequest(format!("cannot read body: {e}")))?;
            if body.len() + chunk.len() > JSON_LIMIT {
                return Err(Error::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        if !is_json && !body.is_empty() {
            return Err(not_json());
        }
        Ok(body.freeze())
    }
}

/// Parses JSON, turning serde's message into a field error with the path of the bad field.
///
/// A whole-number float (`93.0`, `1e3`) is read as the integer it equals, when it fits an `i64`:
/// JSON Schema (and so the OpenAPI document) calls such a number an integer, and a client that
/// writes every number as a float must not be refused for it.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    // One document and nothing after it but whitespace: `from_slice` refuses `{…}x`, `{…}}`
    // and `{…}{…}` as malformed.
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("malformed JSON: {e}")))?;
    // Straight from the bytes first: that also refuses a member given twice, which a
    // `serde_json::Value` would silently collapse.
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut *de) {
        Ok(v) => Ok(v),
        Err(first) => {
            // Only when whole-number floats are what it refused is the value read again.
            let mut fixed = value.clone();
            integral_floats_to_integers(&mut fixed);
            if fixed == value {
                return Err(field_error(first));
            }
            serde_path_to_error::deserialize(fixed).map_err(field_error)
        }
    }
}

/// A deserialization error as a field error naming the path of the bad member.
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let msg = inner.to_string();
    // Drop serde_json's " at line 1 column 7" suffix: the field path says where.
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let field = if let Some(name) = backticked_after(&msg, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        if path == name || path.ends_with(&format!(".{name}")) {
            path
        } else {
            join_path(&path, name)
        }
    } else if let Some(name) = backticked_after(&msg, "missing field `") {
        join_path(&path, name)
    } else if path == "." {
        "body".to_string()
    } else {
        path
    };
    Error::Validation(vec![FieldError::new(field, msg)])
}

/// Replaces, everywhere in `value`, each finite float without a fractional part that lies in
/// the `i64` range by that integer. Other numbers stay as they are (and so `12.5` or `1e40` is
/// still refused where an integer is expected).
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return };
            // -2^63 ..= 2^63 - 1: the upper bound is exclusive as 2^63 is not an i64.
            if f.is_finite()
                && f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(members) => members.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

pub(crate) fn backticked_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let start = msg.find(prefix)? + prefix.len();
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

fn join_path(parent: &str, name: &str) -> String {
    if parent == "." || parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// For PATCH fields where `null` clears and absence keeps: absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(v))`. Use with `#[serde(default)]`.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: i32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        price_idr: i64,
        lines: Vec<Line>,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(Error::Validation(errs)) => errs[0].field.clone(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(field_of(r#"{"price_idr":"x","lines":[]}"#), "price_idr");
        assert_eq!(field_of(r#"{"price_idr":1e40,"lines":[]}"#), "price_idr");
        assert_eq!(
            field_of(r#"{"price_idr":1,"lines":[{"quantity":1},{"quantity":-1.5}]}"#),
            "lines[1].quantity"
        );
        assert_eq!(
            field_of(r#"{"price_idr":1,"lines":[],"colour":"red"}"#),
            "colour"
        );
        assert_eq!(field_of(r#"{"lines":[]}"#), "price_idr");
        assert_eq!(field_of(r#"[1]"#), "body");
    }

    use actix_web::test::TestRequest;

    /// What `Json<T>` and `HashedJson<T>` make of one request: the problem, or the body hash.
    async fn both(
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (Result<(), String>, Result<[u8; 32], String>) {
        let build = || {
            let mut r = TestRequest::post().set_payload(body.clone());
            if let Some(ct) = content_type {
                r = r.insert_header((header::CONTENT_TYPE, ct));
            }
            r.to_http_parts()
        };
        let problem = |e: Error| serde_json::to_string(&e.problem()).unwrap();
        let (req, mut pl) = build();
        let plain = Json::<Body>::from_request(&req, &mut pl)
            .await
            .map(|_| ())
            .map_err(problem);
        let (req, mut pl) = build();
        let hashed = HashedJson::<Body>::from_request(&req, &mut pl)
            .await
            .map(|h| h.body_hash)
            .map_err(problem);
        (plain, hashed)
    }

    #[actix_web::test]
    async fn hashed_json_hashes_the_raw_bytes() {
        let (req, mut pl) = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(r#"{"a":1}"#)
            .to_http_parts();
        let h = HashedJson::<serde_json::Value>::from_request(&req, &mut pl)
            .await
            .unwrap();
        assert_eq!(h.value, serde_json::json!({"a": 1}));
        let expected: [u8; 32] = Sha256::digest(br#"{"a":1}"#).into();
        assert_eq!(h.body_hash, expected);
        // Same value, other bytes: another hash.
        let (plain, hashed) = both(
            Some("application/json"),
            br#"{"price_idr":1,"lines":[]}"#.to_vec(),
        )
        .await;
        assert!(plain.is_ok());
        let (_, spaced) = both(
            Some("application/json"),
            br#"{"price_idr": 1, "lines": []}"#.to_vec(),
        )
        .await;
        assert_ne!(hashed.unwrap(), spaced.unwrap());
    }

    #[actix_web::test]
    async fn hashed_json_refuses_exactly_like_json() {
        let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
            (None, br#"{"price_idr":1,"lines":[]}"#.to_vec()),
            (
                Some("text/plain"),
                br#"{"price_idr":1,"lines":[]}"#.to_vec(),
            ),
            (Some("application/json"), b"".to_vec()),
            (Some("application/json"), b"{\"price_idr\":".to_vec()),
            (
                Some("application/json"),
                br#"{"price_idr":"x","lines":[]}"#.to_vec(),
            ),
            (
                Some("application/json"),
                br#"{"price_idr":1,"lines":[],"colour":1}"#.to_vec(),
            ),
            (Some("application/json"), vec![b' '; JSON_LIMIT + 1]),
        ];
        for (ct, body) in cases {
            let (plain, hashed) = both(ct, body).await;
            let plain = plain.expect_err("refused");
            assert_eq!(Err(plain), hashed.map(|_| ()));
        }
    }

    #[actix_web::test]
    async fn hashed_json_or_empty_takes_no_body_or_json() {
        let run = |ct: Option<&'static str>, body: &'static [u8]| async move {
            let mut r = TestRequest::post().set_payload(body);
            if let Some(ct) = ct {
                r = r.insert_header((header::CONTENT_TYPE, ct));
            }
            let (req, mut pl) = r.to_http_parts();
            HashedJsonOrEmpty::<NoFields>::from_request(&req, &mut pl).await
        };
        let empty = run(None, b"").await.unwrap();
        assert_eq!(empty.body_hash, sha256(b""));
        assert_eq!(
            run(Some("application/json"), b"").await.unwrap().body_hash,
            sha256(b"")
        );
        let braces = run(Some("application/json"), b"{}").await.unwrap();
        assert_eq!(braces.body_hash, sha256(b"{}"));
        assert!(matches!(run(None, b"{}").await, Err(Error::BadRequest(_))));
        match run(Some("application/json"), br#"{"x":1}"#).await {
            Err(Error::Validation(errs)) => assert_eq!(errs[0].field, "x"),
            other => panic!("expected an unknown field, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn trailing_characters_are_malformed() {
        let ok = br#"{"price_idr":1,"lines":[]}"#;
        assert!(parse_json::<Body>(ok).is_ok());
        assert!(parse_json::<Body>(b" {\"price_idr\":1,\"lines\":[]} \n").is_ok());
        for tail in [&b"x"[..], b"}", br#"{"price_idr":1,"lines":[]}"#, b"\0"] {
            let body = [&ok[..], tail].concat();
            assert!(
                matches!(parse_json::<Body>(&body), Err(Error::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn whole_number_floats_are_integers() {
        let b: Body =
            parse_json(br#"{"price_idr":93.0,"lines":[{"quantity":2.0},{"quantity":1e1}]}"#)
                .unwrap();
        assert_eq!(b.price_idr, 93);
        assert_eq!(b.lines[0].quantity, 2);
        assert_eq!(b.lines[1].quantity, 10);
        let neg: Body = parse_json(br#"{"price_idr":-0.0,"lines":[]}"#).unwrap();
        assert_eq!(neg.price_idr, 0);
        let min: Body = parse_json(br#"{"price_idr":-9223372036854775808.0,"lines":[]}"#).unwrap();
        assert_eq!(min.price_idr, i64::MIN);
        // A fraction, or a whole number outside i64, is still refused, naming the field.
        assert_eq!(field_of(r#"{"price_idr":12.5,"lines":[]}"#), "price_idr");
        assert_eq!(
            field_of(r#"{"price_idr":9223372036854775808.0,"lines":[]}"#),
            "price_idr"
        );
        assert_eq!(
            field_of(r#"{"price_idr":1,"lines":[{"quantity":3000000000.0}]}"#),
            "lines[0].quantity"
        );
        // Floats stay floats where a float is expected.
        let v: serde_json::Value = parse_json(br#"{"x":1.5}"#).unwrap();
        assert_eq!(v, serde_json::json!({"x": 1.5}));
    }

    #[test]
    fn malformed_json_is_bad_request() {
        assert!(matches!(
            parse_json::<Body>(b"{\"price_idr\":"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"not json"),
            Err(Error::BadRequest(_))
        ));
    }
}
