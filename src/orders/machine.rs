//! The order state machine of DESIGN §3: one table says, for every status, which action moves it
//! where and who may take it. Nothing else decides a transition.

crate::text_enum! {
    pub enum OrderStatus {
        Placed = "placed",
        Accepted = "accepted",
        Rejected = "rejected",
        Cancelled = "cancelled",
        Expired = "expired",
        Shipped = "shipped",
        Completed = "completed",
        Disputed = "disputed",
        Refunded = "refunded",
    }
}

crate::text_enum! {
    /// Who takes a transition: the buyer (the person, or an operator of the buying shop), the
    /// seller (an operator of the shop), the admin of the seller's village, or the timers.
    pub enum Actor {
        Buyer = "buyer",
        Seller = "seller",
        SellerAdmin = "seller_admin",
        System = "system",
    }
}

/// What a request (or a timer) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
    Cancel,
    Expire,
    Ship,
    Confirm,
    AutoComplete,
    Dispute,
    Release,
    Refund,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
            Action::Ship => "ship",
            Action::Confirm => "confirm",
            Action::AutoComplete => "complete",
            Action::Dispute => "dispute",
            Action::Release => "release",
            Action::Refund => "refund",
        }
    }
}

/// What the move does to the money held in escrow (and to the stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Money {
    /// Stays held.
    Hold,
    /// Settles to the seller and the fees.
    Settle,
    /// Goes back to the buyer; the stock goes back to the products.
    Refund,
}

use Action as A;
use Actor as R;
use OrderStatus as S;

/// (from, action, actor, to) — DESIGN §3, exactly.
pub const TRANSITIONS: &[(OrderStatus, Action, Actor, OrderStatus)] = &[
    (S::Placed, A::Accept, R::Seller, S::Accepted),
    (S::Placed, A::Reject, R::Seller, S::Rejected),
    (S::Placed, A::Cancel, R::Buyer, S::Cancelled),
    (S::Placed, A::Expire, R::System, S::Expired),
    (S::Accepted, A::Ship, R::Seller, S::Shipped),
    (S::Accepted, A::Cancel, R::Seller, S::Cancelled),
    (S::Shipped, A::Confirm, R::Buyer, S::Completed),
    (S::Shipped, A::AutoComplete, R::System, S::Completed),
    (S::Shipped, A::Dispute, R::Buyer, S::Disputed),
    (S::Disputed, A::Release, R::SellerAdmin, S::Completed),
    (S::Disputed, A::Refund, R::SellerAdmin, S::Refunded),
];

/// Why a transition cannot happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such move from this status (409).
    NotFromHere,
    /// None of the caller's roles ever takes this action, from any status (403). A role that
    /// could from another status gets `NotFromHere`: the order moved on (a buyer's cancel
    /// after the seller accepted is a conflict, not a lack of rights).
    NotYours,
}

/// The move `action` makes from `from` for a caller holding `roles`.
pub fn next(
    from: OrderStatus,
    action: Action,
    roles: &[Actor],
) -> Result<(Actor, OrderStatus), Refusal> {
    let mut exists = false;
    for (f, a, actor, to) in TRANSITIONS {
        if *f == from && *a == action {
            exists = true;
            if roles.contains(actor) {
                return Ok((*actor, *to));
            }
        }
    }
    let ever_mine = TRANSITIONS
        .iter()
        .any(|(_, a, actor, _)| *a == action && roles.contains(actor));
    Err(if exists && !ever_mine {
        Refusal::NotYours
    } else {
        Refusal::NotFromHere
    })
}

pub fn money(to: OrderStatus) -> Money {
    match to {
        S::Completed => Money::Settle,
        S::Rejected | S::Cancelled | S::Expired | S::Refunded => Money::Refund,
        S::Placed | S::Accepted | S::Shipped | S::Disputed => Money::Hold,
    }
}

/// No move leaves these.
pub fn is_final(s: OrderStatus) -> bool {
    !TRANSITIONS.iter().any(|(f, ..)| *f == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_design_section_3() {
        assert_eq!(
            next(S::Placed, A::Accept, &[R::Seller]),
            Ok((R::Seller, S::Accepted))
        );
        assert_eq!(
            next(S::Placed, A::Accept, &[R::Buyer]),
            Err(Refusal::NotYours)
        );
        assert_eq!(
            next(S::Placed, A::Cancel, &[R::Buyer]),
            Ok((R::Buyer, S::Cancelled))
        );
        // The buyer may cancel, but only while placed: once accepted it is a conflict.
        assert_eq!(
            next(S::Accepted, A::Cancel, &[R::Buyer]),
            Err(Refusal::NotFromHere)
        );
        assert_eq!(
            next(S::Accepted, A::Ship, &[R::Buyer]),
            Err(Refusal::NotYours)
        );
        assert_eq!(
            next(S::Accepted, A::Cancel, &[R::Seller]),
            Ok((R::Seller, S::Cancelled))
        );
        assert_eq!(
            next(S::Shipped, A::Cancel, &[R::Buyer, R::Seller]),
            Err(Refusal::NotFromHere)
        );
        assert_eq!(
            next(S::Disputed, A::Refund, &[R::SellerAdmin]),
            Ok((R::SellerAdmin, S::Refunded))
        );
        assert_eq!(
            next(S::Placed, A::Expire, &[R::Buyer, R::Seller, R::SellerAdmin]),
            Err(Refusal::NotYours),
            "only the timers expire"
        );
    }

    #[test]
    fn the_machine_has_no_cycles_so_each_status_is_entered_once() {
        // The database's unique (order, to_status) index relies on this.
        fn reach(from: OrderStatus, seen: &mut Vec<OrderStatus>) {
            for (f, _, _, to) in TRANSITIONS {
                if *f == from {
                    assert!(!seen.contains(to), "cycle through {to}");
                    seen.push(*to);
                    reach(*to, seen);
                    seen.pop();
                }
            }
        }
        reach(S::Placed, &mut vec![S::Placed]);
    }

    #[test]
    fn money_follows_the_status() {
        for s in OrderStatus::ALL {
            let m = money(*s);
            match s {
                S::Completed => assert_eq!(m, Money::Settle),
                S::Rejected | S::Cancelled | S::Expired | S::Refunded => {
                    assert_eq!(m, Money::Refund);
                    assert!(is_final(*s));
                }
                _ => assert_eq!(m, Money::Hold),
            }
        }
        assert!(is_final(S::Completed));
    }
}
