-- Time-shared private spaces (issue 4): owners' sharing schedules, visitors' bookings, and the
-- webhook outbox. Two live bookings can never overlap on one space: the exclusion constraint
-- below refuses it, whatever the code does.

create extension if not exists btree_gist;

-- Owners' credentials; only SHA-256 digests are stored, as for staff and devices.
create table owner_tokens (
    token_sha256  bytea primary key,
    tenant_id     uuid not null,
    owner_id      uuid not null,
    label         text not null,
    created_at    timestamptz not null default now(),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id)
);

-- An owned space its owner shares. `windows` is parkshare_sharing::WeeklyWindow[] as JSON,
-- in the compound's local time.
create table shared_spaces (
    space_id     uuid primary key,
    tenant_id    uuid not null,
    compound_id  uuid not null,
    lot_id       uuid not null,
    owner_id     uuid not null,
    windows      jsonb not null default '[]',
    paused       boolean not null default false,
    updated_at   timestamptz not null default now(),
    foreign key (tenant_id, space_id) references spaces (tenant_id, id),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id)
);
create index shared_spaces_lot on shared_spaces (lot_id);

create table share_exceptions (
    id          uuid primary key,
    space_id    uuid not null references shared_spaces (space_id),
    kind        text not null check (kind in ('open', 'blackout')),
    during      tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
    created_at  timestamptz not null default now()
);
create index share_exceptions_space on share_exceptions (space_id);

create table bookings (
    id                 uuid primary key,
    tenant_id          uuid not null,
    compound_id        uuid not null,
    lot_id             uuid not null references lots (id),
    space_id           uuid not null references shared_spaces (space_id),
    plate              text not null,
    during             tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
    status             text not null check (status in ('booked', 'arrived', 'completed', 'cancelled')),
    -- 'walk_in': placed by the gate when the visitor pool was full.
    origin             text not null check (origin in ('booking', 'walk_in')),
    -- The visitor's credential for this booking (digest only).
    token_sha256       bytea not null unique,
    webhook_url        text,
    webhook_secret     text,
    session_id         uuid references sessions (id),
    free_cancel_until  timestamptz not null,
    cancellation_fee   numeric(12, 2) check (cancellation_fee >= 0),
    cancel_reason      text,
    overstay_at        timestamptz,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint bookings_no_overlap exclude using gist (space_id with =, during with &&)
        where (status in ('booked', 'arrived'))
);
create index bookings_live_plate on bookings (lot_id, plate) where status in ('booked', 'arrived');
create index bookings_space on bookings (space_id, lower(during));

-- What happened to a booking, in order: the owner's "who parked when" and the audit trail.
create table booking_events (
    id          bigserial primary key,
    booking_id  uuid not null references bookings (id),
    kind        text not null check (kind in ('made', 'moved', 'arrived', 'completed', 'cancelled', 'overstay')),
    detail      jsonb not null default '{}',
    at          timestamptz not null default now()
);
create index booking_events_booking on booking_events (booking_id, id);
create trigger booking_events_append_only before update or delete on booking_events
    for each row execute function refuse_change();

-- Owners' webhook endpoints. The secret signs deliveries (HMAC-SHA256); it is shown once.
create table owner_webhooks (
    owner_id    uuid primary key,
    tenant_id   uuid not null,
    url         text not null,
    secret      text not null,
    updated_at  timestamptz not null default now(),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id)
);

-- The outbox: written in the same transaction as the change it reports, delivered after.
create table webhook_deliveries (
    id               uuid primary key,
    tenant_id        uuid not null,
    url              text not null,
    secret           text not null,
    event            text not null,
    payload          jsonb not null,
    status           text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_status      integer,
    last_error       text,
    created_at       timestamptz not null default now(),
    delivered_at     timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';

alter table anomalies drop constraint anomalies_kind_check;
alter table anomalies add constraint anomalies_kind_check check (kind in (
    'plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry', 'tariff_clamped',
    'owner_space_occupied', 'booking_overstay'));
