//! Gate decisions: who is admitted, who pays, and what the lane's LED shows.
//!
//! The service gathers the facts (plate standing from the registry, occupancy from Redis, the
//! open session from Postgres); these functions decide. Every decision carries a stable
//! [`Reason`] code that integrators can switch on, and a short Chinese text for the display.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::vehicle::ExemptClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Entry,
    Exit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }

    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "entry" => Some(Direction::Entry),
            "exit" => Some(Direction::Exit),
            _ => None,
        }
    }
}

/// What the barrier does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Open,
    Refuse,
    /// Nothing: the car already passed (an offline replay, a fail-open or manual passage) and
    /// the read is only recorded. `none` on the wire and in `gate_events.action`.
    #[serde(rename = "none")]
    Recorded,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Refuse => "refuse",
            Action::Recorded => "none",
        }
    }
}

/// Stable reason codes. Never rename one: integrators' lane software switches on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    EmergencyExempt,
    Blocklisted,
    PermitHolder,
    OwnerAdmitted,
    VisitorAdmitted,
    /// A visitor let in on a booked shared space (or placed on one when the pool was full).
    BookingAdmitted,
    LotFull,
    AlreadyInside,
    ExitFree,
    ExitPaid,
    PaymentRequired,
    NoEntryRecord,
    /// The backend could not decide within the lane's budget and the lane opened on its
    /// fail-open policy (or for an emergency plate). Never stored: the passage is recorded
    /// later as [`Reason::OfflineRecorded`].
    FailOpen,
    /// A passage that already happened, recorded and its stay reconstructed.
    OfflineRecorded,
}

impl Reason {
    pub fn action(self) -> Action {
        match self {
            Reason::EmergencyExempt
            | Reason::PermitHolder
            | Reason::OwnerAdmitted
            | Reason::VisitorAdmitted
            | Reason::BookingAdmitted
            | Reason::ExitFree
            | Reason::ExitPaid
            | Reason::FailOpen => Action::Open,
            Reason::OfflineRecorded => Action::Recorded,
            Reason::Blocklisted
            | Reason::LotFull
            | Reason::AlreadyInside
            | Reason::PaymentRequired
            | Reason::NoEntryRecord => Action::Refuse,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EmergencyExempt => "emergency_exempt",
            Reason::Blocklisted => "blocklisted",
            Reason::PermitHolder => "permit_holder",
            Reason::OwnerAdmitted => "owner_admitted",
            Reason::VisitorAdmitted => "visitor_admitted",
            Reason::BookingAdmitted => "booking_admitted",
            Reason::LotFull => "lot_full",
            Reason::AlreadyInside => "already_inside",
            Reason::ExitFree => "exit_free",
            Reason::ExitPaid => "exit_paid",
            Reason::PaymentRequired => "payment_required",
            Reason::NoEntryRecord => "no_entry_record",
            Reason::FailOpen => "fail_open",
            Reason::OfflineRecorded => "offline_recorded",
        }
    }
}

/// What the barrier does and what the lane shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
    /// Short text for the lane's LED display.
    pub display: String,
    /// What the driver still owes; zero when the barrier opens.
    pub amount_due: Money,
}

impl Decision {
    pub fn new(reason: Reason, direction: Direction, amount_due: Money) -> Decision {
        Decision {
            action: reason.action(),
            reason,
            display: display(reason, direction, amount_due),
            amount_due,
        }
    }
}

fn display(reason: Reason, direction: Direction, amount_due: Money) -> String {
    match (reason, direction) {
        (Reason::EmergencyExempt, _) => "应急车辆 免费通行".into(),
        (Reason::Blocklisted, _) => "禁止通行 请联系管理处".into(),
        (Reason::PermitHolder, Direction::Entry) => "月卡车 欢迎回家".into(),
        (Reason::PermitHolder, Direction::Exit) => "月卡车 一路顺风".into(),
        (Reason::OwnerAdmitted, _) => "业主车辆 欢迎回家".into(),
        (Reason::VisitorAdmitted, _) => "欢迎光临".into(),
        (Reason::BookingAdmitted, _) => "预约车位 欢迎光临".into(),
        (Reason::LotFull, _) => "车位已满".into(),
        (Reason::AlreadyInside, _) => "车辆已在场 请联系管理处".into(),
        (Reason::ExitFree, _) => "免费放行 一路顺风".into(),
        (Reason::ExitPaid, _) => "已缴费 一路顺风".into(),
        (Reason::PaymentRequired, _) => format!("请缴费{amount_due}元"),
        (Reason::NoEntryRecord, _) => "无入场记录 请联系管理处".into(),
        (Reason::FailOpen, _) => "请通行".into(),
        // Nobody waits at a barrier for a recorded passage: nothing to show.
        (Reason::OfflineRecorded, _) => String::new(),
    }
}

/// Who a plate is at this compound, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Emergency vehicles pass first and free, even a blocklisted plate (rule 1).
    Exempt(ExemptClass),
    Blocklisted,
    PermitHolder,
    /// A registered owner's car without a permit: humane handling (rule 2).
    Owner,
    Visitor,
}

/// The facts about a plate that decide its standing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlateFacts {
    pub exempt: Option<ExemptClass>,
    pub blocklisted: bool,
    pub valid_permit: bool,
    pub registered_owner_vehicle: bool,
}

impl Standing {
    pub fn of(facts: PlateFacts) -> Standing {
        match facts {
            PlateFacts {
                exempt: Some(class),
                ..
            } => Standing::Exempt(class),
            PlateFacts {
                blocklisted: true, ..
            } => Standing::Blocklisted,
            PlateFacts {
                valid_permit: true, ..
            } => Standing::PermitHolder,
            PlateFacts {
                registered_owner_vehicle: true,
                ..
            } => Standing::Owner,
            _ => Standing::Visitor,
        }
    }
}

/// The kind of a stay; it decides its billing and, later, whose revenue it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Exempt,
    Permit,
    Owner,
    Visitor,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Exempt => "exempt",
            SessionKind::Permit => "permit",
            SessionKind::Owner => "owner",
            SessionKind::Visitor => "visitor",
        }
    }

    pub fn parse(text: &str) -> Option<SessionKind> {
        match text {
            "exempt" => Some(SessionKind::Exempt),
            "permit" => Some(SessionKind::Permit),
            "owner" => Some(SessionKind::Owner),
            "visitor" => Some(SessionKind::Visitor),
            _ => None,
        }
    }

    /// The occupancy pool a stay of this kind takes a place in.
    pub fn pool(self) -> Pool {
        match self {
            SessionKind::Exempt => Pool::Exempt,
            SessionKind::Permit => Pool::Reserved,
            // Owners without a space park where visitors park: they need a free place.
            SessionKind::Owner | SessionKind::Visitor => Pool::Visitor,
        }
    }

    fn admitted_reason(self) -> Reason {
        match self {
            SessionKind::Exempt => Reason::EmergencyExempt,
            SessionKind::Permit => Reason::PermitHolder,
            SessionKind::Owner => Reason::OwnerAdmitted,
            SessionKind::Visitor => Reason::VisitorAdmitted,
        }
    }
}

/// Occupancy pools of a lot. Only the visitor pool has a capacity the gate enforces; permit
/// holders have their own spaces and emergency vehicles are never refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Visitor,
    Reserved,
    Exempt,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Visitor => "visitor",
            Pool::Reserved => "reserved",
            Pool::Exempt => "exempt",
        }
    }

    pub fn parse(text: &str) -> Option<Pool> {
        match text {
            "visitor" => Some(Pool::Visitor),
            "reserved" => Some(Pool::Reserved),
            "exempt" => Some(Pool::Exempt),
            _ => None,
        }
    }

    pub fn capacity_limited(self) -> bool {
        matches!(self, Pool::Visitor)
    }
}

/// How a stay's record began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// At an entry read: it holds a place from then on.
    Entry,
    /// At an exit read with no stay on record, charged by the gate's policy.
    NoEntryRecord,
    /// At an exit recorded before its entry was (an offline camera's buffer): completed when
    /// the entry arrives.
    OfflineExit,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Entry => "entry",
            Origin::NoEntryRecord => "no_entry_record",
            Origin::OfflineExit => "offline_exit",
        }
    }

    pub fn parse(text: &str) -> Option<Origin> {
        match text {
            "entry" => Some(Origin::Entry),
            "no_entry_record" => Some(Origin::NoEntryRecord),
            "offline_exit" => Some(Origin::OfflineExit),
            _ => None,
        }
    }

    /// Only a stay opened by an entry holds a place in the lot.
    pub fn holds_a_place(self) -> bool {
        self == Origin::Entry
    }
}

/// Whether a stay is still inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StayStatus {
    Open,
    Closed,
}

impl StayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StayStatus::Open => "open",
            StayStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<StayStatus> {
        match text {
            "open" => Some(StayStatus::Open),
            "closed" => Some(StayStatus::Closed),
            _ => None,
        }
    }
}

stored_words!(
    Direction => "direction",
    SessionKind => "stay kind",
    Pool => "pool",
    Origin => "stay origin",
    StayStatus => "stay status",
);

/// The first step of an entry: refuse now, or ask occupancy for a place in a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPlan {
    Refuse(Reason),
    Admit(SessionKind),
}

pub fn plan_entry(standing: Standing) -> EntryPlan {
    match standing {
        Standing::Exempt(_) => EntryPlan::Admit(SessionKind::Exempt),
        Standing::Blocklisted => EntryPlan::Refuse(Reason::Blocklisted),
        Standing::PermitHolder => EntryPlan::Admit(SessionKind::Permit),
        Standing::Owner => EntryPlan::Admit(SessionKind::Owner),
        Standing::Visitor => EntryPlan::Admit(SessionKind::Visitor),
    }
}

/// The decision once occupancy has answered whether a place was free.
pub fn entry_decision(kind: SessionKind, place_granted: bool) -> Decision {
    let reason = if place_granted {
        kind.admitted_reason()
    } else {
        Reason::LotFull
    };
    Decision::new(reason, Direction::Entry, Money::ZERO)
}

/// The latest payment of a stay: when it was made, and the instant the amount paid was priced
/// at (a driver pays the quote they were shown, which may be minutes old).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastPayment {
    pub paid_at: DateTime<Utc>,
    pub priced_at: DateTime<Utc>,
}

/// The instant a stay is billed to. Paid, and at the exit within the grace period after the
/// last payment: billed to the instant that payment was priced at, so the barrier opens for
/// the amount the driver was shown even if a new price step began before they paid. Later:
/// billed to the exit, so only the extra time is owed.
pub fn billing_instant(
    exit_at: DateTime<Utc>,
    last_payment: Option<LastPayment>,
    exit_grace_min: u32,
) -> DateTime<Utc> {
    match last_payment {
        Some(p) if exit_at <= p.paid_at + Duration::minutes(i64::from(exit_grace_min)) => {
            p.priced_at.min(exit_at)
        }
        _ => exit_at,
    }
}

/// The exit decision for a stay of `kind` whose fee (billed to [`billing_instant`]) is `fee`
/// and of which `paid` has been paid.
pub fn exit_decision(kind: SessionKind, fee: Money, paid: Money) -> Decision {
    let reason = match kind {
        SessionKind::Exempt => Reason::EmergencyExempt,
        SessionKind::Permit if fee.is_zero() => Reason::PermitHolder,
        // A permit stay with a fee outlasted its rental: the rest is a visitor's.
        SessionKind::Permit | SessionKind::Owner | SessionKind::Visitor => {
            if fee.is_zero() {
                Reason::ExitFree
            } else if paid >= fee {
                Reason::ExitPaid
            } else {
                Reason::PaymentRequired
            }
        }
    };
    let due = match reason {
        Reason::PaymentRequired => fee.saturating_sub(paid),
        _ => Money::ZERO,
    };
    Decision::new(reason, Direction::Exit, due)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stored word decodes to the value that writes it, serde writes the same word, and
    /// a word no value has is an error naming what it should have been.
    #[test]
    fn stored_words_decode_to_the_value_that_wrote_them() {
        fn round_trip<T>(values: &[T], word: fn(T) -> &'static str)
        where
            T: Copy + PartialEq + std::fmt::Debug + Serialize + TryFrom<String>,
            <T as TryFrom<String>>::Error: std::fmt::Debug,
        {
            for &value in values {
                let decoded = T::try_from(word(value).to_owned());
                assert!(matches!(decoded, Ok(v) if v == value), "{}", word(value));
                let written = serde_json::to_value(value).ok();
                assert_eq!(written, Some(serde_json::Value::from(word(value))));
            }
        }
        use SessionKind as K;
        round_trip(&[K::Exempt, K::Permit, K::Owner, K::Visitor], K::as_str);
        round_trip(&[Pool::Visitor, Pool::Reserved, Pool::Exempt], Pool::as_str);
        use Origin as O;
        round_trip(&[O::Entry, O::NoEntryRecord, O::OfflineExit], O::as_str);
        round_trip(&[StayStatus::Open, StayStatus::Closed], StayStatus::as_str);
        round_trip(&[Direction::Entry, Direction::Exit], Direction::as_str);
        use crate::vehicle::VehicleClass as C;
        round_trip(&[C::Small, C::Large, C::NewEnergy], C::as_str);
        assert_eq!(
            Pool::try_from("vip".to_owned()),
            Err(crate::UnknownWord {
                what: "pool",
                text: "vip".into()
            })
        );
        assert!(SessionKind::try_from("Visitor".to_owned()).is_err());
    }
    use chrono::TimeZone;

    #[test]
    fn emergency_beats_blocklist_and_permit_beats_owner() {
        let facts = PlateFacts {
            exempt: Some(ExemptClass::Fire),
            blocklisted: true,
            ..PlateFacts::default()
        };
        assert_eq!(Standing::of(facts), Standing::Exempt(ExemptClass::Fire));
        let facts = PlateFacts {
            blocklisted: true,
            valid_permit: true,
            ..PlateFacts::default()
        };
        assert_eq!(Standing::of(facts), Standing::Blocklisted);
        let facts = PlateFacts {
            valid_permit: true,
            registered_owner_vehicle: true,
            ..PlateFacts::default()
        };
        assert_eq!(Standing::of(facts), Standing::PermitHolder);
        assert_eq!(Standing::of(PlateFacts::default()), Standing::Visitor);
    }

    #[test]
    fn only_visitors_and_owners_need_a_visitor_place() {
        assert!(SessionKind::Visitor.pool().capacity_limited());
        assert!(SessionKind::Owner.pool().capacity_limited());
        assert!(!SessionKind::Permit.pool().capacity_limited());
        assert!(!SessionKind::Exempt.pool().capacity_limited());
    }

    /// Every reason and action the gate answers, with the words integrators switch on.
    #[test]
    fn reasons_and_actions_keep_their_wire_words() {
        let reasons = [
            (Reason::EmergencyExempt, "emergency_exempt"),
            (Reason::Blocklisted, "blocklisted"),
            (Reason::PermitHolder, "permit_holder"),
            (Reason::OwnerAdmitted, "owner_admitted"),
            (Reason::VisitorAdmitted, "visitor_admitted"),
            (Reason::BookingAdmitted, "booking_admitted"),
            (Reason::LotFull, "lot_full"),
            (Reason::AlreadyInside, "already_inside"),
            (Reason::ExitFree, "exit_free"),
            (Reason::ExitPaid, "exit_paid"),
            (Reason::PaymentRequired, "payment_required"),
            (Reason::NoEntryRecord, "no_entry_record"),
            (Reason::FailOpen, "fail_open"),
            (Reason::OfflineRecorded, "offline_recorded"),
        ];
        for (reason, word) in reasons {
            assert_eq!(reason.as_str(), word);
            assert_eq!(serde_plain(&reason), word);
        }
        for (action, word) in [
            (Action::Open, "open"),
            (Action::Refuse, "refuse"),
            (Action::Recorded, "none"),
        ] {
            assert_eq!(action.as_str(), word);
            assert_eq!(serde_plain(&action), word);
        }
    }

    fn serde_plain<T: Serialize>(value: &T) -> String {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::String(word)) => word,
            other => panic!("not a word: {other:?}"),
        }
    }

    #[test]
    fn a_recorded_passage_opens_nothing_and_shows_nothing() {
        let d = Decision::new(
            Reason::OfflineRecorded,
            Direction::Exit,
            Money::from_fen(600),
        );
        assert_eq!(
            (d.action, d.display.as_str(), d.amount_due),
            (Action::Recorded, "", Money::from_fen(600))
        );
        let d = Decision::new(Reason::FailOpen, Direction::Entry, Money::ZERO);
        assert_eq!((d.action, d.display.as_str()), (Action::Open, "请通行"));
    }

    #[test]
    fn full_lot_refuses_with_the_standard_text() {
        let d = entry_decision(SessionKind::Visitor, false);
        assert_eq!(
            (d.action, d.reason, d.display.as_str()),
            (Action::Refuse, Reason::LotFull, "车位已满")
        );
    }

    #[test]
    fn exit_owes_the_unpaid_part_and_shows_it() {
        let d = exit_decision(
            SessionKind::Visitor,
            Money::from_fen(900),
            Money::from_fen(300),
        );
        assert_eq!(d.reason, Reason::PaymentRequired);
        assert_eq!(d.amount_due, Money::from_fen(600));
        assert_eq!(d.display, "请缴费6.00元");
        let d = exit_decision(
            SessionKind::Visitor,
            Money::from_fen(900),
            Money::from_fen(900),
        );
        assert_eq!((d.action, d.amount_due), (Action::Open, Money::ZERO));
        let d = exit_decision(SessionKind::Exempt, Money::from_fen(900), Money::ZERO);
        assert_eq!(d.action, Action::Open);
    }

    #[test]
    fn a_permit_stay_is_free_unless_billed_past_its_rental() {
        let d = exit_decision(SessionKind::Permit, Money::ZERO, Money::ZERO);
        assert_eq!((d.reason, d.action), (Reason::PermitHolder, Action::Open));
        let d = exit_decision(SessionKind::Permit, Money::from_fen(600), Money::ZERO);
        assert_eq!(
            (d.reason, d.amount_due),
            (Reason::PaymentRequired, Money::from_fen(600))
        );
        let d = exit_decision(
            SessionKind::Permit,
            Money::from_fen(600),
            Money::from_fen(600),
        );
        assert_eq!(d.reason, Reason::ExitPaid);
    }

    #[test]
    fn grace_bills_to_the_payment_then_to_the_exit() {
        let paid_at = Utc
            .with_ymd_and_hms(2026, 1, 1, 10, 0, 0)
            .single()
            .unwrap_or_default();
        let paid = Some(LastPayment {
            paid_at,
            priced_at: paid_at,
        });
        let within = paid_at + Duration::minutes(15);
        let late = paid_at + Duration::minutes(16);
        assert_eq!(billing_instant(within, paid, 15), paid_at);
        assert_eq!(billing_instant(late, paid, 15), late);
        assert_eq!(billing_instant(late, None, 15), late);
    }

    #[test]
    fn a_paid_quote_bills_to_the_instant_it_was_priced_at() {
        let priced_at = Utc
            .with_ymd_and_hms(2026, 1, 1, 9, 59, 50)
            .single()
            .unwrap_or_default();
        // Paid 20 s after the quote, across the 10:00 price step; read again at once.
        let paid_at = priced_at + Duration::seconds(20);
        let paid = Some(LastPayment { paid_at, priced_at });
        let exit = paid_at + Duration::seconds(5);
        assert_eq!(billing_instant(exit, paid, 15), priced_at);
        // The grace counts from the payment, not from the quote.
        let end_of_grace = paid_at + Duration::minutes(15);
        assert_eq!(billing_instant(end_of_grace, paid, 15), priced_at);
        let after = end_of_grace + Duration::seconds(1);
        assert_eq!(billing_instant(after, paid, 15), after);
    }
}
