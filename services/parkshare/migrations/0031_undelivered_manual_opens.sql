-- A manual open that never reached its barrier (it expired waiting for the camera) must not
-- leave behind the passage it recorded: a car let in "by hand" that never entered would hold a
-- place and a stay for ever, one let out that never left would be a car inside without a stay.

-- The barrier command a press was delivered by (presses merged into one open share it).
alter table manual_opens add column command_id uuid references device_commands (id);
create index manual_opens_command on manual_opens (command_id) where command_id is not null;

-- Each undone passage, once (several replicas may find it).
create table manual_open_undone (
    manual_open_id uuid primary key references manual_opens (id),
    session_id     uuid not null references sessions (id),
    -- 'stay_voided': the entry's stay is closed without a fee; 'stay_reopened': the exit's
    -- stay is open again; 'unchanged': the stay had moved on (another read, a payment) and
    -- was left as it was.
    outcome        text not null check (outcome in ('stay_voided', 'stay_reopened', 'unchanged')),
    created_at     timestamptz not null default now()
);

alter table anomalies drop constraint anomalies_kind_check;
alter table anomalies add constraint anomalies_kind_check check (kind in (
    'plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry', 'tariff_clamped',
    'owner_space_occupied', 'booking_overstay',
    'two_entries', 'exit_without_entry', 'offline_reconstructed', 'fail_open', 'manual_open', 'device_silent',
    'device_clock', 'barrier_unreachable', 'manual_open_not_delivered'));
