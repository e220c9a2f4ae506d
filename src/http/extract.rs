//! Request extractors that answer bad input with our problem documents, naming the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

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
        Box::pin(async move {
            if !is_json {
                return Err(Error::BadRequest(
                    "Content-Type must be application/json".into(),
                ));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| Error::BadRequest(format!("cannot read body: {e}")))?;
                if body.len() + chunk.len() > JSON_LIMIT {
                    return Err(Error::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(Json)
        })
    }
}

/// Parses JSON, turning serde's message into a field error with the path of the bad field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return Error::BadRequest(format!("malformed JSON: {inner}"));
        }
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
    })
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
