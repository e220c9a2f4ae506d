//! Cursor pagination: `?limit=` (default 20, max 100) and an opaque `?cursor=` that encodes the
//! sort key of the last item returned (keyset pagination: inserts never shift a page).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{Error, Result};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// Paging of a list that takes no other parameter; anything else in the query is a 400.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1..=100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l),
            Some(_) => Err(Error::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    pub fn cursor<K: DeserializeOwned>(&self) -> Result<Option<K>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// A page of items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("cursor keys serialize"))
}

pub fn decode_cursor<K: DeserializeOwned>(s: &str) -> Result<K> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Error::field("cursor", "not a cursor returned by this API"))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is a next page.
pub fn page<R, T, K: Serialize>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> K,
    map: impl FnMut(R) -> T,
) -> Page<T> {
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(&key(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let key = (0.75_f64, "34.02".to_string());
        let c = encode_cursor(&key);
        let back: (f64, String) = decode_cursor(&c).unwrap();
        assert_eq!(back, key);
        assert!(decode_cursor::<(f64, String)>("not-base64!").is_err());
        assert!(decode_cursor::<(f64, String)>(&encode_cursor(&42)).is_err());
    }

    #[test]
    fn limit_bounds() {
        let p = |l| PageParams {
            limit: l,
            cursor: None,
        };
        assert_eq!(p(None).limit().unwrap(), 20);
        assert_eq!(p(Some(100)).limit().unwrap(), 100);
        assert!(p(Some(0)).limit().is_err());
        assert!(p(Some(101)).limit().is_err());
    }

    #[test]
    fn page_uses_extra_row_for_next_cursor() {
        let pg = page(vec![1, 2, 3], 2, |r| *r, |r| r * 10);
        assert_eq!(pg.items, vec![10, 20]);
        assert_eq!(
            decode_cursor::<i32>(pg.next_cursor.as_deref().unwrap()).unwrap(),
            2
        );
        let last = page(vec![1, 2], 2, |r| *r, |r| r);
        assert!(last.next_cursor.is_none());
    }
}
