//! Splitting a completed sale between the seller and the fees, in integer rupiah.
//!
//! Rounding rule: each fee is `floor(items_total × bps / 10 000)` (so a fee never exceeds its
//! rate), and the seller receives everything else: the items' remainder plus the whole delivery
//! fee (delivery is the seller's cost, not a sale). The parts always add up to the order's
//! total exactly: no rupiah is created or lost.

/// Rates snapshot on an order, in basis points (1 bp = 0.01 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub network_fee_bps: i32,
    pub village_share_bps: i32,
    pub platform_fee_bps: i32,
}

impl Rates {
    /// Together at most 100 %, each within 0..=10 000.
    pub fn valid(self) -> bool {
        let parts = [
            self.network_fee_bps,
            self.village_share_bps,
            self.platform_fee_bps,
        ];
        parts.iter().all(|b| (0..=10_000).contains(b)) && parts.iter().sum::<i32>() <= 10_000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub seller: i64,
    pub network_fee: i64,
    pub village_share: i64,
    pub platform_fee: i64,
}

fn fee(amount: i64, bps: i32) -> i64 {
    // i128: amount × 10 000 cannot overflow.
    (i128::from(amount) * i128::from(bps) / 10_000) as i64
}

/// Splits an order (`items_total` + `delivery_fee`). Both ≥ 0 and rates valid.
pub fn split(items_total: i64, delivery_fee: i64, rates: Rates) -> Split {
    debug_assert!(rates.valid() && items_total >= 0 && delivery_fee >= 0);
    let network_fee = fee(items_total, rates.network_fee_bps);
    let village_share = fee(items_total, rates.village_share_bps);
    let platform_fee = fee(items_total, rates.platform_fee_bps);
    Split {
        seller: items_total - network_fee - village_share - platform_fee + delivery_fee,
        network_fee,
        village_share,
        platform_fee,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_example() {
        // Rp 12.345 of goods, Rp 5.000 delivery, 1 % network, 2 % village.
        let s = split(
            12_345,
            5_000,
            Rates {
                network_fee_bps: 100,
                village_share_bps: 200,
                platform_fee_bps: 0,
            },
        );
        assert_eq!(s.network_fee, 123);
        assert_eq!(s.village_share, 246);
        assert_eq!(s.platform_fee, 0);
        assert_eq!(s.seller, 12_345 - 123 - 246 + 5_000);
    }

    fn rates() -> impl Strategy<Value = Rates> {
        (0..=10_000i32, 0..=10_000i32, 0..=10_000i32)
            .prop_filter("at most 100 % together", |(a, b, c)| a + b + c <= 10_000)
            .prop_map(|(a, b, c)| Rates {
                network_fee_bps: a,
                village_share_bps: b,
                platform_fee_bps: c,
            })
    }

    proptest! {
        #[test]
        fn parts_add_up_to_the_total(
            items in 0..=2_000_000_000_000i64,
            delivery in 0..=10_000_000i64,
            r in rates(),
        ) {
            let s = split(items, delivery, r);
            prop_assert_eq!(s.seller + s.network_fee + s.village_share + s.platform_fee, items + delivery);
            prop_assert!(s.seller >= delivery);
            for (part, bps) in [(s.network_fee, r.network_fee_bps), (s.village_share, r.village_share_bps), (s.platform_fee, r.platform_fee_bps)] {
                prop_assert!(part >= 0);
                // Floored: never above the rate, less than a rupiah below it.
                prop_assert!(i128::from(part) * 10_000 <= i128::from(items) * i128::from(bps));
                prop_assert!(i128::from(part + 1) * 10_000 > i128::from(items) * i128::from(bps));
            }
        }
    }
}
