-- Parking sessions (stays), the gate events that decided them, staff-recorded payments and
-- anomalies. Postgres is the system of record; Redis occupancy is rebuilt from open sessions.

create table sessions (
    id             uuid primary key,
    tenant_id      uuid not null,
    compound_id    uuid not null,
    lot_id         uuid not null references lots (id),
    plate          text not null,
    vehicle_class  text not null check (vehicle_class in ('small', 'large', 'new_energy')),
    kind           text not null check (kind in ('exempt', 'permit', 'owner', 'visitor')),
    pool           text not null check (pool in ('visitor', 'reserved', 'exempt')),
    status         text not null check (status in ('open', 'closed')),
    -- 'no_entry_record': opened at an exit read that matched no entry, to carry its flat fee.
    origin         text not null check (origin in ('entry', 'no_entry_record')),
    entered_at     timestamptz,
    entry_gate_id  uuid references gates (id),
    exited_at      timestamptz,
    exit_gate_id   uuid references gates (id),
    -- The fee as last billed, with its itemised bill.
    fee            numeric(12, 2),
    bill           jsonb,
    paid           numeric(12, 2) not null default 0 check (paid >= 0),
    last_paid_at   timestamptz,
    anomaly        text,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    check (origin <> 'entry' or entered_at is not null)
);
-- One open session per plate and lot: the database itself refuses a second.
create unique index sessions_one_open_per_plate on sessions (lot_id, plate) where status = 'open';
create index sessions_lot_status on sessions (lot_id, status, entered_at desc);

create table gate_events (
    id               uuid primary key,
    gate_id          uuid not null references gates (id),
    device_event_id  text not null,
    plate            text not null,
    direction        text not null check (direction in ('entry', 'exit')),
    captured_at      timestamptz not null,
    received_at      timestamptz not null default now(),
    session_id       uuid references sessions (id),
    action           text not null check (action in ('open', 'refuse')),
    reason           text not null,
    -- The full answer, replayed to duplicate reads.
    response         jsonb not null,
    constraint gate_events_device_event_key unique (gate_id, device_event_id)
);
create index gate_events_recent_plate on gate_events (gate_id, plate, captured_at desc);

create table session_payments (
    id           uuid primary key,
    session_id   uuid not null references sessions (id),
    amount       numeric(12, 2) not null check (amount > 0),
    method       text not null check (method in ('staff_marked')),
    recorded_at  timestamptz not null default now()
);

create table anomalies (
    id           uuid primary key,
    tenant_id    uuid not null,
    lot_id       uuid not null references lots (id),
    session_id   uuid references sessions (id),
    gate_id      uuid references gates (id),
    kind         text not null check (kind in ('plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry')),
    plate        text not null,
    detail       text not null,
    created_at   timestamptz not null default now()
);
create index anomalies_lot on anomalies (lot_id, created_at desc);
