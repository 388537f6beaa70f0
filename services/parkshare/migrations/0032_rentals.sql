-- Rentals (月租, issue 26; parkshare_allocation::rental and docs/rentals.md): a monthly pass for a
-- lot's pool, or the rent of one space (common-area, developer-unsold, or an owner's space let
-- long-term), for whole months, paid like any payment and credited by the space's kind.
--
-- One row is one term: a renewal is a new row (`renews_id`) starting the day after the term it
-- renews. A row holds its space (and its plate in its lot) from the application until its term
-- ends, unless its unpaid hold lapsed or it was cancelled: the exclusion constraints make
-- Postgres itself refuse a second rental of one space, or of one plate in one lot, for any
-- overlapping day.

create table rentals (
    id               uuid primary key,
    tenant_id        uuid not null,
    compound_id      uuid not null,
    lot_id           uuid not null,
    -- Null: a pass for the lot's pool (no particular space).
    space_id         uuid,
    -- The kind of space rented, kept with the row: what the ledger split and the waiting list go by.
    space_kind       text not null check (space_kind in ('pool', 'common', 'developer_unsold', 'owned')),
    plate            text not null,
    vehicle_class    text not null check (vehicle_class in ('small', 'large', 'new_energy')),
    -- The renting household, when an owner of the compound; null for a non-owner renter, named below.
    owner_id         uuid,
    renter_name      text check (length(renter_name) between 1 and 200),
    renter_phone     text check (length(renter_phone) between 1 and 40),
    months           integer not null check (months between 1 and 12),
    -- The term's days, [first day, day after the last) in the compound's local dates.
    during           daterange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
    -- Days after the term during which the car is still admitted as a renter (the setting when
    -- the term was made).
    grace_days       integer not null check (grace_days between 0 and 31),
    -- The filed monthly price of the class, the discount taken off for an owner, and the term's price.
    monthly_price    numeric(12, 2) not null check (monthly_price > 0),
    discount_pct     numeric(5, 2) not null default 0 check (discount_pct between 0 and 100),
    price            numeric(12, 2) not null check (price > 0),
    filing_no        text not null,
    status           text not null check (status in ('awaiting_payment', 'paid', 'ended', 'expired', 'cancelled')),
    hold_expires_at  timestamptz,
    renews_id        uuid references rentals (id),
    applied_by       text not null check (applied_by in ('owner', 'staff', 'lottery')),
    paid             numeric(12, 2) not null default 0 check (paid >= 0),
    refunded         numeric(12, 2) not null default 0,
    payment_method   text check (payment_method in ('provider', 'cash')),
    payment_transaction_id uuid references journal_transactions (id),
    paid_at          timestamptz,
    -- An early end: the last day of use; the term was cut to end on it.
    ended_on         date,
    reminded_at      timestamptz,
    created_at       timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    foreign key (tenant_id, lot_id) references lots (tenant_id, id),
    foreign key (tenant_id, space_id) references spaces (tenant_id, id),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id),
    unique (tenant_id, id),
    constraint rentals_pool_iff_no_space check ((space_kind = 'pool') = (space_id is null)),
    constraint rentals_renter_named check (owner_id is not null or renter_name is not null),
    constraint rentals_refund_at_most_paid check (refunded between 0 and paid),
    constraint rentals_hold_has_expiry check (status <> 'awaiting_payment' or hold_expires_at is not null),
    -- A paid or ended term has its payment; one awaiting payment has none (a cancelled term
    -- may have either: cancelled unpaid, or ended before it began and refunded whole).
    constraint rentals_paid_whole check (status not in ('paid', 'ended') or payment_transaction_id is not null),
    constraint rentals_unpaid_whole check (status not in ('awaiting_payment', 'expired') or payment_transaction_id is null),
    constraint rentals_one_per_space exclude using gist (space_id with =, during with &&)
        where (status in ('awaiting_payment', 'paid', 'ended')),
    constraint rentals_one_per_plate exclude using gist (lot_id with =, plate with =, during with &&)
        where (status in ('awaiting_payment', 'paid', 'ended'))
);
create index rentals_compound on rentals (compound_id, created_at);
-- The gate's question: a paid term of this plate in this lot covering today.
create index rentals_in_force on rentals (lot_id, plate) where status in ('paid', 'ended');
-- One renewal per term.
create unique index rentals_one_renewal on rentals (renews_id)
    where renews_id is not null and status in ('awaiting_payment', 'paid', 'ended');

-- A payment intent may pay a rental's term.
alter table payment_intents add column rental_id uuid references rentals (id);
alter table payment_intents drop constraint payment_intents_pays_one;
alter table payment_intents add constraint payment_intents_pays_one
    check (num_nonnulls(session_id, booking_id, rental_id) = 1);
create unique index payment_intents_one_per_rental on payment_intents (rental_id) where rental_id is not null;

-- A rental's payment and refunds name it.
alter table journal_transactions add column rental_id uuid references rentals (id);
create index journal_transactions_rental on journal_transactions (rental_id) where rental_id is not null;

-- The owners-first waiting list: owners waiting for a kind of space, served in the compound's order.
alter table compounds add column waiting_order text not null default 'first_come'
    check (waiting_order in ('first_come', 'without_space_first', 'fewest_spaces_first'));

create table waiting_list (
    id          uuid primary key,
    tenant_id   uuid not null,
    compound_id uuid not null,
    owner_id    uuid not null,
    space_kind  text not null check (space_kind in ('pool', 'common', 'developer_unsold', 'owned')),
    status      text not null check (status in ('waiting', 'served', 'withdrawn')),
    joined_at   timestamptz not null default clock_timestamp(),
    -- The rental that served the entry.
    rental_id   uuid references rentals (id),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id)
);
create unique index waiting_list_once on waiting_list (owner_id, space_kind) where status = 'waiting';
create index waiting_list_compound on waiting_list (compound_id, space_kind) where status = 'waiting';
