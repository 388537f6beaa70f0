//! The whole plan of one gate read, as one pure function: [`next`] takes what is known about
//! the read and says what to do next — answer it again, run it alone, learn one more fact, or
//! decide it. The service's pipeline gathers the facts (one statement for a batch), asks
//! [`next`], does what it says (a question is a lookup or a place in Redis), records the answer
//! in the facts and asks again, until a read is decided. Every branch of a gate read is here,
//! once; the pipeline holds no rule of its own.
//!
//! A batch ([`Scope::Common`]) decides the common cases; where a read needs more — a booking,
//! a re-entry, a misread exit plate, a walk-in space, a rebuild — the plan says
//! [`Next::Alone`] and the read runs again on its own ([`Scope::Every`]). A batch never
//! decides a read differently from a run of one (the property tests below).

use crate::decision::{
    entry_decision, exit_decision, plan_entry, Decision, Direction, EntryPlan, Pool, Reason,
    SessionKind, Standing,
};
use crate::money::Money;
use crate::policy::{NoEntryRecord, Reentry};

/// How much of a read's work a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A batch: the common cases only; a read that needs more is answered [`Next::Alone`].
    Common,
    /// A run of one read: every case.
    Every,
}

/// An answer already stored for the read (the same device event id, or the same plate at
/// the same gate within the duplicate window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prior {
    /// The same car: the read is a camera's retry, answered again.
    SameCar,
    /// The device event id was another plate's: refused.
    OtherPlate,
}

/// Redis's answer to "a place in this pool for this car".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceAnswer {
    Granted,
    Full,
    /// Redis has lost the lot: it is rebuilt from Postgres first.
    Missing,
    /// Redis did not answer.
    Unavailable,
}

/// What is known of a live entry read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryFacts {
    pub prior: Option<Prior>,
    pub standing: Standing,
    /// A booking of this plate lets it in now.
    pub booking_due: bool,
    /// A visitor stands on the space this plate's owned-space permit is for.
    pub own_space_taken: bool,
    /// The plate rents a space in this lot today: its stay is recorded on that space.
    pub rents_space: bool,
    /// The plate has an open stay in this lot.
    pub open_stay: bool,
    pub reentry: Reentry,
    /// Learnt: the open stay was closed as a missed exit.
    pub missed_exit_closed: bool,
    /// Learnt: whether the due booking was found and taken.
    pub booking: Option<bool>,
    /// Learnt: the visitor on the owner's space was dealt with.
    pub owner_home_handled: bool,
    /// Learnt: Redis's answer for the car's pool.
    pub place: Option<PlaceAnswer>,
    /// Learnt, the pool full: whether a shared space was found for a walk-in.
    pub walk_in: Option<bool>,
    /// Learnt: Redis's answer for the walk-in's reserved place.
    pub walk_in_place: Option<PlaceAnswer>,
}

impl EntryFacts {
    /// The facts of a read before anything is learnt.
    pub fn new(standing: Standing, reentry: Reentry) -> EntryFacts {
        EntryFacts {
            prior: None,
            standing,
            booking_due: false,
            own_space_taken: false,
            rents_space: false,
            open_stay: false,
            reentry,
            missed_exit_closed: false,
            booking: None,
            owner_home_handled: false,
            place: None,
            walk_in: None,
            walk_in_place: None,
        }
    }
}

/// The stay an exit read ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StayFacts {
    pub kind: SessionKind,
    /// Placed on a shared or rented space: its booking is closed too.
    pub on_space: bool,
    /// The exit was captured before the stay's entry (clocks disagree): listed for staff.
    pub read_before_entry: bool,
}

/// What a stay's bill comes to at the exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillFacts {
    Billed {
        fee: Money,
        paid: Money,
        /// The tariff priced above the regulated ceiling and was lowered to it.
        clamped: bool,
    },
    /// The stay cannot be billed automatically (staff settle it).
    Unbillable,
}

/// What is known of a live exit read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitFacts {
    pub prior: Option<Prior>,
    /// The open stay under the plate as read, or the one the search found.
    pub stay: Option<StayFacts>,
    /// Learnt: the stay leaving was searched for beyond the plate as read (a confusable
    /// character, a stay closed at this car's refused exit).
    pub searched: bool,
    pub no_entry_record: NoEntryRecord,
    /// Learnt, no stay found: the plate is an emergency vehicle's (marked or registered).
    pub emergency: Option<bool>,
    /// Learnt: the tariff's no-entry-record fee (`None`: the tariff files none).
    pub no_entry_fee: Option<Option<Money>>,
    /// Learnt: the stay's bill.
    pub bill: Option<BillFacts>,
}

impl ExitFacts {
    pub fn new(stay: Option<StayFacts>, no_entry_record: NoEntryRecord) -> ExitFacts {
        ExitFacts {
            prior: None,
            stay,
            searched: false,
            no_entry_record,
            emergency: None,
            no_entry_fee: None,
            bill: None,
        }
    }
}

/// One more fact a read needs (or one thing to do first), for [`next`] to be asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// Close the open stay as a missed exit (its fee fixed at this entry).
    CloseMissedExit,
    /// Take the booking that lets the car in.
    Booking,
    /// Move the visitor standing on the owner's space off it.
    OwnerHomeEarly,
    /// A place in this pool, from Redis.
    Place(Pool),
    /// A free shared space for a walk-in.
    WalkIn,
    /// The stay an exit ends when none is open under the plate as read.
    StayLeaving,
    /// Whether a plate with no stay is an emergency vehicle's.
    Emergency,
    /// The tariff's no-entry-record fee.
    NoEntryFee,
    /// The stay's bill at the exit.
    Bill,
}

impl Question {
    /// Asked by a run of one only: a batch runs a read needing it alone.
    pub fn rare(self) -> bool {
        !matches!(self, Question::Place(_) | Question::Bill)
    }
}

/// A read's decision, with what it does beyond its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing but the read recorded (an `already_inside` one also listed for staff).
    Refuse(Decision),
    /// Let in: a stay of `kind` in `pool` (an emergency vehicle's takes no capacity).
    Admit {
        decision: Decision,
        kind: SessionKind,
        pool: Pool,
    },
    /// The stay billed; closed, and its place given back, when the barrier opens.
    Bill(Decision),
    /// No stay to end: a stay of `kind` recorded at the exit, charged `fee` (an emergency
    /// vehicle's free), closed when that is zero.
    ChargeAtExit {
        decision: Decision,
        kind: SessionKind,
        fee: Money,
    },
}

/// Why a read cannot be decided now (a run of one only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unanswerable {
    /// Redis has lost the lot: rebuild it, then decide again.
    LotLost,
    /// Redis did not answer: the lane's fail mode decides.
    RedisDown,
    /// The stay cannot be billed automatically.
    Unbillable,
}

/// What to do next with a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Answer again with the stored answer.
    Replay,
    /// Refuse: the device event id is another plate's.
    IdReused,
    /// A batch: run this read on its own.
    Alone,
    Ask(Question),
    Decide(Verdict),
    Fail(Unanswerable),
}

/// The facts of a live read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFacts {
    Entry(EntryFacts),
    Exit(ExitFacts),
}

/// The one rule of a live gate read: what to do next, given what is known.
pub fn next(facts: &ReadFacts, scope: Scope) -> Next {
    let prior = match facts {
        ReadFacts::Entry(f) => f.prior,
        ReadFacts::Exit(f) => f.prior,
    };
    let next = match (prior, facts) {
        (Some(Prior::SameCar), _) => Next::Replay,
        (Some(Prior::OtherPlate), _) => Next::IdReused,
        (None, ReadFacts::Entry(f)) => entry(f, scope),
        (None, ReadFacts::Exit(f)) => exit(f, scope),
    };
    match (next, scope) {
        // What a batch cannot finish (a refusal, a rare question, a failure) a run of one does.
        (Next::IdReused | Next::Fail(_), Scope::Common) => Next::Alone,
        (Next::Ask(q), Scope::Common) if q.rare() => Next::Alone,
        (next, _) => next,
    }
}

fn entry(f: &EntryFacts, scope: Scope) -> Next {
    let kind = match plan_entry(f.standing) {
        EntryPlan::Refuse(reason) => return refuse(reason, Direction::Entry),
        EntryPlan::Admit(kind) => kind,
    };
    let booked = matches!(kind, SessionKind::Visitor | SessionKind::Owner) && f.booking_due;
    let home_taken = kind == SessionKind::Permit && f.own_space_taken;
    // A re-entry, a booking, the owner's space taken, a rented space: each does more than
    // open a stay in a pool, so a batch leaves it to a run of one.
    let renter = kind == SessionKind::Permit && f.rents_space;
    if scope == Scope::Common && (f.open_stay || booked || home_taken || renter) {
        return Next::Alone;
    }
    if f.open_stay && f.reentry == Reentry::Refuse {
        return refuse(Reason::AlreadyInside, Direction::Entry);
    }
    let booking = match (booked, f.booking) {
        (true, None) => return Next::Ask(Question::Booking),
        (true, Some(found)) => found,
        (false, _) => false,
    };
    if home_taken && !f.owner_home_handled {
        return Next::Ask(Question::OwnerHomeEarly);
    }
    let pool = if booking { Pool::Reserved } else { kind.pool() };
    let admit = |booked: bool, pool| {
        // The open stay of a car read at the entry again is closed as a missed exit once the
        // car is let in, not before: a refused read changes nothing.
        if f.open_stay && !f.missed_exit_closed {
            return Next::Ask(Question::CloseMissedExit);
        }
        let decision = match booked {
            true => Decision::new(Reason::BookingAdmitted, Direction::Entry, Money::ZERO),
            false => entry_decision(kind, true),
        };
        Next::Decide(Verdict::Admit {
            decision,
            kind,
            pool,
        })
    };
    // Emergency vehicles pass first (rule 1) and take no place: counted once decided.
    if pool == Pool::Exempt {
        return admit(booking, pool);
    }
    let full = || refuse(Reason::LotFull, Direction::Entry);
    match f.place {
        None => Next::Ask(Question::Place(pool)),
        Some(PlaceAnswer::Granted) => admit(booking, pool),
        // A full visitor pool may still have a shared space free for a walk-in.
        Some(PlaceAnswer::Full) if kind == SessionKind::Visitor && pool == Pool::Visitor => {
            match (f.walk_in, f.walk_in_place) {
                (None, _) => Next::Ask(Question::WalkIn),
                (Some(false), _) | (Some(true), Some(PlaceAnswer::Full)) => full(),
                (Some(true), None) => Next::Ask(Question::Place(Pool::Reserved)),
                (Some(true), Some(PlaceAnswer::Granted)) => admit(true, Pool::Reserved),
                (Some(true), Some(other)) => unplaced(other),
            }
        }
        Some(PlaceAnswer::Full) => full(),
        Some(other) => unplaced(other),
    }
}

fn unplaced(answer: PlaceAnswer) -> Next {
    match answer {
        PlaceAnswer::Missing => Next::Fail(Unanswerable::LotLost),
        _ => Next::Fail(Unanswerable::RedisDown),
    }
}

fn refuse(reason: Reason, direction: Direction) -> Next {
    let decision = Decision::new(reason, direction, Money::ZERO);
    Next::Decide(Verdict::Refuse(decision))
}

fn exit(f: &ExitFacts, scope: Scope) -> Next {
    let Some(stay) = f.stay else {
        return no_stay(f);
    };
    // A stay on a space, an exit read before the entry: each records more than a bill.
    if scope == Scope::Common && (stay.on_space || stay.read_before_entry) {
        return Next::Alone;
    }
    match f.bill {
        None => Next::Ask(Question::Bill),
        Some(BillFacts::Unbillable) => Next::Fail(Unanswerable::Unbillable),
        // A bill the regulated guard lowered is listed for staff.
        Some(BillFacts::Billed { clamped: true, .. }) if scope == Scope::Common => Next::Alone,
        Some(BillFacts::Billed { fee, paid, .. }) => {
            Next::Decide(Verdict::Bill(exit_decision(stay.kind, fee, paid)))
        }
    }
}

/// An exit read with no stay to end.
fn no_stay(f: &ExitFacts) -> Next {
    if !f.searched {
        return Next::Ask(Question::StayLeaving);
    }
    let charge = |kind, fee| {
        let decision = exit_decision(kind, fee, Money::ZERO);
        Next::Decide(Verdict::ChargeAtExit {
            decision,
            kind,
            fee,
        })
    };
    // An emergency vehicle passes first and free (rule 1), with no entry on record too.
    match (f.emergency, f.no_entry_record, f.no_entry_fee) {
        (None, _, _) => Next::Ask(Question::Emergency),
        (Some(true), _, _) => charge(SessionKind::Exempt, Money::ZERO),
        (Some(false), NoEntryRecord::ChargeTariffFee, None) => Next::Ask(Question::NoEntryFee),
        (Some(false), NoEntryRecord::ChargeTariffFee, Some(Some(fee))) => {
            charge(SessionKind::Visitor, fee)
        }
        // No such fee filed: refused like `Refuse`.
        (Some(false), NoEntryRecord::ChargeTariffFee, Some(None))
        | (Some(false), NoEntryRecord::Refuse, _) => refuse(Reason::NoEntryRecord, Direction::Exit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vehicle::ExemptClass;
    use proptest::prelude::*;

    /// What the world answers to each question, drawn once per case.
    #[derive(Clone, Copy, Debug)]
    struct World {
        booking: bool,
        place: PlaceAnswer,
        walk_in: bool,
        walk_in_place: PlaceAnswer,
        stay_leaving: Option<StayFacts>,
        emergency: bool,
        no_entry_fee: Option<Money>,
        bill: BillFacts,
    }

    /// Answers `question` into `facts`, as the pipeline does.
    fn learn(facts: &mut ReadFacts, question: Question, w: &World) {
        match (facts, question) {
            (ReadFacts::Entry(f), Question::CloseMissedExit) => f.missed_exit_closed = true,
            (ReadFacts::Entry(f), Question::Booking) => f.booking = Some(w.booking),
            (ReadFacts::Entry(f), Question::OwnerHomeEarly) => f.owner_home_handled = true,
            (ReadFacts::Entry(f), Question::WalkIn) => f.walk_in = Some(w.walk_in),
            (ReadFacts::Entry(f), Question::Place(pool)) => {
                let answer = place_answer(w, f.walk_in == Some(true), pool);
                match f.walk_in {
                    Some(true) => f.walk_in_place = Some(answer),
                    _ => f.place = Some(answer),
                }
            }
            (ReadFacts::Exit(f), Question::StayLeaving) => {
                f.searched = true;
                f.stay = w.stay_leaving;
            }
            (ReadFacts::Exit(f), Question::Emergency) => f.emergency = Some(w.emergency),
            (ReadFacts::Exit(f), Question::NoEntryFee) => f.no_entry_fee = Some(w.no_entry_fee),
            (ReadFacts::Exit(f), Question::Bill) => f.bill = Some(w.bill),
            (facts, question) => panic!("{question:?} asked of {facts:?}"),
        }
    }

    /// Redis's answer for a place in `pool` (the walk-in's, or the car's own): only the visitor
    /// pool has a capacity, so another pool is never full.
    fn place_answer(w: &World, walk_in: bool, pool: Pool) -> PlaceAnswer {
        let answer = if walk_in { w.walk_in_place } else { w.place };
        match (answer, pool) {
            (PlaceAnswer::Full, Pool::Reserved | Pool::Exempt) => PlaceAnswer::Granted,
            (answer, _) => answer,
        }
    }

    /// The run of one read: every question asked, in order, and how it ended.
    fn run(mut facts: ReadFacts, world: &World, scope: Scope) -> (Vec<Question>, Next) {
        let mut asked = Vec::new();
        loop {
            match next(&facts, scope) {
                Next::Ask(question) => {
                    assert!(
                        !asked.contains(&question),
                        "{question:?} asked twice: {asked:?}"
                    );
                    assert!(asked.len() < 8, "no end: {asked:?}");
                    asked.push(question);
                    learn(&mut facts, question, world);
                }
                end => return (asked, end),
            }
        }
    }

    fn money() -> impl Strategy<Value = Money> {
        (0i64..50_000).prop_map(Money::from_fen)
    }

    fn place() -> impl Strategy<Value = PlaceAnswer> {
        prop_oneof![
            4 => Just(PlaceAnswer::Granted),
            3 => Just(PlaceAnswer::Full),
            1 => Just(PlaceAnswer::Missing),
            1 => Just(PlaceAnswer::Unavailable),
        ]
    }

    fn kind() -> impl Strategy<Value = SessionKind> {
        prop_oneof![
            Just(SessionKind::Exempt),
            Just(SessionKind::Permit),
            Just(SessionKind::Owner),
            Just(SessionKind::Visitor),
        ]
    }

    fn stay() -> impl Strategy<Value = StayFacts> {
        (kind(), any::<bool>(), any::<bool>()).prop_map(|(kind, on_space, read_before_entry)| {
            StayFacts {
                kind,
                on_space,
                read_before_entry,
            }
        })
    }

    fn prior() -> impl Strategy<Value = Option<Prior>> {
        prop_oneof![
            6 => Just(None),
            1 => Just(Some(Prior::SameCar)),
            1 => Just(Some(Prior::OtherPlate)),
        ]
    }

    fn standing() -> impl Strategy<Value = Standing> {
        prop_oneof![
            Just(Standing::Exempt(ExemptClass::Ambulance)),
            Just(Standing::Blocklisted),
            Just(Standing::PermitHolder),
            Just(Standing::Owner),
            Just(Standing::Visitor),
        ]
    }

    fn reads() -> impl Strategy<Value = ReadFacts> {
        let flags = prop::collection::vec(any::<bool>(), 4);
        let reentry = prop_oneof![Just(Reentry::CloseAndReopen), Just(Reentry::Refuse)];
        let policy = prop_oneof![
            Just(NoEntryRecord::Refuse),
            Just(NoEntryRecord::ChargeTariffFee)
        ];
        let entry =
            (prior(), standing(), flags, reentry).prop_map(|(prior, standing, b, reentry)| {
                ReadFacts::Entry(EntryFacts {
                    prior,
                    booking_due: b[0],
                    own_space_taken: b[1],
                    rents_space: b[2],
                    open_stay: b[3],
                    ..EntryFacts::new(standing, reentry)
                })
            });
        let exit = (prior(), prop::option::of(stay()), policy).prop_map(|(prior, stay, policy)| {
            ReadFacts::Exit(ExitFacts {
                prior,
                ..ExitFacts::new(stay, policy)
            })
        });
        prop_oneof![entry, exit]
    }

    fn worlds() -> impl Strategy<Value = World> {
        let bill = prop_oneof![
            6 => (money(), money(), any::<bool>())
                .prop_map(|(fee, paid, clamped)| BillFacts::Billed { fee, paid, clamped }),
            1 => Just(BillFacts::Unbillable),
        ];
        (
            (any::<bool>(), place(), any::<bool>(), place()),
            (
                prop::option::of(stay()),
                any::<bool>(),
                prop::option::of(money()),
                bill,
            ),
        )
            .prop_map(
                |((booking, place, walk_in, walk_in_place), (s, e, fee, bill))| World {
                    booking,
                    place,
                    walk_in,
                    walk_in_place,
                    stay_leaving: s,
                    emergency: e,
                    no_entry_fee: fee,
                    bill,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// A batch decides a read exactly as a run of one would, or leaves it to one; it asks
        /// no rare question; a run of one always ends in a decision, a replay or a failure.
        #[test]
        fn a_batch_decides_as_a_run_of_one_or_leaves_it_alone(read in reads(), world in worlds()) {
            let (asked_alone, alone) = run(read, &world, Scope::Every);
            prop_assert_ne!(&alone, &Next::Alone);
            let (asked_batched, batched) = run(read, &world, Scope::Common);
            prop_assert!(asked_batched.iter().all(|q| !q.rare()), "{:?}", asked_batched);
            if batched != Next::Alone {
                prop_assert_eq!(&batched, &alone);
                prop_assert_eq!(&asked_batched, &asked_alone);
            }
        }

        /// What the barrier does is safe whatever the world answers: a car is let in only with
        /// a place granted for its pool (or as an emergency vehicle), a blocklisted plate only
        /// as one, a car let out only when what it owes is paid.
        #[test]
        fn the_barrier_opens_only_when_the_rules_allow(read in reads(), world in worlds()) {
            let (asked, end) = run(read, &world, Scope::Every);
            let Next::Decide(verdict) = end else { return Ok(()) };
            match (read, &verdict) {
                (ReadFacts::Entry(f), Verdict::Admit { kind, pool, decision }) => {
                    prop_assert_eq!(decision.action, crate::decision::Action::Open);
                    let exempt = matches!(f.standing, Standing::Exempt(_));
                    prop_assert_eq!(exempt, *kind == SessionKind::Exempt);
                    prop_assert!(f.standing != Standing::Blocklisted);
                    if *pool != Pool::Exempt {
                        let place = asked.iter().rev().find(|q| matches!(q, Question::Place(_)));
                        prop_assert_eq!(place, Some(&Question::Place(*pool)));
                        let walk_in = asked.contains(&Question::WalkIn);
                        prop_assert_eq!(place_answer(&world, walk_in, *pool), PlaceAnswer::Granted);
                    }
                }
                (ReadFacts::Entry(_), Verdict::Refuse(d)) => {
                    prop_assert_eq!(d.action, crate::decision::Action::Refuse);
                    // A refused read changes nothing (issue 20's tester, round 4, F2).
                    let changes = [Question::CloseMissedExit, Question::OwnerHomeEarly];
                    prop_assert!(asked.iter().all(|q| !changes.contains(q)), "{:?}", asked);
                    // A booking or a walk-in space taken is a car let in.
                    prop_assert!(!(asked.contains(&Question::Booking) && world.booking));
                    prop_assert!(!(asked.contains(&Question::WalkIn) && world.walk_in));
                }
                (ReadFacts::Exit(_), Verdict::Bill(d)) => {
                    let BillFacts::Billed { fee, paid, .. } = world.bill else {
                        return Err(TestCaseError::fail("billed without a bill"));
                    };
                    let opens = d.action == crate::decision::Action::Open;
                    prop_assert_eq!(opens, fee.is_zero() || paid >= fee || d.reason == Reason::EmergencyExempt);
                    prop_assert_eq!(d.amount_due, if opens { Money::ZERO } else { fee.saturating_sub(paid) });
                }
                (ReadFacts::Exit(_), Verdict::ChargeAtExit { decision, kind, fee }) => {
                    prop_assert!(asked.contains(&Question::StayLeaving));
                    prop_assert_eq!(decision.action == crate::decision::Action::Open, fee.is_zero());
                    prop_assert_eq!(decision.reason == Reason::EmergencyExempt, world.emergency);
                    prop_assert_eq!(*kind == SessionKind::Exempt, world.emergency);
                }
                (ReadFacts::Exit(_), Verdict::Refuse(d)) => {
                    prop_assert_eq!(d.reason, Reason::NoEntryRecord)
                }
                (read, verdict) => prop_assert!(false, "{:?} decided {:?}", read, verdict),
            }
        }
    }
}
