-- Camera adapters and device health (issue 7): which vendor protocol a gate's camera speaks,
-- how to call it back, what the lane does when the backend cannot decide in time, when it was
-- last heard from; offline and fail-open passages; staff opening a barrier by hand; anomalies
-- that staff resolve.

alter table gates
    add column vendor text check (vendor in ('vzenith', 'dahua', 'hikvision')),
    -- The camera's own serial number (Vzenith serialno, Dahua DeviceID, Hikvision MAC): a push
    -- naming another serial is refused even with the right URL.
    add column device_serial text check (length(device_serial) between 1 and 64),
    -- Where the backend calls the device (Hikvision barrier control), with its digest login.
    add column device_url text check (device_url ~ '^https?://'),
    add column device_username text,
    add column device_password text,
    -- What the lane does when the backend cannot decide within the gate's budget.
    add column fail_mode text not null default 'closed' check (fail_mode in ('open', 'closed')),
    add column heartbeat_window_s integer not null default 120 check (heartbeat_window_s between 10 and 86400),
    add column last_seen_at timestamptz,
    add constraint gates_device_login_pair check ((device_username is null) = (device_password is null));
create unique index gates_vendor_serial on gates (vendor, device_serial) where device_serial is not null;

-- How an event reached us: the JSON API, a vendor push, a fail-open passage recorded after the
-- fact, or a staff member's manual open. `offline`: the camera had already let the car through
-- (its offline buffer, a fail-open, a manual open); the event is a fact to record, not a
-- question to answer.
alter table gate_events
    add column source text not null default 'api'
        check (source in ('api', 'vzenith', 'dahua', 'hikvision', 'fail_open', 'manual')),
    add column offline boolean not null default false;

alter table gate_events drop constraint gate_events_action_check;
alter table gate_events add constraint gate_events_action_check check (action in ('open', 'refuse', 'none'));

-- Sessions reconstructed from late events: an exit recorded before its entry was known.
alter table sessions drop constraint sessions_origin_check;
alter table sessions add constraint sessions_origin_check
    check (origin in ('entry', 'no_entry_record', 'offline_exit'));

alter table anomalies drop constraint anomalies_kind_check;
alter table anomalies add constraint anomalies_kind_check check (kind in (
    'plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry', 'tariff_clamped',
    'owner_space_occupied', 'booking_overstay',
    'two_entries', 'exit_without_entry', 'offline_reconstructed', 'fail_open', 'manual_open', 'device_silent'));
alter table anomalies
    add column resolved_at timestamptz,
    add column resolved_note text;
create index anomalies_open on anomalies (lot_id, created_at desc) where resolved_at is null;

-- Barrier lifted by a staff member: who, why, at which lane. Never updated or deleted.
create table manual_opens (
    id           uuid primary key,
    tenant_id    uuid not null,
    gate_id      uuid not null references gates (id),
    staff_label  text not null,
    reason       text not null check (reason in (
        'payment_system_down', 'emergency_vehicle', 'plate_unreadable', 'equipment_fault',
        'staff_verified', 'other')),
    note         text not null default '',
    plate        text,
    session_id   uuid references sessions (id),
    -- How the barrier was told: the device was called, the command waits for the camera's
    -- next heartbeat, or the lane's own controller acts on the API answer.
    delivery     text not null check (delivery in ('device_call', 'next_heartbeat', 'lane_controller')),
    created_at   timestamptz not null default now(),
    check (reason <> 'other' or length(note) > 0)
);
create index manual_opens_gate on manual_opens (gate_id, created_at desc);
create trigger manual_opens_immutable before update or delete on manual_opens
    for each row execute function refuse_change();

-- Commands for a device: barrier opens called on the device (Hikvision ISAPI) or waiting to be
-- handed to the camera in its next heartbeat reply (Vzenith, Dahua).
create table device_commands (
    id           uuid primary key,
    gate_id      uuid not null references gates (id),
    command      text not null check (command in ('open_barrier')),
    cause        text not null check (cause in ('decision', 'manual_open')),
    status       text not null check (status in ('pending', 'done', 'failed')),
    attempts     integer not null default 0,
    last_error   text,
    created_at   timestamptz not null default now(),
    done_at      timestamptz
);
create index device_commands_pending on device_commands (gate_id, created_at) where status = 'pending';
