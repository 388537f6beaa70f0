-- Gate contexts (gate, lot and compound facts the hot path needs) are cached in each process.
-- A change to a column they are made of notifies every process to forget its cache. Device
-- health (gates.last_seen_at) and other busy columns are left out on purpose: they are written
-- all the time and are not part of a context.
create function notify_gate_contexts() returns trigger
language plpgsql as $$
begin
    perform pg_notify('parkshare_gate_contexts', tg_table_name);
    return null;
end
$$;

create trigger gates_context_changed
    after insert or delete or truncate
    on gates for each statement execute function notify_gate_contexts();
create trigger gates_context_updated
    after update of id, tenant_id, lot_id, direction, secret_sha256, vendor, device_serial,
        fail_mode, device_url, device_username, device_password
    on gates for each statement execute function notify_gate_contexts();
create trigger lots_context_changed
    after update of id, compound_id, tariff or delete or truncate
    on lots for each statement execute function notify_gate_contexts();
create trigger compounds_context_changed
    after update of id, time_zone, policy or delete or truncate
    on compounds for each statement execute function notify_gate_contexts();
