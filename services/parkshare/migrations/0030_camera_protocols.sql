-- Cameras on real devices (issue 25).
--
-- How the LED/voice board behind a Vzenith camera takes its text: `raw` GBK text on the first
-- serial port, or `led_board`, the framed protocol of the RS-485 LED/voice boards sold with
-- these cameras (CRC16-checked frames).
alter table gates
    add column display_protocol text not null default 'raw'
        check (display_protocol in ('raw', 'led_board')),
    -- When the lane's camera was set up: a device's silence is counted from here, not from
    -- the gate's creation (a gate made months before its camera was fitted is not "silent").
    add column device_configured_at timestamptz;
update gates set device_configured_at = created_at where vendor is not null;

-- A manual open that has not reached the barrier within its time is dropped, never fired
-- minutes later when the camera comes back.
alter table device_commands drop constraint device_commands_status_check;
alter table device_commands add constraint device_commands_status_check
    check (status in ('pending', 'done', 'failed', 'expired'));
alter table device_commands add column expires_at timestamptz;

-- A camera whose clock is far off (reset to 1970): a fault of the device, listed for staff.
-- A decision to open that cannot reach a barrier opened only by a device call (a Hikvision
-- lane set up before a device login was required).
alter table anomalies drop constraint anomalies_kind_check;
alter table anomalies add constraint anomalies_kind_check check (kind in (
    'plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry', 'tariff_clamped',
    'owner_space_occupied', 'booking_overstay',
    'two_entries', 'exit_without_entry', 'offline_reconstructed', 'fail_open', 'manual_open', 'device_silent',
    'device_clock', 'barrier_unreachable'));

-- display_protocol is part of a gate's cached context: every replica forgets its cache when it
-- changes (the trigger of 0013/0019 again, with the new column).
drop trigger gates_context_updated on gates;
create trigger gates_context_updated
    after update of id, tenant_id, lot_id, direction, secret_sha256, secret_revoked_at, vendor,
        device_serial, fail_mode, device_url, device_username, device_password, display_protocol
    on gates for each statement execute function notify_gate_contexts();
