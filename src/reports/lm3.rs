//! LM3, the New Economics Foundation's Local Multiplier 3: (round 1 + round 2 + round 3) ÷
//! round 1, where round 1 is the money that came into an area, round 2 what its first holders
//! spent inside the area, round 3 what the sellers of round 2 spent inside it in turn.
//!
//! The ledger does not label a rupiah, so re-spend is attributed pro rata. Within a period each
//! holder h (a user: wallet and aid balances; a shop: its wallet) has a total inflow T_h (every
//! credit to its accounts except refunds), a round-k income I_k(h) and a local spend L_h
//! (completed orders it bought at sellers inside the area, `total_idr`). Its round-(k+1)
//! spend is s_h = min(I_k(h), L_h × I_k(h) ÷ T_h); each seller s it bought from receives
//! s_h × net(h→s) ÷ L_h as round-(k+1) income, where net is what the seller's wallet was
//! credited at settlement for those orders (fees go to village, network and platform accounts
//! and end the chain there). Round k+1 = Σ s_h.
//!
//! Arithmetic is integer: amounts in micro-rupiah (i128), each division rounded down, so a
//! round is never overstated; the rounds are reported in whole rupiah (floor) and the ratio is
//! the only floating-point step. Amounts up to 10^15 rupiah fit.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Micro-rupiah per rupiah.
pub const SCALE: i128 = 1_000_000;

/// One holder's total inflow in the period, T_h (rupiah).
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub id: Uuid,
    pub inflow_idr: i64,
}

/// Completed orders from `buyer` at `seller` inside the area: their totals and what the
/// seller's wallet was credited for them (rupiah).
#[derive(Debug, Clone, Copy)]
pub struct Spend {
    pub buyer: Uuid,
    pub seller: Uuid,
    pub amount_idr: i64,
    pub net_idr: i64,
}

/// A round's income per holder, micro-rupiah.
pub type Incomes = BTreeMap<Uuid, i128>;

/// The period's flows, ready for rounds of re-spend.
#[derive(Debug, Default)]
pub struct Economy {
    inflow: BTreeMap<Uuid, i128>,
    /// Per buyer: L_h and net(h→s) per seller.
    spend: BTreeMap<Uuid, (i128, BTreeMap<Uuid, i128>)>,
}

impl Economy {
    pub fn new(holders: &[Holder], spends: &[Spend]) -> Self {
        let mut e = Economy::default();
        for h in holders {
            *e.inflow.entry(h.id).or_default() += i128::from(h.inflow_idr.max(0));
        }
        for s in spends {
            let (l, nets) = e.spend.entry(s.buyer).or_default();
            *l += i128::from(s.amount_idr.max(0));
            *nets.entry(s.seller).or_default() += i128::from(s.net_idr.clamp(0, s.amount_idr));
        }
        e
    }

    /// From round-k incomes: round k+1's total (Σ s_h) and its incomes per seller.
    pub fn respend(&self, income: &Incomes) -> (i128, Incomes) {
        let mut total = 0;
        let mut next = Incomes::new();
        for (h, &i) in income {
            let Some((l, nets)) = self.spend.get(h) else {
                continue;
            };
            if i <= 0 || *l == 0 {
                continue;
            }
            // An income is part of the inflow (T_h >= I_k(h)); should the rollups disagree,
            // T_h is taken as I_k(h), so s_h = min(I, L).
            let t = self.inflow.get(h).copied().unwrap_or(0);
            let s = if t * SCALE < i {
                i.min(l * SCALE)
            } else {
                i.min(l * i / t)
            };
            total += s;
            for (seller, net) in nets {
                *next.entry(*seller).or_default() += s * net / l;
            }
        }
        (total, next)
    }
}

/// The three rounds and the multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Lm3 {
    /// Money entering the area's holders (whole rupiah, rounded down).
    pub round1_idr: i64,
    /// What those holders re-spent inside the area (pro rata; see the LM3 description).
    pub round2_idr: i64,
    /// What the sellers of round 2 re-spent inside the area in turn.
    pub round3_idr: i64,
    /// (round1 + round2 + round3) ÷ round1 from the unrounded rounds, in [1, 3]; null when
    /// round 1 is 0.
    pub lm3: Option<f64>,
}

impl Lm3 {
    /// From rounds in micro-rupiah.
    pub fn from_rounds(r1: i128, r2: i128, r3: i128) -> Lm3 {
        let whole = |r: i128| i64::try_from(r.div_euclid(SCALE)).unwrap_or(i64::MAX);
        Lm3 {
            round1_idr: whole(r1),
            round2_idr: whole(r2),
            round3_idr: whole(r3),
            lm3: (r1 > 0).then(|| (r1 + r2 + r3) as f64 / r1 as f64),
        }
    }
}

/// LM3 from round-1 incomes (rupiah per holder) and the period's flows.
pub fn lm3(round1: &BTreeMap<Uuid, i64>, holders: &[Holder], spends: &[Spend]) -> Lm3 {
    let economy = Economy::new(holders, spends);
    let i1: Incomes = round1
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(h, v)| (*h, i128::from(*v) * SCALE))
        .collect();
    let r1: i128 = i1.values().sum();
    let (r2, i2) = economy.respend(&i1);
    let (r3, _) = economy.respend(&i2);
    Lm3::from_rounds(r1, r2, r3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n + 1)
    }

    fn holders(v: &[(u128, i64)]) -> Vec<Holder> {
        v.iter()
            .map(|(h, t)| Holder {
                id: id(*h),
                inflow_idr: *t,
            })
            .collect()
    }

    fn spend(b: u128, s: u128, amount: i64, net: i64) -> Spend {
        Spend {
            buyer: id(b),
            seller: id(s),
            amount_idr: amount,
            net_idr: net,
        }
    }

    fn r1(v: &[(u128, i64)]) -> BTreeMap<Uuid, i64> {
        v.iter().map(|(h, x)| (id(*h), *x)).collect()
    }

    #[test]
    fn a_closed_loop_without_leaks_is_three() {
        // A is topped up 100 and pays shop B 100; B pays shop C 100; no fees.
        let m = lm3(
            &r1(&[(0, 100)]),
            &holders(&[(0, 100), (1, 100), (2, 100)]),
            &[spend(0, 1, 100, 100), spend(1, 2, 100, 100)],
        );
        assert_eq!((m.round1_idr, m.round2_idr, m.round3_idr), (100, 100, 100));
        assert_eq!(m.lm3, Some(3.0));
    }

    #[test]
    fn money_that_leaves_at_once_is_one() {
        let m = lm3(&r1(&[(0, 100)]), &holders(&[(0, 100)]), &[]);
        assert_eq!((m.round1_idr, m.round2_idr, m.round3_idr), (100, 0, 0));
        assert_eq!(m.lm3, Some(1.0));
    }

    #[test]
    fn nothing_came_in_no_multiplier() {
        let m = lm3(&r1(&[]), &holders(&[(1, 100)]), &[spend(1, 2, 50, 50)]);
        assert_eq!(m.lm3, None);
        assert_eq!(m.round1_idr, 0);
    }

    #[test]
    fn a_pays_b_pays_c_with_leaks_at_each_step() {
        // A: topped up 1,000, spends 600 at shop B (B nets 570 after 5 % fees), the other 400
        // elsewhere. B: 1,430 from buyers outside (round 1 too) + 570 from A = 2,000 in; spends
        // 400 at shop C (no fees). C spends nothing locally.
        let m = lm3(
            &r1(&[(0, 1000), (1, 1430)]),
            &holders(&[(0, 1000), (1, 2000), (2, 400)]),
            &[spend(0, 1, 600, 570), spend(1, 2, 400, 400)],
        );
        // Round 2: A min(1000, 600·1000/1000) = 600; B min(1430, 400·1430/2000) = 286.
        // Round 3: B got 600·570/600 = 570 → min(570, 400·570/2000) = 114; C got 286 → 0.
        assert_eq!((m.round1_idr, m.round2_idr, m.round3_idr), (2430, 886, 114));
        assert_eq!(m.lm3, Some(3430.0 / 2430.0));
    }

    #[test]
    fn the_cap_holds_when_spend_exceeds_the_income_share() {
        // A spends more than it was ever paid (an old balance): only its income counts.
        let m = lm3(
            &r1(&[(0, 100)]),
            &holders(&[(0, 100), (1, 1000)]),
            &[spend(0, 1, 500, 500)],
        );
        assert_eq!(m.round2_idr, 100);
    }

    #[test]
    fn fractions_are_rounded_down_never_up() {
        // 100 in, T = 300, spends 100: s = 33.33… → 33 whole rupiah, lm3 from the exact value.
        let m = lm3(
            &r1(&[(0, 100)]),
            &holders(&[(0, 300)]),
            &[spend(0, 1, 100, 100)],
        );
        assert_eq!(m.round2_idr, 33);
        let lm3 = m.lm3.unwrap();
        assert!((lm3 - (100.0 + 100.0 / 3.0) / 100.0).abs() < 1e-6, "{lm3}");
    }

    proptest! {
        #[test]
        fn lm3_is_between_one_and_three_and_rounds_never_grow(
            inflows in proptest::collection::vec((0u128..6, 0i64..1_000_000), 0..12),
            incomes in proptest::collection::vec((0u128..6, 0i64..1_000_000), 0..8),
            spends in proptest::collection::vec((0u128..6, 0u128..6, 1i64..1_000_000, 0u32..=100), 0..20),
        ) {
            let spends: Vec<Spend> = spends
                .into_iter()
                .filter(|(b, s, _, _)| b != s)
                .map(|(b, s, a, pct)| spend(b, s, a, a * i64::from(pct) / 100))
                .collect();
            let m = lm3(&r1(&incomes), &holders(&inflows), &spends);
            prop_assert!(m.round2_idr <= m.round1_idr);
            prop_assert!(m.round3_idr <= m.round2_idr);
            prop_assert!(m.round3_idr >= 0);
            if let Some(x) = m.lm3 {
                prop_assert!((1.0..=3.0).contains(&x), "lm3 {}", x);
            } else {
                prop_assert_eq!(m.round1_idr, 0);
            }
        }

        #[test]
        fn without_fees_or_other_income_a_chain_keeps_everything(n in 1i64..1_000_000_000) {
            let m = lm3(
                &r1(&[(0, n)]),
                &holders(&[(0, n), (1, n), (2, n)]),
                &[spend(0, 1, n, n), spend(1, 2, n, n)],
            );
            prop_assert_eq!(m.lm3, Some(3.0));
        }
    }
}
