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
    #[param(minimum = 1, maximum = 100)]
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

/// A float sort key (a search score) in a cursor, carried as the 16 hex digits of its bits.
/// JSON's decimal form does not bring every `f64` back bit for bit (serde_json parses some
/// 17-digit and subnormal values one ULP off), and a key that comes back different makes the
/// next page repeat or skip items. Only finite values are accepted back.
#[derive(Debug, Clone, Copy)]
pub struct ExactF64(pub f64);

impl PartialEq for ExactF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Serialize for ExactF64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", self.0.to_bits()))
    }
}

impl<'de> Deserialize<'de> for ExactF64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        let f = (hex.len() == 16)
            .then(|| u64::from_str_radix(&hex, 16).ok())
            .flatten()
            .map(f64::from_bits)
            .filter(|f| f.is_finite())
            .ok_or_else(|| serde::de::Error::custom("not an encoded finite f64"))?;
        Ok(ExactF64(f))
    }
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
    fn floats_round_trip_bit_for_bit() {
        for f in [
            0.1 + 0.2,
            // 17 significant digits that serde_json's decimal parsing brings back one ULP off.
            f64::from_bits(0x4004_c7f7_5c88_9425), // 2.5976397732906826
            f64::from_bits(0x3fba_dd5e_ff2a_b9f8), // 0.10494035463009499
            f64::from_bits(0x000d_02e7_7e6a_4427), // a subnormal, 1.809450200770395e-308
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            -0.0,
            0.0,
        ] {
            let back: (ExactF64, String) =
                decode_cursor(&encode_cursor(&(ExactF64(f), "x".to_string()))).unwrap();
            assert_eq!(back.0.0.to_bits(), f.to_bits(), "{f:e}");
        }
        for bad in [
            "\"7ff8000000000000\"", // NaN
            "\"7ff0000000000000\"", // infinity
            "\"3ff\"",
            "\"zzzzzzzzzzzzzzzz\"",
            "0.5",
        ] {
            assert!(serde_json::from_str::<ExactF64>(bad).is_err(), "{bad}");
        }
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
