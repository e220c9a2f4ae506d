//! Product fields: validation and the price arithmetic. Pure functions, unit-tested.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::FieldError;
pub use crate::http::error::text_field as validate_text;

pub const MIN_PRICE_IDR: i64 = 100;
pub const MAX_PRICE_IDR: i64 = 2_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_PHOTOS: usize = 5;
pub const MAX_CERTIFICATIONS: usize = 10;
/// Units sellers pick from; anything else is a custom unit of at most 20 characters.
pub const KNOWN_UNITS: [&str; 12] = [
    "kg", "gram", "liter", "ml", "pcs", "ikat", "pack", "karung", "botol", "lusin", "porsi",
    "paket",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// `percent` (1..=99) or `amount` (rupiah, less than the price).
    pub kind: DiscountKind,
    pub value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    Percent,
    Amount,
}

impl DiscountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountKind::Percent => "percent",
            DiscountKind::Amount => "amount",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "percent" => Some(DiscountKind::Percent),
            "amount" => Some(DiscountKind::Amount),
            _ => None,
        }
    }
}

/// The price a buyer pays: the discount rounds in the buyer's favour by at most one rupiah
/// (percent discounts are floored on the seller's side), and the result is never below 1.
pub fn final_price(price_idr: i64, discount: Option<Discount>) -> i64 {
    let cut = match discount {
        None => 0,
        Some(Discount {
            kind: DiscountKind::Percent,
            value,
        }) => {
            // i128: price × percent cannot overflow.
            ((price_idr as i128 * value as i128) / 100) as i64
        }
        Some(Discount {
            kind: DiscountKind::Amount,
            value,
        }) => value,
    };
    (price_idr - cut).max(1)
}

pub fn validate_price(price: i64, errors: &mut Vec<FieldError>) {
    if !(MIN_PRICE_IDR..=MAX_PRICE_IDR).contains(&price) {
        errors.push(FieldError::new(
            "price_idr",
            format!("{MIN_PRICE_IDR} to {MAX_PRICE_IDR} rupiah"),
        ));
    }
}

pub fn validate_discount(price: i64, d: &Discount, errors: &mut Vec<FieldError>) {
    match d.kind {
        DiscountKind::Percent if !(1..=99).contains(&d.value) => errors.push(FieldError::new(
            "discount.value",
            "a percent discount is 1 to 99",
        )),
        DiscountKind::Amount if d.value < 1 || d.value >= price => errors.push(FieldError::new(
            "discount.value",
            "an amount discount is at least 1 and less than price_idr",
        )),
        _ => {}
    }
}

pub fn validate_unit(unit: &str, errors: &mut Vec<FieldError>) -> String {
    let u = unit.trim().to_lowercase();
    if KNOWN_UNITS.contains(&u.as_str()) {
        return u;
    }
    validate_text("unit", unit, 1, 20, errors)
}

pub fn validate_stock(field: &str, stock: i64, errors: &mut Vec<FieldError>) {
    if !(0..=MAX_STOCK).contains(&stock) {
        errors.push(FieldError::new(field, format!("0 to {MAX_STOCK}")));
    }
}

/// A stock adjustment: non-zero and at most [`MAX_STOCK`] either way. Compared as a range, not
/// with `abs()`, which overflows on `i64::MIN`.
pub fn validate_delta(delta: i64, errors: &mut Vec<FieldError>) {
    if delta == 0 || !(-MAX_STOCK..=MAX_STOCK).contains(&delta) {
        errors.push(FieldError::new(
            "delta",
            format!("non-zero, -{MAX_STOCK} to {MAX_STOCK}"),
        ));
    }
}

pub fn validate_weight(w: i64, errors: &mut Vec<FieldError>) {
    if !(1..=1_000_000).contains(&w) {
        errors.push(FieldError::new("weight_grams", "1 to 1000000 grams"));
    }
}

pub fn validate_photos(urls: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if urls.len() > MAX_PHOTOS {
        errors.push(FieldError::new(
            "photo_urls",
            format!("at most {MAX_PHOTOS} photos"),
        ));
    }
    for (i, u) in urls.iter().enumerate() {
        let ok = u.len() <= 2048
            && url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
        if !ok {
            errors.push(FieldError::new(
                format!("photo_urls[{i}]"),
                "an http or https URL",
            ));
        }
    }
    urls.to_vec()
}

/// Certifications (halal, pirt, organik, sni, bpom, …): lower-case words, deduplicated.
pub fn validate_certifications(certs: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if certs.len() > MAX_CERTIFICATIONS {
        errors.push(FieldError::new(
            "certifications",
            format!("at most {MAX_CERTIFICATIONS}"),
        ));
    }
    let mut out = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let c = c.trim().to_lowercase();
        if c.is_empty() || c.chars().count() > 40 || c.chars().any(|ch| ch.is_control()) {
            errors.push(FieldError::new(
                format!("certifications[{i}]"),
                "1 to 40 characters",
            ));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

crate::text_enum! {
    /// Where a product is in its life. Only `active` sells; `active` and `inactive` are public
    /// (published); `archived` is how a product is deleted.
    pub enum ProductStatus {
        Draft = "draft",
        Active = "active",
        Inactive = "inactive",
        Archived = "archived",
    }
}

/// The status changes a seller may make, and nothing else: a published product never returns
/// to draft, and archived is final (deleting archives). Staying in a status is not a change.
const TRANSITIONS: &[(ProductStatus, &[ProductStatus])] = {
    use ProductStatus::*;
    &[
        (Draft, &[Active, Inactive, Archived]),
        (Active, &[Inactive, Archived]),
        (Inactive, &[Active, Archived]),
        (Archived, &[]),
    ]
};

impl ProductStatus {
    /// Statuses a new product may start in (it is never created deleted).
    pub fn can_start_as(self) -> bool {
        self != ProductStatus::Archived
    }

    pub fn can_become(self, to: ProductStatus) -> bool {
        self == to
            || TRANSITIONS
                .iter()
                .any(|(from, tos)| *from == self && tos.contains(&to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(v: i64) -> Option<Discount> {
        Some(Discount {
            kind: DiscountKind::Percent,
            value: v,
        })
    }
    fn amt(v: i64) -> Option<Discount> {
        Some(Discount {
            kind: DiscountKind::Amount,
            value: v,
        })
    }

    #[test]
    fn final_prices() {
        assert_eq!(final_price(25_000, None), 25_000);
        assert_eq!(final_price(25_000, pct(10)), 22_500);
        // 15% of 999 is 149.85: the seller gives 149, the buyer pays 850.
        assert_eq!(final_price(999, pct(15)), 850);
        assert_eq!(final_price(100, pct(99)), 1);
        assert_eq!(final_price(25_000, amt(5_000)), 20_000);
        assert_eq!(final_price(25_000, amt(24_999)), 1);
        assert_eq!(final_price(25_000, amt(30_000)), 1, "never below 1");
        assert_eq!(final_price(MAX_PRICE_IDR, pct(99)), 20_000_000);
    }

    #[test]
    fn discount_bounds() {
        let check = |price, d: Discount| {
            let mut e = Vec::new();
            validate_discount(price, &d, &mut e);
            e.is_empty()
        };
        assert!(check(
            1000,
            Discount {
                kind: DiscountKind::Percent,
                value: 1
            }
        ));
        assert!(check(
            1000,
            Discount {
                kind: DiscountKind::Percent,
                value: 99
            }
        ));
        assert!(!check(
            1000,
            Discount {
                kind: DiscountKind::Percent,
                value: 0
            }
        ));
        assert!(!check(
            1000,
            Discount {
                kind: DiscountKind::Percent,
                value: 100
            }
        ));
        assert!(check(
            1000,
            Discount {
                kind: DiscountKind::Amount,
                value: 999
            }
        ));
        assert!(!check(
            1000,
            Discount {
                kind: DiscountKind::Amount,
                value: 1000
            }
        ));
        assert!(!check(
            1000,
            Discount {
                kind: DiscountKind::Amount,
                value: 0
            }
        ));
    }

    #[test]
    fn units_photos_certifications() {
        let mut e = Vec::new();
        assert_eq!(validate_unit(" KG ", &mut e), "kg");
        assert_eq!(validate_unit("tandan", &mut e), "tandan");
        assert!(e.is_empty());
        validate_unit("satuan-yang-terlalu-panjang", &mut e);
        assert_eq!(e[0].field, "unit");
        let mut e = Vec::new();
        validate_photos(
            &[
                "https://x.id/a.jpg".into(),
                "ftp://x.id/b".into(),
                "nope".into(),
            ],
            &mut e,
        );
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["photo_urls[1]", "photo_urls[2]"]);
        let mut e = Vec::new();
        assert_eq!(
            validate_certifications(&["Halal".into(), "halal".into(), "PIRT".into()], &mut e),
            ["halal", "pirt"]
        );
    }

    #[test]
    fn delta_bounds() {
        let ok = |d| {
            let mut e = Vec::new();
            validate_delta(d, &mut e);
            e.is_empty()
        };
        assert!(ok(1) && ok(-1) && ok(MAX_STOCK) && ok(-MAX_STOCK));
        for bad in [0, MAX_STOCK + 1, -MAX_STOCK - 1, i64::MIN, i64::MAX] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn status_transition_table() {
        use ProductStatus::*;
        // from → [to draft, to active, to inactive, to archived], written out by hand.
        let expected = [
            (Draft, [true, true, true, true]),
            (Active, [false, true, true, true]),
            (Inactive, [false, true, true, true]),
            (Archived, [false, false, false, true]),
        ];
        for (from, row) in expected {
            for (to, allowed) in [Draft, Active, Inactive, Archived].into_iter().zip(row) {
                assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
            }
        }
        assert_eq!(
            ProductStatus::ALL.len(),
            4,
            "a new status needs its row above"
        );
        assert!(Draft.can_start_as() && Active.can_start_as() && Inactive.can_start_as());
        assert!(!Archived.can_start_as());
    }
}
