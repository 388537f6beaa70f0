-- Issue 22 item 6: a booking holds its space only once it is paid. A new booking is `held`
-- until `hold_expires_at` (minutes) with a payment intent for its price; the provider's
-- notification makes it `booked` (confirmed); an unpaid hold becomes `expired`. An expired hold
-- stops holding at `hold_expires_at` even before the sweep marks it: the booking transaction
-- expires stale holds in its way before it inserts, and availability reads ignore them.

alter table bookings drop constraint bookings_no_overlap;
alter table bookings drop constraint bookings_status_check;
alter table bookings add constraint bookings_status_check
    check (status in ('held', 'booked', 'arrived', 'completed', 'cancelled', 'no_show', 'expired'));
alter table bookings add column hold_expires_at timestamptz;
alter table bookings add constraint bookings_hold_has_expiry
    check (status <> 'held' or hold_expires_at is not null);
-- What the visitor owes for the booked time (the filed tariff at `price_pct`); null for walk-ins,
-- which pay at the exit.
alter table bookings add column price numeric(12, 2) check (price >= 0);
-- What was received for it, what of that was given back, and the journal transaction.
alter table bookings add column paid numeric(12, 2) not null default 0 check (paid >= 0);
alter table bookings add column refunded numeric(12, 2) not null default 0;
alter table bookings add constraint bookings_refund_at_most_paid check (refunded between 0 and paid);
alter table bookings add column payment_transaction_id uuid references journal_transactions (id);
-- The address the booking came from, for the per-client cap.
alter table bookings add column client_addr inet;
alter table bookings add constraint bookings_no_overlap exclude using gist (space_id with =, during with &&)
    where (status in ('held', 'booked', 'arrived'));

drop index bookings_live_plate;
create index bookings_live_plate on bookings (plate) where status in ('held', 'booked', 'arrived');
create index bookings_live_client on bookings (client_addr) where status in ('held', 'booked', 'arrived');
create index bookings_holds on bookings (hold_expires_at) where status = 'held';

alter table booking_events drop constraint booking_events_kind_check;
alter table booking_events add constraint booking_events_kind_check
    check (kind in ('made', 'confirmed', 'expired', 'moved', 'arrived', 'completed', 'cancelled', 'overstay', 'no_show'));

-- An intent pays either a stay or a booking.
alter table payment_intents alter column session_id drop not null;
alter table payment_intents add column booking_id uuid references bookings (id);
alter table payment_intents add constraint payment_intents_pays_one
    check (num_nonnulls(session_id, booking_id) = 1);
create unique index payment_intents_one_per_booking on payment_intents (booking_id) where booking_id is not null;

-- A booking's payment and refunds are journal transactions of the booking (no stay exists yet).
alter table journal_transactions add column booking_id uuid references bookings (id);
create index journal_transactions_booking on journal_transactions (booking_id) where booking_id is not null;

-- When the booked car arrives, its booking payment counts towards the stay.
alter table session_payments drop constraint session_payments_method_check;
alter table session_payments add constraint session_payments_method_check
    check (method in ('staff_marked', 'cash', 'provider', 'booking'));
